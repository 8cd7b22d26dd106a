//! Tests of `token/pool.rs`.

use super::*;

fn caps(list: &[(KeyType, usize)]) -> BTreeMap<KeyType, usize> {
    list.iter().copied().collect()
}

#[test]
fn refill_thread_fills_to_capacity_and_no_further() {
    let pool = KeyPool::start(caps(&[(KeyType::EcP256, 3), (KeyType::Ed25519, 2)]));
    assert!(
        pool.wait_full(Duration::from_secs(30)),
        "pool did not fill: {:?}",
        pool.fill()
    );
    std::thread::sleep(Duration::from_millis(50));
    let fill = pool.fill();
    assert_eq!(fill.len(), 2);
    for f in fill {
        assert_eq!(f.keys, f.capacity, "{f:?}");
    }
}

#[test]
fn take_serves_from_pool_and_refill_replaces_it() {
    let pool = KeyPool::start(caps(&[(KeyType::EcP256, 2)]));
    assert!(pool.wait_full(Duration::from_secs(30)));
    let (key, source) = pool.key(KeyType::EcP256).unwrap();
    assert_eq!(source, KeySource::Pool);
    assert_eq!(key.key_type(), KeyType::EcP256);
    // The refill thread replaces the key taken.
    assert!(
        pool.wait_full(Duration::from_secs(30)),
        "not refilled: {:?}",
        pool.fill()
    );
    // Two keys handed out are distinct.
    let (a, _) = pool.key(KeyType::EcP256).unwrap();
    let (b, _) = pool.key(KeyType::EcP256).unwrap();
    assert_ne!(a.spki_der(), b.spki_der());
}

#[test]
fn empty_or_unconfigured_pool_generates_inline() {
    let pool = KeyPool::without_refill(caps(&[(KeyType::EcP256, 1), (KeyType::Ed25519, 0)]));
    assert_eq!(
        pool.fill(),
        vec![PoolFill {
            key_type: KeyType::EcP256,
            keys: 0,
            capacity: 1
        }]
    );
    let (key, source) = pool.key(KeyType::EcP256).unwrap();
    assert_eq!(
        (key.key_type(), source),
        (KeyType::EcP256, KeySource::Inline)
    );
    let (key, source) = pool.key(KeyType::Ed25519).unwrap();
    assert_eq!(
        (key.key_type(), source),
        (KeyType::Ed25519, KeySource::Inline)
    );
    assert!(pool.take(KeyType::Ed25519).is_none());

    pool.fill_now().unwrap();
    assert_eq!(pool.fill()[0].keys, 1);
    assert_eq!(pool.key(KeyType::EcP256).unwrap().1, KeySource::Pool);
    assert_eq!(pool.key(KeyType::EcP256).unwrap().1, KeySource::Inline);
}

#[test]
fn pool_refuses_keys_beyond_capacity_and_of_other_types() {
    let pool = KeyPool::without_refill(caps(&[(KeyType::EcP256, 1)]));
    pool.inner.put(generate_key(KeyType::EcP256).unwrap());
    pool.inner.put(generate_key(KeyType::EcP256).unwrap());
    pool.inner.put(generate_key(KeyType::Ed25519).unwrap());
    assert_eq!(
        pool.fill(),
        vec![PoolFill {
            key_type: KeyType::EcP256,
            keys: 1,
            capacity: 1
        }]
    );
}

#[test]
fn several_refill_threads_fill_exactly_and_resize_applies_at_once() {
    let pool = KeyPool::start_with_threads(caps(&[(KeyType::EcP256, 8)]), 4);
    assert_eq!(pool.refill_threads(), 4);
    assert!(pool.wait_full(Duration::from_secs(30)), "{:?}", pool.fill());
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(pool.fill()[0].keys, 8);
    // Reservations are all settled: no thread is making a key for a full pool.
    assert!(pool.inner.lock().making.values().all(|&m| m == 0));

    // Shrink one type (surplus dropped at once) and pool a new one.
    pool.resize(caps(&[(KeyType::EcP256, 3), (KeyType::Ed25519, 2)]));
    assert_eq!(pool.fill()[0].keys, 3);
    assert!(pool.wait_full(Duration::from_secs(30)), "{:?}", pool.fill());
    assert_eq!(
        pool.fill(),
        vec![
            PoolFill {
                key_type: KeyType::EcP256,
                keys: 3,
                capacity: 3
            },
            PoolFill {
                key_type: KeyType::Ed25519,
                keys: 2,
                capacity: 2
            }
        ]
    );
    // Grow one type, stop pooling the other.
    pool.resize(caps(&[(KeyType::EcP256, 5)]));
    assert!(pool.wait_full(Duration::from_secs(30)), "{:?}", pool.fill());
    assert_eq!(pool.fill()[0].keys, 5);
    assert!(pool.take(KeyType::Ed25519).is_none());
    assert_eq!(pool.refill_threads(), 4);
}

#[test]
fn resize_gives_an_unpooled_pool_its_refill_threads() {
    let pool = KeyPool::start_with_threads(BTreeMap::new(), 2);
    assert_eq!(pool.refill_threads(), 0);
    pool.resize(caps(&[(KeyType::EcP256, 2)]));
    assert_eq!(pool.refill_threads(), 2);
    assert!(pool.wait_full(Duration::from_secs(30)), "{:?}", pool.fill());
    // A pool made never to refill stays so.
    let manual = KeyPool::without_refill(BTreeMap::new());
    manual.resize(caps(&[(KeyType::EcP256, 2)]));
    assert_eq!(manual.refill_threads(), 0);
    assert_eq!(manual.fill()[0].keys, 0);
}

#[test]
fn refill_thread_stops_when_the_pool_is_dropped() {
    let pool = KeyPool::start(caps(&[(KeyType::EcP256, 1)]));
    let weak = Arc::downgrade(&pool.inner);
    assert!(pool.wait_full(Duration::from_secs(30)));
    drop(pool);
    let deadline = Instant::now() + Duration::from_secs(5);
    while weak.upgrade().is_some() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert!(
        weak.upgrade().is_none(),
        "the refill thread kept the pool alive"
    );
}
