//! The issuance workers: one thread per CPU slot, fed by a bounded queue of jobs.
//!
//! Why not a semaphore in front of tokio's `spawn_blocking` (as before): under load every token
//! then crossed threads four times — the async worker woke a blocking thread for the job, the
//! blocking thread woke the async worker for the next permit, which woke a blocking thread
//! again (context switches were a tenth of the server's CPU on one core). A worker here takes
//! the next job itself as soon as it finishes one; under load it never sleeps (its voluntary
//! switches in a 10 s run: 14 400 → 86). The bounds stay what they were: `slots` jobs run at
//! once, `max_waiting` wait, one more is refused at once (503 with `Retry-After`). A job whose
//! request went away before a worker reached it (client gone, request timeout) keeps its place
//! until a worker skips it — at once, without running it; a job that started finishes inside
//! its slot, so abandoned requests never leave CPU work outside the bound.

use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use super::SHED;
use crate::issuance::{IssuanceError, Queue, Unavailable};

type Job = Box<dyn FnOnce() + Send>;

/// The counts the gauges read, and the admission bound.
#[derive(Default)]
struct Counts {
    /// Jobs admitted and not yet finished (or skipped): at most `size + max_waiting`.
    admitted: AtomicUsize,
    /// Jobs queued and not yet taken by a worker.
    waiting: AtomicUsize,
    /// Jobs running.
    busy: AtomicUsize,
    /// Worker threads alive.
    live: AtomicUsize,
}

/// CPU slots (worker threads) and the bounded queue in front of them.
pub(crate) struct CpuGate {
    jobs: SyncSender<Job>,
    queue: Arc<Mutex<Receiver<Job>>>,
    counts: Arc<Counts>,
    size: usize,
    max_waiting: usize,
    retry_after: Duration,
}

impl CpuGate {
    /// `slots` worker threads, `max_waiting` jobs queued behind them.
    pub(crate) fn new(slots: usize, max_waiting: usize, retry_after: Duration) -> CpuGate {
        let size = slots.max(1);
        // Admission is counted (`Counts::admitted`), not left to the channel's capacity: a
        // worker between two jobs is not yet waiting in `recv`, and a rendezvous channel would
        // refuse a job that a free worker is about to take.
        let (jobs, queue) = sync_channel(size + max_waiting);
        let gate = CpuGate {
            jobs,
            queue: Arc::new(Mutex::new(queue)),
            counts: Arc::new(Counts::default()),
            size,
            max_waiting,
            retry_after,
        };
        gate.start_workers();
        gate
    }

    /// Starts the workers that are missing (all of them at first; one that could not be
    /// started is tried again by the next job).
    fn start_workers(&self) {
        while self.counts.live.load(Ordering::SeqCst) < self.size {
            let queue = self.queue.clone();
            let counts = self.counts.clone();
            counts.live.fetch_add(1, Ordering::SeqCst);
            let started = std::thread::Builder::new()
                .name("ast-issuance".into())
                .spawn(move || work(&queue, &counts));
            if let Err(e) = started {
                self.counts.live.fetch_sub(1, Ordering::SeqCst);
                tracing::error!(error = %e, "could not start an issuance worker thread");
                return;
            }
        }
    }

    /// Runs `work` on a worker: at once when one is free, else after waiting in the bounded
    /// queue; refused at once when the queue is full. If the caller goes away before a worker
    /// reaches the job, it is not run.
    pub(crate) async fn run<R, F>(&self, work: F) -> Result<R, IssuanceError>
    where
        R: Send + 'static,
        F: FnOnce() -> R + Send + 'static,
    {
        self.start_workers();
        if self.counts.live.load(Ordering::SeqCst) == 0 {
            return Err(IssuanceError::invariant(
                "no issuance worker thread could be started",
            ));
        }
        let (reply, answer) = oneshot::channel();
        let job: Job = Box::new(move || {
            if !reply.is_closed() {
                let _ = reply.send(work());
            }
        });
        let overloaded = || {
            metrics::counter!(SHED, "queue" => Queue::Cpu.as_str()).increment(1);
            IssuanceError::from(Unavailable::Overloaded {
                queue: Queue::Cpu,
                retry_after: self.retry_after,
            })
        };
        // `size` jobs may run and `max_waiting` wait; one more is refused at once.
        if self.counts.admitted.fetch_add(1, Ordering::SeqCst) >= self.size + self.max_waiting {
            self.counts.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(overloaded());
        }
        // Counted before a worker can take it, so the count never goes below zero.
        self.counts.waiting.fetch_add(1, Ordering::SeqCst);
        if let Err(refused) = self.jobs.try_send(job) {
            self.counts.waiting.fetch_sub(1, Ordering::SeqCst);
            self.counts.admitted.fetch_sub(1, Ordering::SeqCst);
            return Err(match refused {
                TrySendError::Full(_) => overloaded(),
                TrySendError::Disconnected(_) => Unavailable::ShuttingDown.into(),
            });
        }
        answer
            .await
            .map_err(|_| IssuanceError::invariant("an issuance job ended without an answer"))
    }

