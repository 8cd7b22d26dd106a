//! Refilling the pool: the reservation protocol (a refill thread, or [`KeyPool::fill_now`],
//! reserves the key type most in need before making a key, and puts the key back under the
//! capacity) and the low-priority refill threads themselves.

use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Handle, Inner, KeyPool, State, record_fill};
use crate::token::{GeneratedKey, KeyType, PoolFill, generate_key};

impl KeyPool {
    /// Starts refill threads up to the wanted number, if anything is pooled.
    pub(super) fn spawn_missing_threads(&self) {
        let mut state = self.inner.lock();
        if !state.refill || state.capacity.is_empty() {
            return;
        }
        while state.running < state.threads {
            let inner = self.inner.clone();
            let alive = Arc::downgrade(&self.handle);
            let spawned = std::thread::Builder::new()
                .name("ast-key-pool".into())
                .spawn(move || refill_loop(&inner, &alive));
            match spawned {
                Ok(_) => state.running += 1,
                Err(e) => {
                    tracing::warn!(error = %e, running = state.running, "could not start a key pool thread");
                    if state.running == 0 {
                        tracing::warn!("no key pool thread: keys will be generated per request");
                    }
                    break;
                }
            }
        }
    }
}

impl State {
    /// The key type with the lowest fill ratio (counting keys being made) below capacity.
    fn most_needed(&self) -> Option<KeyType> {
        self.capacity
            .iter()
            .filter_map(|(kt, cap)| {
                let have = self.keys.get(kt).map_or(0, Vec::len)
                    + self.making.get(kt).copied().unwrap_or(0);
                // Compare have/cap by cross-multiplication: no floats, no division.
                (have < *cap).then_some((*kt, have, *cap))
            })
            .min_by(|a, b| (a.1 * b.2).cmp(&(b.1 * a.2)))
            .map(|(kt, _, _)| kt)
    }
}

impl Inner {
    /// Reserves the making of one key of the most needed type.
    pub(super) fn reserve(&self) -> Option<KeyType> {
        let mut state = self.lock();
        let key_type = state.most_needed()?;
        *state.making.entry(key_type).or_default() += 1;
        Some(key_type)
    }

    /// Ends a reservation: adds the key made, if any.
    pub(super) fn finish(&self, key_type: KeyType, key: Option<GeneratedKey>) {
        {
            let mut state = self.lock();
            if let Some(making) = state.making.get_mut(&key_type) {
                *making = making.saturating_sub(1);
            }
        }
        match key {
            Some(key) => self.put(key),
            None => self.changed.notify_all(),
        }
    }

    /// Adds a key if its type is still below capacity (else the key is dropped and zeroised).
    pub(super) fn put(&self, key: GeneratedKey) {
        let key_type = key.key_type();
        let mut state = self.lock();
        let capacity = state.capacity_of(key_type);
        let Some(list) = state.keys.get_mut(&key_type) else {
            return;
        };
        if list.len() < capacity {
            list.push(key);
        }
        let fill = PoolFill {
            key_type,
            keys: list.len(),
            capacity,
        };
        drop(state);
        record_fill(fill);
        self.changed.notify_all();
    }
}

fn refill_loop(inner: &Inner, alive: &Weak<Handle>) {
    // Lowest normal priority (nice 19 on Linux): only idle CPU refills the pool.
    if let Err(e) =
        thread_priority::set_current_thread_priority(thread_priority::ThreadPriority::Min)
    {
        tracing::warn!(error = ?e, "could not lower the key pool thread's priority");
    }
    while alive.strong_count() > 0 {
        match inner.reserve() {
            Some(key_type) => match generate_key(key_type) {
                Ok(key) => inner.finish(key_type, Some(key)),
                Err(e) => {
                    inner.finish(key_type, None);
                    tracing::error!(error = %e, "key pool refill failed; retrying in a second");
                    std::thread::sleep(Duration::from_secs(1));
                }
            },
            None => {
                // Full: sleep until a key is taken or the last handle goes (re-checked every
                // 500 ms in case a wake-up is missed between the check and the wait).
                let state = inner.lock();
                if state.most_needed().is_none() && alive.strong_count() > 0 {
                    let _ = inner
                        .changed
                        .wait_timeout(state, Duration::from_millis(500));
                }
            }
        }
    }
}
