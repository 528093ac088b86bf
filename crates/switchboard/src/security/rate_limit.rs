//! Rate limiting of new connections: a token bucket per client address.
//!
//! Our own rather than `governor`'s keyed limiter, for a missing feature:
//! `governor`'s keyed state store grows with every distinct address until
//! someone calls `retain_recent`, and has no bound, so a flood from many
//! addresses (an IPv6 /48 holds 65,536 /64s) would grow it without limit.
//! This table is capped ([`RateLimit::max_clients`]) and evicts refilled
//! buckets, then the least recently seen, under the same shard lock as the
//! check; its tests use the runtime's (pausable) clock.

use std::time::{Duration, Instant};

use super::client_ip::IpKey;
use super::sharded::{SHARDS, Sharded};

/// A limit on how fast one client address may open connections: a token
/// bucket that holds up to `burst` tokens and refills at `per_second`; each
/// handshake takes one, and a handshake that finds the bucket empty is
/// refused with `429 Too Many Requests`, `Retry-After` set to the seconds
/// until the next token, and the body `Rate limit exceeded`.
///
/// Addresses are the client's (see [`crate::security::TrustedProxies`]);
/// IPv6 addresses count per `/64`, since one host usually holds a whole `/64`.
///
/// Memory is bounded by [`RateLimit::max_clients`]: a bucket that has filled
/// up again is indistinguishable from no bucket and is dropped first, and
/// when the table is still full the least recently seen address is dropped
/// (it starts again with a full bucket: the limit fails open for an address
/// evicted by a flood of others, never closed for everyone).
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct RateLimit {
    /// Tokens added per second. Set by the constructor.
    pub per_second: f64,
    /// Bucket size: connections a client may open at once after being idle.
    /// Default: `per_second` rounded up, at least 1.
    pub burst: u32,
    /// Most addresses tracked at once (about: the table is split into 64
    /// shards of `max_clients / 64` rounded up). Default 100,000, a few MB.
    pub max_clients: usize,
}

impl RateLimit {
    /// `rate` new connections per second per client.
    ///
    /// # Panics
    /// If `rate` is not a positive, finite number.
    pub fn per_second(rate: f64) -> Self {
        assert!(
            rate.is_finite() && rate > 0.0,
            "a rate limit needs a positive rate, got {rate}"
        );
        Self {
            per_second: rate,
            burst: (rate.ceil() as u32).max(1),
            max_clients: 100_000,
        }
    }

    /// `rate` new connections per minute per client (burst 1 unless set).
    ///
    /// # Panics
    /// If `rate` is not a positive, finite number.
    pub fn per_minute(rate: f64) -> Self {
        Self::per_second(rate / 60.0)
    }

    /// Sets [`RateLimit::burst`] (at least 1).
    pub fn with_burst(mut self, burst: u32) -> Self {
        self.burst = burst.max(1);
        self
    }

