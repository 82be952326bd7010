//! The web UI: the list page (`/`), the detail page (`/errors/{id}`) and their assets, all
//! embedded in the binary. The pages are static shells (no data, so nothing to escape); `errors.js` fills them from the API
//! with the key the user enters (see `shared::web` for the common pieces and headers).

use shared::http::{ApiError, Request, Response};
use shared::web::{self, Asset, AssetVersion};

/// The service's own assets (the common ones come from `shared::web`).
const ASSETS: &[Asset] = &[
    Asset {
        path: "/static/errors.js",
        content_type: web::JS,
        body: include_bytes!("../assets/errors.js"),
    },
    Asset {
        path: "/static/errors.css",
        content_type: web::CSS,
        body: include_bytes!("../assets/errors.css"),
    },
];

const LIST_PAGE: &str = include_str!("../assets/index.html");
const DETAIL_PAGE: &str = include_str!("../assets/error.html");

static VERSION: AssetVersion = AssetVersion::new(ASSETS);

/// `GET /`: the list of error groups.
pub fn list_page<S>(_state: &S, _request: &Request) -> Result<Response, ApiError> {
    Ok(web::page(200, LIST_PAGE, VERSION.get()))
}

/// `GET /errors/{id}`: one group. An id that cannot exist still gets the page (it shows "not
/// found") but with a 404 status.
pub fn detail_page<S>(_state: &S, request: &Request) -> Result<Response, ApiError> {
    let valid = request
        .param("id")
        .and_then(|id| id.parse::<i64>().ok())
        .is_some_and(|id| id > 0);
    let status = if valid { 200 } else { 404 };
    Ok(web::page(status, DETAIL_PAGE, VERSION.get()))
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
        // Route the request so that `{id}` is captured as the service's router would.
        let router = Router::new()
            .get("/", Policy::open(), handler)
            .get("/errors/{id}", Policy::open(), handler)
            .get("/static/{file}", Policy::open(), handler);
        router.dispatch(&(), &mut Request::new("GET", target))
    }

    fn text(response: &Response) -> String {
        String::from_utf8_lossy(response.body_bytes().unwrap_or_default()).into_owned()
    }

    #[test]
    fn pages_are_html_with_security_headers_and_versioned_assets() {
        for (handler, target) in [
            (list_page as fn(&(), &Request) -> _, "/"),
            (detail_page, "/errors/7"),
        ] {
            let response = get(handler, target);
            assert_eq!(response.status(), 200, "{target}");
            assert_eq!(
                response.header("content-type"),
                Some("text/html; charset=utf-8")
            );
            assert_eq!(response.header("cache-control"), Some("no-cache"));
            assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
            assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
            let csp = response.header("content-security-policy").unwrap_or("");
            assert!(csp.contains("default-src 'self'"), "{csp}");
            assert!(!csp.contains("unsafe-inline"), "{csp}");
            let html = text(&response);
            assert!(
                !html.contains("{{v}}"),
                "unreplaced placeholder in {target}"
            );
            assert!(html.contains(&format!("/static/errors.js?v={}", VERSION.get())));
            assert!(html.contains(&format!("/static/monlight.css?v={}", VERSION.get())));
            // No inline script or style: the CSP would block them.
            assert!(!html.contains("<script>") && !html.contains("style="));
        }
    }

    #[test]
    fn detail_page_for_an_impossible_id_is_404() {
        assert_eq!(get(detail_page, "/errors/abc").status(), 404);
        assert_eq!(get(detail_page, "/errors/0").status(), 404);
        assert_eq!(get(detail_page, "/errors/12").status(), 200);
    }

    #[test]
    fn assets_have_their_content_types_and_cache_headers() {
        for (path, content_type) in [
            ("/static/errors.js?v=1", "text/javascript; charset=utf-8"),
            ("/static/errors.css", "text/css; charset=utf-8"),
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
    }

    #[test]
    fn the_service_routes_the_ui() {
        let routes = crate::routes();
        for path in [
            "/",
            "/errors/3",
            "/static/errors.js",
            "/static/monlight.css",
        ] {
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
