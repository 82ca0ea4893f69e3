//! Loading and validating a bundle's `config.json`.
//!
//! The JSON is checked field by field for the mistakes people make (unknown namespace types,
//! unknown rlimits, relative mount destinations, empty args) so the error names the field,
//! then typed with `oci-spec`.

use crate::{Error, Result};
use oci_spec::runtime::{LinuxNamespaceType, Process, Spec};
use std::path::{Path, PathBuf};

/// Namespace type names the runtime knows.
pub const NAMESPACES: &[&str] = &[
    "pid", "network", "mount", "ipc", "uts", "user", "cgroup", "time",
];

/// rlimit names and their resource numbers.
pub const RLIMITS: &[(&str, libc::c_int)] = &[
    ("RLIMIT_CPU", libc::RLIMIT_CPU as libc::c_int),
    ("RLIMIT_FSIZE", libc::RLIMIT_FSIZE as libc::c_int),
    ("RLIMIT_DATA", libc::RLIMIT_DATA as libc::c_int),
    ("RLIMIT_STACK", libc::RLIMIT_STACK as libc::c_int),
    ("RLIMIT_CORE", libc::RLIMIT_CORE as libc::c_int),
    ("RLIMIT_RSS", libc::RLIMIT_RSS as libc::c_int),
    ("RLIMIT_NPROC", libc::RLIMIT_NPROC as libc::c_int),
    ("RLIMIT_NOFILE", libc::RLIMIT_NOFILE as libc::c_int),
    ("RLIMIT_MEMLOCK", libc::RLIMIT_MEMLOCK as libc::c_int),
    ("RLIMIT_AS", libc::RLIMIT_AS as libc::c_int),
    ("RLIMIT_LOCKS", libc::RLIMIT_LOCKS as libc::c_int),
    ("RLIMIT_SIGPENDING", libc::RLIMIT_SIGPENDING as libc::c_int),
    ("RLIMIT_MSGQUEUE", libc::RLIMIT_MSGQUEUE as libc::c_int),
    ("RLIMIT_NICE", libc::RLIMIT_NICE as libc::c_int),
    ("RLIMIT_RTPRIO", libc::RLIMIT_RTPRIO as libc::c_int),
    ("RLIMIT_RTTIME", libc::RLIMIT_RTTIME as libc::c_int),
];

/// The resource number of an rlimit name.
pub fn rlimit_number(name: &str) -> Option<libc::c_int> {
    RLIMITS.iter().find(|(n, _)| *n == name).map(|(_, r)| *r)
}

/// The clone flag of a namespace type.
pub fn ns_flag(t: LinuxNamespaceType) -> libc::c_int {
    match t {
        LinuxNamespaceType::Pid => libc::CLONE_NEWPID,
        LinuxNamespaceType::Network => libc::CLONE_NEWNET,
        LinuxNamespaceType::Mount => libc::CLONE_NEWNS,
        LinuxNamespaceType::Ipc => libc::CLONE_NEWIPC,
        LinuxNamespaceType::Uts => libc::CLONE_NEWUTS,
        LinuxNamespaceType::User => libc::CLONE_NEWUSER,
        LinuxNamespaceType::Cgroup => libc::CLONE_NEWCGROUP,
        LinuxNamespaceType::Time => 0x80,
    }
}

/// The /proc/<pid>/ns/ file name of a namespace type.
pub fn ns_file(t: LinuxNamespaceType) -> &'static str {
    match t {
        LinuxNamespaceType::Pid => "pid",
        LinuxNamespaceType::Network => "net",
        LinuxNamespaceType::Mount => "mnt",
        LinuxNamespaceType::Ipc => "ipc",
        LinuxNamespaceType::Uts => "uts",
        LinuxNamespaceType::User => "user",
        LinuxNamespaceType::Cgroup => "cgroup",
        LinuxNamespaceType::Time => "time",
    }
}

fn field_str<'a>(v: &'a serde_json::Value, k: &str) -> Option<&'a str> {
    v.get(k).and_then(|x| x.as_str())
}

