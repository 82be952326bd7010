//! The web UI: the list page (`/`), the detail page (`/errors/{id}`) and their assets, all
//! embedded in the binary. The pages are shells holding only the UI links (`UI_LINKS`,
//! escaped); `errors.js` fills them from the API with the key the user enters (see
//! `shared::web` for the common pieces and headers).

use shared::http::{ApiError, Request, Response};
use shared::web::{self, Asset, AssetVersion, UiLinks};

/// The service's own assets (the common ones come from `shared::web`).
const ASSETS: &[Asset] = &[
    shared::embedded_asset!("/static/errors.js", web::JS, "errors.js"),
    shared::embedded_asset!("/static/errors.css", web::CSS, "errors.css"),
];

const LIST_PAGE: &str = include_str!("../assets/index.html");
const DETAIL_PAGE: &str = include_str!("../assets/error.html");

static VERSION: AssetVersion = AssetVersion::new(ASSETS);

/// `GET /`: the list of error groups.
pub fn list_page<S: AsRef<UiLinks>>(state: &S, _request: &Request) -> Result<Response, ApiError> {
    Ok(web::page(200, LIST_PAGE, VERSION.get(), state.as_ref()))
}

/// `GET /errors/{id}`: one group. An id that cannot exist still gets the page (it shows "not
/// found") but with a 404 status.
pub fn detail_page<S: AsRef<UiLinks>>(state: &S, request: &Request) -> Result<Response, ApiError> {
    let valid = request
        .param("id")
        .and_then(|id| id.parse::<i64>().ok())
        .is_some_and(|id| id > 0);
    let status = if valid { 200 } else { 404 };
    Ok(web::page(
        status,
        DETAIL_PAGE,
        VERSION.get(),
        state.as_ref(),
    ))
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
        // Route the request so that `{id}` is captured as the service's router would.
        let router = Router::new()
            .get("/", Policy::open(), handler)
            .get("/errors/{id}", Policy::open(), handler)
            .get("/static/{file}", Policy::open(), handler);
        router.dispatch(&UiLinks::default(), &mut Request::new("GET", target))
    }

    #[test]
    fn pages_are_html_with_security_headers_and_versioned_assets() {
        for (handler, target) in [(list_page as Handler, "/"), (detail_page, "/errors/7")] {
            let response = get(handler, target);
            assert_eq!(response.status(), 200, "{target}");
            check_page(
                &response,
                &["/static/errors.js", "/static/monlight.css"],
                VERSION.get(),
            );
            let html = String::from_utf8_lossy(response.body_bytes().unwrap_or_default());
            assert!(
                html.contains("data-ui-links=\"errors=:5010,logs=:5011,metrics=:5012\""),
                "{target}: the header's links"
            );
        }
    }

    #[test]
    fn detail_page_for_an_impossible_id_is_404() {
        assert_eq!(get(detail_page, "/errors/abc").status(), 404);
        assert_eq!(get(detail_page, "/errors/0").status(), 404);
        assert_eq!(get(detail_page, "/errors/12").status(), 200);
    }

    #[test]
    fn assets_are_served_with_their_types_and_never_write_html() {
        check_assets(ASSETS);
        assert_eq!(get(static_file, "/static/errors.js?v=1").status(), 200);
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
}