    /// Sets [`RateLimit::max_clients`] (at least 1).
    pub fn with_max_clients(mut self, max_clients: usize) -> Self {
        self.max_clients = max_clients.max(1);
        self
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// The buckets of one [`RateLimit`]: one per route, and one for the server.
#[derive(Debug)]
pub(crate) struct RateLimiter {
    config: RateLimit,
    per_shard: usize,
    buckets: Sharded<IpKey, Bucket>,
}

impl RateLimiter {
    pub(crate) fn new(config: RateLimit) -> Self {
        Self {
            config,
            per_shard: config.max_clients.div_ceil(SHARDS).max(1),
            buckets: Sharded::new(),
        }
    }

    /// Takes a token for `key`, or says how long until one is available.
    pub(crate) fn check(&self, key: IpKey, now: Instant) -> Result<(), Duration> {
        let rate = self.config.per_second;
        let burst = f64::from(self.config.burst);
        let mut shard = self.buckets.lock(&key);
        if let Some(bucket) = shard.get_mut(&key) {
            let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(burst);
            bucket.last = now;
            if bucket.tokens >= 1.0 {
                bucket.tokens -= 1.0;
                return Ok(());
            }
            return Err(Duration::from_secs_f64((1.0 - bucket.tokens) / rate));
        }
        if shard.len() >= self.per_shard {
            // Refilled buckets carry no information: drop them all. If none
            // is, drop the one seen longest ago, so the table never grows.
            shard.retain(|_, b| {
                b.tokens + now.saturating_duration_since(b.last).as_secs_f64() * rate < burst
            });
            if shard.len() >= self.per_shard {
                let oldest = shard.iter().min_by_key(|(_, b)| b.last).map(|(k, _)| *k);
                if let Some(oldest) = oldest {
                    shard.remove(&oldest);
                }
            }
        }
        shard.insert(
            key,
            Bucket {
                tokens: burst - 1.0,
                last: now,
            },
        );
        Ok(())
    }

    /// Addresses tracked now.
    #[cfg(test)]
    pub(crate) fn tracked(&self) -> usize {
        self.buckets.len()
    }
}

#[cfg(test)]
mod tests {
    use std::net::{IpAddr, Ipv4Addr};

    use super::*;

    fn key(n: u32) -> IpKey {
        IpKey::new(IpAddr::V4(Ipv4Addr::from(n)))
    }

    #[test]
    fn burst_then_refusal_with_time_until_next_token() {
        let limiter = RateLimiter::new(RateLimit::per_second(2.0).with_burst(3));
        let t0 = Instant::now();
        for _ in 0..3 {
            assert!(limiter.check(key(1), t0).is_ok());
        }
        let wait = limiter.check(key(1), t0).unwrap_err();
        assert_eq!(wait, Duration::from_millis(500));
        // Another address has its own bucket.
        assert!(limiter.check(key(2), t0).is_ok());
        // Half a second later, one token is back, and only one.
        let t1 = t0 + Duration::from_millis(500);
        assert!(limiter.check(key(1), t1).is_ok());
        assert!(limiter.check(key(1), t1).is_err());
    }

    #[test]
    fn refill_never_exceeds_the_burst() {
        let limiter = RateLimiter::new(RateLimit::per_second(10.0).with_burst(2));
        let t0 = Instant::now();
        assert!(limiter.check(key(1), t0).is_ok());
        let later = t0 + Duration::from_secs(3600);
        assert!(limiter.check(key(1), later).is_ok());
        assert!(limiter.check(key(1), later).is_ok());
        assert!(limiter.check(key(1), later).is_err());
    }

    #[test]
    fn a_flood_of_addresses_stays_within_max_clients() {
        let limiter = RateLimiter::new(RateLimit::per_minute(1.0).with_max_clients(1000));
        let t0 = Instant::now();
        for n in 0..100_000 {
            assert!(limiter.check(key(n), t0).is_ok());
        }
        // 1000 / 64 shards rounds up to 16 per shard.
        assert!(limiter.tracked() <= 16 * SHARDS, "{}", limiter.tracked());
    }

    #[test]
    fn idle_buckets_are_evicted_before_active_ones() {
        // One bucket per shard: every new address in a shard needs room.
        let limiter = RateLimiter::new(RateLimit::per_second(1.0).with_max_clients(1));
        let t0 = Instant::now();
        assert!(limiter.check(key(1), t0).is_ok());
        assert!(limiter.check(key(1), t0).is_err());
        // A second later key 1 has refilled: it is idle and gives way.
        let t1 = t0 + Duration::from_secs(1);
        for n in 2..200 {
            assert!(limiter.check(key(n), t1).is_ok());
        }
        assert!(limiter.tracked() <= SHARDS);
    }

    #[test]
    fn a_full_table_drops_the_least_recently_seen() {
        let limiter = RateLimiter::new(RateLimit::per_minute(1.0).with_max_clients(1));
        let t0 = Instant::now();
        // Fill every shard with an exhausted, recently seen bucket...
        let mut exhausted = Vec::new();
        for n in 0..10_000 {
            let k = key(n);
            let mut shard = limiter.buckets.lock(&k);
            if shard.is_empty() {
                shard.insert(
                    k,
                    Bucket {
                        tokens: 0.0,
                        last: t0,
                    },
                );
                exhausted.push(k);
            }
        }
        assert_eq!(limiter.tracked(), SHARDS);
        // ...then a newer address evicts the oldest in its shard.
        let t1 = t0 + Duration::from_secs(1);
        let newcomer = key(20_000);
        assert!(limiter.check(newcomer, t1).is_ok());
        assert_eq!(limiter.tracked(), SHARDS);
        assert!(limiter.check(newcomer, t1).is_err());
    }
}
