//! The web UI (`/`) and its assets, embedded in the binary. The page is a shell holding only
//! the UI links (`UI_LINKS`, escaped); `metrics.js` fills it from the API with the key the
//! user enters (see `shared::web` for the common pieces and headers).

use shared::http::{ApiError, Request, Response};
use shared::web::{self, Asset, AssetVersion, UiLinks};

/// The service's own assets (the common ones come from `shared::web`).
const ASSETS: &[Asset] = &[];

const INDEX_PAGE: &str = include_str!("../assets/index.html");

static VERSION: AssetVersion = AssetVersion::new(ASSETS);

/// `GET /`: the dashboard and metric explorer.
pub fn index_page<S: AsRef<UiLinks>>(state: &S, _request: &Request) -> Result<Response, ApiError> {
    Ok(web::page(200, INDEX_PAGE, VERSION.get(), state.as_ref()))
}

/// `GET /static/{file}`: the common assets and the service's own.
pub fn static_file<S>(_state: &S, request: &Request) -> Result<Response, ApiError> {
    web::static_file(ASSETS, request.path())
}
