//! Admission to issuance: bounded CPU work and per-caller rate limits.
//!
//! * **CPU slots.** Key generation, signing and PKCS#12 run on the issuance workers, one thread
//!   per core (`cpu`). Work that started finishes in its slot; a job whose request was dropped
//!   (client gone, request timeout) before a worker reached it is not run, so abandoned requests
//!   cannot leave key generation running outside the bound.
//! * **A bounded queue.** Jobs wait for a worker in a queue of `[limits] issuance_queue`; one
//!   more is refused at once with 503 `unavailable` and `Retry-After` instead of piling up.
//! * **Rate limits** (`[limits] peer_per_minute`, `identity_per_minute`, `officer_per_minute`):
//!   GCRA through `governor`, keyed per TCP peer (IPv6 per /64, so one host cannot mint fresh
//!   keys from its own prefix), per asserted identity (a hash of the identity header and
//!   `cert:` values the handler's format reads, `policy::asserted_identity`: namesakes differ,
//!   a literal OU adds nothing; the subject DN only for a format of literals) and per officer. Exceeding one answers 429 `rate-limited` with `Retry-After`. Keys
//!   that have fully recovered are forgotten periodically, so the maps hold only callers seen
//!   within the last minute.

use std::net::IpAddr;
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};

use governor::clock::{Clock, DefaultClock};
use governor::state::keyed::DefaultKeyedStateStore;
use governor::{Quota, RateLimiter};
use sha2::{Digest, Sha256};

mod cpu;

pub(crate) use cpu::CpuGate;

use super::{IssuanceError, RateScope};
use crate::config::{Limits, RateLimits};

/// Counter: requests shed because a queue was full, by queue (`cpu`, `write`).
pub const SHED: &str = "ast_issuance_shed_total";
/// Counter: requests refused by a rate limit, by scope (`peer`, `identity`, `officer`).
pub const RATE_LIMITED: &str = "ast_rate_limited_total";
/// Gauge: requests waiting for a CPU slot.
pub const WAITING: &str = "ast_issuance_waiting";
/// Gauge: CPU slots in use (issuance workers making tokens).
pub const BUSY: &str = "ast_issuance_cpu_busy";

type Keyed<K> = RateLimiter<K, DefaultKeyedStateStore<K>, DefaultClock>;

/// Checks between two sweeps of recovered keys.
const SWEEP_EVERY: u64 = 1024;

/// The per-caller rate limiters; a limit of 0 has none.
pub(crate) struct RateLimiters {
    peer: Option<Keyed<[u8; 16]>>,
    identity: Option<Keyed<[u8; 16]>>,
    officer: Option<Keyed<[u8; 16]>>,
    checks: AtomicU64,
}

fn limiter(per_minute: u32) -> Option<Keyed<[u8; 16]>> {
    NonZeroU32::new(per_minute).map(|n| RateLimiter::keyed(Quota::per_minute(n)))
}

/// A fixed-size key: a hash of a longer value (a peer is keyed by `identity::peer_network`).
fn hashed_key(value: &str) -> [u8; 16] {
    let digest = Sha256::digest(value.as_bytes());
    let mut key = [0u8; 16];
    key.copy_from_slice(&digest[..16]);
    key
}

impl RateLimiters {
    pub(crate) fn new(rates: &RateLimits) -> RateLimiters {
        RateLimiters {
            peer: limiter(rates.per_peer),
            identity: limiter(rates.per_identity),
            officer: limiter(rates.per_officer),
            checks: AtomicU64::new(0),
        }
    }

    /// Counts one request of this TCP peer.
    pub(crate) fn peer(&self, ip: IpAddr) -> Result<(), IssuanceError> {
        self.check(
            RateScope::Peer,
            self.peer.as_ref(),
            &crate::identity::peer_network(ip),
        )
    }

    /// Counts one token for this identity (the asserted identity of the request).
    pub(crate) fn identity(&self, subject: &str) -> Result<(), IssuanceError> {
        self.check(
            RateScope::Identity,
            self.identity.as_ref(),
            &hashed_key(subject),
        )
    }

    /// Counts one token requested by this officer.
    pub(crate) fn officer(&self, officer: &str) -> Result<(), IssuanceError> {
        self.check(
            RateScope::Officer,
            self.officer.as_ref(),
            &hashed_key(officer),
        )
    }

    fn check(
        &self,
        scope: RateScope,
        limiter: Option<&Keyed<[u8; 16]>>,
        key: &[u8; 16],
    ) -> Result<(), IssuanceError> {
        let Some(limiter) = limiter else {
            return Ok(());
        };
        if self.checks.fetch_add(1, Ordering::Relaxed) % SWEEP_EVERY == SWEEP_EVERY - 1 {
            self.sweep();
        }
        limiter.check_key(key).map_err(|not_until| {
            metrics::counter!(RATE_LIMITED, "scope" => scope.as_str()).increment(1);
            IssuanceError::RateLimited {
                scope,
                retry_after: not_until.wait_time_from(limiter.clock().now()),
            }
        })
    }

    /// Forgets callers whose budget has fully recovered (they are indistinguishable from new).
    fn sweep(&self) {
        for limiter in [&self.peer, &self.identity, &self.officer]
            .into_iter()
            .flatten()
        {
            limiter.retain_recent();
            limiter.shrink_to_fit();
        }
    }
}

/// Everything admission needs from `[limits]`.
pub(crate) struct Admission {
    pub(crate) cpu: CpuGate,
    pub(crate) rates: RateLimiters,
}

impl Admission {
    pub(crate) fn new(cores: usize, limits: &Limits) -> Admission {
        Admission {
            cpu: CpuGate::new(cores, limits.issuance_queue, limits.retry_after),
            rates: RateLimiters::new(&limits.rates),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::issuance::Code;

    #[test]
    fn rate_limits_are_per_key_and_tell_when_to_retry() {
        let limits = RateLimiters::new(&RateLimits {
            per_peer: 2,
            per_identity: 1,
            per_officer: 0,
        });
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!(limits.peer(a).is_ok());
        assert!(limits.peer(a).is_ok());
        let refused = limits.peer(a).unwrap_err();
        assert_eq!(refused.code(), Code::RateLimited);
        // 2 per minute: the next one in about 30 s.
        let wait = refused.retry_after().unwrap();
        assert!(
            wait > Duration::from_secs(20) && wait <= Duration::from_secs(30),
            "{wait:?}"
        );
        assert!(limits.peer(b).is_ok(), "another peer has its own budget");
        assert!(limits.identity("CN=Alice").is_ok());
        assert!(limits.identity("CN=Alice").is_err());
        assert!(limits.identity("CN=Bob").is_ok());
        // 0 = no limit.
        for _ in 0..100 {
            assert!(limits.officer("officer:ab").is_ok());
        }
    }

    #[test]
    fn ipv6_peers_share_a_budget_per_64() {
        let limits = RateLimiters::new(&RateLimits {
            per_peer: 1,
            per_identity: 0,
            per_officer: 0,
        });
        assert!(limits.peer("2001:db8:1:2::1".parse().unwrap()).is_ok());
        assert!(
            limits
                .peer("2001:db8:1:2:ffff::9".parse().unwrap())
                .is_err()
        );
        assert!(limits.peer("2001:db8:1:3::1".parse().unwrap()).is_ok());
        // An IPv4-mapped address is the IPv4 peer.
        assert!(limits.peer("198.51.100.7".parse().unwrap()).is_ok());
        assert!(limits.peer("::ffff:198.51.100.7".parse().unwrap()).is_err());
    }
}
