//! Docker seccomp profiles (`../shared/spec/docker-default-seccomp.json` format) turned into the
//! OCI runtime spec's `linux.seccomp` for one container: architecture selection from `archMap`,
//! and each rule's `includes`/`excludes` (caps, arches, minKernel) decided against the
//! container's capability set, the host architecture and the running kernel.

use serde::Deserialize;
use serde_json::{json, Value};

/// Docker's default profile, embedded at build time.
pub const DEFAULT_PROFILE: &str = include_str!("../data/seccomp-default.json");

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    default_errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    arch_map: Vec<ArchMap>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    architectures: Vec<String>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    syscalls: Vec<Rule>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    flags: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    sub_architectures: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default, deserialize_with = "berth_api::null_default")]
    names: Vec<String>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    name: Option<String>,
    action: String,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    errno_ret: Option<u32>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    args: Option<Vec<Value>>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    includes: Filter,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    excludes: Filter,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default, deserialize_with = "berth_api::null_default")]
    caps: Vec<String>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    arches: Vec<String>,
    #[serde(default, deserialize_with = "berth_api::null_default")]
    min_kernel: Option<String>,
}

/// What a profile is decided against.
#[derive(Debug, Clone)]
pub struct Target<'a> {
    /// Docker's name of the architecture: `amd64`, `arm64`, …
    pub arch: &'a str,
    /// Kernel version `(major, minor)`.
    pub kernel: (u32, u32),
    /// The container's capabilities (`CAP_…`).
    pub caps: &'a [String],
}

impl Target<'static> {
    /// The host's architecture name as Docker spells it.
    pub fn host_arch() -> &'static str {
        match std::env::consts::ARCH {
            "x86_64" => "amd64",
            "aarch64" => "arm64",
            "x86" => "386",
            other => other,
        }
    }
}

fn seccomp_arch(docker_arch: &str) -> &'static str {
    match docker_arch {
        "amd64" => "SCMP_ARCH_X86_64",
        "386" | "x86" => "SCMP_ARCH_X86",
        "arm64" => "SCMP_ARCH_AARCH64",
        "arm" => "SCMP_ARCH_ARM",
        "ppc64le" => "SCMP_ARCH_PPC64LE",
        "s390x" => "SCMP_ARCH_S390X",
        "riscv64" => "SCMP_ARCH_RISCV64",
        _ => "",
    }
}

fn parse_kernel(v: &str) -> Option<(u32, u32)> {
    let mut it = v
        .split(|c: char| !c.is_ascii_digit())
        .filter(|s| !s.is_empty());
    Some((
        it.next()?.parse().ok()?,
        it.next().unwrap_or("0").parse().ok()?,
    ))
}

/// The running kernel's `(major, minor)`.
pub fn host_kernel() -> (u32, u32) {
    std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .ok()
        .and_then(|s| parse_kernel(&s))
        .unwrap_or((0, 0))
}

