//! A router that reads like a table: (method, path pattern, policy) → handler.
//!
//! The policy of a route — who may call it, how it is rate limited, how large its body may
//! be — is declared beside its handler, the way rouille composes guards around plain
//! handlers. The engine only runs what the table says; it never infers a policy from the
//! spelling of a path. Paths that match no route can be given a policy by prefix with
//! [`Router::unmatched`] (the spec answers `401` before `404` for any `/api/` path).

use super::request::Request;
use super::response::{ApiError, Response};

/// A handler: a plain function from the service state and the request to a response.
pub type Handler<S> = fn(&S, &Request) -> Result<Response, ApiError>;

/// Who may call a route.
pub enum Guard<S> {
    /// Anyone: health checks, web pages and their assets.
    Open,
    /// The key the server was started with (`X-API-Key` header or `api_key` query
    /// parameter), compared in constant time; `401 Invalid API key` otherwise.
    ApiKey,
    /// A check of the service's own (e.g. the relay's DSN keys): `Err` is the answer sent.
    Check(fn(&S, &Request) -> Result<(), ApiError>),
}

/// How a route counts against the per-client rate limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RateClass {
    /// Never limited (`/health`, web pages).
    Unlimited,
    /// Counted per client IP (IPv6 per /64) against `RATE_LIMIT` requests a minute.
    PerClient,
}

/// Headers a route adds to every answer it gets, the engine's own (401, 405, 413, 429...)
/// included, given the request (its head) and the answer: e.g. the relay's CORS headers,
/// which depend on the request's `Origin`, or Sentry's `X-Sentry-Rate-Limits` on a `429`.
pub type HeadersFn<S> = fn(&S, &Request, &Response) -> Vec<(&'static str, String)>;

/// A route's policy: its guard, its rate-limit class, its body limit and the headers of
/// every answer.
pub struct Policy<S> {
    /// Who may call it.
    pub guard: Guard<S>,
    /// How it is rate limited.
    pub rate: RateClass,
    /// Largest body in bytes; `None` is the server's `MAX_BODY_SIZE`.
    pub max_body: Option<usize>,
    /// Headers added to every answer, whoever gives it.
    pub headers: Option<HeadersFn<S>>,
}

impl<S> Policy<S> {
    /// Anyone, never rate limited.
    pub const fn open() -> Policy<S> {
        Policy {
            guard: Guard::Open,
            rate: RateClass::Unlimited,
            max_body: None,
            headers: None,
        }
    }

    /// The service's API key, rate limited per client.
    pub const fn api_key() -> Policy<S> {
        Policy {
            guard: Guard::ApiKey,
            rate: RateClass::PerClient,
            max_body: None,
            headers: None,
        }
    }

    /// A service-specific guard, rate limited per client.
    pub const fn checked(check: fn(&S, &Request) -> Result<(), ApiError>) -> Policy<S> {
        Policy {
            guard: Guard::Check(check),
            rate: RateClass::PerClient,
            max_body: None,
            headers: None,
        }
    }

    /// The same policy with another rate-limit class.
    pub const fn rate(mut self, rate: RateClass) -> Policy<S> {
        self.rate = rate;
        self
    }

    /// The same policy with its own body limit.
    pub const fn max_body(mut self, bytes: usize) -> Policy<S> {
        self.max_body = Some(bytes);
        self
    }

    /// The same policy adding `headers(state, request)` to every answer of the route.
    pub const fn headers(mut self, headers: HeadersFn<S>) -> Policy<S> {
        self.headers = Some(headers);
        self
    }
}

// Derived Clone/Copy would require `S: Copy`; the fields are copyable whatever `S` is.
impl<S> Clone for Guard<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Guard<S> {}
impl<S> Clone for Policy<S> {
    fn clone(&self) -> Self {
        *self
    }
}
impl<S> Copy for Policy<S> {}

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

struct Route<S> {
    method: &'static str,
    segments: Vec<Segment>,
    policy: Policy<S>,
    handler: Handler<S>,
}

/// The outcome of looking up a request.
pub enum RouteMatch<'r, S> {
    /// A route matched: its handler, its policy and the captured path parameters.
    Found(Handler<S>, &'r Policy<S>, Vec<(&'static str, String)>),
    /// The path is known but not for this method: the policy of the path's first route,
    /// and the methods that are allowed (for `Allow`).
    WrongMethod(&'r Policy<S>, String),
    /// No route has this path; the policy of the `unmatched` prefix it falls under, if any.
    NotFound(Option<&'r Policy<S>>),
}

impl<S> RouteMatch<'_, S> {
    /// The policy that applies to the request, whatever the outcome.
    pub fn policy(&self) -> Option<&Policy<S>> {
        match self {
            RouteMatch::Found(_, policy, _) | RouteMatch::WrongMethod(policy, _) => Some(policy),
            RouteMatch::NotFound(policy) => *policy,
        }
    }
}

