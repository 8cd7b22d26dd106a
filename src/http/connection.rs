//! Connection hygiene: what each accepted connection may hold and for how long.
//!
//! Owns: the connection registry (a cap on open connections, kept below the open-file limit,
//! eviction of idle and stalled connections when it is reached, the largest peer first), the
//! per-connection clock (header, idle, body and send deadlines), and the socket wrapper that
//! tells "a request is arriving" from "nothing is happening" and "the peer reads what we send"
//! from "our answer is stuck". Must not: know routes or the domain.
//!
//! Why our own and not hyper's timers: hyper's HTTP/1 `header_read_timeout` runs from the end of
//! the previous response (so it doubles as the keep-alive timeout), knows nothing of HTTP/2,
//! and does not start before hyper-util's protocol detection has seen the first bytes — a
//! client that connects and sends nothing is never timed out. Nor does hyper bound how long a
//! response may wait to be sent: an HTTP/2 client that opens no flow-control window
//! (`SETTINGS_INITIAL_WINDOW_SIZE = 0`), or an HTTP/1.1 client that pipelines requests and
//! never reads the answers, would hold its connection (and its slot) forever. One watchdog per
//! connection covers HTTP/1.1 and HTTP/2, plain and TLS, with the limits operators expect.
//!
//! The socket wrapper is `watched`; the registry is `registry`.

mod registry;
mod watched;

use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Bytes;
use http_body::{Body, Frame, SizeHint};
use tokio::sync::Notify;
use tokio::time::{Instant, Sleep};

pub use registry::{Registry, Slot};
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
    /// A response that makes no progress (nothing of it sent) for this long closes the
    /// connection.
    pub send: Duration,
}

/// What one connection is doing, shared by its socket wrapper, its service and its watchdog.
#[derive(Debug)]
pub struct ConnectionState {
    /// The peer's network (see `identity::peer_network`): the registry's per-peer share.
    peer: [u8; 16],
    clock: Mutex<Clock>,
    /// Woken when a request starts or ends, a response starts, or the socket stops taking
    /// bytes (the watchdog recomputes its deadline).
    changed: Notify,
    /// Woken when the registry evicts this connection to make room.
    evicted: Notify,
    /// Set once the registry chose this connection for eviction.
    evicting: AtomicBool,
    /// Whether the last write to the socket could not be completed (mirrors
    /// `Clock::write_blocked_since`, read without the lock on every write).
    write_blocked: AtomicBool,
}

#[derive(Debug)]
struct Clock {
    /// Requests whose response has not been fully sent.
    active: usize,
    /// Requests served on this connection.
    served: u64,
    /// When the connection became ready or its last response was sent.
    idle_since: Instant,
    /// When the first byte arrived after `idle_since` (a request is on its way).
    arriving_since: Option<Instant>,
    /// Responses handed to the protocol whose bodies are not yet sent: when each last made
    /// progress (started, or had a part of its body taken by the protocol).
    responding: HashMap<u64, Responding>,
    next_response: u64,
    /// Since when a write to the socket has been waiting for the peer to read.
    write_blocked_since: Option<Instant>,
    /// When bytes last went out on the socket.
    last_write: Instant,
}

#[derive(Debug, Clone, Copy)]
struct Responding {
    progress: Instant,
    /// HTTP/1.1 sends one response at a time, so bytes leaving the socket are its progress;
    /// HTTP/2 multiplexes, so only its own body frames count.
    multiplexed: bool,
}

impl Clock {
    /// Since when the oldest unsent response (or a blocked socket write) has made no progress.
    fn stalled_since(&self) -> Option<Instant> {
        let responses = self.responding.values().map(|r| {
            if r.multiplexed {
                r.progress
            } else {
                r.progress.max(self.last_write)
            }
        });
        responses.chain(self.write_blocked_since).min()
    }
}

