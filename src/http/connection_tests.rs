//! Tests of `connection`.

use super::registry::Full;
use super::*;
use http_body_util::BodyExt;
use std::net::IpAddr;

const T: Timeouts = Timeouts {
    header: Duration::from_secs(10),
    body: Duration::from_secs(20),
    idle: Duration::from_secs(15),
    send: Duration::from_secs(20),
};

const LOCAL: [u8; 16] = [0; 16];

fn local() -> IpAddr {
    IpAddr::from([127, 0, 0, 1])
}

#[test]
fn deadlines_follow_the_request_cycle() {
    let state = Arc::new(ConnectionState::new(LOCAL));
    let ready = state.clock().idle_since;
    // First request: its header within 10 s of being ready, even when bytes trickle in.
    assert_eq!(state.deadline(&T), Some(ready + T.header));
    state.received();
    assert_eq!(state.deadline(&T), Some(ready + T.header));
    // In progress: no connection deadline (the body has its own).
    let guard = state.begin_request(false);
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
    let first = registry.admit(local()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let second = registry.admit(local()).await.unwrap();
    assert_eq!(registry.len(), 2);
    // Full: the first (idle the longest) is told to close; the newcomer is admitted once
    // its slot is free (the connection task drops it on eviction).
    let closer = tokio::spawn(async move {
        first.state.evicted().await;
        drop(first);
    });
    let third = registry.admit(local()).await.unwrap();
    closer.await.unwrap();
    assert_eq!(registry.len(), 2);
    // Busy connections are never evicted.
    let _a = second.state.begin_request(false);
    let _b = third.state.begin_request(false);
    assert_eq!(registry.admit(local()).await.unwrap_err(), Full);
    drop(second);
    assert_eq!(registry.len(), 1);
}

#[test]
fn an_answer_that_makes_no_progress_gets_the_send_deadline() {
    let state = Arc::new(ConnectionState::new(LOCAL));
    // HTTP/2: while the request is worked on there is no deadline; once answered, the
    // response must move within `send`, and each body frame the protocol takes moves it.
    let mut guard = state.begin_request(true);
    assert_eq!(state.deadline(&T), None);
    assert_eq!(
        state.evictable_since(),
        None,
        "work in progress is never evicted"
    );
    guard.responding();
    let answered = state.clock().responding.values().next().unwrap().progress;
    assert_eq!(state.deadline(&T), Some(answered + T.send));
    assert_eq!(
        state.evictable_since(),
        Some(answered),
        "a stuck answer may be evicted"
    );
    std::thread::sleep(Duration::from_millis(5));
    // Bytes of other streams on the socket do not count for a multiplexed response.
    state.sent();
    assert_eq!(state.deadline(&T), Some(answered + T.send));
    guard.progress();
    let moved = state.clock().responding.values().next().unwrap().progress;
    assert!(moved > answered);
    assert_eq!(state.deadline(&T), Some(moved + T.send));
    drop(guard);
    assert!(state.clock().responding.is_empty());
    assert_eq!(state.deadline(&T), Some(state.clock().idle_since + T.idle));
}

#[test]
fn a_socket_the_peer_does_not_read_gets_the_send_deadline_even_when_idle() {
    // A long idle timeout, so the send deadline is the earlier one.
    let t = Timeouts {
        idle: Duration::from_secs(60),
        ..T
    };
    let state = Arc::new(ConnectionState::new(LOCAL));
    // HTTP/1.1: bytes leaving the socket are the response's progress.
    let mut guard = state.begin_request(false);
    guard.responding();
    std::thread::sleep(Duration::from_millis(5));
    state.sent();
    let wrote = state.clock().last_write;
    assert_eq!(state.deadline(&t), Some(wrote + t.send));
    drop(guard);
    // The whole answer is in hyper's buffer, but the socket is full: the request is over
    // (idle) yet the connection must still go within `send` of the write that blocked.
    state.blocked();
    let blocked = state.clock().write_blocked_since.unwrap();
    assert_eq!(state.deadline(&t), Some(blocked + t.send));
    state.sent();
    assert_eq!(state.clock().write_blocked_since, None);
    assert_eq!(state.deadline(&t), Some(state.clock().idle_since + t.idle));
}

#[tokio::test]
async fn registry_makes_room_from_the_peer_holding_the_most_connections() {
    let registry = Registry::new(3);
    let other: IpAddr = IpAddr::from([127, 0, 0, 2]);
    let mine = registry.admit(local()).await.unwrap();
    tokio::time::sleep(Duration::from_millis(5)).await;
    let flood_a = registry.admit(other).await.unwrap();
    let flood_b = registry.admit(other).await.unwrap();
    // `mine` is idle the longest, but the newcomer's room comes from the flooding peer.
    let closer = tokio::spawn(async move {
        flood_a.state.evicted().await;
        drop(flood_a);
    });
    let newcomer = registry.admit(local()).await.unwrap();
    closer.await.unwrap();
    assert!(!mine.state.is_evicting());
    assert!(!flood_b.state.is_evicting());
    assert_eq!(registry.len(), 3);
    drop(newcomer);
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