/// Converts a Docker profile (JSON text) into OCI `linux.seccomp` for `target`.
pub fn to_oci(profile_json: &str, target: &Target<'_>) -> Result<Value, String> {
    let p: Profile = serde_json::from_str(profile_json)
        .map_err(|e| format!("decoding seccomp profile failed: {e}"))?;
    let arch = seccomp_arch(target.arch);
    let mut arches: Vec<String> = Vec::new();
    if !p.architectures.is_empty() {
        arches = p.architectures.clone();
    } else {
        for m in &p.arch_map {
            if m.architecture == arch {
                arches.push(m.architecture.clone());
                arches.extend(m.sub_architectures.iter().cloned());
            }
        }
    }
    let x32 = |a: &str| a == target.arch || (target.arch == "amd64" && (a == "x32" || a == "x86"));
    let mut syscalls = Vec::new();
    for r in &p.syscalls {
        if !r.includes.arches.is_empty() && !r.includes.arches.iter().any(|a| x32(a)) {
            continue;
        }
        if !r.includes.caps.is_empty() && !r.includes.caps.iter().all(|c| target.caps.contains(c)) {
            continue;
        }
        if let Some(min) = r.includes.min_kernel.as_deref().and_then(parse_kernel) {
            if target.kernel < min {
                continue;
            }
        }
        if r.excludes.arches.iter().any(|a| a == target.arch) {
            continue;
        }
        if r.excludes.caps.iter().any(|c| target.caps.contains(c)) {
            continue;
        }
        let mut names = r.names.clone();
        if let Some(n) = &r.name {
            names.push(n.clone());
        }
        if names.is_empty() {
            return Err("seccomp profile: a rule names no syscall".into());
        }
        let mut rule = json!({ "names": names, "action": r.action });
        if let Some(e) = r.errno_ret {
            rule["errnoRet"] = json!(e);
        }
        if let Some(args) = &r.args {
            rule["args"] = json!(args);
        }
        syscalls.push(rule);
    }
    let mut out =
        json!({ "defaultAction": p.default_action, "architectures": arches, "syscalls": syscalls });
    if let Some(e) = p.default_errno_ret {
        out["defaultErrnoRet"] = json!(e);
    }
    if !p.flags.is_empty() {
        out["flags"] = json!(p.flags);
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn caps(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    fn names(v: &Value) -> Vec<String> {
        v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .flat_map(|r| {
                r["names"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap().to_string())
            })
            .collect()
    }

    #[test]
    fn default_profile_for_amd64_with_default_caps() {
        let c = caps(crate::defaults::DEFAULT_CAPS);
        let v = to_oci(
            DEFAULT_PROFILE,
            &Target {
                arch: "amd64",
                kernel: (6, 1),
                caps: &c,
            },
        )
        .unwrap();
        assert_eq!(v["defaultAction"], "SCMP_ACT_ERRNO");
        assert_eq!(v["defaultErrnoRet"], 1);
        assert_eq!(
            v["architectures"],
            json!(["SCMP_ARCH_X86_64", "SCMP_ARCH_X86", "SCMP_ARCH_X32"])
        );
        let n = names(&v);
        assert!(n.contains(&"read".to_string()));
        assert!(n.contains(&"arch_prctl".to_string()));
        assert!(
            n.contains(&"ptrace".to_string()),
            "minKernel 4.8 rule applies on 6.1"
        );
        assert!(!n.contains(&"reboot".to_string()), "needs CAP_SYS_BOOT");
        assert!(!n.contains(&"s390_runtime_instr".to_string()));
        assert!(
            n.contains(&"chroot".to_string()),
            "CAP_SYS_CHROOT is a default cap"
        );
    }

    #[test]
    fn caps_widen_the_profile() {
        let c = caps(&["CAP_SYS_ADMIN", "CAP_SYS_BOOT"]);
        let v = to_oci(
            DEFAULT_PROFILE,
            &Target {
                arch: "amd64",
                kernel: (6, 1),
                caps: &c,
            },
        )
        .unwrap();
        let n = names(&v);
        assert!(n.contains(&"reboot".to_string()));
        assert!(n.contains(&"mount".to_string()));
        // clone3 gets ENOSYS only without CAP_SYS_ADMIN.
        assert!(!v["syscalls"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r["errnoRet"] == 38));
    }

    #[test]
    fn old_kernel_drops_min_kernel_rules() {
        let v = to_oci(
            DEFAULT_PROFILE,
            &Target {
                arch: "amd64",
                kernel: (4, 4),
                caps: &[],
            },
        )
        .unwrap();
        assert!(!names(&v).contains(&"ptrace".to_string()));
    }

    #[test]
    fn malformed_profile_is_an_error() {
        assert!(to_oci(
            "{",
            &Target {
                arch: "amd64",
                kernel: (6, 1),
                caps: &[]
            }
        )
        .is_err());
    }
}
