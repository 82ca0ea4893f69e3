//! The HostConfig fields beyond the everyday ones, each either applied to the runtime spec or
//! refused with an error naming it (dockerd's wording where dockerd has one): a client's
//! setting is never dropped in silence.
//!
//! Applied: `Annotations`, `BlkioWeight`, `BlkioWeightDevice`, `BlkioDevice{Read,Write}{Bps,IOps}`,
//! `CgroupParent`, `CgroupnsMode`, `ConsoleSize`, `CpuRealtime{Period,Runtime}`,
//! `DeviceCgroupRules`, `KernelMemoryTCP`, `MemorySwappiness`, `OomScoreAdj` (and `GroupAdd`, by
//! the user lookup). Accepted as dockerd accepts them: `ContainerIDFile` (the client writes it),
//! `Isolation` `default`, `UsernsMode` `host`, `VolumeDriver` `local`, `Links` on a
//! user-defined network. Refused: the rest.

use std::os::unix::fs::{FileTypeExt, MetadataExt};
use std::path::{Component, Path, PathBuf};

use berth_api::{HostConfig, ThrottleDevice};
use oci_spec::runtime::{
    LinuxBlockIo, LinuxDeviceCgroup, LinuxDeviceType, LinuxThrottleDevice,
    LinuxThrottleDeviceBuilder, LinuxWeightDeviceBuilder,
};

/// Why `--link` is refused where dockerd makes legacy links.
pub const LEGACY_LINKS_ON_THE_DEFAULT_BRIDGE: &str = "legacy links (--link) on the default \
    bridge network are not supported by berth: use a user-defined network, where containers \
    reach each other by name";

/// Refuses what berth cannot do on Linux (or at all yet).
pub(super) fn refuse_unsupported(h: &HostConfig) -> Result<(), String> {
    if !h.cgroup.is_empty() {
        return Err(format!(
            "HostConfig.Cgroup ({:?}) is not supported: berth gives each container its own cgroup",
            h.cgroup
        ));
    }
    for (name, v) in [
        ("CpuCount", h.cpu_count as u64),
        ("CpuPercent", h.cpu_percent as u64),
        ("IOMaximumBandwidth", h.io_maximum_bandwidth),
        ("IOMaximumIOps", h.io_maximum_iops),
    ] {
        if v != 0 {
            return Err(format!("HostConfig.{name} is only supported on Windows"));
        }
    }
    if let Some(r) = h.device_requests.first() {
        let caps = r.get("Capabilities").cloned().unwrap_or_default();
        let driver = r.get("Driver").and_then(|d| d.as_str()).unwrap_or("");
        return Err(format!(
            "could not select device driver {driver:?} with capabilities: {}",
            capabilities_text(&caps)
        ));
    }
    if !matches!(h.isolation.as_str(), "" | "default") {
        return Err(format!(
            "Invalid isolation: {:?} - linux only supports 'default'",
            h.isolation
        ));
    }
    if !h.storage_opt.is_empty() {
        return Err(
            "--storage-opt is supported only for overlay over xfs with 'pquota' mount option"
                .into(),
        );
    }
    if !matches!(h.userns_mode.as_str(), "" | "host") {
        return Err(format!(
            "user namespace mode {:?} is not supported (only \"host\")",
            h.userns_mode
        ));
    }
    if !matches!(h.volume_driver.as_str(), "" | "local") {
        return Err(format!(
            "error looking up volume plugin {0}: plugin \"{0}\" not found",
            h.volume_driver
        ));
    }
    if !h.links.is_empty() {
        for l in &h.links {
            let (name, alias) = l.split_once(':').unwrap_or((l, l));
            if name.trim_start_matches('/').is_empty() || alias.trim_start_matches('/').is_empty() {
                return Err(format!("invalid link {l:?}: want NAME[:ALIAS]"));
            }
        }
        if matches!(h.network_mode.as_str(), "" | "default" | "bridge") {
            return Err(LEGACY_LINKS_ON_THE_DEFAULT_BRIDGE.into());
        }
    }
    Ok(())
}

