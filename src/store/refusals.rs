//! Refusal aggregation: whoever can reach the service can make it refuse, so refusals must not
//! grow the audit trail by one row per request.
//!
//! The first refusal of a (actor, peer, code) in a UTC minute is appended at once, in full. The
//! others of that minute only count, in memory; when the minute is over (the upkeep task flushes
//! finished minutes every 10 s, see `upkeep`) or at shutdown ([`Store::flush_refusals`]) one
//! chained `refused-aggregate` row records how many there were, the first and last time, the
//! last request's detail and the first request ids. Every counted refusal is also logged (target
//! `audit`, with its request id), so none is in neither the database nor the log.
//!
//! Rows are bounded however callers vary: at most [`ROWS_PER_MINUTE`] refusals per minute are
//! appended in full; past that, refusals of new (actor, peer) pairs are counted in one overflow
//! aggregate per code and minute (`"overflow": true`, with a sample of the peers), so a client
//! rotating through source addresses adds a bounded number of rows per minute, not one per
//! request. Counts not yet flushed are lost only if the process dies without a graceful stop
//! (then each of them is still in the log). The table of keys is bounded too ([`MAX_KEYS`]).

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;

use serde_json::json;

use super::{AuditEvent, Store, StoreError};

/// Most (caller, code, minute) keys remembered at once.
pub const MAX_KEYS: usize = 4096;

/// Most refusals appended in full per minute (all callers together); the rest are counted.
pub const ROWS_PER_MINUTE: usize = 600;

/// The actor and peer of an overflow key.
const OVERFLOW: &str = "*";

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    actor: String,
    peer: String,
    code: String,
    minute: i64,
}

impl Key {
    fn is_overflow(&self) -> bool {
        self.actor == OVERFLOW && self.peer == OVERFLOW
    }
}

/// Refusals counted after the first one of a key.
#[derive(Debug, Clone)]
struct Pending {
    count: u64,
    first_at: i64,
    last: AuditEvent,
    /// The request ids of the first `SAMPLE` counted refusals, so an operator can still
    /// find a client's request in the trail; bounded so a flood cannot grow the row.
    request_ids: Vec<String>,
    /// Overflow keys only: the first `SAMPLE` distinct peers counted.
    peers: Vec<String>,
}

impl Pending {
    fn new(event: &AuditEvent) -> Pending {
        Pending {
            count: 0,
            first_at: event.at,
            last: event.clone(),
            request_ids: Vec::new(),
            peers: Vec::new(),
        }
    }

    fn count(&mut self, event: &AuditEvent, peer: Option<&str>) {
        self.count += 1;
        self.last = event.clone();
        if self.request_ids.len() < SAMPLE {
            self.request_ids
                .push(event.request_id.chars().take(64).collect());
        }
        if let Some(peer) = peer
            && self.peers.len() < SAMPLE
            && !self.peers.iter().any(|p| p == peer)
        {
            self.peers.push(peer.chars().take(64).collect());
        }
    }
}

/// How many request ids (and overflow peers) an aggregate row keeps.
const SAMPLE: usize = 64;

/// The keys and the current minute's count of rows appended in full.
#[derive(Debug, Default)]
struct Table {
    /// Key → refusals since its first row (None: none yet).
    keys: HashMap<Key, Option<Pending>>,
    /// The minute `appended` counts, and how many refusals it appended in full.
    minute: i64,
    appended: usize,
}

/// The in-memory part, shared by the clones of a store.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    table: Mutex<Table>,
}

#[derive(Debug)]
enum Decision {
    /// The first of its key: append it now.
    Append,
    /// Counted; nothing to write.
    Counted,
}

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, Table> {
        // A panic while holding the lock leaves only counters behind: keep going.
        self.table.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decide(&self, key: &Key, event: &AuditEvent) -> Decision {
        let mut table = self.lock();
        if let Some(slot) = table.keys.get_mut(key) {
            slot.get_or_insert_with(|| Pending::new(event))
                .count(event, None);
            return Decision::Counted;
        }
        if table.minute != key.minute {
            table.minute = key.minute;
            table.appended = 0;
        }
        if table.appended < ROWS_PER_MINUTE {
            table.appended += 1;
            table.keys.insert(key.clone(), None);
            return Decision::Append;
        }
        let overflow = Key {
            actor: OVERFLOW.into(),
            peer: OVERFLOW.into(),
            code: key.code.clone(),
            minute: key.minute,
        };
        table
            .keys
            .entry(overflow)
            .or_default()
            .get_or_insert_with(|| Pending::new(event))
            .count(event, Some(&format!("{} {}", key.actor, key.peer)));
        Decision::Counted
    }

    fn forget(&self, key: &Key) {
        self.lock().keys.remove(key);
    }

    fn is_full(&self) -> bool {
        self.lock().keys.len() >= MAX_KEYS
    }

    /// Takes the pending counts: of minutes before `before_minute` (their keys are dropped),
    /// or of every minute when `None` (keys kept, so the current minute keeps aggregating).
    fn take(&self, before_minute: Option<i64>) -> Vec<(Key, Pending)> {
        let mut table = self.lock();
        let mut out = Vec::new();
        match before_minute {
            Some(minute) => table.keys.retain(|k, p| {
                if k.minute >= minute {
                    return true;
                }
                if let Some(p) = p.take() {
                    out.push((k.clone(), p));
                }
                false
            }),
            None => {
                for (k, p) in table.keys.iter_mut() {
                    if let Some(p) = p.take() {
                        out.push((k.clone(), p));
                    }
                }
            }
        }
        out
    }

    /// Takes every pending count and forgets every key, in one step (nothing counted between
    /// the two is lost).
    fn take_all_and_clear(&self) -> Vec<(Key, Pending)> {
        let mut table = self.lock();
        table
            .keys
            .drain()
            .filter_map(|(k, p)| p.map(|p| (k, p)))
            .collect()
    }
}

