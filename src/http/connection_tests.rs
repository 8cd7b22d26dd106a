//! Tests of `connection`.

use super::*;
use http_body_util::BodyExt;

const T: Timeouts = Timeouts {
    header: Duration::from_secs(10),
    body: Duration::from_secs(20),
    idle: Duration::from_secs(15),
};

#[test]
fn deadlines_follow_the_request_cycle() {
    let state = Arc::new(ConnectionState::new());
    let ready = state.clock().idle_since;
    // First request: its header within 10 s of being ready, even when bytes trickle in.
    assert_eq!(state.deadline(&T), Some(ready + T.header));
    state.received();
    assert_eq!(state.deadline(&T), Some(ready + T.header));
    // In progress: no connection deadline (the body has its own).
    let guard = state.begin_request();
    assert!(!state.is_idle());
    assert_eq!(state.deadline(&T), None);
    state.received(); // body bytes do not start a header clock
    drop(guard);
    assert!(state.is_idle());
    // Kept alive: the idle timeout; once the next request's first byte is in, its header
    // timeout.
    let ended = state.clock().idle_since;
    assert_eq!(state.deadline(&T), Some(ended + T.idle));
    state.received();
    let arriving = state.clock().arriving_since.unwrap();
    assert_eq!(state.deadline(&T), Some(arriving + T.header));
}

#[tokio::test]
async fn registry_evicts_the_longest_idle_and_refuses_when_all_are_busy() {
    let registry = Registry::new(2);
    let first = registry.admit().await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = registry.admit().await.unwrap();
    assert_eq!(registry.len(), 2);
    // Full: the first (idle the longest) is told to close; the newcomer is admitted once
    // its slot is free (the connection task drops it on eviction).
    let closer = tokio::spawn(async move {
        first.state.evicted().await;
        drop(first);
    });
    let third = registry.admit().await.unwrap();
    closer.await.unwrap();
    assert_eq!(registry.len(), 2);
    // Busy connections are never evicted.
    let _a = second.state.begin_request();
    let _b = third.state.begin_request();
    assert_eq!(registry.admit().await.unwrap_err(), Full);
    drop(second);
    assert_eq!(registry.len(), 1);
}

/// A body that sends one chunk and then nothing, ever.
struct Stalled(bool);

impl Body for Stalled {
    type Data = Bytes;
    type Error = std::convert::Infallible;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        if self.0 {
            return Poll::Pending;
        }
        self.0 = true;
        Poll::Ready(Some(Ok(Frame::data(Bytes::from_static(b"password=")))))
    }
}

#[tokio::test]
async fn a_body_that_does_not_arrive_in_time_fails_with_body_timed_out() {
    let body = DeadlineBody::new(Stalled(false), Duration::from_millis(50));
    let result = axum::body::to_bytes(axum::body::Body::new(body), 1024).await;
    let error = result.unwrap_err();
    assert!(is_body_timeout(&error), "{error}");
    // A complete body passes.
    let body = DeadlineBody::new(
        http_body_util::Full::new(Bytes::from_static(b"x")),
        Duration::from_secs(5),
    );
    assert_eq!(body.collect().await.unwrap().to_bytes(), "x");
}
