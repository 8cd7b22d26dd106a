//! Group commit: one writer task per store (per node) takes pending issuances from a bounded
//! queue and commits them in batches — certificates, token rows and audit rows, the audit chain
//! appended in queue order by [`audit::append`] — in one transaction with one fsync, then answers
//! every waiter.
//!
//! Why: with one transaction per token, the commit (fsync on SQLite with `synchronous=FULL`, a
//! round trip and the chain head's row lock on PostgreSQL) serialises every issuance of a node
//! and was 98 % of a P-256 token's latency. Durability does not change: a waiter is answered only
//! after its batch committed, so no token leaves before its rows are stored, and a crash loses
//! only tokens that were never delivered.
//!
//! Adaptive: the writer takes everything that queued up while the previous commit ran (at most
//! `write_batch`), and while tokens that hold a place in its queue are still being made it waits
//! for them up to `write_delay` (`[limits] write_delay_ms`, 5 ms), so that one commit and one
//! fsync serve several: on one core a commit costs about as much CPU as a P-256 token, and
//! without the wait batches stayed at 1–2 issuances. A lone request (nothing else being made)
//! never waits. A waiter waits at most for the commit in progress, the delay and its own
//! commit. The queue is bounded (`write_queue`): a slot is reserved before the token is made,
//! and a full queue is refused at once ([`StoreError::QueueFull`]).
//!
//! Audit events of load refusals (503 overload, 429) are queued for the writer too, in a second
//! bounded queue: they are committed with the next batch and their requests are answered at once,
//! so shedding load never waits for the database (when that queue is full, the event is written
//! directly and the refusal waits for it: back-pressure instead of an unbounded backlog).
//!
//! A duplicate serial fails only its own issuance: the batch is rolled back, the colliding
//! issuance is answered with [`StoreError::DuplicateSerial`] (its caller makes the token again
//! with fresh serials) and the rest is committed again without it. A waiter that went away
//! (the request was abandoned) before its batch started is not written at all.
//!
//! This file holds the queue, its slots and the writer task's loop; committing a batch is in
//! `commit`.

mod batch;
mod commit;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};

use super::{CertificateRecord, Store, StoreError, TokenRecord};
use crate::store::AuditEvent;
use commit::commit;

/// Histogram: issuances per committed batch.
pub const BATCH_SIZE: &str = "ast_store_batch_size";
/// Histogram: seconds per batch commit (connection, statements, fsync).
pub const COMMIT_SECONDS: &str = "ast_store_commit_seconds";

/// How long the writer keeps its SQLite connection without work.
const KEEP_CONNECTION: Duration = Duration::from_millis(50);

/// Settings of the writer (`[limits] write_queue`, `write_batch`, `write_delay_ms`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterOptions {
    /// Issuances that may wait (reserved or queued) for the writer.
    pub queue: usize,
    /// The most issuances in one transaction.
    pub batch: usize,
    /// How long a batch waits for issuances whose tokens are still being made.
    pub delay: Duration,
    /// The `Retry-After` of a refusal because the queue is full.
    pub retry_after: Duration,
}

impl Default for WriterOptions {
    fn default() -> Self {
        WriterOptions {
            queue: 1024,
            batch: 64,
            delay: Duration::from_millis(5),
            retry_after: Duration::from_secs(1),
        }
    }
}

/// One issuance to record: the token row, its certificates and its audit event.
#[derive(Debug, Clone)]
pub struct IssuanceRecord {
    pub token: TokenRecord,
    pub certificates: Vec<CertificateRecord>,
    pub event: AuditEvent,
}

struct Pending {
    record: IssuanceRecord,
    reply: oneshot::Sender<Result<(), StoreError>>,
}

/// Counters of the writer, for metrics and tests.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Batches committed.
    pub batches: u64,
    /// Issuances committed.
    pub written: u64,
    /// The largest batch committed so far.
    pub largest_batch: u64,
    /// Slots reserved or queued now (not counting the batch being written).
    pub queued: u64,
    /// Issuances in the batch being written now.
    pub in_flight: u64,
    /// The queue's bound.
    pub capacity: u64,
    /// Refusals because the queue was full.
    pub refused: u64,
}

#[derive(Default)]
struct Counters {
    batches: AtomicU64,
    written: AtomicU64,
    largest_batch: AtomicU64,
    refused: AtomicU64,
    in_flight: AtomicU64,
    /// Audit events queued and not yet committed (or logged as lost).
    audits_pending: AtomicU64,
}

