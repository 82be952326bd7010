//! Checks every service's web UI must pass, for its unit tests: pages with the security
//! headers and versioned asset links, assets with their types and cache headers, and scripts
//! that never write HTML (an error message or a log line is attacker-controlled text).

use crate::http::{Request, Response};
use crate::web::{static_file, Asset, COMMON_ASSETS};

/// A page as `shared::web::page` makes it: HTML, `no-cache`, the CSP without inline code,
/// `nosniff`, no referrer, no framing, and each of `assets` linked as `<path>?v=<version>`.
pub fn check_page(response: &Response, assets: &[&str], version: &str) {
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
    let html = String::from_utf8_lossy(response.body_bytes().unwrap_or_default());
    assert!(!html.contains("{{v}}"), "unreplaced placeholder");
    for asset in assets {
        assert!(
            html.contains(&format!("{asset}?v={version}")),
            "{asset} is not linked with its version"
        );
    }
    // No inline script or style: the CSP would block them.
    assert!(!html.contains("<script>") && !html.contains("style="));
}

/// Every asset of the service (`own`) and every common one is served under its path with
/// its content type, a day of caching and `nosniff`, gzipped to a client that accepts it; an
/// unknown one is a 404; no script writes HTML.
pub fn check_assets(own: &[Asset]) {
    for asset in own.iter().chain(COMMON_ASSETS) {
        let request = Request::new("GET", asset.path).with_header("Accept-Encoding", "gzip");
        let response = static_file(own, &request).unwrap_or_else(|e| panic!("{}: {e}", asset.path));
        assert_eq!(response.status(), 200, "{}", asset.path);
        assert_eq!(
            response.header("content-type"),
            Some(asset.content_type),
            "{}",
            asset.path
        );
        assert_eq!(response.header("content-encoding"), Some("gzip"));
        assert_eq!(
            response.header("cache-control"),
            Some("public, max-age=86400")
        );
        assert_eq!(response.header("x-content-type-options"), Some("nosniff"));
        let bytes = asset.bytes();
        assert!(!bytes.is_empty(), "{} inflates to nothing", asset.path);
        let text = String::from_utf8_lossy(&bytes);
        for sink in [
            "innerHTML",
            "outerHTML",
            "insertAdjacentHTML",
            "document.write",
        ] {
            assert!(!text.contains(sink), "{} uses {sink}", asset.path);
        }
    }
    let unknown = Request::new("GET", "/static/nope.js");
    assert!(static_file(own, &unknown).is_err_and(|e| e.status() == 404));
}
