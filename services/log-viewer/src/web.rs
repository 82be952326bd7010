//! The web UI: one page (`/`) and its assets, embedded in the binary. The page is a static
//! shell (no data, so nothing to escape); `logs.js` fills it from the API with the key the
//! user enters (see `shared::web` for the common pieces, the headers and the cache policy).

use shared::http::{ApiError, Request, Response};
use shared::web::{self, Asset, AssetVersion};

/// The service's own assets (the common ones come from `shared::web`).
const ASSETS: &[Asset] = &[
    Asset {
        path: "/static/logs.js",
        content_type: web::JS,
        body: include_bytes!("../assets/logs.js"),
    },
    Asset {
        path: "/static/logs.css",
        content_type: web::CSS,
        body: include_bytes!("../assets/logs.css"),
    },
];

const LOGS_PAGE: &str = include_str!("../assets/index.html");

static VERSION: AssetVersion = AssetVersion::new(ASSETS);

/// `GET /`: search, histogram, list and live tail.
pub fn logs_page<S>(_state: &S, _request: &Request) -> Result<Response, ApiError> {
    Ok(web::page(200, LOGS_PAGE, VERSION.get()))
}

/// `GET /static/{file}`: the common assets and the service's own.
pub fn static_file<S>(_state: &S, request: &Request) -> Result<Response, ApiError> {
    web::static_file(ASSETS, request.path())
}

#[cfg(test)]
mod tests {
    use shared::http::{Policy, RouteMatch, Router};

    use super::*;

    fn get(handler: fn(&(), &Request) -> Result<Response, ApiError>, target: &str) -> Response {
        let router = Router::new().get("/", Policy::open(), handler).get(
            "/static/{file}",
            Policy::open(),
            handler,
        );
        router.dispatch(&(), &mut Request::new("GET", target))
    }

    fn text(response: &Response) -> String {
        String::from_utf8_lossy(response.body_bytes().unwrap_or_default()).into_owned()
    }

    #[test]
    fn the_page_is_html_with_security_headers_and_versioned_assets() {
        let response = get(logs_page, "/");
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.header("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert_eq!(response.header("cache-control"), Some("no-cache"));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(response.header("x-frame-options"), Some("DENY"));
        let csp = response.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("default-src 'self'"), "{csp}");
        assert!(csp.contains("connect-src 'self'"), "{csp}");
        assert!(!csp.contains("unsafe-inline"), "{csp}");
        let html = text(&response);
        assert!(!html.contains("{{v}}"), "unreplaced placeholder");
        for asset in [
            "/static/logs.js",
            "/static/logs.css",
            "/static/monlight.js",
            "/static/monlight.css",
        ] {
            assert!(
                html.contains(&format!("{asset}?v={}", VERSION.get())),
                "{asset} is not linked with its version"
            );
        }
        // No inline script or style: the CSP would block them.
        assert!(!html.contains("<script>") && !html.contains("style="));
    }

    #[test]
    fn assets_have_their_content_types_and_cache_headers() {
        for (path, content_type) in [
            ("/static/logs.js?v=1", "text/javascript; charset=utf-8"),
            ("/static/logs.css", "text/css; charset=utf-8"),
            ("/static/monlight.js", "text/javascript; charset=utf-8"),
            ("/static/monlight.css", "text/css; charset=utf-8"),
            ("/static/favicon.svg", "image/svg+xml"),
        ] {
            let response = get(static_file, path);
            assert_eq!(response.status(), 200, "{path}");
            assert_eq!(
                response.header("content-type"),
                Some(content_type),
                "{path}"
            );
            assert_eq!(
                response.header("cache-control"),
                Some("public, max-age=86400")
            );
            assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        }
        assert_eq!(get(static_file, "/static/nope.js").status(), 404);
        assert_eq!(get(static_file, "/static/errors.js").status(), 404);
    }

    #[test]
    fn the_service_routes_the_ui() {
        let routes = crate::routes();
        for path in ["/", "/static/logs.js", "/static/monlight.css"] {
            assert!(
                matches!(routes.find("GET", path), RouteMatch::Found(..)),
                "{path} is not routed"
            );
        }
    }

    #[test]
    fn the_page_script_never_writes_html() {
        for asset in ASSETS {
            let text = String::from_utf8_lossy(asset.body);
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!text.contains(sink), "{} uses {sink}", asset.path);
            }
        }
    }
}
