//! Gzips the web UI's own assets (see `shared/build_assets.rs`).

#[path = "../../shared/build_assets.rs"]
mod build_assets;

fn main() {
    build_assets::gzip_assets(&["logs.js", "logs.css"]);
}