/// The sending side, shared by the clones of a store; the task ends when the last is dropped.
pub(super) struct Writer {
    queue: mpsc::Sender<Pending>,
    events: mpsc::Sender<AuditEvent>,
    options: WriterOptions,
    counters: Arc<Counters>,
    /// How long a waiter waits for its answer before it gives up (outcome unknown).
    answer_within: Duration,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

/// A reserved place in the writer's queue: taken before a token is made, so a full queue
/// refuses the request before any key is generated. Dropping it frees the place.
pub struct WriteSlot {
    permit: mpsc::OwnedPermit<Pending>,
    answer_within: Duration,
}

impl std::fmt::Debug for WriteSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WriteSlot")
    }
}

impl Writer {
    /// Starts the writer task for `store` (a clone without a writer of its own).
    pub(super) fn start(store: Store, options: WriterOptions) -> Writer {
        let options = WriterOptions {
            queue: options.queue.max(1),
            batch: options.batch.max(1),
            ..options
        };
        let (queue, receiver) = mpsc::channel(options.queue);
        let (events, event_receiver) = mpsc::channel(options.queue);
        let counters = Arc::new(Counters::default());
        let answer_within = store.health.acquire_timeout + 2 * store.health.operation_timeout;
        tokio::spawn(run(
            store,
            receiver,
            event_receiver,
            options.batch,
            options.delay,
            counters.clone(),
        ));
        Writer {
            queue,
            events,
            options,
            counters,
            answer_within,
        }
    }

    /// The options it was started with.
    pub(super) fn options(&self) -> WriterOptions {
        self.options
    }

    /// A place in the queue, or [`StoreError::QueueFull`] at once.
    pub(super) fn reserve(&self) -> Result<WriteSlot, StoreError> {
        match self.queue.clone().try_reserve_owned() {
            Ok(permit) => Ok(WriteSlot {
                permit,
                answer_within: self.answer_within,
            }),
            Err(mpsc::error::TrySendError::Full(_)) => {
                self.counters.refused.fetch_add(1, Ordering::Relaxed);
                Err(StoreError::QueueFull {
                    retry_after: self.options.retry_after,
                })
            }
            Err(mpsc::error::TrySendError::Closed(_)) => Err(StoreError::WriterStopped),
        }
    }

    /// Queues an audit event for the next batch; gives it back when the queue is full.
    pub(super) fn queue_audit(&self, event: AuditEvent) -> Result<(), AuditEvent> {
        // Counted before it can be taken, so the count never goes below zero.
        self.counters.audits_pending.fetch_add(1, Ordering::Relaxed);
        self.events.try_send(event).map_err(|e| {
            self.counters.audits_pending.fetch_sub(1, Ordering::Relaxed);
            match e {
                mpsc::error::TrySendError::Full(event)
                | mpsc::error::TrySendError::Closed(event) => event,
            }
        })
    }

    pub(super) fn stats(&self) -> WriterStats {
        let capacity = self.options.queue as u64;
        WriterStats {
            batches: self.counters.batches.load(Ordering::Relaxed),
            written: self.counters.written.load(Ordering::Relaxed),
            largest_batch: self.counters.largest_batch.load(Ordering::Relaxed),
            queued: capacity.saturating_sub(self.queue.capacity() as u64),
            in_flight: self.counters.in_flight.load(Ordering::Relaxed),
            capacity,
            refused: self.counters.refused.load(Ordering::Relaxed),
        }
    }
}

impl WriteSlot {
    /// Queues the issuance and waits until its batch is committed. `Ok` means the rows are
    /// durably stored; only then may the token be delivered.
    pub async fn record(self, record: IssuanceRecord) -> Result<(), StoreError> {
        let (reply, answer) = oneshot::channel();
        self.permit.send(Pending { record, reply });
        match tokio::time::timeout(self.answer_within, answer).await {
            Ok(Ok(result)) => result,
            // The writer task is gone (the runtime is shutting down): nothing was confirmed.
            Ok(Err(_)) => Err(StoreError::WriterStopped),
            // Dropping `answer` tells the writer not to start this one any more; if its batch
            // is already running, the outcome is unknown and the token is not delivered.
            Err(_) => Err(StoreError::TimedOut(self.answer_within)),
        }
    }
}

