//! Typed query parameters: an invalid value is a 400 naming the parameter and the value.

use super::request::Request;
use super::response::ApiError;
use crate::time::parse_rfc3339_ms;

/// `400 parameter 'name' must be <expected> (got "value")`.
pub fn invalid(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!(
        "parameter '{name}' must be {expected} (got {value:?})"
    ))
}

/// An optional RFC 3339 time, as epoch ms.
pub fn time(request: &Request, name: &str) -> Result<Option<i64>, ApiError> {
    match request.query(name) {
        None => Ok(None),
        Some(raw) => parse_rfc3339_ms(raw)
            .map(Some)
            .ok_or_else(|| invalid(name, raw, "an RFC 3339 time such as 2026-01-01T12:00:00Z")),
    }
}

/// A page size: `default` when absent, at least 1 (0 or not a number → 400), larger values
/// are lowered to `max`.
pub fn limit(request: &Request, name: &str, default: i64, max: i64) -> Result<i64, ApiError> {
    match request.query(name) {
        None => Ok(default),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 1 => Ok(n.min(max)),
            _ => Err(invalid(
                name,
                raw,
                &format!("a whole number from 1 to {max}"),
            )),
        },
    }
}

/// An optional whole number of at least `min`.
pub fn integer(request: &Request, name: &str, min: i64) -> Result<Option<i64>, ApiError> {
    match request.query(name) {
        None => Ok(None),
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= min => Ok(Some(n)),
            _ => Err(invalid(
                name,
                raw,
                &format!("a whole number of at least {min}"),
            )),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_and_numbers() {
        let req = Request::new(
            "GET",
            "/x?limit=900&offset=-1&n=7&bad=x&t=2026-01-01T00:00:00Z",
        );
        assert_eq!(limit(&req, "limit", 50, 200).unwrap(), 200);
        assert_eq!(limit(&req, "missing", 50, 200).unwrap(), 50);
        assert!(limit(&req, "bad", 50, 200)
            .unwrap_err()
            .detail()
            .contains("'bad'"));
        assert!(integer(&req, "offset", 0).is_err());
        assert_eq!(integer(&req, "n", 0).unwrap(), Some(7));
        assert!(time(&req, "t").unwrap().is_some());
        assert!(time(&req, "bad").is_err());
    }
}
