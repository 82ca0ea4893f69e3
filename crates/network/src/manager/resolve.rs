//! Name resolution on user-defined networks: container names, aliases, hostnames and id
//! prefixes, and the [`ContainerResolver`] the embedded DNS server asks.

use std::net::Ipv4Addr;
use std::sync::{Arc, Mutex};

use super::{Inner, NetworkManager, NetworkRecord};
use crate::dns::Resolver;

impl NetworkRecord {
    fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        if self.predefined {
            return None;
        }
        let name = name.trim_end_matches('.');
        // `<container>.<network>` resolves too.
        let suffix = format!(".{}", self.name.to_ascii_lowercase());
        let name = match name.to_ascii_lowercase().strip_suffix(&suffix) {
            Some(short) if !short.is_empty() => short.to_string(),
            _ => name.to_string(),
        };
        let name = name.as_str();
        self.endpoints.values().find_map(|e| {
            let hit = e.name.eq_ignore_ascii_case(name)
                || e.aliases.iter().any(|a| a.eq_ignore_ascii_case(name))
                || e.hostname
                    .as_deref()
                    .is_some_and(|h| h.eq_ignore_ascii_case(name))
                || (name.len() >= 12 && e.container_id.starts_with(&name.to_ascii_lowercase()));
            hit.then_some(e.endpoint.ip)
        })
    }
}

impl NetworkManager {
    /// Resolves a container name, alias, hostname or id prefix (12+ characters) on a
    /// user-defined network (never on the default `bridge`, like Docker).
    pub fn resolve(&self, network: &str, name: &str) -> Option<Ipv4Addr> {
        let inner = self.lock();
        let id = inner.find_id(network).ok()?;
        inner.nets[&id].resolve(name)
    }

    /// A [`Resolver`] for the embedded DNS server of one container: names on every
    /// user-defined network the container is attached to (looked up live).
    pub fn resolver_for(&self, container_id: &str) -> ContainerResolver {
        ContainerResolver {
            inner: Arc::clone(&self.inner),
            container_id: container_id.to_string(),
        }
    }
}

/// Resolves names for one container; see [`NetworkManager::resolver_for`].
#[derive(Clone)]
pub struct ContainerResolver {
    inner: Arc<Mutex<Inner>>,
    container_id: String,
}

impl Resolver for ContainerResolver {
    fn resolve(&self, name: &str) -> Option<Ipv4Addr> {
        let inner = self.inner.lock().unwrap_or_else(|e| e.into_inner());
        inner
            .nets
            .values()
            .filter(|n| n.endpoints.contains_key(&self.container_id))
            .find_map(|n| n.resolve(name))
    }
}
