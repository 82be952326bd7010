//! The build-script half of the embedded web assets (`shared::web::Asset`): each crate with a
//! UI includes this file from its `build.rs` and gzips its `assets/` files into `OUT_DIR`,
//! where `shared::embedded_asset!` embeds them. The binary holds each asset once, compressed
//! (a quarter of its size), and serves it as it is to every browser.

use std::io::Write;
use std::path::{Path, PathBuf};

/// Gzips each of `files` (names in the crate's `assets/` directory) to `OUT_DIR/<name>.gz`,
/// deterministically (no file name, no time in the header), and asks cargo to run again when
/// one changes.
pub fn gzip_assets(files: &[&str]) {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    for file in files {
        let source = Path::new("assets").join(file);
        println!("cargo:rerun-if-changed={}", source.display());
        let bytes = std::fs::read(&source)
            .unwrap_or_else(|e| panic!("cannot read {}: {e}", source.display()));
        let mut gzip = flate2::GzBuilder::new()
            .mtime(0)
            .write(Vec::new(), flate2::Compression::best());
        gzip.write_all(&bytes)
            .and_then(|()| gzip.try_finish())
            .unwrap_or_else(|e| panic!("cannot gzip {}: {e}", source.display()));
        let target = out.join(format!("{file}.gz"));
        std::fs::write(&target, gzip.get_ref())
            .unwrap_or_else(|e| panic!("cannot write {}: {e}", target.display()));
    }
}
