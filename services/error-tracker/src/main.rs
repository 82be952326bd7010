//! The `error-tracker` binary: configuration from the environment, then the library.

fn main() {
    shared::cli::main(
        &error_tracker::ABOUT,
        &error_tracker::config::COMMON_DEFAULTS,
        |env, shutdown| {
            let config = error_tracker::Config::from_env(env)?;
            error_tracker::run(config, shutdown)
        },
    )
}
