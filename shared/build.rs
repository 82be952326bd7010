//! Gzips the assets every web UI shares (see `build_assets.rs`).

#[path = "build_assets.rs"]
mod build_assets;

fn main() {
    build_assets::gzip_assets(&["monlight.css", "monlight.js", "charts.js", "favicon.svg"]);
}
