//! A counting semaphore for what the server shares out: `WORKERS` handler slots, and bytes
//! of the body budget.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

/// A counting semaphore: `WORKERS` handler slots, or bytes of the body budget.
pub(crate) struct Semaphore {
    free: Mutex<usize>,
    released: Condvar,
}

/// Units taken from a [`Semaphore`]; given back on drop.
pub(crate) struct Permit<'a> {
    semaphore: &'a Semaphore,
    units: usize,
}

impl Semaphore {
    pub(crate) fn new(units: usize) -> Semaphore {
        Semaphore {
            free: Mutex::new(units),
            released: Condvar::new(),
        }
    }

    /// Takes `units`, waiting at most `patience` for them (`None` when they did not free up).
    pub(crate) fn acquire_within(&self, units: usize, patience: Duration) -> Option<Permit<'_>> {
        let deadline = Instant::now().checked_add(patience);
        let mut free = self.free.lock().unwrap_or_else(|p| p.into_inner());
        while *free < units {
            let wait = match deadline {
                Some(deadline) => deadline.checked_duration_since(Instant::now())?,
                None => Duration::from_secs(3600),
            };
            free = self
                .released
                .wait_timeout(free, wait)
                .unwrap_or_else(|p| p.into_inner())
                .0;
        }
        *free -= units;
        Some(Permit {
            semaphore: self,
            units,
        })
    }
}

impl Drop for Permit<'_> {
    fn drop(&mut self) {
        if self.units == 0 {
            return;
        }
        let mut free = self
            .semaphore
            .free
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        *free += self.units;
        self.semaphore.released.notify_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn semaphore_waits_for_units_and_gives_them_back() {
        let budget = Semaphore::new(1000);
        let held = budget.acquire_within(600, Duration::ZERO).unwrap();
        assert!(budget
            .acquire_within(600, Duration::from_millis(20))
            .is_none());
        let small = budget.acquire_within(400, Duration::ZERO).unwrap();
        drop(held);
        assert!(budget.acquire_within(600, Duration::ZERO).is_some());
        drop(small);
        assert!(budget.acquire_within(1000, Duration::ZERO).is_some());
    }

    #[test]
    fn a_waiter_gets_units_released_by_another_thread() {
        let budget = Arc::new(Semaphore::new(1));
        let held = budget.acquire_within(1, Duration::ZERO).map(|p| p.units);
        assert_eq!(held, Some(1));
        // The permit above was dropped at the end of the statement: take it again and hand
        // it back from another thread while this one waits.
        let permit = budget.acquire_within(1, Duration::ZERO);
        assert!(permit.is_some());
        std::thread::scope(|scope| {
            scope.spawn(move || {
                std::thread::sleep(Duration::from_millis(20));
                drop(permit);
            });
            assert!(budget.acquire_within(1, Duration::from_secs(10)).is_some());
        });
    }
}