/// Docker's rendering of a device request's capabilities (`[[gpu]]`).
fn capabilities_text(caps: &serde_json::Value) -> String {
    let sets: Vec<String> = caps
        .as_array()
        .into_iter()
        .flatten()
        .map(|set| {
            let names: Vec<&str> = set
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|c| c.as_str())
                .collect();
            format!("[{}]", names.join(" "))
        })
        .collect();
    format!("[{}]", sets.join(" "))
}

/// Whether the container gets its own cgroup namespace (`CgroupnsMode`: berth's default is
/// `private` on v1 and v2 alike; dockerd's is `host` on v1).
pub(super) fn private_cgroupns(h: &HostConfig) -> Result<bool, String> {
    match h.cgroupns_mode.as_str() {
        "" | "private" => Ok(true),
        "host" => Ok(false),
        m => Err(format!("invalid cgroup namespace mode: {m}")),
    }
}

/// `process.oomScoreAdj`.
pub(super) fn oom_score_adj(h: &HostConfig) -> Result<i32, String> {
    if !(-1000..=1000).contains(&h.oom_score_adj) {
        return Err(format!(
            "Invalid value {}, range for oom score adj is [-1000, 1000]",
            h.oom_score_adj
        ));
    }
    Ok(h.oom_score_adj as i32)
}

/// The container's cgroup path: `/berth/<id>`, or `<CgroupParent>/<id>` (a plain path, also
/// for names like `test.slice`: berth drives cgroupfs, not systemd).
pub fn cgroups_path(h: &HostConfig, id: &str) -> Result<PathBuf, String> {
    if h.cgroup_parent.is_empty() {
        return Ok(PathBuf::from(format!("/berth/{id}")));
    }
    let parent = Path::new(&h.cgroup_parent);
    if parent
        .components()
        .any(|c| matches!(c, Component::ParentDir | Component::CurDir))
    {
        return Err(format!(
            "invalid cgroup parent {:?}: '.' and '..' are not allowed",
            h.cgroup_parent
        ));
    }
    Ok(Path::new("/").join(parent).join(id))
}

/// `--device-cgroup-rule`s (`c 1:3 mr`, `a *:* rwm`), checked as dockerd checks them.
pub(super) fn device_cgroup_rules(h: &HostConfig) -> Result<Vec<LinuxDeviceCgroup>, String> {
    h.device_cgroup_rules
        .iter()
        .map(|r| parse_rule(r))
        .collect()
}

fn parse_rule(text: &str) -> Result<LinuxDeviceCgroup, String> {
    let bad = || format!("invalid device cgroup rule format: '{text}'");
    let f: Vec<&str> = text.split_whitespace().collect();
    let [kind, numbers, access] = f[..] else {
        return Err(bad());
    };
    let typ = match kind {
        "a" => LinuxDeviceType::A,
        "b" => LinuxDeviceType::B,
        "c" => LinuxDeviceType::C,
        _ => return Err(bad()),
    };
    let (major, minor) = numbers.split_once(':').ok_or_else(bad)?;
    let num = |s: &str| -> Result<Option<i64>, String> {
        match s {
            "*" => Ok(None),
            n => n.parse::<i64>().map(Some).map_err(|_| bad()),
        }
    };
    if access.is_empty()
        || access.len() > 3
        || !access.chars().all(|c| matches!(c, 'r' | 'w' | 'm'))
    {
        return Err(bad());
    }
    let mut rule = LinuxDeviceCgroup::default();
    rule.set_allow(true)
        .set_typ(Some(typ))
        .set_major(num(major)?)
        .set_minor(num(minor)?)
        .set_access(Some(access.to_string()));
    Ok(rule)
}

