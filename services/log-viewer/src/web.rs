//! The web UI: one page (`/`) and its assets, embedded in the binary. The page is a static
//! shell (no data, so nothing to escape); `logs.js` fills it from the API with the key the
//! user enters and draws its histogram with the shared `charts.js` (see `shared::web` for the
//! common pieces, the headers and the cache policy).

use shared::http::{ApiError, Request, Response};
use shared::web::{self, Asset, AssetVersion, UiLinks};

/// The service's own assets (the common ones come from `shared::web`).
const ASSETS: &[Asset] = &[
    shared::embedded_asset!("/static/logs.js", web::JS, "logs.js"),
    shared::embedded_asset!("/static/logs.css", web::CSS, "logs.css"),
];

const LOGS_PAGE: &str = include_str!("../assets/index.html");

static VERSION: AssetVersion = AssetVersion::new(ASSETS);

/// `GET /`: search, histogram, list and live tail.
pub fn logs_page<S: AsRef<UiLinks>>(state: &S, _request: &Request) -> Result<Response, ApiError> {
    Ok(web::page(200, LOGS_PAGE, VERSION.get(), state.as_ref()))
}

/// `GET /static/{file}`: the common assets and the service's own.
pub fn static_file<S>(_state: &S, request: &Request) -> Result<Response, ApiError> {
    web::static_file(ASSETS, request)
}

#[cfg(test)]
mod tests {
    use shared::http::{Policy, RouteMatch, Router};
    use shared::testing::web::{check_assets, check_page};

    use super::*;

    fn get(
        handler: fn(&UiLinks, &Request) -> Result<Response, ApiError>,
        target: &str,
    ) -> Response {
        let router = Router::new().get("/", Policy::open(), handler).get(
            "/static/{file}",
            Policy::open(),
            handler,
        );
        router.dispatch(&UiLinks::default(), &mut Request::new("GET", target))
    }

    #[test]
    fn the_page_is_html_with_security_headers_and_versioned_assets() {
        let response = get(logs_page, "/");
        assert_eq!(response.status(), 200);
        check_page(
            &response,
            &[
                "/static/logs.js",
                "/static/logs.css",
                "/static/monlight.js",
                "/static/charts.js",
                "/static/monlight.css",
            ],
            VERSION.get(),
        );
    }

    #[test]
    fn assets_are_served_with_their_types_and_never_write_html() {
        check_assets(ASSETS);
        assert_eq!(get(static_file, "/static/logs.js?v=1").status(), 200);
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
}
