//! The `browser-relay` binary: configuration from the environment, then the library.

fn main() {
    shared::cli::main(
        &browser_relay::ABOUT,
        &browser_relay::config::COMMON_DEFAULTS,
        |env, shutdown| {
            let config = browser_relay::Config::from_env(env)?;
            browser_relay::run(config, shutdown)
        },
    )
}