/// The block I/O settings, or none. Device paths are the host's block devices.
pub(super) fn block_io(h: &HostConfig) -> Result<Option<LinuxBlockIo>, String> {
    let weight_ok = |w: u16| w == 0 || (10..=1000).contains(&w);
    if !weight_ok(h.blkio_weight) {
        return Err("Range of blkio weight is from 10 to 1000".into());
    }
    let mut io = LinuxBlockIo::default();
    if h.blkio_weight > 0 {
        io.set_weight(Some(h.blkio_weight));
    }
    let mut weights = Vec::new();
    for d in &h.blkio_weight_device {
        if !weight_ok(d.weight) {
            return Err(format!(
                "invalid weight for device {}: range of blkio weight is from 10 to 1000",
                d.path
            ));
        }
        let (major, minor) = block_device(&d.path)?;
        let w = LinuxWeightDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .weight(d.weight)
            .build()
            .map_err(|e| e.to_string())?;
        weights.push(w);
    }
    if !weights.is_empty() {
        io.set_weight_device(Some(weights));
    }
    io.set_throttle_read_bps_device(throttles(&h.blkio_device_read_bps)?)
        .set_throttle_write_bps_device(throttles(&h.blkio_device_write_bps)?)
        .set_throttle_read_iops_device(throttles(&h.blkio_device_read_iops)?)
        .set_throttle_write_iops_device(throttles(&h.blkio_device_write_iops)?);
    Ok((io != LinuxBlockIo::default()).then_some(io))
}

fn throttles(list: &[ThrottleDevice]) -> Result<Option<Vec<LinuxThrottleDevice>>, String> {
    if list.is_empty() {
        return Ok(None);
    }
    let mut out = Vec::new();
    for d in list {
        let (major, minor) = block_device(&d.path)?;
        let t = LinuxThrottleDeviceBuilder::default()
            .major(major)
            .minor(minor)
            .rate(d.rate)
            .build()
            .map_err(|e| e.to_string())?;
        out.push(t);
    }
    Ok(Some(out))
}

