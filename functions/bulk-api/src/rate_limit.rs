//! Per-source rate limiting: one token bucket per caller address, in
//! process. Pure (no I/O, no timers): every decision takes the time it is
//! made at, so the arithmetic is tested on an injected clock.
//!
//! A bucket holds up to `burst` tokens and gains `per_second` tokens a
//! second; each request takes one, and a request that finds less than one is
//! refused with the whole seconds until one is there. IPv6 callers are
//! counted by their /64 (one host usually has a whole /64 to pick addresses
//! from); IPv4-mapped IPv6 addresses count as the IPv4 address.
//!
//! Memory is bounded: at most `max_sources` addresses are tracked. Buckets
//! that have filled up again are forgotten first (a full bucket is the same
//! as none); when every tracked source is still active, new sources share
//! one overflow bucket until room is made.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// A bucket's size and refill rate.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RateLimit {
    /// Requests a source may make at once, after being quiet.
    pub burst: u32,
    /// Requests a second a source may keep making.
    pub per_second: f64,
}

impl RateLimit {
    /// The token endpoint's default: 20 at once, then one a second. A
    /// back-end client needs one token per 5 minutes; a host serving many
    /// clients from one address may need more (see [`RateLimit::new`]).
    pub const TOKEN_ENDPOINT: RateLimit = RateLimit {
        burst: 20,
        per_second: 1.0,
    };

    /// A limit, or why it is not one.
    pub fn new(burst: u32, per_second: f64) -> Result<RateLimit, String> {
        if burst == 0 {
            return Err("the burst must be at least 1".into());
        }
        if !per_second.is_finite() || per_second <= 0.0 {
            return Err(format!(
                "the rate must be a positive number of requests a second, not {per_second}"
            ));
        }
        Ok(RateLimit { burst, per_second })
    }
}

impl Default for RateLimit {
    fn default() -> Self {
        RateLimit::TOKEN_ENDPOINT
    }
}

/// One request's fate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed,
    /// Refused: a token will be there in at most this many whole seconds
    /// (at least 1), what `Retry-After` says.
    Limited {
        retry_after_seconds: u64,
    },
}

/// One source's tokens as of `at`.
#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(limit: &RateLimit, at: Instant) -> Bucket {
        Bucket {
            tokens: f64::from(limit.burst),
            at,
        }
    }

    /// The tokens at `now` (never more than the burst; a clock that went
    /// back adds nothing).
    fn refilled(&self, limit: &RateLimit, now: Instant) -> f64 {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        (self.tokens + elapsed * limit.per_second).min(f64::from(limit.burst))
    }

    /// Takes one token at `now` if there is one.
    fn take(&mut self, limit: &RateLimit, now: Instant) -> Decision {
        let tokens = self.refilled(limit, now);
        self.at = now.max(self.at);
        if tokens >= 1.0 {
            self.tokens = tokens - 1.0;
            return Decision::Allowed;
        }
        self.tokens = tokens;
        let wait = ((1.0 - tokens) / limit.per_second).ceil();
        // Whole seconds, at least one; a tiny rate cannot overflow the cast.
        let retry_after_seconds = if wait >= u64::MAX as f64 {
            u64::MAX
        } else {
            (wait as u64).max(1)
        };
        Decision::Limited {
            retry_after_seconds,
        }
    }
}

/// The most sources tracked by default (about 100 bytes each).
pub const DEFAULT_MAX_SOURCES: usize = 50_000;

/// Token buckets by source address.
#[derive(Debug)]
pub struct SourceLimiter {
    limit: RateLimit,
    max_sources: usize,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    buckets: HashMap<IpAddr, Bucket>,
    /// Shared by new sources while the table is full of active ones.
    overflow: Option<Bucket>,
    /// When full buckets were last forgotten (at most once a second).
    pruned_at: Option<Instant>,
}

/// The address a source is counted under: IPv6 by its /64.
pub fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let network = u128::from(v6) & !(u128::from(u64::MAX));
                IpAddr::V6(Ipv6Addr::from(network))
            }
        },
    }
}

impl SourceLimiter {
    pub fn new(limit: RateLimit) -> Self {
        SourceLimiter::with_max_sources(limit, DEFAULT_MAX_SOURCES)
    }

