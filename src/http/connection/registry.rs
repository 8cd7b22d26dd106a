//! The open connections of a server: a cap on how many, and which one makes room when it is
//! reached (the longest idle or stalled connection of the peer holding the most).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::ConnectionState;

/// The open connections of a server (all its listeners), at most `max` of them (plus the one
/// just accepted while another is being closed for it).
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
    pub(super) fn len(&self) -> usize {
        self.open().len()
    }

    /// Admits a connection just accepted from `peer`. At the cap, a connection that nobody is
    /// waiting on is closed to make room — one with no request in progress (kept-alive, silent
    /// or half-sent), or one whose answers its peer does not read — the way nginx reuses
    /// keep-alive connections, so such sockets cannot lock out real requests. The victim is
    /// taken from the peer network holding the most connections (its longest idle or stalled
    /// one), so a flood from one peer makes room from its own share, not from others'. This
    /// waits until that socket is closed, so open descriptors never exceed the cap by more than
    /// the one just accepted. When every connection has work in progress the new one is
    /// refused.
    pub async fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Full> {
        let network = crate::identity::peer_network(peer);
        loop {
            let freed = self.freed.notified();
            let mut freed = std::pin::pin!(freed);
            {
                let mut open = self.open();
                if open.len() < self.max {
                    let id = self.next_id.fetch_add(1, Ordering::Relaxed);
                    let state = Arc::new(ConnectionState::new(network));
                    open.insert(id, state.clone());
                    return Ok(Slot {
                        id,
                        state,
                        registry: self.clone(),
                    });
                }
                if !open.values().any(|state| state.is_evicting()) {
                    let Some(victim) = victim(&open) else {
                        drop(open);
                        self.warn_full(
                            "every connection has a request in progress; refusing new ones",
                        );
                        return Err(Full);
                    };
                    victim.evict();
                }
                // Registered before the lock is released: a slot freed from now on wakes us.
                freed.as_mut().enable();
            }
            self.warn_full("closing idle or stalled connections to admit new ones");
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

/// The connection to close for a newcomer: among those nobody waits on, one of the peer network
/// holding the most connections, the longest idle or stalled of its own.
fn victim(open: &HashMap<u64, Arc<ConnectionState>>) -> Option<Arc<ConnectionState>> {
    let mut held: HashMap<[u8; 16], usize> = HashMap::new();
    for state in open.values() {
        *held.entry(state.peer).or_default() += 1;
    }
    open.values()
        .filter_map(|state| state.evictable_since().map(|since| (since, state)))
        .max_by_key(|(since, state)| (held[&state.peer], std::cmp::Reverse(*since)))
        .map(|(_, state)| state.clone())
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
