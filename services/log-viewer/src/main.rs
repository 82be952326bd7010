//! The `log-viewer` binary: configuration from the environment, then the library.

fn main() {
    shared::cli::main(
        &log_viewer::ABOUT,
        &log_viewer::config::COMMON_DEFAULTS,
        |env, shutdown| {
            let config = log_viewer::Config::from_env(env)?;
            log_viewer::run(config, shutdown)
        },
    )
}