    /// A limiter that tracks at most `max_sources` addresses (at least 1).
    pub fn with_max_sources(limit: RateLimit, max_sources: usize) -> Self {
        SourceLimiter {
            limit,
            max_sources: max_sources.max(1),
            state: Mutex::new(State {
                buckets: HashMap::new(),
                overflow: None,
                pruned_at: None,
            }),
        }
    }

    pub fn limit(&self) -> RateLimit {
        self.limit
    }

    /// Takes one request of `source` at `now`.
    pub fn check(&self, source: IpAddr, now: Instant) -> Decision {
        let key = source_key(source);
        let limit = self.limit;
        // A panic while holding the lock leaves only counts behind: use them.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        if let Some(bucket) = state.buckets.get_mut(&key) {
            return bucket.take(&limit, now);
        }
        if state.buckets.len() >= self.max_sources {
            self.forget_full(&mut state, now);
        }
        if state.buckets.len() >= self.max_sources {
            return state
                .overflow
                .get_or_insert_with(|| Bucket::full(&limit, now))
                .take(&limit, now);
        }
        let mut bucket = Bucket::full(&limit, now);
        let decision = bucket.take(&limit, now);
        state.buckets.insert(key, bucket);
        decision
    }

    /// Forgets every bucket that has filled up again (at most once a
    /// second: a table full of active sources is not scanned per request).
    fn forget_full(&self, state: &mut State, now: Instant) {
        if state
            .pruned_at
            .is_some_and(|at| now.saturating_duration_since(at) < Duration::from_secs(1))
        {
            return;
        }
        state.pruned_at = Some(now);
        let limit = self.limit;
        let burst = f64::from(limit.burst);
        state.buckets.retain(|_, b| b.refilled(&limit, now) < burst);
        if state
            .overflow
            .is_some_and(|b| b.refilled(&limit, now) >= burst)
        {
            state.overflow = None;
        }
    }

    /// Sources tracked now (for tests).
    pub fn tracked(&self) -> usize {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .buckets
            .len()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn limited(d: Decision) -> u64 {
        match d {
            Decision::Limited {
                retry_after_seconds,
            } => retry_after_seconds,
            Decision::Allowed => panic!("allowed"),
        }
    }

    const MS: fn(u64) -> Duration = Duration::from_millis;

    #[test]
    fn a_burst_then_one_a_second() {
        let l = SourceLimiter::new(RateLimit::new(3, 1.0).unwrap());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        for _ in 0..3 {
            assert_eq!(l.check(a, t0), Decision::Allowed);
        }
        assert_eq!(limited(l.check(a, t0)), 1);
        // Half a token is not one: still refused, still about a second.
        assert_eq!(limited(l.check(a, t0 + MS(500))), 1);
        assert_eq!(l.check(a, t0 + MS(1000)), Decision::Allowed);
        assert_eq!(limited(l.check(a, t0 + MS(1000))), 1);
        // Quiet for a long time: the burst again, never more.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(l.check(a, later), Decision::Allowed);
        }
        assert!(matches!(l.check(a, later), Decision::Limited { .. }));
    }

    #[test]
    fn refused_requests_take_nothing() {
        let l = SourceLimiter::new(RateLimit::new(1, 1.0).unwrap());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(l.check(a, t0), Decision::Allowed);
        for ms in [100, 200, 300, 900] {
            assert!(matches!(l.check(a, t0 + MS(ms)), Decision::Limited { .. }));
        }
        // Hammering did not push the next token further away.
        assert_eq!(l.check(a, t0 + MS(1000)), Decision::Allowed);
    }

    #[test]
    fn retry_after_rounds_the_wait_up_to_whole_seconds() {
        let slow = SourceLimiter::new(RateLimit::new(1, 0.25).unwrap());
        let t0 = Instant::now();
        let a = ip("192.0.2.1");
        assert_eq!(slow.check(a, t0), Decision::Allowed);
        assert_eq!(limited(slow.check(a, t0)), 4);
        assert_eq!(limited(slow.check(a, t0 + MS(1500))), 3);
        assert_eq!(limited(slow.check(a, t0 + MS(3990))), 1);
        assert_eq!(slow.check(a, t0 + MS(4000)), Decision::Allowed);
        let fast = SourceLimiter::new(RateLimit::new(1, 10.0).unwrap());
        assert_eq!(fast.check(a, t0), Decision::Allowed);
        assert_eq!(limited(fast.check(a, t0)), 1, "never 0");
        assert_eq!(fast.check(a, t0 + MS(100)), Decision::Allowed);
    }

    #[test]
    fn each_source_has_its_own_bucket() {
        let l = SourceLimiter::new(RateLimit::new(2, 1.0).unwrap());
        let t0 = Instant::now();
        let (a, b) = (ip("192.0.2.1"), ip("198.51.100.7"));
        assert_eq!(l.check(a, t0), Decision::Allowed);
        assert_eq!(l.check(a, t0), Decision::Allowed);
        assert!(matches!(l.check(a, t0), Decision::Limited { .. }));
        assert_eq!(l.check(b, t0), Decision::Allowed);
        assert_eq!(l.check(b, t0), Decision::Allowed);
    }

    #[test]
    fn ipv6_counts_by_its_64_and_mapped_ipv4_as_ipv4() {
        assert_eq!(source_key(ip("2001:db8:1:2:aaaa::1")), ip("2001:db8:1:2::"));
        assert_eq!(source_key(ip("::ffff:192.0.2.1")), ip("192.0.2.1"));
        let l = SourceLimiter::new(RateLimit::new(1, 1.0).unwrap());
        let t0 = Instant::now();
        assert_eq!(l.check(ip("2001:db8:1:2::1"), t0), Decision::Allowed);
        assert!(matches!(
            l.check(ip("2001:db8:1:2:ffff::9"), t0),
            Decision::Limited { .. }
        ));
        assert_eq!(l.check(ip("2001:db8:1:3::1"), t0), Decision::Allowed);
        assert_eq!(l.check(ip("::ffff:192.0.2.1"), t0), Decision::Allowed);
        assert!(matches!(
            l.check(ip("192.0.2.1"), t0),
            Decision::Limited { .. }
        ));
    }

    #[test]
    fn a_clock_that_goes_back_adds_nothing() {
        let l = SourceLimiter::new(RateLimit::new(1, 1.0).unwrap());
        let t0 = Instant::now() + Duration::from_secs(10);
        let a = ip("192.0.2.1");
        assert_eq!(l.check(a, t0), Decision::Allowed);
        assert!(matches!(
            l.check(a, t0 - Duration::from_secs(5)),
            Decision::Limited { .. }
        ));
        assert_eq!(l.check(a, t0 + MS(1000)), Decision::Allowed);
    }

    #[test]
    fn the_table_is_bounded_quiet_sources_are_forgotten_first() {
        let l = SourceLimiter::with_max_sources(RateLimit::new(2, 1.0).unwrap(), 2);
        let t0 = Instant::now();
        let (a, b, c, d) = (
            ip("192.0.2.1"),
            ip("192.0.2.2"),
            ip("192.0.2.3"),
            ip("192.0.2.4"),
        );
        assert_eq!(l.check(a, t0), Decision::Allowed);
        assert_eq!(l.check(b, t0), Decision::Allowed);
        assert_eq!(l.tracked(), 2);
        // Full of active sources: newcomers share the overflow bucket.
        assert_eq!(l.check(c, t0), Decision::Allowed);
        assert_eq!(l.check(d, t0), Decision::Allowed);
        assert!(matches!(l.check(c, t0), Decision::Limited { .. }));
        assert_eq!(l.tracked(), 2);
        // Two seconds on, a and b are full again: forgotten, c gets its own.
        let t2 = t0 + Duration::from_secs(2);
        assert_eq!(l.check(c, t2), Decision::Allowed);
        assert_eq!(l.tracked(), 1);
        assert_eq!(l.check(c, t2), Decision::Allowed);
        assert!(matches!(l.check(c, t2), Decision::Limited { .. }));
    }

    #[test]
    fn limits_that_are_not_limits_are_refused() {
        assert!(RateLimit::new(0, 1.0).is_err());
        assert!(RateLimit::new(1, 0.0).is_err());
        assert!(RateLimit::new(1, -1.0).is_err());
        assert!(RateLimit::new(1, f64::NAN).is_err());
        assert!(RateLimit::new(1, f64::INFINITY).is_err());
        assert_eq!(RateLimit::default(), RateLimit::new(20, 1.0).unwrap());
    }
}