fn aggregate_event(key: &Key, pending: &Pending) -> AuditEvent {
    let last = &pending.last;
    AuditEvent {
        at: last.at,
        event: "refused-aggregate".into(),
        actor: key.actor.clone(),
        request_id: last.request_id.clone(),
        detail: json!({
            "code": key.code,
            "peer": key.peer,
            "minute": key.minute * 60,
            "count": pending.count,
            "firstAt": pending.first_at,
            "lastAt": last.at,
            "last": last.detail,
            "requestIds": pending.request_ids,
            "overflow": key.is_overflow(),
            "peers": pending.peers,
        }),
    }
}

impl Store {
    /// Audits a refusal of `code` for `actor` from `peer`, aggregated per minute (see the module
    /// comment): the first of its kind is appended before this returns, later ones are counted.
    pub async fn record_refusal(
        &self,
        peer: &str,
        code: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.record_refusal_as(peer, code, event, false).await
    }

    /// As [`Store::record_refusal`] for a refusal about load (overload, rate limit): it must not
    /// wait for the database it protects, so its row (when one is written) goes with the
    /// writer's next batch, and the minute's aggregates are left to the periodic flush.
    pub async fn record_load_refusal(
        &self,
        peer: &str,
        code: &str,
        event: &AuditEvent,
    ) -> Result<(), StoreError> {
        self.record_refusal_as(peer, code, event, true).await
    }

    async fn record_refusal_as(
        &self,
        peer: &str,
        code: &str,
        event: &AuditEvent,
        soon: bool,
    ) -> Result<(), StoreError> {
        let minute = event.at.div_euclid(60_000);
        // Failed flushes are logged by `write_aggregates`; this refusal is recorded anyway.
        if !soon
            && self
                .upkeep
                .flushed_minute
                .fetch_max(minute, Ordering::Relaxed)
                < minute
        {
            let _ = self.flush_refusals_before(minute).await;
        }
        if self.refusals.is_full() && !soon {
            let _ = self
                .write_aggregates(self.refusals.take_all_and_clear())
                .await;
        }
        let key = Key {
            actor: event.actor.clone(),
            peer: peer.to_string(),
            code: code.to_string(),
            minute,
        };
        match self.refusals.decide(&key, event) {
            Decision::Counted => {
                // The log accounts for it until its aggregate row is written.
                tracing::info!(target: "audit", event = %event.event, actor = %key.actor, peer = %key.peer, code = %key.code, request_id = %event.request_id, at = event.at, "refusal counted in this minute's aggregate");
                Ok(())
            }
            Decision::Append => {
                let result = if soon {
                    self.record_audit_soon(event.clone()).await
                } else {
                    self.record_audit(event).await
                };
                if result.is_err() {
                    // Not stored: the next one of its kind must be appended in full.
                    self.refusals.forget(&key);
                }
                result
            }
        }
    }

    /// Writes the pending counts of every minute (the current one included) as
    /// `refused-aggregate` rows. For shutdown and tests; the upkeep task flushes finished
    /// minutes by itself.
    pub async fn flush_refusals(&self) -> Result<usize, StoreError> {
        self.write_aggregates(self.refusals.take(None)).await
    }

    /// Writes the pending counts of minutes before `minute`.
    pub(super) async fn flush_refusals_before(&self, minute: i64) -> Result<usize, StoreError> {
        self.write_aggregates(self.refusals.take(Some(minute)))
            .await
    }

    async fn write_aggregates(&self, pending: Vec<(Key, Pending)>) -> Result<usize, StoreError> {
        let mut written = 0;
        let mut failed = None;
        for (key, p) in &pending {
            match self.record_audit(&aggregate_event(key, p)).await {
                Ok(()) => written += 1,
                Err(e) => {
                    tracing::error!(target: "audit", error = %e, code = %key.code, count = p.count, "could not record aggregated refusals");
                    failed = Some(e);
                }
            }
        }
        match failed {
            Some(e) => Err(e),
            None => Ok(written),
        }
    }
}

#[cfg(test)]
#[path = "refusals_tests.rs"]
mod tests;