    /// Jobs waiting for a worker now (including those of requests already gone, until a worker
    /// skips them).
    pub(crate) fn waiting(&self) -> usize {
        self.counts.waiting.load(Ordering::SeqCst)
    }

    /// Jobs running now (including work whose request is gone).
    pub(crate) fn busy(&self) -> usize {
        self.counts.busy.load(Ordering::SeqCst)
    }
}

/// A worker: takes jobs until the gate is dropped. A job that panics answers nothing (its
/// caller gets an error) and the worker goes on.
fn work(queue: &Mutex<Receiver<Job>>, counts: &Counts) {
    loop {
        let next = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = next else {
            counts.live.fetch_sub(1, Ordering::SeqCst);
            return;
        };
        counts.waiting.fetch_sub(1, Ordering::SeqCst);
        counts.busy.fetch_add(1, Ordering::SeqCst);
        if std::panic::catch_unwind(AssertUnwindSafe(job)).is_err() {
            tracing::error!("an issuance job panicked; its request is answered with an error");
        }
        counts.busy.fetch_sub(1, Ordering::SeqCst);
        counts.admitted.fetch_sub(1, Ordering::SeqCst);
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicBool;

    use super::*;
    use crate::issuance::Code;

    #[tokio::test]
    async fn a_full_queue_is_refused_at_once_and_an_abandoned_job_is_not_run() {
        let gate = Arc::new(CpuGate::new(1, 1, Duration::from_secs(2)));
        // The one worker is held busy until `release` is sent.
        let (release, hold) = std::sync::mpsc::channel::<()>();
        let holder = {
            let gate = gate.clone();
            tokio::spawn(async move { gate.run(move || hold.recv().is_ok()).await })
        };
        while gate.busy() < 1 {
            tokio::task::yield_now().await;
        }
        // One job fits in the queue ...
        let ran = Arc::new(AtomicBool::new(false));
        let waiter = {
            let (gate, ran) = (gate.clone(), ran.clone());
            tokio::spawn(async move { gate.run(move || ran.store(true, Ordering::SeqCst)).await })
        };
        while gate.waiting() < 1 {
            tokio::task::yield_now().await;
        }
        // ... the next is refused at once, with the configured Retry-After.
        let refused = gate.run(|| ()).await.unwrap_err();
        assert_eq!(refused.code(), Code::Unavailable);
        assert_eq!(refused.retry_after(), Some(Duration::from_secs(2)));
        assert_eq!(gate.waiting(), 1);
        // The waiting request goes away: its job is skipped when the worker reaches it.
        waiter.abort();
        let _ = waiter.await;
        release.send(()).unwrap();
        assert!(holder.await.unwrap().unwrap());
        // A later job runs after the skipped one, on the same worker.
        assert_eq!(gate.run(|| 7).await.unwrap(), 7);
        assert!(!ran.load(Ordering::SeqCst), "an abandoned job must not run");
        assert_eq!(gate.waiting(), 0);
        assert_eq!(gate.busy(), 0);
    }

    #[tokio::test]
    async fn a_panicking_job_fails_its_request_and_the_worker_goes_on() {
        let gate = CpuGate::new(1, 4, Duration::from_secs(1));
        #[allow(clippy::panic)]
        let failed = gate.run(|| -> u8 { panic!("boom") }).await.unwrap_err();
        assert_eq!(failed.code(), Code::Internal);
        assert_eq!(gate.run(|| 1).await.unwrap(), 1);
    }
}
