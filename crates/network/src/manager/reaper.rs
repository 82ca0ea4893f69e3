//! Exited containers: releasing their endpoints at once while their veths drain with the
//! network namespace (see [`crate::drain`]), and the reaper thread that watches those veths.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use super::{delete_link_logged, Inner, NetworkManager};
use crate::drain::DRAIN_POLL;
use crate::NetworkError;

impl NetworkManager {
    /// Detaches a container whose processes have all exited: its port rules go and its
    /// endpoints are released now, while its veths are left to the kernel, which deletes them
    /// with the container's network namespace (see [`crate::drain`]); their addresses stay
    /// reserved until then. A network namespace still in use needs [`Self::disconnect_all`].
    pub fn release_exited(&self, container_id: &str) -> Result<(), NetworkError> {
        let mut inner = self.lock();
        let ids: Vec<String> = inner
            .nets
            .values()
            .filter(|n| n.endpoints.contains_key(container_id))
            .map(|n| n.id.clone())
            .collect();
        let now = Instant::now();
        let mut start_reaper = false;
        let mut first_err = None;
        for id in ids {
            let mut rec = inner.nets[&id].clone();
            let ep = rec.endpoints.remove(container_id).expect("listed");
            inner.del_rules(&ep.rules);
            start_reaper |= inner.drain.add(
                container_id,
                &ep.endpoint.host_veth,
                &id,
                ep.endpoint.ip,
                now,
            );
            // The endpoint is gone whether or not the record is saved: a daemon that starts
            // drops endpoints of containers that do not run.
            if let Err(e) = inner.save_endpoints(&rec) {
                first_err.get_or_insert(e);
            }
            inner.nets.insert(id, rec);
        }
        drop(inner);
        if start_reaper {
            self.spawn_reaper();
        }
        first_err.map_or(Ok(()), Err)
    }

    /// Starts the thread that watches draining veths (one at a time; it ends when none is
    /// left). If no thread can be started, the veths are deleted here and now.
    fn spawn_reaper(&self) {
        let inner = Arc::clone(&self.inner);
        let spawned = std::thread::Builder::new()
            .name("berth-veth-reaper".into())
            .spawn(move || reap_drained_veths(&inner));
        if let Err(e) = spawned {
            tracing::warn!("starting the veth reaper: {e}; deleting veths now");
            let mut inner = self.lock();
            for v in inner.drain.take_all() {
                delete_link_logged(inner.nl.as_ref(), &v);
            }
        }
    }
}

/// The reaper: every [`DRAIN_POLL`], forgets the draining veths the kernel has deleted and
/// deletes those past their deadline itself; returns when none is left.
fn reap_drained_veths(inner: &Mutex<Inner>) {
    let lock = || inner.lock().unwrap_or_else(|e| e.into_inner());
    loop {
        std::thread::sleep(DRAIN_POLL);
        let (nl, overdue) = {
            let mut g = lock();
            let nl = Arc::clone(&g.nl);
            match g.drain.pass(|v| nl.link_exists(v), Instant::now()) {
                Some(overdue) => (nl, overdue),
                None => return,
            }
        };
        for veth in overdue {
            tracing::info!("deleting {veth}: it outlived its container");
            delete_link_logged(nl.as_ref(), &veth);
            lock().drain.forget(&veth);
        }
    }
}
