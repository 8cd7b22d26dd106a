//! Committing one batch of the group-commit writer: one transaction for its issuances and
//! queued audit events, then an answer to every waiter. A duplicate serial fails only its own
//! issuance (the rest is committed again without it); any other failure fails the batch, and its
//! queued audit events are logged as lost.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use sqlx::pool::PoolConnection;
use sqlx::{Any, Connection};

use super::batch::{self, BatchError, Trips};
use super::{BATCH_SIZE, COMMIT_SECONDS, Counters, IssuanceRecord, Pending};
use crate::store::{AuditEvent, AuditSeal, Store, StoreError, audit, durability, records};

/// Commits `batch` and `audits`, answering every waiter. A duplicate serial fails only its
/// issuance.
pub(super) async fn commit(
    store: &Store,
    held: &mut Option<PoolConnection<Any>>,
    mut batch: Vec<Pending>,
    audits: Vec<AuditEvent>,
    counters: &Counters,
) {
    // Row by row only after the batch's multi-row INSERT reported a duplicate serial without
    // saying whose it is (see `batch`).
    let mut row_by_row = false;
    loop {
        let started = Instant::now();
        let records: Vec<&IssuanceRecord> = batch.iter().map(|p| &p.record).collect();
        // Waiting for a connection is bounded by the acquire timeouts (short once the database
        // looks unreachable), the batch itself by the operation timeout: a stuck database fails
        // it, and its outcome is then unknown.
        let mut connection = match held.take() {
            Some(connection) => connection,
            None => match store.connection().await {
                Ok(connection) => connection,
                Err(e) => {
                    fail(batch, &audits, e);
                    return;
                }
            },
        };
        let synchronous = store.requires_synchronous();
        let written = write(
            &mut connection,
            &store.audit,
            &records,
            &audits,
            synchronous,
            row_by_row,
            if store.is_postgres() {
                Trips::Separate
            } else {
                Trips::Joined
            },
        );
        let outcome = match store.bounded(async { Ok(written.await) }).await {
            Ok(written) => written,
            Err(e) => Err(Failed::Batch(e)),
        };
        match outcome {
            Ok(()) => {
                let n = batch.len() as u64;
                if n > 0 {
                    counters.batches.fetch_add(1, Ordering::Relaxed);
                    counters.written.fetch_add(n, Ordering::Relaxed);
                    counters.largest_batch.fetch_max(n, Ordering::Relaxed);
                    metrics::histogram!(BATCH_SIZE).record(n as f64);
                }
                metrics::histogram!(COMMIT_SECONDS).record(started.elapsed().as_secs_f64());
                for pending in batch {
                    let _ = pending.reply.send(Ok(()));
                }
                if !store.is_postgres() {
                    *held = Some(connection);
                }
                return;
            }
            Err(Failed::Unplaced) => {
                // Astronomically rare: again, one issuance at a time, which names the issuance.
                row_by_row = true;
            }
            Err(Failed::At(index, StoreError::DuplicateSerial(serial))) if index < batch.len() => {
                let colliding = batch.remove(index);
                let _ = colliding
                    .reply
                    .send(Err(StoreError::DuplicateSerial(serial)));
                // The rest again, in a new transaction.
            }
            // No synchronous standby: the issuances are refused, the queued audit events
            // (refusals) are committed alone.
            Err(Failed::NotReplicated(error)) if !batch.is_empty() => {
                answer_all(std::mem::take(&mut batch), error);
            }
            Err(Failed::At(_, error) | Failed::Batch(error) | Failed::NotReplicated(error)) => {
                fail(batch, &audits, error);
                return;
            }
        }
    }
}

/// A failed batch: every waiter gets the error, every queued audit event is logged as lost.
fn fail(batch: Vec<Pending>, audits: &[AuditEvent], error: StoreError) {
    for event in audits {
        tracing::error!(
            target: "audit",
            error = %error,
            event = %event.event,
            actor = %event.actor,
            request_id = %event.request_id,
            detail = %event.detail,
            "could not record a refusal in the audit table"
        );
    }
    answer_all(batch, error);
}

/// Why a batch failed: at one issuance (its index), as a whole, or because its issuances
/// would commit without a synchronous standby.
enum Failed {
    At(usize, StoreError),
    /// A serial already stored, of an issuance the multi-row INSERT does not name.
    Unplaced,
    Batch(StoreError),
    NotReplicated(StoreError),
}

impl From<sqlx::Error> for Failed {
    fn from(e: sqlx::Error) -> Self {
        Failed::Batch(StoreError::Database(e))
    }
}

/// One transaction: the audit rows of every issuance in order (chained) and of the queued
/// events after them, then the tokens and certificates — in a few multi-row statements, or
/// `row_by_row` (each issuance's audit row, token and certificates, then the queued events).
async fn write(
    connection: &mut sqlx::AnyConnection,
    seal: &AuditSeal,
    records: &[&IssuanceRecord],
    audits: &[AuditEvent],
    synchronous: bool,
    row_by_row: bool,
    trips: Trips,
) -> Result<(), Failed> {
    let mut tx = connection.begin().await?;
    if synchronous && !records.is_empty() {
        durability::require_synchronous(&mut tx)
            .await
            .map_err(Failed::NotReplicated)?;
    }
    if !row_by_row {
        let events: Vec<&AuditEvent> = records
            .iter()
            .map(|record| &record.event)
            .chain(audits)
            .collect();
        batch::write_rows(&mut tx, seal, &events, records, trips)
            .await
            .map_err(|e| match e {
                BatchError::At(index, error) => Failed::At(index, error),
                BatchError::DuplicateSerial => Failed::Unplaced,
                BatchError::Batch(error) => Failed::Batch(error),
            })?;
        tx.commit().await?;
        return Ok(());
    }
    for (index, record) in records.iter().enumerate() {
        let at = |e: StoreError| Failed::At(index, e);
        audit::append(&mut tx, seal, &record.event)
            .await
            .map_err(at)?;
        records::insert_issuance(&mut tx, &record.token, &record.certificates)
            .await
            .map_err(at)?;
    }
    for event in audits {
        audit::append(&mut tx, seal, event)
            .await
            .map_err(Failed::Batch)?;
    }
    tx.commit().await?;
    Ok(())
}

/// The same failure for every waiter of a batch. A batch of one gets the error itself.
fn answer_all(mut batch: Vec<Pending>, error: StoreError) {
    if batch.len() == 1
        && let Some(pending) = batch.pop()
    {
        let _ = pending.reply.send(Err(error));
        return;
    }
    let shared = Arc::new(error);
    for pending in batch {
        let _ = pending.reply.send(Err(match shared.as_ref() {
            StoreError::TimedOut(limit) => StoreError::TimedOut(*limit),
            _ => StoreError::Batch(shared.clone()),
        }));
    }
}