/// Routes, tried in order. Patterns are `/`-separated; `{name}` captures a segment. Paths
/// are canonical (see `target.rs`): no empty segments, no trailing slash.
pub struct Router<S> {
    routes: Vec<Route<S>>,
    unmatched: Vec<(Vec<&'static str>, Policy<S>)>,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router {
            routes: Vec::new(),
            unmatched: Vec::new(),
        }
    }
}

impl<S> Router<S> {
    /// An empty router.
    pub fn new() -> Router<S> {
        Router::default()
    }

    /// Adds a `GET` route (it also answers `HEAD`).
    pub fn get(self, pattern: &'static str, policy: Policy<S>, handler: Handler<S>) -> Router<S> {
        self.route("GET", pattern, policy, handler)
    }

    /// Adds a `POST` route.
    pub fn post(self, pattern: &'static str, policy: Policy<S>, handler: Handler<S>) -> Router<S> {
        self.route("POST", pattern, policy, handler)
    }

    /// Adds a route for any method.
    pub fn route(
        mut self,
        method: &'static str,
        pattern: &'static str,
        policy: Policy<S>,
        handler: Handler<S>,
    ) -> Router<S> {
        let segments = segments(pattern)
            .map(
                |seg| match seg.strip_prefix('{').and_then(|s| s.strip_suffix('}')) {
                    Some(name) => Segment::Param(name),
                    None => Segment::Literal(seg),
                },
            )
            .collect();
        self.routes.push(Route {
            method,
            segments,
            policy,
            handler,
        });
        self
    }

    /// Gives paths under `prefix` (whole segments) that match no route a policy, so that
    /// e.g. an unknown `/api/` path without a key is a `401`, not a `404` that reveals
    /// which paths exist.
    pub fn unmatched(mut self, prefix: &'static str, policy: Policy<S>) -> Router<S> {
        self.unmatched.push((segments(prefix).collect(), policy));
        self
    }

    /// The largest body limit a route declares for itself, if any does.
    pub fn largest_body_limit(&self) -> Option<usize> {
        self.routes.iter().filter_map(|r| r.policy.max_body).max()
    }

    /// Finds the route for a method and canonical path. `HEAD` finds `GET` routes.
    pub fn find(&self, method: &str, path: &str) -> RouteMatch<'_, S> {
        let parts: Vec<&str> = segments(path).collect();
        let wanted = if method == "HEAD" { "GET" } else { method };
        let mut on_path: Option<&Policy<S>> = None;
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &parts) else {
                continue;
            };
            if route.method == wanted {
                return RouteMatch::Found(route.handler, &route.policy, params);
            }
            on_path.get_or_insert(&route.policy);
            if !allowed.contains(&route.method) {
                allowed.push(route.method);
                if route.method == "GET" {
                    allowed.push("HEAD");
                }
            }
        }
        match on_path {
            Some(policy) => RouteMatch::WrongMethod(policy, allowed.join(", ")),
            None => RouteMatch::NotFound(
                self.unmatched
                    .iter()
                    .find(|(prefix, _)| parts.starts_with(prefix))
                    .map(|(_, policy)| policy),
            ),
        }
    }

    /// Looks up and runs the handler for a request without any policy check, answering
    /// 404/405 itself (handler tests).
    pub fn dispatch(&self, state: &S, request: &mut Request) -> Response {
        match self.find(request.method(), request.path()) {
            RouteMatch::Found(handler, _, params) => {
                request.set_params(params);
                handler(state, request).unwrap_or_else(Response::from)
            }
            RouteMatch::WrongMethod(_, allow) => method_not_allowed(&allow),
            RouteMatch::NotFound(_) => Response::error(404, "Not found"),
        }
    }
}

