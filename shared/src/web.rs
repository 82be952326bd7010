//! What the Monlight web UIs share: the common stylesheet and scripts (embedded in the
//! binary), and the headers every page and asset is served with.
//!
//! A service keeps its own pages and scripts (gzipped at build time, [`embedded_asset!`]) and
//! serves them through [`page`] and [`asset_response`]; `/static/monlight.css`,
//! `/static/monlight.js`, `/static/charts.js`
//! (the SVG time-series charts) and `/static/favicon.svg` come from [`common_asset`]. Pages
//! load no inline script or style (the CSP forbids both) and nothing from another origin (no
//! CDN).
//!
//! Cache policy: an HTML page is `no-cache` (always revalidated, so a new binary shows at
//! once); assets are cached for a day and referenced with `?v=<version>`, a hash of every
//! embedded asset's content ([`AssetVersion`]), so a changed asset gets a new URL.

use std::io::Read;
use std::sync::OnceLock;

use crate::config::ConfigError;
use crate::http::{ApiError, Request, Response};

/// `content-type` of HTML pages.
pub const HTML: &str = "text/html; charset=utf-8";
/// `content-type` of stylesheets.
pub const CSS: &str = "text/css; charset=utf-8";
/// `content-type` of scripts.
pub const JS: &str = "text/javascript; charset=utf-8";
/// `content-type` of SVG images.
pub const SVG: &str = "image/svg+xml";

/// The page policy: our own origin only, no inline script or style, no framing.
pub const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; \
     style-src 'self'; script-src 'self'; connect-src 'self'; base-uri 'none'; \
     form-action 'self'; object-src 'none'; frame-ancestors 'none'";

/// How long a browser may keep an asset (its URL changes when its content does).
const ASSET_CACHE_CONTROL: &str = "public, max-age=86400";

/// An asset embedded in the binary, gzipped at build time (`build_assets.rs`): a browser gets
/// those bytes as they are, `Content-Encoding: gzip`; a client that does not accept gzip
/// gets them inflated.
#[derive(Debug, Clone, Copy)]
pub struct Asset {
    /// The URL path it is served under, e.g. `/static/monlight.js`.
    pub path: &'static str,
    /// Its `content-type`.
    pub content_type: &'static str,
    /// Its bytes, gzipped.
    pub gzip: &'static [u8],
}

impl Asset {
    /// Its bytes as written (inflated).
    pub fn bytes(&self) -> Vec<u8> {
        let mut bytes = Vec::new();
        // Our own build made these bytes: they inflate, or the build is broken.
        if let Err(e) = flate2::read::GzDecoder::new(self.gzip).read_to_end(&mut bytes) {
            log::error!("embedded asset {} does not inflate: {e}", self.path);
        }
        bytes
    }
}

/// An [`Asset`] of the calling crate: `embedded_asset!("/static/x.js", JS, "x.js")` serves
/// `assets/x.js`, which the crate's `build.rs` gzipped (`build_assets.rs`).
#[macro_export]
macro_rules! embedded_asset {
    ($path:literal, $content_type:expr, $file:literal) => {
        $crate::web::Asset {
            path: $path,
            content_type: $content_type,
            gzip: include_bytes!(concat!(env!("OUT_DIR"), "/", $file, ".gz")),
        }
    };
}

/// The assets every Monlight UI loads.
pub const COMMON_ASSETS: &[Asset] = &[
    embedded_asset!("/static/monlight.css", CSS, "monlight.css"),
    embedded_asset!("/static/monlight.js", JS, "monlight.js"),
    embedded_asset!("/static/charts.js", JS, "charts.js"),
    embedded_asset!("/static/favicon.svg", SVG, "favicon.svg"),
];

/// A common asset for the request's path (the query string, e.g. `?v=...`, is not part of it).
pub fn common_asset(request: &Request) -> Option<Response> {
    find_asset(COMMON_ASSETS, request.path()).map(|asset| asset_response(asset, request))
}

/// `GET /static/{file}` of a service: a common asset or one of the service's `own`, else 404.
pub fn static_file(own: &[Asset], request: &Request) -> Result<Response, ApiError> {
    common_asset(request)
        .or_else(|| find_asset(own, request.path()).map(|asset| asset_response(asset, request)))
        .ok_or_else(|| ApiError::not_found("Not found"))
}

