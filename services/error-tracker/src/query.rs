//! Parsing the query parameters of `GET /api/errors` into a [`ListFilter`].

use shared::http::params::{self, invalid};
use shared::http::{ApiError, Request};

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
    let limit = params::limit(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = params::integer(request, "offset", 0)?.unwrap_or(0);
    Ok(ListFilter {
        project: text("project"),
        environment: text("environment"),
        resolved,
        browser,
        session_id: text("session_id"),
        search: text("search"),
        since_ms: params::time(request, "since")?,
        until_ms: params::time(request, "until")?,
        sort,
        limit,
        offset,
        now_ms: shared::time::now_ms(),
    })
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
