//! Veths of exited containers, left for the kernel to delete.
//!
//! When a container's last process exits, the kernel tears its network namespace down on its
//! own and deletes the veth pair with it. Deleting the host end first ourselves would make the
//! container's exit wait for RCU grace periods (about 25 ms a veth on this 6.18 kernel) for
//! nothing. So an exited container's endpoint is released at once and its veth *drains*: its
//! address stays reserved until the host end is gone (a new container with that address, and
//! so that MAC, must not share the bridge with it), and a reaper deletes it itself if it
//! outlives [`DRAIN_DEADLINE`] (the namespace kept alive by something else, such as a
//! container that joined it with `--network container:`).

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

/// How long a drained veth may outlive its container before the reaper deletes it.
pub(crate) const DRAIN_DEADLINE: Duration = Duration::from_secs(1);

/// How often the reaper looks for drained veths the kernel has deleted.
pub(crate) const DRAIN_POLL: Duration = Duration::from_millis(5);

/// The host end of an exited container's veth pair, with the address it keeps reserved.
#[derive(Debug, Clone, PartialEq, Eq)]
struct DrainingVeth {
    veth: String,
    container_id: String,
    network_id: String,
    ip: Ipv4Addr,
    since: Instant,
    /// Past the deadline and handed out for deletion.
    deleting: bool,
}

/// The veths draining, and whether a reaper thread is watching them.
#[derive(Debug, Default)]
pub(crate) struct Drain {
    veths: Vec<DrainingVeth>,
    reaper_running: bool,
}

impl Drain {
    /// Starts draining container `container_id`'s `veth`, keeping `ip` on `network_id`
    /// reserved. Returns whether a reaper must be started (none is running).
    pub(crate) fn add(
        &mut self,
        container_id: &str,
        veth: &str,
        network_id: &str,
        ip: Ipv4Addr,
        now: Instant,
    ) -> bool {
        self.veths.push(DrainingVeth {
            veth: veth.to_string(),
            container_id: container_id.to_string(),
            network_id: network_id.to_string(),
            ip,
            since: now,
            deleting: false,
        });
        !std::mem::replace(&mut self.reaper_running, true)
    }

    /// Addresses on `network_id` still held by draining veths.
    pub(crate) fn reserved<'a>(
        &'a self,
        network_id: &'a str,
    ) -> impl Iterator<Item = Ipv4Addr> + 'a {
        self.veths
            .iter()
            .filter(move |d| d.network_id == network_id)
            .map(|d| d.ip)
    }

    /// One look by the reaper at `now`: forgets the veths that no longer `exist` and returns
    /// those past the deadline, for the caller to delete and then [`Drain::forget`].
    /// `None` when nothing drains any more: the reaper stops (and is marked stopped).
    pub(crate) fn pass(
        &mut self,
        exists: impl Fn(&str) -> bool,
        now: Instant,
    ) -> Option<Vec<String>> {
        self.veths.retain(|d| d.deleting || exists(&d.veth));
        if self.veths.is_empty() {
            self.reaper_running = false;
            return None;
        }
        let mut overdue = Vec::new();
        for d in &mut self.veths {
            if !d.deleting && now.duration_since(d.since) >= DRAIN_DEADLINE {
                d.deleting = true;
                overdue.push(d.veth.clone());
            }
        }
        Some(overdue)
    }

    /// Stops draining `veth` (deleted).
    pub(crate) fn forget(&mut self, veth: &str) {
        self.veths.retain(|d| d.veth != veth);
    }

    /// Takes the veths draining on `network_id` (only the one holding `ip`, when given), for
    /// the caller to delete at once because their addresses are wanted now.
    pub(crate) fn take(&mut self, network_id: &str, ip: Option<Ipv4Addr>) -> Vec<String> {
        let mut taken = Vec::new();
        self.veths.retain(|d| {
            let hit = d.network_id == network_id && ip.is_none_or(|ip| d.ip == ip);
            if hit && !d.deleting {
                taken.push(d.veth.clone());
            }
            !hit || d.deleting
        });
        taken
    }

    /// Takes the veth that container `container_id` left draining on `network_id`, with its
    /// address: a container that starts again gets its address back.
    pub(crate) fn take_container(
        &mut self,
        network_id: &str,
        container_id: &str,
    ) -> Option<(String, Ipv4Addr)> {
        let i = self.veths.iter().position(|d| {
            d.network_id == network_id && d.container_id == container_id && !d.deleting
        })?;
        let d = self.veths.remove(i);
        Some((d.veth, d.ip))
    }

    /// Takes every draining veth, to be deleted now (a purge, or no reaper to be had).
    pub(crate) fn take_all(&mut self) -> Vec<String> {
        self.reaper_running = false;
        self.veths
            .drain(..)
            .filter(|d| !d.deleting)
            .map(|d| d.veth)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(n: u8) -> Ipv4Addr {
        Ipv4Addr::new(10, 0, 0, n)
    }

    #[test]
    fn addresses_stay_reserved_until_the_veth_is_gone() {
        let t0 = Instant::now();
        let mut d = Drain::default();
        assert!(
            d.add("c1", "v1", "net", ip(2), t0),
            "the first veth starts a reaper"
        );
        assert!(!d.add("c2", "v2", "net", ip(3), t0), "one reaper at a time");
        assert!(!d.add("c3", "v3", "other", ip(2), t0));
        assert_eq!(d.reserved("net").collect::<Vec<_>>(), [ip(2), ip(3)]);
        // The kernel deleted v1.
        assert_eq!(d.pass(|v| v != "v1", t0), Some(vec![]));
        assert_eq!(d.reserved("net").collect::<Vec<_>>(), [ip(3)]);
        // All gone: the reaper stops, and the next veth starts a new one.
        assert_eq!(d.pass(|_| false, t0), None);
        assert!(d.add("c4", "v4", "net", ip(4), t0));
    }

    #[test]
    fn veths_past_the_deadline_are_handed_out_once() {
        let t0 = Instant::now();
        let mut d = Drain::default();
        d.add("c1", "v1", "net", ip(2), t0);
        d.add("c2", "v2", "net", ip(3), t0 + DRAIN_DEADLINE / 2);
        let late = t0 + DRAIN_DEADLINE;
        assert_eq!(d.pass(|_| true, late), Some(vec!["v1".to_string()]));
        // While it is being deleted its address stays reserved and it is not handed out again.
        assert_eq!(d.pass(|_| true, late), Some(vec![]));
        assert_eq!(d.reserved("net").count(), 2);
        d.forget("v1");
        assert_eq!(d.reserved("net").collect::<Vec<_>>(), [ip(3)]);
    }

    #[test]
    fn wanted_addresses_are_taken_back() {
        let t0 = Instant::now();
        let mut d = Drain::default();
        d.add("c1", "v1", "net", ip(2), t0);
        d.add("c2", "v2", "net", ip(3), t0);
        d.add("c3", "v3", "other", ip(3), t0);
        assert_eq!(d.take_container("other", "c1"), None);
        assert_eq!(
            d.take_container("net", "c1"),
            Some(("v1".to_string(), ip(2)))
        );
        d.add("c1", "v1", "net", ip(2), t0);
        assert_eq!(d.take("net", Some(ip(3))), ["v2"]);
        assert_eq!(d.reserved("net").collect::<Vec<_>>(), [ip(2)]);
        assert_eq!(d.take("net", None), ["v1"]);
        assert_eq!(d.take_all(), ["v3"]);
        assert_eq!(d.pass(|_| true, t0), None);
    }
}
