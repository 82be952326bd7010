//! Where "now" comes from. The service runs on the system clock; tests drive a manual clock,
//! so that aggregation runs, late points and retention are tested without sleeping.

use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use shared::Shutdown;

/// The time source of ingest defaults, queries and the aggregation thread.
#[derive(Clone, Default)]
pub enum Clock {
    /// The system's wall clock.
    #[default]
    System,
    /// A clock that moves only when told to ([`ManualClock::advance`]).
    Manual(Arc<ManualClock>),
}

impl std::fmt::Debug for Clock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Clock::System => f.write_str("System"),
            Clock::Manual(clock) => write!(f, "Manual({})", clock.now_ms()),
        }
    }
}

/// A test's clock: starts at a given time and moves forward or back on request, waking the
/// threads that wait for it.
#[derive(Debug)]
pub struct ManualClock {
    now_ms: Mutex<i64>,
    moved: Condvar,
}

impl ManualClock {
    /// The current time, epoch ms.
    pub fn now_ms(&self) -> i64 {
        *self.now_ms.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Moves the clock by `delta_ms` (negative: a clock jumping back) and wakes waiters.
    pub fn advance(&self, delta_ms: i64) {
        *self.now_ms.lock().unwrap_or_else(|p| p.into_inner()) += delta_ms;
        self.moved.notify_all();
    }

    /// Sets the clock to `at_ms` and wakes waiters.
    pub fn set(&self, at_ms: i64) {
        *self.now_ms.lock().unwrap_or_else(|p| p.into_inner()) = at_ms;
        self.moved.notify_all();
    }
}

/// How often a waiting thread checks the shutdown flag.
const SHUTDOWN_POLL: Duration = Duration::from_millis(100);

impl Clock {
    /// A manual clock starting at `start_ms`, and the handle that moves it.
    pub fn manual(start_ms: i64) -> (Clock, Arc<ManualClock>) {
        let clock = Arc::new(ManualClock {
            now_ms: Mutex::new(start_ms),
            moved: Condvar::new(),
        });
        (Clock::Manual(Arc::clone(&clock)), clock)
    }

    /// The current time, epoch ms.
    pub fn now_ms(&self) -> i64 {
        match self {
            Clock::System => shared::time::now_ms(),
            Clock::Manual(clock) => clock.now_ms(),
        }
    }

    /// Waits `interval` from now; `false` when shutdown came first. A manual clock wakes the
    /// sleeper once it has moved `interval` forward, or as soon as it is set back.
    pub fn sleep(&self, interval: Duration, shutdown: &Shutdown) -> bool {
        match self {
            Clock::System => shutdown.sleep(interval),
            Clock::Manual(clock) => {
                let mut now = clock.now_ms.lock().unwrap_or_else(|p| p.into_inner());
                let start = *now;
                let until = start.saturating_add(interval.as_millis() as i64);
                while *now >= start && *now < until {
                    if shutdown.is_set() {
                        return false;
                    }
                    now = match clock.moved.wait_timeout(now, SHUTDOWN_POLL) {
                        Ok((guard, _)) => guard,
                        Err(poisoned) => poisoned.into_inner().0,
                    };
                }
                !shutdown.is_set()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    #[test]
    fn a_manual_clock_wakes_its_sleepers_when_moved() {
        let (clock, hand) = Clock::manual(1_000);
        let shutdown = Shutdown::new();
        for step in [10_000, -1_000] {
            let sleeper = {
                let (clock, shutdown) = (clock.clone(), shutdown.clone());
                thread::spawn(move || clock.sleep(Duration::from_secs(60), &shutdown))
            };
            // Forward, it wakes once 60 s have passed for it; set back, at once.
            while !sleeper.is_finished() {
                hand.advance(step);
                thread::yield_now();
            }
            assert!(sleeper.join().unwrap());
        }
        hand.set(5);
        assert_eq!(clock.now_ms(), 5);
    }

    #[test]
    fn shutdown_ends_a_manual_sleep() {
        let (clock, _hand) = Clock::manual(0);
        let shutdown = Shutdown::new();
        shutdown.trigger();
        assert!(!clock.sleep(Duration::from_secs(1), &shutdown));
    }
}
