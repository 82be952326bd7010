//! API-key checks: `X-API-Key` header or `api_key` query parameter, compared in constant time.

use crate::http::Request;

/// Compares two byte strings in time that depends only on their lengths, not their contents.
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Whether the request carries `expected` as its key. The header wins when both the header
/// and the `api_key` query parameter are present (`EventSource` cannot send headers).
pub fn has_valid_key(request: &Request, expected: &str) -> bool {
    let presented = request
        .header("x-api-key")
        .or_else(|| request.query("api_key"));
    match presented {
        Some(key) => constant_time_eq(key.as_bytes(), expected.as_bytes()),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_and_unequal_keys() {
        assert!(constant_time_eq(b"secret", b"secret"));
        assert!(!constant_time_eq(b"secret", b"secreT"));
        assert!(!constant_time_eq(b"secret", b"secret2"));
        assert!(constant_time_eq(b"", b""));
    }
}
