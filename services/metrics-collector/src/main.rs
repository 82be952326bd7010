//! The `metrics-collector` binary: configuration from the environment, then the library.

fn main() {
    shared::cli::main(
        &metrics_collector::ABOUT,
        &metrics_collector::config::COMMON_DEFAULTS,
        |env, shutdown| {
            let config = metrics_collector::Config::from_env(env)?;
            metrics_collector::run(config, shutdown)
        },
    )
}
