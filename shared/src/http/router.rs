//! A router that reads like a table: (method, path pattern) → handler.

use super::request::Request;
use super::response::{ApiError, Response};

/// A handler: a plain function from the service state and the request to a response.
pub type Handler<S> = fn(&S, &Request) -> Result<Response, ApiError>;

enum Segment {
    Literal(&'static str),
    Param(&'static str),
}

struct Route<S> {
    method: &'static str,
    segments: Vec<Segment>,
    handler: Handler<S>,
}

/// The outcome of looking up a request.
pub enum RouteMatch<S> {
    /// A route matched: its handler and the captured path parameters.
    Found(Handler<S>, Vec<(&'static str, String)>),
    /// The path is known but not for this method; `Allow` lists the methods that are.
    WrongMethod(String),
    /// No route has this path.
    NotFound,
}

/// Routes, tried in order. Patterns are `/`-separated; `{name}` captures a segment.
/// A path matches with or without a trailing slash.
pub struct Router<S> {
    routes: Vec<Route<S>>,
}

impl<S> Default for Router<S> {
    fn default() -> Self {
        Router { routes: Vec::new() }
    }
}

impl<S> Router<S> {
    /// An empty router.
    pub fn new() -> Router<S> {
        Router::default()
    }

    /// Adds a `GET` route.
    pub fn get(self, pattern: &'static str, handler: Handler<S>) -> Router<S> {
        self.route("GET", pattern, handler)
    }

    /// Adds a `POST` route.
    pub fn post(self, pattern: &'static str, handler: Handler<S>) -> Router<S> {
        self.route("POST", pattern, handler)
    }

    /// Adds a route for any method.
    pub fn route(
        mut self,
        method: &'static str,
        pattern: &'static str,
        handler: Handler<S>,
    ) -> Router<S> {
        let segments = split(pattern)
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
            handler,
        });
        self
    }

    /// Finds the handler for a method and path.
    pub fn find(&self, method: &str, path: &str) -> RouteMatch<S> {
        let parts: Vec<&str> = split(path).collect();
        let mut allowed: Vec<&str> = Vec::new();
        for route in &self.routes {
            let Some(params) = match_segments(&route.segments, &parts) else {
                continue;
            };
            if route.method == method {
                return RouteMatch::Found(route.handler, params);
            }
            if !allowed.contains(&route.method) {
                allowed.push(route.method);
            }
        }
        if allowed.is_empty() {
            RouteMatch::NotFound
        } else {
            RouteMatch::WrongMethod(allowed.join(", "))
        }
    }

    /// Looks up and runs the handler for a request, answering 404/405 itself (tests and the
    /// server both go through here).
    pub fn dispatch(&self, state: &S, request: &mut Request) -> Response {
        match self.find(request.method(), request.path()) {
            RouteMatch::Found(handler, params) => {
                request.set_params(params);
                handler(state, request).unwrap_or_else(Response::from)
            }
            RouteMatch::WrongMethod(allow) => {
                Response::error(405, "Method not allowed").with_header("Allow", &allow)
            }
            RouteMatch::NotFound => Response::error(404, "Not found"),
        }
    }
}

fn split(path: &str) -> impl Iterator<Item = &str> {
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

    fn router() -> Router<()> {
        Router::new()
            .get("/api/errors", ok)
            .post("/api/errors", ok)
            .get("/api/errors/{id}", ok)
            .post("/api/errors/{id}/resolve", ok)
    }

    #[test]
    fn matches_with_params_and_trailing_slash() {
        match router().find("GET", "/api/errors/42/") {
            RouteMatch::Found(_, params) => assert_eq!(params, vec![("id", "42".to_string())]),
            _ => panic!("expected a match"),
        }
    }

    #[test]
    fn wrong_method_lists_allowed() {
        match router().find("DELETE", "/api/errors") {
            RouteMatch::WrongMethod(allow) => assert_eq!(allow, "GET, POST"),
            _ => panic!("expected 405"),
        }
        assert!(matches!(
            router().find("GET", "/nope"),
            RouteMatch::NotFound
        ));
        assert!(matches!(
            router().find("GET", "/api/errors/1/resolve"),
            RouteMatch::WrongMethod(_)
        ));
    }
}
