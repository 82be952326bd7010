//! A per-client sliding-window rate limiter (the sliding-window-counter approximation: the
//! previous minute's count weighted by how much of it still overlaps the window).
//!
//! Its table is bounded: when it is full, the least recently seen clients are forgotten. It
//! never fails open — a flood of new addresses costs old, quiet clients their history, never
//! the limit itself.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

const WINDOW: Duration = Duration::from_secs(60);
/// Clients tracked at once (about 1.5 MB of table). Forgetting a quiet client only restarts
/// its window; `bench-attack` floods it with 200,000 addresses.
const MAX_CLIENTS: usize = 16_384;
/// When the table is full, this share of it (the least recently seen) is forgotten at once,
/// so eviction costs one pass per `MAX_CLIENTS / EVICT_SHARE` new clients, not one per request.
const EVICT_SHARE: usize = 16;

struct Window {
    start: Instant,
    last_seen: Instant,
    previous: u32,
    current: u32,
}

/// The key a client is limited by: its IPv4 address, or the /64 network of its IPv6 address
/// (one host is usually given a whole /64, so per-address limits would be no limit at all).
/// IPv4-mapped IPv6 addresses count as the IPv4 address.
pub fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(Ipv6Addr::from(u128::from(v6) & !0xFFFF_FFFF_FFFF_FFFF_u128)),
        },
    }
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
            forget_least_recent(&mut windows, now);
        }
        let window = windows.entry(key).or_insert(Window {
            start: now,
            last_seen: now,
            previous: 0,
            current: 0,
        });
        window.last_seen = now;
        let mut elapsed = now.duration_since(window.start);
        if elapsed >= 2 * WINDOW {
            *window = Window {
                start: now,
                last_seen: now,
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

/// Makes room in a full table: drops windows that no longer count, or else the least
/// recently seen `1 / EVICT_SHARE` of the clients.
fn forget_least_recent<K: Hash + Eq>(windows: &mut HashMap<K, Window>, now: Instant) {
    windows.retain(|_, w| now.duration_since(w.start) < 2 * WINDOW);
    if windows.len() < MAX_CLIENTS {
        return;
    }
    let mut seen: Vec<Instant> = windows.values().map(|w| w.last_seen).collect();
    let cut = seen.len() / EVICT_SHARE;
    let (_, &mut cutoff, _) = seen.select_nth_unstable(cut);
    windows.retain(|_, w| w.last_seen > cutoff);
    log::warn!(
        "rate limiter table full ({MAX_CLIENTS} clients): forgot the least recently seen, {} left",
        windows.len()
    );
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
    fn a_full_table_forgets_the_least_recent_and_never_fails_open() {
        let limiter: RateLimiter<u32> = RateLimiter::new(1);
        let t0 = Instant::now();
        assert!(limiter.check_at(0, t0).is_ok());
        for client in 1..MAX_CLIENTS as u32 {
            assert!(limiter
                .check_at(client, t0 + Duration::from_millis(1))
                .is_ok());
        }
        // The table is full: the busy client 0 is seen again, so it is the most recent.
        let later = t0 + Duration::from_millis(2);
        assert!(limiter.check_at(0, later).is_err());
        // A new client makes room by forgetting the least recently seen ones...
        assert!(limiter.check_at(u32::MAX, later).is_ok());
        let tracked = limiter.windows.lock().unwrap().len();
        assert!(tracked < MAX_CLIENTS, "{tracked} clients still tracked");
        // ...and the limit still holds for the clients it kept: nothing fails open.
        assert!(limiter.check_at(0, later).is_err());
        assert!(limiter.check_at(u32::MAX, later).is_err());
    }

    #[test]
    fn ipv6_clients_are_limited_per_slash_64() {
        let a: IpAddr = "2001:db8:1:2:aaaa::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:bbbb::2".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(other));
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        assert_eq!(client_key(mapped), "192.0.2.7".parse::<IpAddr>().unwrap());
        let v4: IpAddr = "192.0.2.7".parse().unwrap();
        assert_eq!(client_key(v4), v4);
    }

    #[test]
    fn zero_disables() {
        let limiter: RateLimiter<u8> = RateLimiter::new(0);
        for _ in 0..1000 {
            assert!(limiter.check(1).is_ok());
        }
    }
}