impl ConnectionState {
    fn new(peer: [u8; 16]) -> Self {
        let now = Instant::now();
        ConnectionState {
            peer,
            clock: Mutex::new(Clock {
                active: 0,
                served: 0,
                idle_since: now,
                arriving_since: None,
                responding: HashMap::new(),
                next_response: 0,
                write_blocked_since: None,
                last_write: now,
            }),
            changed: Notify::new(),
            evicted: Notify::new(),
            evicting: AtomicBool::new(false),
            write_blocked: AtomicBool::new(false),
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

    /// Bytes left for the client (`n > 0`).
    fn sent(&self) {
        // One uncontended lock per write; a blocked socket also clears its mark.
        let mut clock = self.clock();
        clock.last_write = Instant::now();
        if self.write_blocked.swap(false, Ordering::Relaxed) {
            clock.write_blocked_since = None;
        }
    }

    /// A write found the socket full: the peer is not reading.
    fn blocked(&self) {
        if !self.write_blocked.swap(true, Ordering::Relaxed) {
            self.clock().write_blocked_since = Some(Instant::now());
            self.changed.notify_one();
        }
    }

    /// A request reached the service; the guard ends it when its response is dropped.
    pub fn begin_request(self: &Arc<Self>, multiplexed: bool) -> RequestGuard {
        {
            let mut clock = self.clock();
            clock.active += 1;
            clock.served += 1;
            clock.arriving_since = None;
        }
        self.changed.notify_one();
        RequestGuard {
            state: self.clone(),
            response: None,
            multiplexed,
        }
    }

    fn end_request(&self, response: Option<u64>) {
        {
            let mut clock = self.clock();
            if let Some(id) = response {
                clock.responding.remove(&id);
            }
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

    /// Requests served on this connection so far.
    pub fn served(&self) -> u64 {
        self.clock().served
    }

    /// When the connection must be closed unless something happens first: a request starts
    /// (idle, header deadlines) or an unsent response makes progress (send deadline). `None`
    /// while requests are being worked on and every response moves (a body has its own
    /// deadline, the work its request timeout).
    pub fn deadline(&self, timeouts: &Timeouts) -> Option<Instant> {
        let clock = self.clock();
        let send = clock.stalled_since().map(|since| since + timeouts.send);
        if clock.active > 0 {
            return send;
        }
        let waiting = match (clock.served > 0, clock.arriving_since) {
            // The first request: its header within `header` of the connection being ready,
            // however slowly its bytes trickle in.
            (false, _) => clock.idle_since + timeouts.header,
            (true, Some(arriving)) => arriving + timeouts.header,
            (true, None) => clock.idle_since + timeouts.idle,
        };
        Some(send.map_or(waiting, |send| send.min(waiting)))
    }

    /// Completes when the deadline may have moved.
    pub async fn changed(&self) {
        self.changed.notified().await
    }

    /// Completes when the registry evicted this connection.
    pub async fn evicted(&self) {
        self.evicted.notified().await
    }

    /// Since when the connection could be closed without breaking anything the peer is
    /// waiting for: no request in progress (idle), or every response it is owed stuck (the
    /// peer does not read). `None`: working, or already being evicted.
    fn evictable_since(&self) -> Option<Instant> {
        if self.is_evicting() {
            return None;
        }
        let clock = self.clock();
        if clock.active == 0 {
            return Some(clock.idle_since);
        }
        // Requests still being worked on (no response yet) are not stuck.
        if clock.responding.len() < clock.active {
            return None;
        }
        clock.stalled_since()
    }

    fn is_evicting(&self) -> bool {
        self.evicting.load(Ordering::Relaxed)
    }

    fn evict(&self) {
        self.evicting.store(true, Ordering::Relaxed);
        self.evicted.notify_one();
    }
}

/// A request in progress; ends it when dropped (with the response body, or with the request
/// future).
#[derive(Debug)]
pub struct RequestGuard {
    state: Arc<ConnectionState>,
    /// Set once the service answered: the response is being sent.
    response: Option<u64>,
    multiplexed: bool,
}

impl RequestGuard {
    /// The service answered: from now on the response must make progress within the send
    /// timeout.
    pub fn responding(&mut self) {
        let id = {
            let mut clock = self.state.clock();
            let id = clock.next_response;
            clock.next_response += 1;
            let responding = Responding {
                progress: Instant::now(),
                multiplexed: self.multiplexed,
            };
            clock.responding.insert(id, responding);
            id
        };
        self.response = Some(id);
        self.state.changed.notify_one();
    }

    /// The protocol took a part of the response body.
    pub fn progress(&self) {
        if let Some(id) = self.response
            && let Some(responding) = self.state.clock().responding.get_mut(&id)
        {
            responding.progress = Instant::now();
        }
    }
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        self.state.end_request(self.response);
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
