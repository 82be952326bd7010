//! The one shutdown flag every thread of a service watches, set by SIGTERM/SIGINT.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// A cheap, cloneable shutdown flag. Once set it stays set.
#[derive(Clone, Default, Debug)]
pub struct Shutdown(Arc<AtomicBool>);

impl Shutdown {
    /// Starts the thread `name` that runs `work` at once and then every `interval`, until
    /// shutdown (it ends within ~100 ms of it). `work` passes the fault point `name` first
    /// (see `health::fault_point`), so tests can kill it.
    pub fn every(
        &self,
        name: &str,
        interval: Duration,
        mut work: impl FnMut() + Send + 'static,
    ) -> std::io::Result<std::thread::JoinHandle<()>> {
        let shutdown = self.clone();
        let point = name.to_string();
        std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || loop {
                crate::health::fault_point(&point);
                work();
                if !shutdown.sleep(interval) {
                    return;
                }
            })
    }

    /// A new flag, not set.
    pub fn new() -> Shutdown {
        Shutdown::default()
    }

    /// Sets the flag on SIGTERM and SIGINT (also when the process is PID 1 in a container,
    /// where the kernel's default action would ignore them).
    pub fn install_signal_handlers(&self) -> std::io::Result<()> {
        for signal in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
            signal_hook::flag::register(signal, Arc::clone(&self.0))?;
        }
        Ok(())
    }

    /// Asks every thread to stop.
    pub fn trigger(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether shutdown was asked for.
    pub fn is_set(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }

    /// Sleeps for `duration` in short slices; returns `false` as soon as shutdown is asked
    /// for (so a background thread stops within ~100 ms), `true` if the full time passed.
    pub fn sleep(&self, duration: Duration) -> bool {
        let deadline = Instant::now() + duration;
        loop {
            if self.is_set() {
                return false;
            }
            let now = Instant::now();
            if now >= deadline {
                return true;
            }
            std::thread::sleep((deadline - now).min(Duration::from_millis(100)));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sleep_returns_early_once_triggered() {
        let flag = Shutdown::new();
        assert!(flag.sleep(Duration::from_millis(10)));
        flag.trigger();
        assert!(!flag.sleep(Duration::from_secs(60)));
    }
}