/// The asset at `path` in `assets`, if any (a trailing slash is tolerated like the router's).
pub fn find_asset(assets: &[Asset], path: &str) -> Option<Asset> {
    let path = path.strip_suffix('/').unwrap_or(path);
    assets.iter().find(|asset| asset.path == path).copied()
}

/// Serves an embedded asset: gzipped when the request accepts it (else inflated), its content
/// type, a day of caching, `nosniff`.
pub fn asset_response(asset: Asset, request: &Request) -> Response {
    let response = if accepts_gzip(request) {
        Response::asset(asset.content_type, asset.gzip).with_header("content-encoding", "gzip")
    } else {
        Response::bytes(200, asset.content_type, asset.bytes())
    };
    response
        .with_header("vary", "accept-encoding")
        .with_header("cache-control", ASSET_CACHE_CONTROL)
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
}

/// Whether `Accept-Encoding` lists `gzip` (or `*`) without `q=0`.
fn accepts_gzip(request: &Request) -> bool {
    request.header_all("accept-encoding").iter().any(|value| {
        value.split(',').any(|item| {
            let mut parts = item.split(';').map(str::trim);
            let coding = parts.next().unwrap_or("");
            let refused = parts.any(|p| {
                p.strip_prefix("q=")
                    .and_then(|q| q.parse::<f32>().ok())
                    .is_some_and(|q| q <= 0.0)
            });
            (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !refused
        })
    })
}

/// An HTML page from a template in which every `{{v}}` becomes `version` (the asset URLs'
/// cache-buster) and every `{{ui_links}}` the links to the UIs ([`UiLinks::attribute`],
/// escaped for an attribute value), with [`with_page_headers`].
pub fn page(status: u16, template: &str, version: &str, links: &UiLinks) -> Response {
    let html = template
        .replace("{{v}}", version)
        .replace("{{ui_links}}", &escape_html(&links.attribute()));
    with_page_headers(Response::bytes(status, HTML, html.into_bytes()))
}

/// `text` with `&`, `<`, `>`, `"` and `'` escaped, for HTML text and quoted attribute values.
pub fn escape_html(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// The UIs a header links to, in this order; `(later)` ones appear once configured.
pub const UI_NAMES: &[&str] = &["errors", "logs", "metrics"];

/// `UI_LINKS`: where each Monlight UI lives, e.g.
/// `errors=http://host:5010,logs=http://host:5011`. A value may be `:<port>` (the page's
/// own host on that port, resolved by the browser) or a path such as `/logs` (on the page's
/// own origin: every UI behind one reverse proxy, see `deploy/nginx/`); the default is
/// `errors=:5010,logs=:5011,metrics=:5012`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UiLinks(Vec<(String, String)>);

impl UiLinks {
    /// Parses `name=url,...`: names from [`UI_NAMES`], each at most once; urls `http(s)://…`,
    /// `:<port>` or a `/path` on the page's origin (`/` alone for the root), a trailing `/`
    /// dropped.
    pub fn parse(text: &str) -> Result<UiLinks, ConfigError> {
        let mut links: Vec<(String, String)> = Vec::new();
        for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
            let bad = |why: &str| ConfigError(format!("UI_LINKS: {why} (got {item:?})"));
            let (name, url) = item
                .split_once('=')
                .ok_or_else(|| bad("expected name=url"))?;
            let raw = url.trim();
            let (name, url) = match raw.trim_end_matches('/') {
                "" if raw.starts_with('/') => (name.trim(), "/"),
                trimmed => (name.trim(), trimmed),
            };
            if !UI_NAMES.contains(&name) {
                return Err(bad("the names are errors, logs and metrics"));
            }
            if links.iter().any(|(n, _)| n == name) {
                return Err(bad("a name appears twice"));
            }
            let port = url
                .strip_prefix(':')
                .is_some_and(|p| p.parse::<u16>().is_ok_and(|p| p > 0));
            let http = ["http://", "https://"].iter().any(|scheme| {
                url.len() > scheme.len()
                    && url
                        .get(..scheme.len())
                        .is_some_and(|s| s.eq_ignore_ascii_case(scheme))
            });
            let path = url.starts_with('/') && !url.starts_with("//");
            if !(port || http || path) || url.chars().any(|c| c.is_whitespace() || c == '"') {
                return Err(bad("a link is an http(s) URL, :<port> or a /path"));
            }
            links.push((name.to_string(), url.to_string()));
        }
        links.sort_by_key(|(name, _)| UI_NAMES.iter().position(|n| n == name));
        Ok(UiLinks(links))
    }

    /// The links as `name=url,...` (what the page's `data-ui-links` attribute carries).
    pub fn attribute(&self) -> String {
        let items: Vec<String> = self.0.iter().map(|(n, u)| format!("{n}={u}")).collect();
        items.join(",")
    }
}

impl Default for UiLinks {
    fn default() -> UiLinks {
        UiLinks(vec![
            ("errors".to_string(), ":5010".to_string()),
            ("logs".to_string(), ":5011".to_string()),
            ("metrics".to_string(), ":5012".to_string()),
        ])
    }
}

impl AsRef<UiLinks> for UiLinks {
    fn as_ref(&self) -> &UiLinks {
        self
    }
}

/// Adds the headers every HTML page carries: the CSP, `nosniff`, no referrer, no framing,
/// and `no-cache` so a new binary's page is seen at once.
pub fn with_page_headers(response: Response) -> Response {
    response
        .with_header("content-security-policy", CONTENT_SECURITY_POLICY)
        .with_header("x-content-type-options", "nosniff")
        .with_header("referrer-policy", "no-referrer")
        .with_header("x-frame-options", "DENY")
        .with_header("cache-control", "no-cache")
}

/// The cache-buster for asset URLs: a hash of the common assets and a service's own, computed
/// once. Keep one in a `static` per service.
pub struct AssetVersion {
    own: &'static [Asset],
    value: OnceLock<String>,
}

impl AssetVersion {
    /// The version of [`COMMON_ASSETS`] plus `own`.
    pub const fn new(own: &'static [Asset]) -> AssetVersion {
        AssetVersion {
            own,
            value: OnceLock::new(),
        }
    }

    /// 16 hex digits (FNV-1a of every asset's path and bytes).
    pub fn get(&self) -> &str {
        self.value.get_or_init(|| {
            let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
            for asset in COMMON_ASSETS.iter().chain(self.own) {
                for byte in asset.path.bytes().chain(asset.gzip.iter().copied()) {
                    hash ^= u64::from(byte);
                    hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
                }
            }
            format!("{hash:016x}")
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn common_assets_have_their_content_types_and_cache_headers() {
        let get = |path: &str, accept: Option<&str>| {
            let mut request = Request::new("GET", path);
            if let Some(accept) = accept {
                request = request.with_header("Accept-Encoding", accept);
            }
            common_asset(&request)
        };
        for (path, content_type) in [
            ("/static/monlight.css", CSS),
            ("/static/monlight.js", JS),
            ("/static/charts.js", JS),
            ("/static/favicon.svg", SVG),
        ] {
            let gzipped =
                get(path, Some("gzip, deflate, br")).unwrap_or_else(|| panic!("{path} is missing"));
            let plain = get(path, None).unwrap_or_else(|| panic!("{path} is missing"));
            for response in [&gzipped, &plain] {
                assert_eq!(response.status(), 200);
                assert_eq!(response.header("content-type"), Some(content_type));
                assert_eq!(response.header("cache-control"), Some(ASSET_CACHE_CONTROL));
                assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
                assert_eq!(response.header("vary"), Some("accept-encoding"));
            }
            assert_eq!(gzipped.header("content-encoding"), Some("gzip"));
            assert_eq!(plain.header("content-encoding"), None);
            let mut inflated = Vec::new();
            flate2::read::GzDecoder::new(gzipped.body_bytes().unwrap_or_default())
                .read_to_end(&mut inflated)
                .unwrap();
            assert!(!inflated.is_empty());
            assert_eq!(Some(&inflated[..]), plain.body_bytes(), "{path}");
        }
        assert!(get("/static/nope.js", None).is_none());
        assert!(get("/static/monlight.js/", None).is_some());
    }

    #[test]
    fn gzip_is_sent_only_to_clients_that_accept_it() {
        let accepts = |value: &str| {
            accepts_gzip(&Request::new("GET", "/").with_header("Accept-Encoding", value))
        };
        assert!(accepts("gzip"));
        assert!(accepts("br, GZIP;q=0.5"));
        assert!(accepts("*"));
        assert!(!accepts("br"));
        assert!(!accepts("gzip;q=0"));
        assert!(!accepts("identity"));
        assert!(!accepts_gzip(&Request::new("GET", "/")));
    }

    #[test]
    fn ui_links_parse_in_order_and_are_escaped_in_the_page() {
        assert_eq!(
            UiLinks::default().attribute(),
            "errors=:5010,logs=:5011,metrics=:5012",
            "the same host on the default ports"
        );
        let links =
            UiLinks::parse(" logs=https://h.example/logs/ , errors=http://h:5010,metrics=:5012")
                .unwrap();
        assert_eq!(
            links.attribute(),
            "errors=http://h:5010,logs=https://h.example/logs,metrics=:5012"
        );
        for bad in [
            "errors",
            "traces=http://h",
            "errors=ftp://h",
            "errors=javascript:alert(1)",
            "errors=:0",
            "errors=:5010,errors=:5011",
            "errors=http://",
            "errors=http://h/\"x",
            "errors=//evil.example/x",
            "errors=evil.example",
        ] {
            let err = UiLinks::parse(bad).unwrap_err();
            assert!(err.0.starts_with("UI_LINKS:"), "{bad}: {}", err.0);
        }
        let one_origin = UiLinks::parse("errors=/,logs=/logs/").unwrap();
        assert_eq!(one_origin.attribute(), "errors=/,logs=/logs");
        let links = UiLinks::parse("logs=http://h/?a=1&b=<2>").unwrap();
        let response = page(200, "<body data-ui-links=\"{{ui_links}}\">", "v", &links);
        assert_eq!(
            response.body_bytes(),
            Some(&b"<body data-ui-links=\"logs=http://h/?a=1&amp;b=&lt;2&gt;\">"[..])
        );
        assert_eq!(escape_html("'\"&"), "&#39;&quot;&amp;");
    }

    #[test]
    fn pages_carry_the_security_headers_and_versioned_urls() {
        let response = page(
            200,
            "<script src=\"/a.js?v={{v}}\"></script>",
            "abc",
            &UiLinks::default(),
        );
        assert_eq!(response.header("content-type"), Some(HTML));
        assert_eq!(response.header("cache-control"), Some("no-cache"));
        assert_eq!(response.header("referrer-policy"), Some("no-referrer"));
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        let csp = response.header("content-security-policy").unwrap_or("");
        assert!(csp.contains("script-src 'self'") && !csp.contains("unsafe-inline"));
        assert!(csp.contains("frame-ancestors 'none'"));
        assert_eq!(
            response.body_bytes(),
            Some(&b"<script src=\"/a.js?v=abc\"></script>"[..])
        );
    }

    #[test]
    fn asset_version_is_stable_hex() {
        static VERSION: AssetVersion = AssetVersion::new(&[]);
        let v = VERSION.get();
        assert_eq!(v.len(), 16);
        assert!(v.bytes().all(|b| b.is_ascii_hexdigit()));
        assert_eq!(v, VERSION.get());
    }

    #[test]
    fn the_common_scripts_never_write_html() {
        // The UIs insert API data as text only; the shared scripts must not even have the means.
        for path in ["/static/monlight.js", "/static/charts.js"] {
            let js = find_asset(COMMON_ASSETS, path)
                .map(|a| String::from_utf8_lossy(&a.bytes()).into_owned())
                .unwrap_or_default();
            assert!(!js.is_empty(), "{path} is missing");
            for sink in [
                "innerHTML",
                "outerHTML",
                "insertAdjacentHTML",
                "document.write",
            ] {
                assert!(!js.contains(sink), "{path} uses {sink}");
            }
        }
    }
}