/// `405` with the `Allow` header.
pub(crate) fn method_not_allowed(allow: &str) -> Response {
    Response::error(405, "Method not allowed").with_header("Allow", allow)
}

fn segments(path: &str) -> impl Iterator<Item = &str> {
    path.split('/').filter(|s| !s.is_empty())
}

fn match_segments(segments: &[Segment], parts: &[&str]) -> Option<Vec<(&'static str, String)>> {
    if segments.len() != parts.len() {
        return None;
    }
    let mut params = Vec::new();
    for (segment, part) in segments.iter().zip(parts) {
        match segment {
            Segment::Literal(lit) if lit == part => {}
            Segment::Literal(_) => return None,
            Segment::Param(name) => params.push((*name, part.to_string())),
        }
    }
    Some(params)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(_: &(), _: &Request) -> Result<Response, ApiError> {
        Ok(Response::error(200, "ok"))
    }

    const OPEN: Policy<()> = Policy::open();
    const KEY: Policy<()> = Policy::api_key();

    fn router() -> Router<()> {
        Router::new()
            .get("/health", OPEN, ok)
            .get("/api/errors", KEY, ok)
            .post("/api/errors", KEY.max_body(10), ok)
            .get("/api/errors/{id}", KEY, ok)
            .post("/api/errors/{id}/resolve", KEY, ok)
            .unmatched("/api", KEY)
    }

    #[test]
    fn matches_with_params() {
        match router().find("GET", "/api/errors/42") {
            RouteMatch::Found(_, policy, params) => {
                assert!(matches!(policy.guard, Guard::ApiKey));
                assert_eq!(params, vec![("id", "42".to_string())]);
            }
            _ => panic!("expected a match"),
        }
    }

    #[test]
    fn each_route_carries_its_own_policy() {
        let router = router();
        let post = router.find("POST", "/api/errors");
        assert_eq!(post.policy().and_then(|p| p.max_body), Some(10));
        assert_eq!(router.largest_body_limit(), Some(10));
        let health = router.find("GET", "/health");
        assert!(matches!(
            health.policy().map(|p| (p.rate, &p.guard)),
            Some((RateClass::Unlimited, Guard::Open))
        ));
    }

    #[test]
    fn head_is_answered_by_get_routes() {
        assert!(matches!(
            router().find("HEAD", "/health"),
            RouteMatch::Found(..)
        ));
    }

    #[test]
    fn wrong_method_lists_allowed_and_keeps_the_policy() {
        match router().find("DELETE", "/api/errors") {
            RouteMatch::WrongMethod(policy, allow) => {
                assert_eq!(allow, "GET, HEAD, POST");
                assert!(matches!(policy.guard, Guard::ApiKey));
            }
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            router().find("GET", "/api/errors/1/resolve"),
            RouteMatch::WrongMethod(..)
        ));
    }

    #[test]
    fn unmatched_prefix_policy_covers_whole_segments_only() {
        let router = router();
        assert!(matches!(
            router.find("GET", "/api/nope"),
            RouteMatch::NotFound(Some(_))
        ));
        assert!(matches!(
            router.find("GET", "/api"),
            RouteMatch::NotFound(Some(_))
        ));
        assert!(matches!(
            router.find("GET", "/apix"),
            RouteMatch::NotFound(None)
        ));
        assert!(matches!(
            router.find("GET", "/nope"),
            RouteMatch::NotFound(None)
        ));
    }
}
