//! Connection hygiene: what each accepted connection may hold and for how long.
//!
//! Owns: the connection registry (a cap on open connections, kept below the open-file limit,
//! and eviction of idle connections when it is reached), the per-connection clock (header,
//! idle and body deadlines), and the byte counter on the socket that tells "a request is
//! arriving" from "nothing is happening". Must not: know routes or the domain.
//!
//! Why our own and not hyper's timers: hyper's HTTP/1 `header_read_timeout` runs from the end of
//! the previous response (so it doubles as the keep-alive timeout), knows nothing of HTTP/2,
//! and does not start before hyper-util's protocol detection has seen the first bytes — a
//! client that connects and sends nothing is never timed out. One watchdog per connection
//! covers HTTP/1.1 and HTTP/2, plain and TLS, with the three limits operators expect.
//!
//! The byte counter on the socket is `watched`.

mod watched;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

pub use watched::Watched;

/// The timing limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Timeouts {
    /// The header section of a request must be complete within this.
    pub header: Duration,
    /// The body of a request must be complete within this after its header.
    pub body: Duration,
    /// A kept-alive connection with no request arriving is closed after this.
    pub idle: Duration,
}

/// What one connection is doing, shared by its socket wrapper, its service and its watchdog.
#[derive(Debug)]
pub struct ConnectionState {
    clock: Mutex<Clock>,
    /// Woken when a request starts or ends (the watchdog recomputes its deadline).
    changed: Notify,
    /// Woken when the registry evicts this connection to make room.
    evicted: Notify,
    /// Set once the registry chose this connection for eviction.
    evicting: AtomicBool,
}

#[derive(Debug)]
struct Clock {
    /// Requests whose response has not been fully sent.
    active: usize,
    /// Whether a request has been served on this connection.
    served: bool,
    /// When the connection became ready or its last response was sent.
    idle_since: Instant,
    /// When the first byte arrived after `idle_since` (a request is on its way).
    arriving_since: Option<Instant>,
}

impl ConnectionState {
    fn new() -> Self {
        ConnectionState {
            clock: Mutex::new(Clock {
                active: 0,
                served: false,
                idle_since: Instant::now(),
                arriving_since: None,
            }),
            changed: Notify::new(),
            evicted: Notify::new(),
            evicting: AtomicBool::new(false),
        }
    }

    fn clock(&self) -> MutexGuard<'_, Clock> {
        self.clock.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The connection is ready for its first request (after the TLS handshake).
    pub fn ready(&self) {
        let mut clock = self.clock();
        clock.idle_since = Instant::now();
        clock.arriving_since = None;
    }

    /// Bytes arrived from the client.
    fn received(&self) {
        let mut clock = self.clock();
        if clock.active == 0 && clock.arriving_since.is_none() {
            clock.arriving_since = Some(Instant::now());
        }
    }

    /// A request reached the service; the guard ends it when its response is dropped.
    pub fn begin_request(self: &Arc<Self>) -> RequestGuard {
        {
            let mut clock = self.clock();
            clock.active += 1;
            clock.served = true;
            clock.arriving_since = None;
        }
        self.changed.notify_one();
        RequestGuard(self.clone())
    }

    fn end_request(&self) {
        {
            let mut clock = self.clock();
            clock.active = clock.active.saturating_sub(1);
            if clock.active == 0 {
                clock.idle_since = Instant::now();
                clock.arriving_since = None;
            }
        }
        self.changed.notify_one();
    }

    /// No request in progress (a partial header section does not count as one).
    pub fn is_idle(&self) -> bool {
        self.clock().active == 0
    }

    /// When the connection must be closed unless a request starts first; `None` while a
    /// request is in progress (its body has its own deadline).
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        let clock = self.clock();
        if clock.active > 0 {
            return None;
        }
        Some(match (clock.served, clock.arriving_since) {
            // The first request: its header within `header` of the connection being ready,
            // however slowly its bytes trickle in.
            (false, _) => clock.idle_since + timeouts.header,
            (true, Some(arriving)) => arriving + timeouts.header,
            (true, None) => clock.idle_since + timeouts.idle,
        })
    }

    /// Completes when a request starts or ends.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Completes when the registry evicted this connection.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }

    /// Since when the connection has had no request in progress (`None`: busy, or already
    /// being evicted).
    fn idle_since(&self) -> Option<Instant> {
        if self.is_evicting() {
            return None;
        }
        let clock = self.clock();
        (clock.active == 0).then_some(clock.idle_since)
    }

    fn is_evicting(&self) -> bool {
        self.evicting.load(Ordering::Relaxed)
    }

    fn evict(&self) {
        self.evicting.store(true, Ordering::Relaxed);
        self.evicted.notify_one();
    }
}

/// Ends a request when dropped (with the response body, or with the request future).
#[derive(Debug)]
pub struct RequestGuard(Arc<ConnectionState>);

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.0.end_request();
    }
}

