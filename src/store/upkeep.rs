//! The audit trail's upkeep while a node serves: anchors of the chain's head at start, every
//! `anchor_every` (when the head moved) and at stop, and the refusal counts of finished minutes
//! written on a timer and, all of them, at stop.
//!
//! Start and stop are chained events (`service-started`, `service-stopped`), so every run of a
//! node is visible in the trail and its start and stop anchors name a row of their own. Rows
//! appended after the last anchor are what a database-only attacker can delete unnoticed: the
//! anchor interval bounds that window (see docs/security.md).

use std::sync::atomic::Ordering;
use std::time::Duration;

use serde_json::json;
use tokio::sync::watch;

use super::{AuditEvent, Store, StoreError};

/// The longest time between two writes of finished minutes' refusal counts.
const FLUSH_EVERY: Duration = Duration::from_secs(10);

/// How long stopping waits for audit events still queued for the writer.
const DRAIN_WITHIN: Duration = Duration::from_secs(5);

/// The actor of the upkeep's own events.
const ACTOR: &str = "gateway";

/// The running upkeep task; [`AuditUpkeep::stop`] ends it.
#[derive(Debug)]
pub struct AuditUpkeep {
    store: Store,
    stop: watch::Sender<bool>,
    task: tokio::task::JoinHandle<()>,
}

impl Store {
    /// Records `service-started`, anchors it, and starts the upkeep task: refusal counts of
    /// finished minutes every 10 s (or `anchor_every`, when shorter), an anchor of the head
    /// every `anchor_every` when it moved. Anchors are taken only by a keyed store.
    pub async fn start_audit_upkeep(&self, anchor_every: Duration) -> AuditUpkeep {
        let event = AuditEvent::now(
            "service-started",
            ACTOR,
            "",
            json!({ "anchorIntervalSecs": anchor_every.as_secs_f64() }),
        );
        if let Err(e) = self.record_audit(&event).await {
            tracing::warn!(target: "audit", error = %e, "could not record the start of the service");
        }
        self.anchor_logged("startup").await;
        let (stop, mut stopped) = watch::channel(false);
        let store = self.clone();
        let task = tokio::spawn(async move {
            let start = tokio::time::Instant::now();
            let mut anchors = tokio::time::interval_at(start + anchor_every, anchor_every);
            let flush_every = FLUSH_EVERY.min(anchor_every);
            let mut flushes = tokio::time::interval_at(start + flush_every, flush_every);
            for tick in [&mut anchors, &mut flushes] {
                tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            }
            loop {
                tokio::select! {
                    _ = stopped.changed() => return,
                    _ = anchors.tick() => {
                        store.flush_finished_minutes().await;
                        store.anchor_logged("checkpoint").await;
                    }
                    _ = flushes.tick() => store.flush_finished_minutes().await,
                }
                if store.pool.is_closed() {
                    return;
                }
            }
        });
        AuditUpkeep {
            store: self.clone(),
            stop,
            task,
        }
    }

    /// Writes the refusal counts of the minutes before this one (failures are logged).
    async fn flush_finished_minutes(&self) {
        let minute = super::audit::now_ms().div_euclid(60_000);
        self.upkeep
            .flushed_minute
            .fetch_max(minute, Ordering::Relaxed);
        if let Err(e) = self.flush_refusals_before(minute).await {
            tracing::warn!(target: "audit", error = %e, "could not flush refusal counts");
        }
    }

    /// Anchors the head if it moved since this store's last anchor (failures are logged).
    async fn anchor_logged(&self, reason: &str) {
        if let Err(e) = self.anchor_audit_head(reason).await {
            tracing::warn!(target: "audit", error = %e, reason, "could not anchor the audit chain head");
        }
    }
}

impl AuditUpkeep {
    /// Ends the task, writes every pending refusal count (the current minute's too), waits
    /// (briefly) for audit events queued for the writer, records `service-stopped` and
    /// anchors it. For a graceful shutdown, after the listeners stopped.
    pub async fn stop(self) -> Result<(), StoreError> {
        let _ = self.stop.send(true);
        let _ = self.task.await;
        let store = self.store;
        let flushed = store.flush_refusals().await;
        if !store.drain_audit_queue(DRAIN_WITHIN).await {
            tracing::warn!(target: "audit", "audit events still queued for the database writer at shutdown");
        }
        let event = AuditEvent::now(
            "service-stopped",
            ACTOR,
            "",
            json!({ "refusalAggregates": flushed.as_ref().ok() }),
        );
        store.record_audit(&event).await?;
        store.anchor_audit_head("shutdown").await?;
        flushed.map(|_| ())
    }
}
