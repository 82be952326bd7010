//! Parsing the query parameters of the log endpoints into [`Filter`]s.

use shared::http::params::{self, invalid};
use shared::http::{ApiError, Request};

use crate::db::{Filter, LevelFilter};
use crate::level::Level;
use crate::tail::fold::fold;
use crate::tail::TailFilter;

/// Page size bounds of `/api/logs`.
const DEFAULT_LIMIT: i64 = 100;
const MAX_LIMIT: i64 = 500;
/// Histogram bars.
const DEFAULT_BUCKETS: i64 = 60;
const MAX_BUCKETS: i64 = 500;

/// `container` (repeatable), `level`, `search`/`q`, `since`, `until`, `before_id`.
pub fn filter(request: &Request) -> Result<Filter, ApiError> {
    Ok(Filter {
        containers: containers(request),
        level: level(request)?,
        search: request
            .query("search")
            .or_else(|| request.query("q"))
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(String::from),
        since_ms: params::time(request, "since")?,
        until_ms: params::time(request, "until")?,
        before_id: params::integer(request, "before_id", 1)?,
    })
}

/// `limit` (1–500, default 100) and `offset`.
pub fn page(request: &Request) -> Result<(i64, i64), ApiError> {
    let limit = params::limit(request, "limit", DEFAULT_LIMIT, MAX_LIMIT)?;
    let offset = params::integer(request, "offset", 0)?.unwrap_or(0);
    Ok((limit, offset))
}

/// The `{id}` of `/api/logs/{id}`.
pub fn entry_id(request: &Request) -> Result<i64, ApiError> {
    let raw = request.param("id").unwrap_or_default();
    raw.parse().map_err(|_| {
        ApiError::bad_request(format!(
            "path parameter 'id' must be an entry id (got {raw:?})"
        ))
    })
}

/// `buckets` (1–500, default 60).
pub fn buckets(request: &Request) -> Result<i64, ApiError> {
    params::limit(request, "buckets", DEFAULT_BUCKETS, MAX_BUCKETS)
}

/// The live tail's filters (its `search` is a plain substring) and where a replay starts
/// (`Last-Event-ID` header, else `since_id`).
pub fn tail(request: &Request) -> Result<(TailFilter, Option<i64>), ApiError> {
    let filter = TailFilter {
        containers: containers(request),
        level: level(request)?,
        substring: request.query("search").map(fold),
    };
    let since_id = match request
        .header("last-event-id")
        .filter(|v| !v.trim().is_empty())
    {
        Some(raw) => Some(raw.trim().parse::<i64>().map_err(|_| {
            ApiError::bad_request(format!(
                "header 'Last-Event-ID' must be a live-tail event id (got {raw:?})"
            ))
        })?),
        None => params::integer(request, "since_id", 0)?,
    };
    Ok((filter, since_id))
}

fn containers(request: &Request) -> Vec<String> {
    request
        .query_all("container")
        .into_iter()
        .map(String::from)
        .collect()
}

/// `ERROR` (exactly) or `>=WARNING` (that level and above), case-insensitive.
fn level(request: &Request) -> Result<Option<LevelFilter>, ApiError> {
    let Some(raw) = request.query("level") else {
        return Ok(None);
    };
    let (at_least, word) = match raw.trim().strip_prefix(">=") {
        Some(word) => (true, word),
        None => (false, raw.trim()),
    };
    let level = Level::from_word(word).ok_or_else(|| {
        invalid(
            "level",
            raw,
            "one of DEBUG, INFO, WARNING, ERROR, CRITICAL, optionally prefixed with >=",
        )
    })?;
    Ok(Some(if at_least {
        LevelFilter::AtLeast(level)
    } else {
        LevelFilter::Exactly(level)
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_and_containers() {
        let req = Request::new(
            "GET",
            "/api/logs?level=%3E%3Dwarning&container=a&container=b&q=boom",
        );
        let f = filter(&req).unwrap();
        assert_eq!(f.level, Some(LevelFilter::AtLeast(Level::Warning)));
        assert_eq!(f.containers, vec!["a", "b"]);
        assert_eq!(f.search.as_deref(), Some("boom"));
        let err = filter(&Request::new("GET", "/api/logs?level=loud")).unwrap_err();
        assert!(err.detail().contains("'level'"));
    }

    #[test]
    fn paging_rules() {
        assert_eq!(page(&Request::new("GET", "/x")).unwrap(), (100, 0));
        assert_eq!(page(&Request::new("GET", "/x?limit=9999")).unwrap().0, 500);
        assert!(page(&Request::new("GET", "/x?limit=0")).is_err());
        assert!(page(&Request::new("GET", "/x?limit=abc")).is_err());
    }

    #[test]
    fn tail_replay_start() {
        let req =
            Request::new("GET", "/api/logs/tail?since_id=5").with_header("Last-Event-ID", "9");
        assert_eq!(tail(&req).unwrap().1, Some(9));
        assert_eq!(
            tail(&Request::new("GET", "/x?since_id=5")).unwrap().1,
            Some(5)
        );
        assert_eq!(tail(&Request::new("GET", "/x")).unwrap().1, None);
    }
}
