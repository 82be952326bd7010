//! The web UI (`/`) and its assets, embedded in the binary. The page is a shell holding only
//! the UI links (`UI_LINKS`, escaped); `metrics.js` fills it from the API with the key the
//! user enters and draws its charts with the shared `charts.js` (see `shared::web` for the
//! common pieces and headers).

use shared::http::{ApiError, Request, Response};
use shared::web::{self, Asset, AssetVersion, UiLinks};

/// The service's own assets (the common ones come from `shared::web`).
const ASSETS: &[Asset] = &[
    shared::embedded_asset!("/static/metrics.js", web::JS, "metrics.js"),
    shared::embedded_asset!("/static/metrics.css", web::CSS, "metrics.css"),
];

const INDEX_PAGE: &str = include_str!("../assets/index.html");

static VERSION: AssetVersion = AssetVersion::new(ASSETS);

/// `GET /`: the dashboard, the metric explorer and the Web Vitals.
pub fn index_page<S: AsRef<UiLinks>>(state: &S, _request: &Request) -> Result<Response, ApiError> {
    Ok(web::page(200, INDEX_PAGE, VERSION.get(), state.as_ref()))
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

    type Handler = fn(&UiLinks, &Request) -> Result<Response, ApiError>;

    fn get(handler: Handler, target: &str) -> Response {
        let router = Router::new().get("/", Policy::open(), handler).get(
            "/static/{file}",
            Policy::open(),
            handler,
        );
        router.dispatch(&UiLinks::default(), &mut Request::new("GET", target))
    }

    #[test]
    fn the_page_is_html_with_security_headers_and_versioned_assets() {
        let response = get(index_page, "/");
        assert_eq!(response.status(), 200);
        check_page(
            &response,
            &[
                "/static/metrics.js",
                "/static/charts.js",
                "/static/monlight.css",
            ],
            VERSION.get(),
        );
        let html = String::from_utf8_lossy(response.body_bytes().unwrap_or_default());
        assert!(
            html.contains("data-ui=\"metrics\""),
            "the page says which UI it is"
        );
        assert!(
            html.contains("data-ui-links=\"errors=:5010,logs=:5011,metrics=:5012\""),
            "the header's links"
        );
    }

    #[test]
    fn assets_are_served_with_their_types_and_never_write_html() {
        check_assets(ASSETS);
        for path in [
            "/static/metrics.js?v=1",
            "/static/metrics.css",
            "/static/charts.js",
        ] {
            assert_eq!(get(static_file, path).status(), 200, "{path}");
        }
    }

    #[test]
    fn the_service_routes_the_ui() {
        let routes = crate::routes();
        for path in ["/", "/static/metrics.js", "/static/charts.js"] {
            assert!(
                matches!(routes.find("GET", path), RouteMatch::Found(..)),
                "{path} is not routed"
            );
        }
    }
}
