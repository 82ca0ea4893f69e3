//! berth-registry-server: an OCI distribution registry (`berth registry serve`) over a
//! content-addressed filesystem store, and its garbage collector (`berth registry gc`).
//!
//! `storage` is the on-disk layout (atomic writes, shared blobs, per-repository links);
//! `uploads` the resumable upload sessions; `manifest` parses and validates manifests;
//! `router` maps paths to routes; `api` answers them; `error` is the spec's error codes;
//! `server` listens, logs and shuts down gracefully; `gc` sweeps unreferenced blobs;
//! `config` reads flags; `metrics` renders `/metrics`; `digest` and `names` validate input.
#![forbid(unsafe_code)]

pub mod api;
pub mod config;
pub mod digest;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod router;
pub mod server;
pub mod storage;
pub mod uploads;

use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper::Request;

use crate::config::RegistryConfig;
use crate::metrics::Metrics;
use crate::storage::Store;
use crate::uploads::Uploads;

/// Requests that write (uploads, manifest pushes) still running; shutdown waits for them.
#[derive(Default)]
pub struct InFlight {
    count: AtomicUsize,
    done: tokio::sync::Notify,
}

/// Held while a write runs.
pub struct InFlightGuard<'a>(&'a InFlight);

impl InFlight {
    pub fn enter(&self) -> InFlightGuard<'_> {
        self.count.fetch_add(1, Ordering::SeqCst);
        InFlightGuard(self)
    }

    pub fn count(&self) -> usize {
        self.count.load(Ordering::SeqCst)
    }

    /// Waits until no write is running.
    pub async fn drained(&self) {
        loop {
            let n = self.done.notified();
            if self.count() == 0 {
                return;
            }
            n.await;
        }
    }
}

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        if self.0.count.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.0.done.notify_waiters();
        }
    }
}

/// The registry a server answers for.
pub struct Registry {
    pub config: RegistryConfig,
    pub store: Store,
    pub uploads: Uploads,
    pub metrics: Metrics,
    pub inflight: InFlight,
}

impl Registry {
    pub fn new(config: RegistryConfig) -> std::io::Result<Registry> {
        let store = Store::open(&config.root)?;
        Ok(Registry {
            uploads: Uploads::new(store.clone()),
            store,
            config,
            metrics: Metrics::default(),
            inflight: InFlight::default(),
        })
    }

    /// `Some(response)` when the request must be refused for want of credentials.
    pub fn authorize(&self, _req: &Request<Incoming>) -> Option<api::Resp> {
        None
    }

    /// Whether the request may read `repo` (a mount source).
    pub fn allowed_pull(&self, _req: &Request<Incoming>, _repo: &str) -> bool {
        true
    }
}
