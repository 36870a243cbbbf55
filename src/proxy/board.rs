//! Active health shared between workers: worker 0 runs the checks and posts each server's
//! up/down change here; the other workers apply the board when it changes (they look on
//! every turn, one atomic load), so each server is probed once per interval whatever the
//! number of workers, and every worker steers clients the same way within a turn of the
//! change (at most a second when a loop is idle).
//!
//! Servers are named by route and address, not by index: each worker numbers its servers
//! itself (slots are reused as nothing refers to them).

use super::routes::Routes;
use crate::endpoint::Endpoint;
use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

/// The up/down state of checked servers, by route and address.
#[derive(Debug, Default)]
pub struct HealthBoard {
    version: AtomicU64,
    states: Mutex<HashMap<(String, Endpoint), bool>>,
}

impl HealthBoard {
    /// Posts that `addr` of `route` is now up or down.
    pub fn post(&self, route: &str, addr: Endpoint, up: bool) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.insert((route.to_string(), addr), up);
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Forgets servers no longer configured (after a reload in the checking worker).
    pub fn retain(&self, mut keep: impl FnMut(&str, &Endpoint) -> bool) {
        let mut states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        states.retain(|(route, addr), _| keep(route, addr));
        self.version.fetch_add(1, Ordering::Release);
    }

    /// Changes so far: a worker applies the board when this moved.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    /// Sets every server of `routes` the board knows to its posted state; servers it does
    /// not know are up (as checks start them).
    pub fn apply(&self, routes: &mut Routes) {
        let states = self.states.lock().unwrap_or_else(|e| e.into_inner());
        for r in 0..routes.len() {
            let route = &mut routes[r];
            for server in &mut route.pool.servers {
                let key = (route.name.clone(), server.addr.clone());
                server
                    .checks
                    .force(states.get(&key).copied().unwrap_or(true));
            }
        }
    }
}
