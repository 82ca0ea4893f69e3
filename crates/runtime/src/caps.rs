//! Capability names and numbers, and applying the five OCI capability sets.

use crate::sys;
use crate::{Error, Result};
use oci_spec::runtime::{Capabilities, LinuxCapabilities};

/// Capability names in number order, and a name's number: one table with the engine's.
pub use berth_sys::caps::{number, NAMES};

/// A set as a bit mask; capabilities the kernel does not know are left out (as runc does).
pub fn mask(set: &Option<Capabilities>) -> u64 {
    let last = sys::cap_last_cap();
    let mut m = 0u64;
    if let Some(set) = set {
        for c in set {
            if let Some(n) = number(&c.to_string()) {
                if n <= last {
                    m |= 1 << n;
                }
            }
        }
    }
    m
}

/// The five sets as masks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CapSets {
    /// Bounding set.
    pub bounding: u64,
    /// Effective set.
    pub effective: u64,
    /// Permitted set.
    pub permitted: u64,
    /// Inheritable set.
    pub inheritable: u64,
    /// Ambient set.
    pub ambient: u64,
}

impl CapSets {
    /// The masks of an OCI `process.capabilities`; absent means all empty.
    pub fn from_oci(c: Option<&LinuxCapabilities>) -> Self {
        match c {
            None => CapSets::default(),
            Some(c) => CapSets {
                bounding: mask(c.bounding()),
                effective: mask(c.effective()),
                permitted: mask(c.permitted()),
                inheritable: mask(c.inheritable()),
                ambient: mask(c.ambient()),
            },
        }
    }
}

/// Drops every capability not in `bounding` from the bounding set (needs CAP_SETPCAP, so
/// before the user switch).
pub fn drop_bounding(bounding: u64) -> Result<()> {
    for n in 0..=sys::cap_last_cap() {
        if bounding & (1 << n) == 0 {
            sys::capbset_drop(n).map_err(|e| {
                Error::sys(
                    format!(
                        "drop {} from the bounding set",
                        NAMES.get(n as usize).unwrap_or(&"?")
                    ),
                    e,
                )
            })?;
        }
    }
    Ok(())
}

/// Sets effective/permitted/inheritable, then the ambient set.
pub fn apply(sets: &CapSets) -> Result<()> {
    sys::capset(sets.effective, sets.permitted, sets.inheritable)
        .map_err(|e| Error::sys("capset", e))?;
    let _ = sys::ambient_clear();
    for n in 0..=sys::cap_last_cap() {
        if sets.ambient & (1 << n) != 0 {
            // raising needs the cap in permitted and inheritable; runc ignores failures here
            let _ = sys::ambient_raise(n);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mask_of_a_set() {
        let set: Capabilities = [
            oci_spec::runtime::Capability::Kill,
            oci_spec::runtime::Capability::NetRaw,
        ]
        .into_iter()
        .collect();
        assert_eq!(mask(&Some(set)), (1 << 5) | (1 << 13));
    }
}
