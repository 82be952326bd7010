//! Parsing the query parameters of `GET /api/errors` into a [`ListFilter`].

use shared::http::{ApiError, Request};
use shared::time::parse_rfc3339_ms;

use crate::db::{ListFilter, SortKey};

/// Page size bounds.
const DEFAULT_LIMIT: i64 = 50;
const MAX_LIMIT: i64 = 200;

/// Reads every list parameter; an invalid value is a 400 naming the parameter.
pub fn list_filter(request: &Request) -> Result<ListFilter, ApiError> {
    let text = |name: &str| request.query(name).map(String::from);
    let resolved = match request.query("resolved").unwrap_or("false") {
        "false" => Some(false),
        "true" => Some(true),
        "all" => None,
        other => return Err(invalid("resolved", other, "false, true or all")),
    };
    let browser = match request.query("source") {
        None => None,
        Some("browser") => Some(true),
        Some("server") => Some(false),
        Some(other) => return Err(invalid("source", other, "browser or server")),
    };
    let sort = match request.query("sort").unwrap_or("last_seen") {
        "last_seen" => SortKey::LastSeen,
        "first_seen" => SortKey::FirstSeen,
        "count" => SortKey::Count,
        other => return Err(invalid("sort", other, "last_seen, first_seen or count")),
    };
    let limit = match request.query("limit") {
        None => DEFAULT_LIMIT,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 1 => n.min(MAX_LIMIT),
            _ => return Err(invalid("limit", raw, "a whole number from 1 to 200")),
        },
    };
    let offset = match request.query("offset") {
        None => 0,
        Some(raw) => match raw.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => return Err(invalid("offset", raw, "a whole number of at least 0")),
        },
    };
    Ok(ListFilter {
        project: text("project"),
        environment: text("environment"),
        resolved,
        browser,
        session_id: text("session_id"),
        search: text("search"),
        since_ms: time_param(request, "since")?,
        until_ms: time_param(request, "until")?,
        sort,
        limit,
        offset,
    })
}

/// An optional RFC 3339 parameter as epoch ms.
pub fn time_param(request: &Request, name: &str) -> Result<Option<i64>, ApiError> {
    match request.query(name) {
        None => Ok(None),
        Some(raw) => parse_rfc3339_ms(raw)
            .map(Some)
            .ok_or_else(|| invalid(name, raw, "an RFC 3339 time such as 2026-01-01T12:00:00Z")),
    }
}

fn invalid(name: &str, value: &str, expected: &str) -> ApiError {
    ApiError::bad_request(format!(
        "parameter '{name}' must be {expected} (got {value:?})"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn filter(target: &str) -> Result<ListFilter, ApiError> {
        list_filter(&Request::new("GET", target))
    }

    #[test]
    fn defaults() {
        let f = filter("/api/errors").unwrap();
        assert_eq!(f.resolved, Some(false));
        assert_eq!((f.limit, f.offset), (50, 0));
        assert_eq!(f.sort, SortKey::LastSeen);
    }

    #[test]
    fn limit_rules() {
        assert_eq!(filter("/x?limit=1000").unwrap().limit, 200);
        for bad in ["0", "-1", "ten", "1.5"] {
            let err = filter(&format!("/x?limit={bad}")).unwrap_err();
            assert!(err.detail().contains("'limit'"), "{bad}: {}", err.detail());
        }
    }

    #[test]
    fn invalid_values_name_the_parameter() {
        for (query, name) in [
            ("resolved=maybe", "resolved"),
            ("source=phone", "source"),
            ("sort=name", "sort"),
            ("offset=-3", "offset"),
            ("since=yesterday", "since"),
            ("until=2026-13-01T00:00:00Z", "until"),
        ] {
            let err = filter(&format!("/x?{query}")).unwrap_err();
            assert_eq!(err.status(), 400);
            assert!(
                err.detail().contains(&format!("'{name}'")),
                "{query}: {}",
                err.detail()
            );
        }
    }
}