/// Checks the raw JSON for errors that serde would report badly.
fn precheck(v: &serde_json::Value) -> Result<()> {
    if !v.is_object() {
        return Err(Error::invalid("config.json: not a JSON object"));
    }
    if let Some(nss) = v.pointer("/linux/namespaces").and_then(|x| x.as_array()) {
        let mut seen = Vec::new();
        for (i, ns) in nss.iter().enumerate() {
            let t = field_str(ns, "type").unwrap_or("");
            if !NAMESPACES.contains(&t) {
                return Err(Error::invalid(format!(
                    "linux.namespaces[{i}].type: unknown namespace type {t:?}"
                )));
            }
            if seen.contains(&t) {
                return Err(Error::invalid(format!(
                    "linux.namespaces[{i}].type: duplicate namespace {t:?}"
                )));
            }
            seen.push(t);
        }
    }
    if let Some(rls) = v.pointer("/process/rlimits").and_then(|x| x.as_array()) {
        for (i, rl) in rls.iter().enumerate() {
            let t = field_str(rl, "type").unwrap_or("");
            if rlimit_number(t).is_none() {
                return Err(Error::invalid(format!(
                    "process.rlimits[{i}].type: unknown rlimit {t:?}"
                )));
            }
            let soft = rl.get("soft").and_then(|x| x.as_u64()).unwrap_or(0);
            let hard = rl.get("hard").and_then(|x| x.as_u64()).unwrap_or(0);
            if soft > hard {
                return Err(Error::invalid(format!(
                    "process.rlimits[{i}] ({t}): soft limit {soft} is greater than hard limit {hard}"
                )));
            }
        }
    }
    if let Some(ms) = v.get("mounts").and_then(|x| x.as_array()) {
        for (i, m) in ms.iter().enumerate() {
            let d = field_str(m, "destination").unwrap_or("");
            if !d.starts_with('/') {
                return Err(Error::invalid(format!(
                    "mounts[{i}].destination: {d:?} is not an absolute path"
                )));
            }
        }
    }
    Ok(())
}

/// The spec's `throttleReadIOPSDevice` / `throttleWriteIOPSDevice` under the names oci-spec
/// 0.7 reads (`…IopsDevice`): without this they were dropped by the parser, unapplied and
/// unreported. `resources` is a `linux.resources` object (or `update`'s resources).
pub fn normalize_resources(resources: &mut serde_json::Value) {
    if let Some(b) = resources.get_mut("blockIO").and_then(|b| b.as_object_mut()) {
        for (spec_name, crate_name) in [
            ("throttleReadIOPSDevice", "throttleReadIopsDevice"),
            ("throttleWriteIOPSDevice", "throttleWriteIopsDevice"),
        ] {
            if let Some(x) = b.remove(spec_name) {
                b.insert(crate_name.into(), x);
            }
        }
    }
}

/// Parses config.json text into a typed spec.
pub fn parse(text: &str) -> Result<Spec> {
    let mut v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("malformed config.json: {e}")))?;
    precheck(&v)?;
    if let Some(r) = v.pointer_mut("/linux/resources") {
        normalize_resources(r);
    }
    crate::timens::normalize_offsets(&mut v);
    serde_json::from_value(v).map_err(|e| Error::invalid(format!("malformed config.json: {e}")))
}

/// Parses a process.json (for `exec --process`).
pub fn parse_process(text: &str) -> Result<Process> {
    let v: serde_json::Value = serde_json::from_str(text)
        .map_err(|e| Error::invalid(format!("malformed process.json: {e}")))?;
    let wrapped = serde_json::json!({ "process": v });
    precheck(&wrapped)?;
    let p: Process = serde_json::from_value(v)
        .map_err(|e| Error::invalid(format!("malformed process.json: {e}")))?;
    check_process(&p)?;
    Ok(p)
}

