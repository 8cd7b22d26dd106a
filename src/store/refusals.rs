//! Refusal aggregation: whoever can reach the service can make it refuse, so refusals must not
//! grow the audit trail by one row per request.
//!
//! The first refusal of a (actor, peer, code) in a UTC minute is appended at once, in full. The
//! others of that minute only count, in memory; when the minute is over (or on
//! [`Store::flush_refusals`], at shutdown) one chained `refused-aggregate` row records how many
//! there were, the first and last time, and the last request's detail. So a flood adds
//! O(callers × codes × minutes) rows, not O(requests). Counts not yet flushed are lost if the
//! process dies (at most about a minute of them; the first refusal of each is already stored).
//! The table of keys is bounded ([`MAX_KEYS`]): when it is full, everything pending is flushed
//! and it starts over, so a caller rotating through many addresses costs rows, not memory.

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;

use super::{AuditEvent, Store, StoreError};

/// Most (caller, code, minute) keys remembered at once.
pub const MAX_KEYS: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Key {
    actor: String,
    peer: String,
    code: String,
    minute: i64,
}

/// Refusals counted after the first one of a key.
#[derive(Debug, Clone)]
struct Pending {
    count: u64,
    first_at: i64,
    last: AuditEvent,
    /// The request ids of the first `REQUEST_IDS` counted refusals, so an operator can still
    /// find a client's request in the trail; bounded so a flood cannot grow the row.
    request_ids: Vec<String>,
}

/// How many request ids an aggregate row keeps.
const REQUEST_IDS: usize = 64;

/// The in-memory part, shared by the clones of a store.
#[derive(Debug, Default)]
pub(super) struct Refusals {
    /// Key → refusals since its first row (None: none yet).
    keys: Mutex<HashMap<Key, Option<Pending>>>,
}

enum Decision {
    /// The first of its key: append it now.
    Append,
    /// Counted; nothing to write.
    Counted,
}

impl Refusals {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Option<Pending>>> {
        // A panic while holding the lock leaves only counters behind: keep going.
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn decide(&self, key: &Key, event: &AuditEvent) -> Decision {
        let mut keys = self.lock();
        match keys.get_mut(key) {
            Some(slot) => {
                match slot {
                    Some(p) => {
                        p.count += 1;
                        p.last = event.clone();
                        if p.request_ids.len() < REQUEST_IDS {
                            p.request_ids
                                .push(event.request_id.chars().take(64).collect());
                        }
                    }
                    None => {
                        *slot = Some(Pending {
                            count: 1,
                            first_at: event.at,
                            last: event.clone(),
                            request_ids: vec![event.request_id.chars().take(64).collect()],
                        })
                    }
                }
                Decision::Counted
            }
            None => {
                keys.insert(key.clone(), None);
                Decision::Append
            }
        }
    }

    fn forget(&self, key: &Key) {
        self.lock().remove(key);
    }

    fn is_full(&self) -> bool {
        self.lock().len() >= MAX_KEYS
    }

    /// Takes the pending counts: of minutes before `before_minute` (their keys are dropped),
    /// or of every minute when `None` (keys kept, so the current minute keeps aggregating).
    fn take(&self, before_minute: Option<i64>) -> Vec<(Key, Pending)> {
        let mut keys = self.lock();
        let mut out = Vec::new();
        match before_minute {
            Some(minute) => keys.retain(|k, p| {
                if k.minute >= minute {
                    return true;
                }
                if let Some(p) = p.take() {
                    out.push((k.clone(), p));
                }
                false
            }),
            None => {
                for (k, p) in keys.iter_mut() {
                    if let Some(p) = p.take() {
                        out.push((k.clone(), p));
                    }
                }
            }
        }
        out
    }

    fn clear(&self) {
        self.lock().clear();
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
            let _ = self.flush_refusals().await;
            self.refusals.clear();
        }
        let key = Key {
            actor: event.actor.clone(),
            peer: peer.to_string(),
            code: code.to_string(),
            minute,
        };
        match self.refusals.decide(&key, event) {
            Decision::Counted => Ok(()),
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

    /// The audit trail's background upkeep: every 10 s, writes the refusal counts of finished
    /// minutes; every `checkpoint_every`, anchors the chain's head if it moved. Ends when the
    /// store is closed.
    pub fn spawn_audit_upkeep(&self, checkpoint_every: Duration) -> tokio::task::JoinHandle<()> {
        let store = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_secs(10));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            let mut last_checkpoint = tokio::time::Instant::now();
            loop {
                tick.tick().await;
                if store.pool.is_closed() {
                    return;
                }
                let minute = super::audit::now_ms().div_euclid(60_000);
                store
                    .upkeep
                    .flushed_minute
                    .fetch_max(minute, Ordering::Relaxed);
                if let Err(e) = store.flush_refusals_before(minute).await {
                    tracing::warn!(target: "audit", error = %e, "could not flush refusal counts");
                }
                if last_checkpoint.elapsed() >= checkpoint_every {
                    last_checkpoint = tokio::time::Instant::now();
                    if let Err(e) = store.anchor_audit_head("checkpoint").await {
                        tracing::warn!(target: "audit", error = %e, "could not anchor the audit chain head");
                    }
                }
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(at: i64) -> AuditEvent {
        AuditEvent {
            at,
            event: "refused".into(),
            actor: "peer:192.0.2.1".into(),
            request_id: format!("r{at}"),
            detail: json!({"path": "x"}),
        }
    }

    #[test]
    fn first_of_a_minute_is_appended_the_rest_counted() {
        let r = Refusals::default();
        let key = |minute| Key {
            actor: "peer:192.0.2.1".into(),
            peer: "192.0.2.1".into(),
            code: "untrusted-caller".into(),
            minute,
        };
        assert!(matches!(
            r.decide(&key(1), &event(60_000)),
            Decision::Append
        ));
        for i in 1..=5 {
            assert!(matches!(
                r.decide(&key(1), &event(60_000 + i)),
                Decision::Counted
            ));
        }
        assert!(matches!(
            r.decide(&key(2), &event(120_000)),
            Decision::Append
        ));
        // Minute 1 is over: its count comes out once, and its key is gone.
        let taken = r.take(Some(2));
        assert_eq!(taken.len(), 1);
        assert_eq!(taken[0].1.count, 5);
        assert_eq!(taken[0].1.first_at, 60_001);
        let e = aggregate_event(&taken[0].0, &taken[0].1);
        assert_eq!(e.event, "refused-aggregate");
        assert_eq!(e.detail["count"], 5);
        assert_eq!(e.detail["minute"], 60);
        assert_eq!(e.request_id, "r60005");
        assert!(r.take(Some(2)).is_empty());
        // The current minute keeps its key after a full flush.
        assert!(matches!(
            r.decide(&key(2), &event(120_001)),
            Decision::Counted
        ));
        assert_eq!(r.take(None).len(), 1);
        assert!(r.take(None).is_empty());
        assert!(matches!(
            r.decide(&key(2), &event(120_002)),
            Decision::Counted
        ));
        r.forget(&key(2));
        assert!(matches!(
            r.decide(&key(2), &event(120_003)),
            Decision::Append
        ));
    }
}