/// The major and minor numbers of the host's block device `path`.
fn block_device(path: &str) -> Result<(i64, i64), String> {
    let m = std::fs::metadata(path).map_err(|e| format!("{path}: {e}"))?;
    if !m.file_type().is_block_device() {
        return Err(format!("{path} is not a block device"));
    }
    let rdev = m.rdev();
    Ok((
        nix::sys::stat::major(rdev) as i64,
        nix::sys::stat::minor(rdev) as i64,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::WeightDevice;

    fn host(json: serde_json::Value) -> HostConfig {
        serde_json::from_value(json).unwrap()
    }

    #[test]
    fn what_linux_cannot_do_is_refused_by_name() {
        for (json, want) in [
            (
                serde_json::json!({"Cgroup": "container:x"}),
                "HostConfig.Cgroup",
            ),
            (
                serde_json::json!({"CpuCount": 2}),
                "HostConfig.CpuCount is only supported on Windows",
            ),
            (
                serde_json::json!({"IOMaximumIOps": 5}),
                "HostConfig.IOMaximumIOps",
            ),
            (
                serde_json::json!({"DeviceRequests": [{"Driver": "", "Count": -1, "Capabilities": [["gpu"]]}]}),
                "could not select device driver \"\" with capabilities: [[gpu]]",
            ),
            (
                serde_json::json!({"Isolation": "hyperv"}),
                "Invalid isolation: \"hyperv\"",
            ),
            (
                serde_json::json!({"StorageOpt": {"size": "1G"}}),
                "--storage-opt is supported only",
            ),
            (
                serde_json::json!({"UsernsMode": "private"}),
                "user namespace mode",
            ),
            (
                serde_json::json!({"VolumeDriver": "nfs"}),
                "plugin \"nfs\" not found",
            ),
            (
                serde_json::json!({"Links": ["db:db"]}),
                "legacy links (--link) on the default bridge",
            ),
            (
                serde_json::json!({"Links": [":x"], "NetworkMode": "net"}),
                "invalid link",
            ),
        ] {
            let e = refuse_unsupported(&host(json.clone())).unwrap_err();
            assert!(e.contains(want), "{json}: {e}");
        }
        for ok in [
            serde_json::json!({}),
            serde_json::json!({"Isolation": "default", "UsernsMode": "host", "VolumeDriver": "local",
                               "ContainerIDFile": "/tmp/id", "DeviceRequests": null, "StorageOpt": null}),
            serde_json::json!({"Links": ["db:alias", "web"], "NetworkMode": "appnet"}),
        ] {
            refuse_unsupported(&host(ok.clone())).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
    }

    #[test]
    fn cgroup_modes_paths_and_oom_scores() {
        assert!(private_cgroupns(&host(serde_json::json!({}))).unwrap());
        assert!(!private_cgroupns(&host(serde_json::json!({"CgroupnsMode": "host"}))).unwrap());
        assert_eq!(
            private_cgroupns(&host(serde_json::json!({"CgroupnsMode": "shared"}))).unwrap_err(),
            "invalid cgroup namespace mode: shared"
        );
        let h = HostConfig::default();
        assert_eq!(
            cgroups_path(&h, "abc").unwrap(),
            PathBuf::from("/berth/abc")
        );
        let h = host(serde_json::json!({"CgroupParent": "test.slice"}));
        assert_eq!(
            cgroups_path(&h, "abc").unwrap(),
            PathBuf::from("/test.slice/abc")
        );
        let h = host(serde_json::json!({"CgroupParent": "/a/../b"}));
        assert!(cgroups_path(&h, "abc").is_err());
        assert_eq!(
            oom_score_adj(&host(serde_json::json!({"OomScoreAdj": -500}))).unwrap(),
            -500
        );
        assert_eq!(
            oom_score_adj(&host(serde_json::json!({"OomScoreAdj": 1001}))).unwrap_err(),
            "Invalid value 1001, range for oom score adj is [-1000, 1000]"
        );
    }

    #[test]
    fn device_cgroup_rules_parse_as_dockerd_checks_them() {
        let h =
            host(serde_json::json!({"DeviceCgroupRules": ["c 1:3 mr", "a *:* rwm", "b 8:* r"]}));
        let rules = device_cgroup_rules(&h).unwrap();
        assert_eq!(rules.len(), 3);
        assert_eq!((rules[0].major(), rules[0].minor()), (Some(1), Some(3)));
        assert_eq!(rules[1].typ(), Some(LinuxDeviceType::A));
        assert_eq!((rules[2].major(), rules[2].minor()), (Some(8), None));
        for bad in ["c 1:3", "x 1:3 r", "c 1-3 r", "c 1:3 rwx", "c a:3 r"] {
            let h = host(serde_json::json!({"DeviceCgroupRules": [bad]}));
            assert_eq!(
                device_cgroup_rules(&h).unwrap_err(),
                format!("invalid device cgroup rule format: '{bad}'")
            );
        }
    }

    #[test]
    fn block_io_weights_and_devices() {
        assert_eq!(block_io(&HostConfig::default()).unwrap(), None);
        let h = host(serde_json::json!({"BlkioWeight": 300}));
        assert_eq!(block_io(&h).unwrap().unwrap().weight(), Some(300));
        let h = host(serde_json::json!({"BlkioWeight": 5}));
        assert_eq!(
            block_io(&h).unwrap_err(),
            "Range of blkio weight is from 10 to 1000"
        );
        let h = HostConfig {
            blkio_weight_device: vec![WeightDevice {
                path: "/dev/null".into(),
                weight: 100,
            }],
            ..Default::default()
        };
        assert_eq!(block_io(&h).unwrap_err(), "/dev/null is not a block device");
        let h =
            host(serde_json::json!({"BlkioDeviceReadBps": [{"Path": "/nonexistent", "Rate": 1}]}));
        assert!(block_io(&h).unwrap_err().starts_with("/nonexistent: "));
    }
}
