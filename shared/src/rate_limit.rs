//! A per-client sliding-window rate limiter (the sliding-window-counter approximation: the
//! previous minute's count weighted by how much of it still overlaps the window).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked at once; beyond it stale entries are purged, and if none are stale the
/// request is let through (and logged) rather than growing memory without bound.
const MAX_CLIENTS: usize = 65_536;

struct Window {
    start: Instant,
    previous: u32,
    current: u32,
}

/// Allows `per_minute` requests per key in any 60 s window; 0 allows everything.
pub struct RateLimiter<K = IpAddr> {
    per_minute: u32,
    windows: Mutex<HashMap<K, Window>>,
}

impl<K: Hash + Eq + Clone> RateLimiter<K> {
    /// A limiter allowing `per_minute` requests per key (0 = unlimited).
    pub fn new(per_minute: u32) -> RateLimiter<K> {
        RateLimiter {
            per_minute,
            windows: Mutex::new(HashMap::new()),
        }
    }

    /// Counts a request for `key`. `Err(seconds)` when over the limit: retry after that long.
    pub fn check(&self, key: K) -> Result<(), u64> {
        self.check_at(key, Instant::now())
    }

    fn check_at(&self, key: K, now: Instant) -> Result<(), u64> {
        if self.per_minute == 0 {
            return Ok(());
        }
        let mut windows = self.windows.lock().unwrap_or_else(|p| p.into_inner());
        if windows.len() >= MAX_CLIENTS && !windows.contains_key(&key) {
            windows.retain(|_, w| now.duration_since(w.start) < 2 * WINDOW);
            if windows.len() >= MAX_CLIENTS {
                log::warn!(
                    "rate limiter is tracking {MAX_CLIENTS} clients; letting a new one through"
                );
                return Ok(());
            }
        }
        let window = windows.entry(key).or_insert(Window {
            start: now,
            previous: 0,
            current: 0,
        });
        let mut elapsed = now.duration_since(window.start);
        if elapsed >= 2 * WINDOW {
            *window = Window {
                start: now,
                previous: 0,
                current: 0,
            };
            elapsed = Duration::ZERO;
        } else if elapsed >= WINDOW {
            window.start += WINDOW;
            window.previous = window.current;
            window.current = 0;
            elapsed -= WINDOW;
        }
        let overlap = 1.0 - elapsed.as_secs_f64() / WINDOW.as_secs_f64();
        let estimate = window.previous as f64 * overlap + window.current as f64;
        if estimate + 1.0 > self.per_minute as f64 {
            let retry_after = (WINDOW - elapsed).as_secs().max(1);
            return Err(retry_after);
        }
        window.current += 1;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allows_up_to_the_limit_then_refuses() {
        let limiter: RateLimiter<u8> = RateLimiter::new(3);
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check_at(1, t0).is_ok());
        }
        let retry = limiter.check_at(1, t0).unwrap_err();
        assert!((1..=60).contains(&retry));
        assert!(
            limiter.check_at(2, t0).is_ok(),
            "other clients are not affected"
        );
        // Two minutes later the window is empty again.
        assert!(limiter.check_at(1, t0 + Duration::from_secs(121)).is_ok());
    }

    #[test]
    fn previous_window_still_counts_while_it_overlaps() {
        let limiter: RateLimiter<u8> = RateLimiter::new(10);
        let t0 = Instant::now();
        for _ in 0..10 {
            assert!(limiter.check_at(1, t0).is_ok());
        }
        // 6 s into the next minute, 90 % of the previous 10 still count: 9 + 1 allowed.
        assert!(limiter.check_at(1, t0 + Duration::from_secs(66)).is_ok());
        assert!(limiter.check_at(1, t0 + Duration::from_secs(66)).is_err());
    }

    #[test]
    fn zero_disables() {
        let limiter: RateLimiter<u8> = RateLimiter::new(0);
        for _ in 0..1000 {
            assert!(limiter.check(1).is_ok());
        }
    }
}
