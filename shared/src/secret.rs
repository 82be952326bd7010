//! [`Secret`]: a password, token or API key that never shows up in `Debug` or `Display`
//! output, so never in a log line or a panic message by accident.
//!
//! It does not zero memory on drop or guard against anything beyond formatting: the value is
//! read through [`Secret::expose`], and every such call is a place to review.

use std::fmt;

/// A secret string; formats as `Secret(..)` whichever way it is printed.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    /// Wraps `value`.
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret itself, for the one place that must send or compare it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(..)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_never_print_the_value() {
        let secret = Secret::new("hunter2-token");
        for shown in [
            format!("{secret:?}"),
            format!("{secret:#?}"),
            format!("{secret}"),
            format!("{:?}", Some(("user", secret.clone()))),
        ] {
            assert!(!shown.contains("hunter2"), "{shown}");
            assert!(shown.contains("Secret(..)"), "{shown}");
        }
    }

    #[test]
    fn expose_gives_the_value_back() {
        assert_eq!(Secret::new("k").expose(), "k");
        assert_eq!(Secret::new("k"), Secret::new(String::from("k")));
    }
}