/// The open connections of a server (all its listeners), at most `max` of them (plus the one
/// just accepted while an idle one is being closed for it).
#[derive(Debug)]
pub struct Registry {
    max: usize,
    next_id: AtomicU64,
    open: Mutex<HashMap<u64, Arc<ConnectionState>>>,
    /// Woken when a connection's slot is freed (its socket closed).
    freed: Notify,
    /// Seconds (since `started`) of the last "connection limit reached" warning.
    last_warning: AtomicU64,
    started: Instant,
}

/// Why a new connection was not admitted.
#[derive(Debug, PartialEq, Eq)]
pub struct Full;

impl Registry {
    pub fn new(max: usize) -> Arc<Self> {
        Arc::new(Registry {
            max: max.max(1),
            next_id: AtomicU64::new(0),
            open: Mutex::new(HashMap::new()),
            freed: Notify::new(),
            last_warning: AtomicU64::new(u64::MAX),
            started: Instant::now(),
        })
    }

    fn open(&self) -> MutexGuard<'_, HashMap<u64, Arc<ConnectionState>>> {
        self.open.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Connections held now.
    #[cfg(test)]
    fn len(&self) -> usize {
        self.open().len()
    }

    /// Admits a connection just accepted. At the cap, the connection idle the longest (no
    /// request in progress: a kept-alive, silent or half-sent one) is closed to make room —
    /// the way nginx reuses keep-alive connections — so idle sockets cannot lock out real
    /// requests. This waits until that socket is closed, so open descriptors never exceed the
    /// cap by more than the one just accepted. When every connection has a request in progress
    /// the new one is refused.
    pub async fn admit(self: &Arc<Self>) -> Result<Slot, Full> {
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            {
                let mut open = self.open();
                if open.len() < self.max {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let state = Arc::new(ConnectionState::new());
                    open.insert(id, state.clone());
                    return Ok(Slot {
                        id,
                        state,
                        registry: self.clone(),
                    });
                }
                if !open.values().any(|state| state.is_evicting()) {
                    let oldest = open
                        .values()
                        .filter_map(|state| state.idle_since().map(|since| (since, state)))
                        .min_by_key(|(since, _)| *since)
                        .map(|(_, state)| state.clone());
                    let Some(oldest) = oldest else {
                        drop(open);
                        self.warn_full(
                            "every connection has a request in progress; refusing new ones",
                        );
                        return Err(Full);
                    };
                    oldest.evict();
                }
                // Registered before the lock is released: a slot freed from now on wakes us.
                freed.as_mut().enable();
            }
            self.warn_full("closing the longest-idle connections to admit new ones");
            if tokio::time::timeout(Duration::from_secs(1), freed)
                .await
                .is_err()
            {
                return Err(Full);
            }
        }
    }

    /// At most one warning a minute.
    fn warn_full(&self, what: &str) {
        let now = self.started.elapsed().as_secs();
        let last = self.last_warning.load(Ordering::Relaxed);
        if last != u64::MAX && now < last + 60 {
            return;
        }
        if self
            .last_warning
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            tracing::warn!(
                max_connections = self.max,
                "connection limit reached: {what} (see [limits] max_connections)"
            );
        }
    }
}

/// A connection's place in the registry; freed when dropped.
#[derive(Debug)]
pub struct Slot {
    id: u64,
    pub state: Arc<ConnectionState>,
    registry: Arc<Registry>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.registry.open().remove(&self.id);
        self.registry.freed.notify_waiters();
    }
}

/// The request body did not arrive within `[limits] body_timeout_secs`.
#[derive(Debug, thiserror::Error)]
#[error("the request body did not arrive in time")]
pub struct BodyTimedOut;

/// Whether `error` (a body or extractor error) is, or was caused by, [`BodyTimedOut`].
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(e) = next {
        if e.is::<BodyTimedOut>() {
            return true;
        }
        next = e.source();
    }
    false
}

/// A request body that fails with [`BodyTimedOut`] once its deadline has passed: one deadline
/// for the whole body, so a client cannot hold a request open by trickling a byte at a time.
pub struct DeadlineBody<B> {
    inner: B,
    deadline: Pin<Box<Sleep>>,
}

impl<B> DeadlineBody<B> {
    pub fn new(inner: B, within: Duration) -> Self {
        DeadlineBody {
            inner,
            deadline: Box::pin(tokio::time::sleep(within)),
        }
    }
}

impl<B> Body for DeadlineBody<B>
where
    B: Body<Data = Bytes> + Unpin,
    B::Error: Into<axum::BoxError>,
{
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if let Poll::Ready(frame) = Pin::new(&mut self.inner).poll_frame(cx) {
            return Poll::Ready(frame.map(|f| f.map_err(Into::into)));
        }
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready(Some(Err(Box::new(BodyTimedOut))));
        }
        Poll::Pending
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

#[cfg(test)]
#[path = "connection_tests.rs"]
mod tests;
