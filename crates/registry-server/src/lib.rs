//! berth-registry-server: an OCI distribution registry (`berth registry serve`) over a
//! content-addressed filesystem store, and its garbage collector (`berth registry gc`).
//!
//! `storage` is the on-disk layout (atomic writes, shared blobs, per-repository links);
//! `uploads` the resumable upload sessions; `manifest` parses and validates manifests;
//! `router` maps paths to routes; `api` answers them; `error` is the spec's error codes;
//! `server` listens, logs and shuts down gracefully; `gc` sweeps unreferenced blobs;
//! `proxy` makes it a pull-through cache; `token` is Docker token auth; `config` reads the TOML file and flags; `auth` checks htpasswd Basic credentials; `metrics` renders `/metrics`; `digest` and `names` validate input.
#![forbid(unsafe_code)]

pub mod api;
pub mod auth;
pub mod config;
pub mod digest;
pub mod error;
pub mod gc;
pub mod manifest;
pub mod metrics;
pub mod names;
pub mod proxy;
pub mod router;
pub mod server;
pub mod storage;
pub mod token;
pub mod uploads;

use std::sync::atomic::{AtomicUsize, Ordering};

use hyper::body::Incoming;
use hyper::{Method, Request};

use crate::auth::Htpasswd;

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
    htpasswd: Option<Htpasswd>,
    pub token: Option<token::TokenAuth>,
    pub proxy: Option<proxy::Proxy>,
}

/// Why a registry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error("opening the storage root {path}: {source}")]
    Storage {
        path: String,
        source: std::io::Error,
    },
    #[error(transparent)]
    Auth(#[from] auth::AuthError),
    #[error("{0}")]
    Proxy(String),
}

impl Registry {
    pub fn new(config: RegistryConfig) -> Result<Registry, SetupError> {
        let htpasswd = match &config.auth {
            Some(a) => Some(Htpasswd::load(&a.htpasswd)?),
            None => None,
        };
        let token = match &config.token {
            Some(t) => Some(token::TokenAuth::new(
                t.realm.clone(),
                t.service.clone(),
                t.expiration_seconds,
                Htpasswd::load(&t.htpasswd)?,
                t.access.clone(),
            )),
            None => None,
        };
        let proxy = match &config.proxy {
            Some(p) => Some(
                proxy::Proxy::new(&p.url, p.username.clone(), p.password.clone())
                    .map_err(SetupError::Proxy)?,
            ),
            None => None,
        };
        let store = Store::open(&config.root).map_err(|source| SetupError::Storage {
            path: config.root.display().to_string(),
            source,
        })?;
        Ok(Registry {
            htpasswd,
            token,
            proxy,
            uploads: Uploads::new(store.clone()),
            store,
            config,
            metrics: Metrics::default(),
            inflight: InFlight::default(),
        })
    }

    /// `Some(response)` when the request must be refused for want of credentials: 401
    /// UNAUTHORIZED with a Basic challenge. With anonymous pull, reads of repositories pass
    /// without credentials (`/v2/` itself always asks, so `docker login` checks them).
    pub fn authorize(&self, req: &Request<Incoming>) -> Option<api::Resp> {
        if let Some(t) = &self.token {
            return self.authorize_token(t, req);
        }
        let (Some(h), Some(cfg)) = (&self.htpasswd, &self.config.auth) else {
            return None;
        };
        let read = matches!(*req.method(), Method::GET | Method::HEAD);
        let base = matches!(req.uri().path(), "/v2" | "/v2/");
        let presented = req
            .headers()
            .get(hyper::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok());
        if cfg.anonymous_pull && read && !base && presented.is_none() {
            return None;
        }
        match h.check(presented) {
            Ok(_) => None,
            Err(why) => {
                let msg = match why {
                    auth::Denied::Missing => "authentication required",
                    auth::Denied::Invalid => "invalid username or password",
                };
                let e = error::ApiError::new(error::Code::Unauthorized, msg);
                let mut r = api::error_response(&e, *req.method() == Method::HEAD);
                api::set_named(
                    &mut r,
                    "www-authenticate",
                    &format!("Basic realm=\"{}\"", cfg.realm),
                );
                Some(r)
            }
        }
    }

    /// The Bearer check: the scope the route needs, and a 401 challenge naming it when the
    /// request's token does not grant it.
    fn authorize_token(&self, t: &token::TokenAuth, req: &Request<Incoming>) -> Option<api::Resp> {
        let granted = t.verify(
            req.headers()
                .get(hyper::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok()),
        );
        let needed: Option<(String, String, Vec<&str>)> = match router::route(req.uri().path()) {
            None | Some(router::Route::Base) => None,
            Some(router::Route::Catalog) => Some(("registry".into(), "catalog".into(), vec!["*"])),
            Some(
                router::Route::Manifest { name, .. }
                | router::Route::Blob { name, .. }
                | router::Route::UploadStart { name }
                | router::Route::Upload { name, .. }
                | router::Route::Tags { name }
                | router::Route::Referrers { name, .. },
            ) => {
                let actions = match *req.method() {
                    Method::GET | Method::HEAD => vec!["pull"],
                    Method::DELETE => vec!["delete"],
                    _ => vec!["pull", "push"],
                };
                Some(("repository".into(), name, actions))
            }
        };
        let ok = match (&granted, &needed) {
            (None, _) => false,
            (Some(_), None) => true,
            (Some(g), Some((kind, name, actions))) => {
                actions.iter().all(|a| token::allows(g, kind, name, a))
            }
        };
        if ok {
            return None;
        }
        let realm = t.realm.clone().unwrap_or_else(|| {
            let host = req
                .headers()
                .get(hyper::header::HOST)
                .and_then(|v| v.to_str().ok())
                .unwrap_or("localhost");
            let scheme = if self.config.tls.is_some() {
                "https"
            } else {
                "http"
            };
            format!("{scheme}://{host}/token")
        });
        let mut challenge = format!("Bearer realm=\"{realm}\",service=\"{}\"", t.service);
        if let Some((kind, name, actions)) = &needed {
            challenge.push_str(&format!(",scope=\"{kind}:{name}:{}\"", actions.join(",")));
            if granted.is_some() {
                challenge.push_str(",error=\"insufficient_scope\"");
            }
        }
        let msg = if granted.is_some() {
            "insufficient scope"
        } else {
            "authentication required"
        };
        let e = error::ApiError::new(error::Code::Unauthorized, msg);
        let mut r = api::error_response(&e, *req.method() == Method::HEAD);
        api::set_named(&mut r, "www-authenticate", &challenge);
        Some(r)
    }

    /// Whether the request may read `repo` (a mount source): with Basic authentication every
    /// user reads every repository; with tokens, the token must grant pull on it.
    pub fn allowed_pull(&self, req: &Request<Incoming>, repo: &str) -> bool {
        match &self.token {
            None => true,
            Some(t) => t
                .verify(
                    req.headers()
                        .get(hyper::header::AUTHORIZATION)
                        .and_then(|v| v.to_str().ok()),
                )
                .is_some_and(|g| token::allows(&g, "repository", repo, "pull")),
        }
    }
}