fn check_process(p: &Process) -> Result<()> {
    match p.args() {
        Some(a) if !a.is_empty() && !a[0].is_empty() => Ok(()),
        _ => Err(Error::invalid("process.args must not be empty")),
    }
}

/// A loaded bundle: its canonical directory, spec and canonical rootfs.
#[derive(Debug, Clone)]
pub struct Bundle {
    /// The bundle directory.
    pub dir: PathBuf,
    /// The typed config.
    pub spec: Spec,
    /// The rootfs directory, canonical.
    pub rootfs: PathBuf,
}

/// Loads and validates `<dir>/config.json` and the rootfs it names.
pub fn load_bundle(dir: &Path) -> Result<Bundle> {
    let dir = std::fs::canonicalize(dir)
        .map_err(|e| Error::invalid(format!("bundle {}: {e}", dir.display())))?;
    let cfg = dir.join("config.json");
    let text = std::fs::read_to_string(&cfg)
        .map_err(|e| Error::invalid(format!("open {}: {e}", cfg.display())))?;
    let spec = parse(&text)?;
    let process = spec
        .process()
        .as_ref()
        .ok_or_else(|| Error::invalid("process: missing in config.json"))?;
    check_process(process)?;
    if !process.cwd().is_absolute() {
        return Err(Error::invalid(format!(
            "process.cwd: {:?} is not an absolute path",
            process.cwd()
        )));
    }
    let root = spec
        .root()
        .as_ref()
        .ok_or_else(|| Error::invalid("root: missing in config.json"))?;
    let rp = if root.path().is_absolute() {
        root.path().clone()
    } else {
        dir.join(root.path())
    };
    let rootfs = std::fs::canonicalize(&rp)
        .map_err(|e| Error::invalid(format!("root.path: rootfs {}: {e}", rp.display())))?;
    if !rootfs.is_dir() {
        return Err(Error::invalid(format!(
            "root.path: rootfs {} is not a directory",
            rootfs.display()
        )));
    }
    if let Some(linux) = spec.linux() {
        let has_userns = linux
            .namespaces()
            .as_ref()
            .is_some_and(|n| n.iter().any(|n| n.typ() == LinuxNamespaceType::User));
        if has_userns
            && (linux.uid_mappings().as_ref().is_none_or(|m| m.is_empty())
                || linux.gid_mappings().as_ref().is_none_or(|m| m.is_empty()))
        {
            return Err(Error::invalid(
                "linux.uidMappings/gidMappings: a user namespace needs both mappings",
            ));
        }
    }
    Ok(Bundle { dir, spec, rootfs })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn errors_name_the_field() {
        let e = parse(r#"{"linux":{"namespaces":[{"type":"pid"},{"type":"bogus"}]}}"#).unwrap_err();
        assert_eq!(
            e.to_string(),
            r#"linux.namespaces[1].type: unknown namespace type "bogus""#
        );
        let e = parse(r#"{"process":{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOPE","soft":1,"hard":1}]}}"#).unwrap_err();
        assert!(e.to_string().contains("process.rlimits[0].type"), "{e}");
        let e = parse(r#"{"process":{"cwd":"/","user":{"uid":0,"gid":0},"rlimits":[{"type":"RLIMIT_NOFILE","soft":10,"hard":1}]}}"#).unwrap_err();
        assert!(e.to_string().contains("RLIMIT_NOFILE"), "{e}");
        let e = parse("{not json").unwrap_err();
        assert!(e.to_string().starts_with("malformed config.json"), "{e}");
        let e = parse(r#"{"mounts":[{"destination":"proc","type":"proc"}]}"#).unwrap_err();
        assert!(e.to_string().contains("mounts[0].destination"), "{e}");
    }

    #[test]
    fn process_json() {
        let p = parse_process(r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":["sh"]}"#).unwrap();
        assert_eq!(p.args().as_ref().unwrap()[0], "sh");
        assert!(parse_process(r#"{"cwd":"/","user":{"uid":0,"gid":0},"args":[]}"#).is_err());
    }
}
