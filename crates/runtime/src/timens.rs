//! Time namespaces (Linux 5.6+). A new one cannot be entered by the process that creates it,
//! only by its later children, and its clock offsets (`linux.timeOffsets`) must be written
//! before any process is inside. So the runtime unshares one "for children", writes the offsets
//! to `/proc/self/timens_offsets`, clones the container init into it, and then returns its own
//! children (hooks) to the original namespace.

use std::collections::HashMap;
use std::os::fd::OwnedFd;

use nix::sched::CloneFlags;

use crate::{Error, Result};

/// `CLONE_NEWTIME` (not in `nix`'s flag set).
fn newtime() -> CloneFlags {
    CloneFlags::from_bits_retain(0x80)
}

/// Rewrites runtime-spec `linux.timeOffsets` objects (`{"secs": N, "nanosecs": M}`) into the
/// `"N M"` strings that `oci-spec` models them as; anything else is left for it to judge.
pub fn normalize_offsets(config: &mut serde_json::Value) {
    let Some(offsets) = config
        .get_mut("linux")
        .and_then(|l| l.get_mut("timeOffsets"))
        .and_then(|o| o.as_object_mut())
    else {
        return;
    };
    for v in offsets.values_mut() {
        if let Some(o) = v.as_object() {
            let secs = o.get("secs").and_then(|s| s.as_i64()).unwrap_or(0);
            let nanos = o.get("nanosecs").and_then(|s| s.as_u64()).unwrap_or(0);
            *v = serde_json::Value::String(format!("{secs} {nanos}"));
        }
    }
}

/// The contents of `/proc/self/timens_offsets` for the spec's offsets.
pub fn offsets_file(offsets: &HashMap<String, String>) -> Result<String> {
    let mut clocks: Vec<(&String, &String)> = offsets.iter().collect();
    clocks.sort();
    let mut out = String::new();
    for (clock, value) in clocks {
        if clock != "monotonic" && clock != "boottime" {
            return Err(Error::invalid(format!(
                "linux.timeOffsets: unknown clock {clock:?} (monotonic or boottime)"
            )));
        }
        let mut parts = value.split_whitespace();
        let secs: i64 = parts.next().unwrap_or("0").parse().map_err(|_| {
            Error::invalid(format!(
                "linux.timeOffsets.{clock}: bad seconds in {value:?}"
            ))
        })?;
        let nanos: u32 = parts.next().unwrap_or("0").parse().map_err(|_| {
            Error::invalid(format!(
                "linux.timeOffsets.{clock}: bad nanoseconds in {value:?}"
            ))
        })?;
        if nanos >= 1_000_000_000 || parts.next().is_some() {
            return Err(Error::invalid(format!(
                "linux.timeOffsets.{clock}: {value:?} is not \"secs nanosecs\" with nanosecs < 1e9"
            )));
        }
        out.push_str(&format!("{clock} {secs} {nanos}\n"));
    }
    Ok(out)
}

/// Makes the caller's next children start in a new time namespace with `offsets` (the
/// [`offsets_file`] text); returns the caller's own namespace for [`restore_for_children`].
pub fn new_for_children(offsets: &str) -> Result<OwnedFd> {
    let own = std::fs::File::open("/proc/self/ns/time").map_err(|e| {
        Error::invalid(format!(
            "linux.namespaces: this kernel has no time namespaces ({e})"
        ))
    })?;
    let own = OwnedFd::from(own);
    nix::sched::unshare(newtime()).map_err(|e| Error::sys("unshare the time namespace", e))?;
    if !offsets.is_empty() {
        if let Err(e) = std::fs::write("/proc/self/timens_offsets", offsets) {
            let _ = restore_for_children(&own);
            return Err(Error::sys("write /proc/self/timens_offsets", e));
        }
    }
    Ok(own)
}

/// Returns the caller's future children to its own time namespace `own`.
pub fn restore_for_children(own: &OwnedFd) -> Result<()> {
    nix::sched::setns(own, newtime()).map_err(|e| Error::sys("setns back to the time namespace", e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn offsets_from_runtime_spec_objects() {
        let mut v = serde_json::json!({"linux": {"timeOffsets": {
            "monotonic": {"secs": 172800, "nanosecs": 5},
            "boottime": {"secs": -3600}
        }}});
        normalize_offsets(&mut v);
        let m: HashMap<String, String> =
            serde_json::from_value(v["linux"]["timeOffsets"].clone()).unwrap();
        assert_eq!(
            offsets_file(&m).unwrap(),
            "boottime -3600 0\nmonotonic 172800 5\n"
        );
    }

    #[test]
    fn bad_offsets_are_refused() {
        for (k, v) in [
            ("realtime", "1 0"),
            ("monotonic", "x 0"),
            ("monotonic", "1 1000000000"),
            ("boottime", "1 2 3"),
        ] {
            let m = HashMap::from([(k.to_string(), v.to_string())]);
            assert!(offsets_file(&m).is_err(), "{k} {v}");
        }
    }
}
