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

#[test]
fn new_peers_past_the_minute_cap_are_counted_in_one_overflow_row() {
    let r = Refusals::default();
    let key = |i: usize, minute| Key {
        actor: format!("peer:10.0.{}.{}", i / 256, i % 256),
        peer: format!("10.0.{}.{}", i / 256, i % 256),
        code: "untrusted-caller".into(),
        minute,
    };
    let mut appended = 0;
    for i in 0..ROWS_PER_MINUTE + 500 {
        if matches!(r.decide(&key(i, 1), &event(60_000)), Decision::Append) {
            appended += 1;
        }
    }
    assert_eq!(appended, ROWS_PER_MINUTE);
    let taken = r.take(Some(2));
    assert_eq!(taken.len(), 1, "{taken:?}");
    let (k, p) = &taken[0];
    assert!(k.is_overflow());
    assert_eq!(p.count, 500);
    assert_eq!(p.peers.len(), SAMPLE);
    let e = aggregate_event(k, p);
    assert_eq!(e.detail["overflow"], true);
    assert_eq!(e.detail["count"], 500);
    // A new minute appends in full again.
    assert!(matches!(
        r.decide(&key(9999, 2), &event(120_000)),
        Decision::Append
    ));
    // Clearing takes what is pending and forgets every key.
    assert!(matches!(
        r.decide(&key(9999, 2), &event(120_001)),
        Decision::Counted
    ));
    assert_eq!(r.take_all_and_clear().len(), 1);
    assert!(r.lock().keys.is_empty());
}
