//! A fake Docker containers directory for the log-viewer benchmarks: one container laid out
//! like `/var/lib/docker/containers/<id>/` (its `config.v2.json` and `<id>-json.log`).

use std::fs::File;
use std::path::{Path, PathBuf};

/// Creates `<containers>/<id>/config.v2.json` (naming the container `name`, image `image`)
/// and an empty `<id>-json.log`; returns the log's path.
pub fn create_container(containers: &Path, id: &str, name: &str, image: &str) -> PathBuf {
    let dir = containers.join(id);
    std::fs::create_dir_all(&dir).expect("cannot create the container directory");
    let config = serde_json::json!({
        "ID": id,
        "Name": format!("/{name}"),
        "Config": {"Image": image},
    });
    std::fs::write(dir.join("config.v2.json"), config.to_string())
        .expect("cannot write config.v2.json");
    let log = dir.join(format!("{id}-json.log"));
    File::create(&log).expect("cannot create the container log");
    log
}