async fn run(
    store: Store,
    mut issuances: mpsc::Receiver<Pending>,
    mut events: mpsc::Receiver<AuditEvent>,
    largest: usize,
    delay: Duration,
    counters: Arc<Counters>,
) {
    let mut batch = Vec::with_capacity(largest);
    let mut audits = Vec::new();
    let (mut issuances_open, mut events_open) = (true, true);
    // SQLite: the connection of the last batch, kept while batches follow each other, so its
    // page cache stays warm (the pool hands out its idle connections in turn, each with a
    // cache the others' writes made stale) and no acquire sits between batches; given back
    // after `KEEP_CONNECTION` without work (closing the pool waits for it). PostgreSQL checks
    // each connection it hands out (writability, failover), so there every batch acquires one.
    let mut held = None;
    loop {
        // Waits for the first of either, then takes whatever else is already queued.
        tokio::select! {
            biased;
            n = issuances.recv_many(&mut batch, largest), if issuances_open => {
                issuances_open = n > 0;
            }
            n = events.recv_many(&mut audits, largest), if events_open => {
                events_open = n > 0;
            }
            () = tokio::time::sleep(KEEP_CONNECTION), if held.is_some() => {
                held = None;
                continue;
            }
            else => break,
        }
        while batch.len() < largest
            && let Ok(pending) = issuances.try_recv()
        {
            batch.push(pending);
        }
        // Commit delay: while tokens that hold a write slot are still being made, wait a
        // little for them so that one commit (one fsync) serves several.
        if !batch.is_empty() && !delay.is_zero() {
            let deadline = tokio::time::Instant::now() + delay;
            while batch.len() < largest && issuances.max_capacity() > issuances.capacity() {
                let room = largest - batch.len();
                match tokio::time::timeout_at(deadline, issuances.recv_many(&mut batch, room)).await
                {
                    Ok(0) => {
                        issuances_open = false;
                        break;
                    }
                    Ok(_) => {}
                    Err(_) => break,
                }
            }
        }
        while audits.len() < largest
            && let Ok(event) = events.try_recv()
        {
            audits.push(event);
        }
        // Abandoned requests: nobody would receive the token, so it is not recorded.
        batch.retain(|p| !p.reply.is_closed());
        if batch.is_empty() && audits.is_empty() {
            continue;
        }
        counters
            .in_flight
            .store(batch.len() as u64, Ordering::Relaxed);
        let queued_audits = audits.len() as u64;
        commit(
            &store,
            &mut held,
            std::mem::replace(&mut batch, Vec::with_capacity(largest)),
            std::mem::take(&mut audits),
            &counters,
        )
        .await;
        counters.in_flight.store(0, Ordering::Relaxed);
        counters
            .audits_pending
            .fetch_sub(queued_audits, Ordering::Relaxed);
    }
}

impl Store {
    /// Reserves a place in the writer's queue for one issuance; [`StoreError::QueueFull`] at
    /// once when every place is taken. Take it before making the token.
    pub fn reserve_write(&self) -> Result<WriteSlot, StoreError> {
        match &self.writer {
            Some(writer) => writer.reserve(),
            None => Err(StoreError::WriterStopped),
        }
    }

    /// Appends an audit event with the writer's next batch and returns at once (the event is
    /// committed within one batch; a failure is logged). When that queue is full, or there is
    /// no writer, the event is written here, waiting for the commit. For refusals that must
    /// not wait for the database (load shedding).
    pub async fn record_audit_soon(&self, event: AuditEvent) -> Result<(), StoreError> {
        let event = match &self.writer {
            Some(writer) => match writer.queue_audit(event) {
                Ok(()) => return Ok(()),
                Err(event) => event,
            },
            None => event,
        };
        self.record_audit(&event).await
    }

    /// Waits until every audit event queued by [`Store::record_audit_soon`] is committed (or
    /// logged as lost), at most `within`; true when none is left. For shutdown.
    pub async fn drain_audit_queue(&self, within: Duration) -> bool {
        let Some(writer) = &self.writer else {
            return true;
        };
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if writer.counters.audits_pending.load(Ordering::Relaxed) == 0 {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// The writer's counters (batches, issuances, largest batch, queue occupancy).
    pub fn writer_stats(&self) -> WriterStats {
        self.writer.as_ref().map(|w| w.stats()).unwrap_or_default()
    }
}

#[cfg(test)]
mod tests;
