//! runc's command line: global flags (`--root`, `--log`, `--log-format`, `--debug`,
//! `--systemd-cgroup`) then a verb with its flags. Flags take one or two dashes and `=value`;
//! flag parsing stops at the first positional argument, as in runc.
//!
//! Errors go to `--log` (a JSON line `{"level":"error","msg":...,"time":...}` with
//! `--log-format json`, logrus' text format otherwise) and to stderr; the exit status is 1.

use crate::container::{self, CreateOpts, ExecOpts};
use crate::spec;
use crate::state::Saved;
use crate::{Error, Result};
use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Default state root.
pub const DEFAULT_ROOT: &str = "/run/berth-runtime";

const USAGE: &str = "usage: berth-runtime [--root DIR] [--log FILE] [--log-format text|json] COMMAND [ARGS]

commands:
  create   --bundle B [--pid-file P] [--console-socket S] [--no-pivot] [--preserve-fds N] ID
  start    ID
  run      --bundle B [--detach] [--pid-file P] [--console-socket S] [--keep] ID
  state    ID
  list     [--format table|json] [--quiet]
  kill     [--all] ID [SIGNAL]
  delete   [--force] ID
  exec     [--detach] [--pid-file P] [--process FILE | [--env K=V] [--cwd D] [--user U[:G]] [--tty] ID CMD...] [--console-socket S] ID
  pause    ID
  resume   ID
  update   [--resources FILE|-] [--memory N] [--cpu-shares N] [--cpu-quota N] [--cpu-period N] [--pids-limit N] ID
  features";

/// Where error lines go.
struct Logger {
    file: Option<PathBuf>,
    json: bool,
}

impl Logger {
    fn error(&self, msg: &str) {
        let time = berth_sys::time::now_rfc3339_secs();
        if let Some(p) = &self.file {
            let line = if self.json {
                serde_json::json!({"level": "error", "msg": msg, "time": time}).to_string()
            } else {
                format!("time={time:?} level=error msg={msg:?}")
            };
            if let Ok(mut f) = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(p)
            {
                let _ = writeln!(f, "{line}");
            }
        }
        eprintln!("{msg}");
    }
}

/// Parsed flags of one verb.
#[derive(Debug, Default)]
struct Flags {
    vals: HashMap<String, Vec<String>>,
    bools: Vec<String>,
    pos: Vec<String>,
}

impl Flags {
    fn val(&self, k: &str) -> Option<&str> {
        self.vals.get(k).and_then(|v| v.last()).map(|s| s.as_str())
    }
    fn all(&self, k: &str) -> Vec<String> {
        self.vals.get(k).cloned().unwrap_or_default()
    }
    fn has(&self, k: &str) -> bool {
        self.bools.iter().any(|b| b == k)
    }
}

/// Parses `args` given the flags that take a value and the boolean ones; aliases map short
/// names to long ones.
fn parse_flags(
    args: &[String],
    with_val: &[&str],
    bools: &[&str],
    aliases: &[(&str, &str)],
) -> Result<Flags> {
    let mut f = Flags::default();
    let mut i = 0;
    while i < args.len() {
        let a = &args[i];
        if a == "--" {
            f.pos.extend(args[i + 1..].iter().cloned());
            break;
        }
        if !a.starts_with('-') || a == "-" {
            f.pos.extend(args[i..].iter().cloned());
            break;
        }
        let body = a.trim_start_matches('-');
        let (name, inline) = match body.split_once('=') {
            Some((n, v)) => (n, Some(v.to_string())),
            None => (body, None),
        };
        let name = aliases
            .iter()
            .find(|(s, _)| *s == name)
            .map(|(_, l)| *l)
            .unwrap_or(name);
        if with_val.contains(&name) {
            let v = match inline {
                Some(v) => v,
                None => {
                    i += 1;
                    args.get(i).cloned().ok_or_else(|| {
                        Error::invalid(format!("flag needs an argument: --{name}"))
                    })?
                }
            };
            f.vals.entry(name.to_string()).or_default().push(v);
        } else if bools.contains(&name) {
            if inline.as_deref() != Some("false") {
                f.bools.push(name.to_string());
            }
        } else {
            return Err(Error::invalid(format!(
                "flag provided but not defined: -{name}"
            )));
        }
        i += 1;
    }
    Ok(f)
}

fn one_id(f: &Flags, cmd: &str) -> Result<String> {
    match f.pos.as_slice() {
        [id] => Ok(id.clone()),
        [] => Err(Error::invalid(format!(
            "{cmd}: the container id is missing"
        ))),
        _ => Err(Error::invalid(format!(
            "{cmd}: expected 1 argument (the container id), got {}",
            f.pos.len()
        ))),
    }
}

fn preserve(f: &Flags) -> Result<i32> {
    match f.val("preserve-fds") {
        None => Ok(0),
        Some(v) => v
            .parse::<i32>()
            .ok()
            .filter(|n| *n >= 0)
            .ok_or_else(|| Error::invalid(format!("--preserve-fds: invalid number {v:?}"))),
    }
}

fn create_opts(f: &Flags, cmd: &str) -> Result<CreateOpts> {
    let id = one_id(f, cmd)?;
    let bundle = f
        .val("bundle")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    Ok(CreateOpts {
        id,
        bundle,
        pid_file: f.val("pid-file").map(abs),
        console_socket: f.val("console-socket").map(abs),
        no_pivot: f.has("no-pivot"),
        preserve_fds: preserve(f)?,
    })
}

fn abs(p: &str) -> PathBuf {
    let p = PathBuf::from(p);
    if p.is_absolute() {
        p
    } else {
        std::env::current_dir().map(|d| d.join(&p)).unwrap_or(p)
    }
}

const CREATE_VALS: &[&str] = &["bundle", "pid-file", "console-socket", "preserve-fds"];
const CREATE_BOOLS: &[&str] = &[
    "no-pivot",
    "no-new-keyring",
    "detach",
    "keep",
    "no-subreaper",
];

/// Runs the runtime with runc's arguments (without the program name); returns the exit status.
pub fn run(args: Vec<String>) -> i32 {
    let g = match parse_flags(
        &args,
        &["root", "log", "log-format", "criu", "rootless"],
        &["debug", "systemd-cgroup", "help", "h", "version", "v"],
        &[],
    ) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("{e}\n{USAGE}");
            return 1;
        }
    };
    let log = Logger {
        file: g.val("log").map(PathBuf::from),
        json: g.val("log-format") == Some("json"),
    };
    if g.has("version") || g.has("v") {
        println!(
            "berth-runtime version {}\nspec: 1.2.0",
            env!("CARGO_PKG_VERSION")
        );
        return 0;
    }
    if g.has("help") || g.has("h") || g.pos.is_empty() {
        println!("{USAGE}");
        return if g.pos.is_empty() && !g.has("help") && !g.has("h") {
            1
        } else {
            0
        };
    }
    let root = g
        .val("root")
        .map(abs)
        .unwrap_or_else(|| PathBuf::from(DEFAULT_ROOT));
    let cmd = g.pos[0].clone();
    let rest = &g.pos[1..];
    if crate::sealed_exe::needs_sealed_exe(&cmd) {
        // Returns only when the re-exec failed (or this already is the sealed copy).
        if let Err(e) = crate::sealed_exe::reexec_sealed() {
            log.error(&e.to_string());
            return 1;
        }
    }
    match dispatch(&root, &cmd, rest) {
        Ok(code) => code,
        Err(e) => {
            let msg = match &e {
                Error::Start(_) => format!("berth-runtime {cmd} failed: {e}"),
                _ => e.to_string(),
            };
            log.error(&msg);
            1
        }
    }
}

/// The binary's entry point: `berth-runtime ARGS`.
pub fn main() -> ! {
    let code = run(std::env::args().skip(1).collect());
    let _ = std::io::stdout().flush();
    std::process::exit(code)
}

fn dispatch(root: &Path, cmd: &str, rest: &[String]) -> Result<i32> {
    let bundle_alias: &[(&str, &str)] = &[("b", "bundle"), ("d", "detach")];
    match cmd {
        "create" => {
            let f = parse_flags(rest, CREATE_VALS, CREATE_BOOLS, bundle_alias)?;
            container::create(root, &create_opts(&f, "create")?)?;
            Ok(0)
        }
        "start" => {
            let f = parse_flags(rest, &[], &[], &[])?;
            container::start(root, &one_id(&f, "start")?)?;
            Ok(0)
        }
        "run" => {
            let f = parse_flags(rest, CREATE_VALS, CREATE_BOOLS, bundle_alias)?;
            let o = create_opts(&f, "run")?;
            let c = container::create(root, &o)?;
            if let Err(e) = container::start(root, &o.id) {
                let _ = container::destroy(root, &c.saved);
                return Err(e);
            }
            if f.has("detach") {
                return Ok(0);
            }
            let code = container::wait_forwarding(c.pid);
            if !f.has("keep") {
                container::destroy(root, &c.saved)?;
            }
            Ok(code)
        }
        "state" => {
            let f = parse_flags(rest, &[], &[], &[])?;
            let s = Saved::load(root, &one_id(&f, "state")?)?;
            println!(
                "{}",
                serde_json::to_string_pretty(&s.oci(root))
                    .map_err(|e| Error::invalid(e.to_string()))?
            );
            Ok(0)
        }
        "list" | "ps" => {
            let f = parse_flags(
                rest,
                &["format"],
                &["quiet"],
                &[("f", "format"), ("q", "quiet")],
            )?;
            let all = container::list(root);
            if f.has("quiet") {
                for s in &all {
                    println!("{}", s.id);
                }
            } else if f.val("format") == Some("json") {
                let v: Vec<_> = all.iter().map(|s| s.oci(root)).collect();
                println!(
                    "{}",
                    serde_json::to_string(&v).map_err(|e| Error::invalid(e.to_string()))?
                );
            } else {
                let mut rows =
                    vec![["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"].map(String::from)];
                for s in &all {
                    let o = s.oci(root);
                    rows.push([
                        o.id,
                        o.pid.to_string(),
                        o.status,
                        o.bundle,
                        o.created,
                        "root".into(),
                    ]);
                }
                print!("{}", table(&rows));
            }
            Ok(0)
        }
        "kill" => {
            let f = parse_flags(rest, &[], &["all"], &[("a", "all")])?;
            let (id, sig) = match f.pos.as_slice() {
                [id] => (id.clone(), "SIGTERM".to_string()),
                [id, s] => (id.clone(), s.clone()),
                _ => return Err(Error::invalid("kill: usage: kill [--all] ID [SIGNAL]")),
            };
            container::kill_container(root, &id, container::parse_signal(&sig)?, f.has("all"))?;
            Ok(0)
        }
        "delete" | "rm" => {
            let f = parse_flags(rest, &[], &["force"], &[("f", "force")])?;
            if f.pos.is_empty() {
                return Err(Error::invalid("delete: the container id is missing"));
            }
            for id in &f.pos {
                container::delete(root, id, f.has("force"))?;
            }
            Ok(0)
        }
        "exec" => exec(root, rest),
        "pause" | "resume" => {
            let f = parse_flags(rest, &[], &[], &[])?;
            container::pause(root, &one_id(&f, cmd)?, cmd == "pause")?;
            Ok(0)
        }
        "update" => update(root, rest),
        "features" => {
            println!("{}", features());
            Ok(0)
        }
        other => Err(Error::invalid(format!(
            "unknown command {other:?}\n{USAGE}"
        ))),
    }
}

fn table(rows: &[[String; 6]]) -> String {
    let mut w = [0usize; 6];
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            w[i] = w[i].max(c.len() + 3).max(12);
        }
    }
    let mut out = String::new();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if i == 5 {
                out.push_str(c);
            } else {
                out.push_str(&format!("{c:<width$}", width = w[i]));
            }
        }
        out.push('\n');
    }
    out
}

fn exec(root: &Path, rest: &[String]) -> Result<i32> {
    let f = parse_flags(
        rest,
        &[
            "process",
            "pid-file",
            "console-socket",
            "preserve-fds",
            "env",
            "cwd",
            "user",
            "cap",
            "additional-gids",
            "process-label",
            "apparmor",
        ],
        &["detach", "tty", "no-new-privs", "ignore-paused"],
        &[
            ("p", "process"),
            ("d", "detach"),
            ("t", "tty"),
            ("e", "env"),
            ("u", "user"),
            ("c", "cap"),
            ("g", "additional-gids"),
        ],
    )?;
    let id = f
        .pos
        .first()
        .cloned()
        .ok_or_else(|| Error::invalid("exec: the container id is missing"))?;
    let process = if let Some(p) = f.val("process") {
        let text = std::fs::read_to_string(p)
            .map_err(|e| Error::invalid(format!("--process {p}: {e}")))?;
        spec::parse_process(&text)?
    } else {
        let args: Vec<String> = f.pos[1..].to_vec();
        if args.is_empty() {
            return Err(Error::invalid(
                "exec: the command is missing (or use --process)",
            ));
        }
        let saved = Saved::load(root, &id)?;
        let mut v = serde_json::to_value(saved.config.process().clone().unwrap_or_default())
            .map_err(|e| Error::invalid(e.to_string()))?;
        v["args"] = serde_json::json!(args);
        v["terminal"] = serde_json::json!(f.has("tty"));
        if let Some(c) = f.val("cwd") {
            v["cwd"] = serde_json::json!(c);
        }
        let mut env: Vec<String> = v["env"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default();
        env.extend(f.all("env"));
        v["env"] = serde_json::json!(env);
        if let Some(u) = f.val("user") {
            let (uid, gid) = u.split_once(':').unwrap_or((u, "0"));
            let uid: u32 = uid
                .parse()
                .map_err(|_| Error::invalid(format!("--user: {u:?} is not UID[:GID]")))?;
            let gid: u32 = gid
                .parse()
                .map_err(|_| Error::invalid(format!("--user: {u:?} is not UID[:GID]")))?;
            v["user"] = serde_json::json!({"uid": uid, "gid": gid});
        }
        if f.has("no-new-privs") {
            v["noNewPrivileges"] = serde_json::json!(true);
        }
        let gids: Vec<u32> = f
            .all("additional-gids")
            .iter()
            .map(|g| {
                g.parse().map_err(|_| {
                    Error::invalid(format!("--additional-gids: {g:?} is not a number"))
                })
            })
            .collect::<Result<_>>()?;
        if !gids.is_empty() {
            v["user"]["additionalGids"] = serde_json::json!(gids);
        }
        // --cap adds to every set, as runc's exec does
        for c in f.all("cap") {
            if crate::caps::number(&c).is_none() {
                return Err(Error::invalid(format!("--cap: unknown capability {c:?}")));
            }
            if !v["capabilities"].is_object() {
                v["capabilities"] = serde_json::json!({});
            }
            for set in [
                "bounding",
                "effective",
                "permitted",
                "inheritable",
                "ambient",
            ] {
                let list = &mut v["capabilities"][set];
                if !list.is_array() {
                    *list = serde_json::json!([]);
                }
                if let Some(a) = list.as_array_mut() {
                    a.push(serde_json::json!(c));
                }
            }
        }
        spec::parse_process(&v.to_string())?
    };
    container::exec(
        root,
        &id,
        &ExecOpts {
            process: Some(process),
            detach: f.has("detach"),
            pid_file: f.val("pid-file").map(abs),
            console_socket: f.val("console-socket").map(abs),
            preserve_fds: preserve(&f)?,
        },
    )
}

fn update(root: &Path, rest: &[String]) -> Result<i32> {
    let nums = [
        "memory",
        "memory-reservation",
        "memory-swap",
        "cpu-shares",
        "cpu-quota",
        "cpu-period",
        "pids-limit",
        "blkio-weight",
    ];
    let mut vals: Vec<&str> = nums.to_vec();
    vals.extend([
        "resources",
        "cpuset-cpus",
        "cpuset-mems",
        "kernel-memory",
        "cpu-rt-period",
        "cpu-rt-runtime",
        "l3-cache-schema",
        "mem-bw-schema",
    ]);
    let f = parse_flags(rest, &vals, &[], &[("r", "resources")])?;
    let id = one_id(&f, "update")?;
    let mut v = match f.val("resources") {
        Some(p) => {
            let text = if p == "-" {
                let mut s = String::new();
                std::io::Read::read_to_string(&mut std::io::stdin(), &mut s)
                    .map_err(|e| Error::invalid(format!("--resources: {e}")))?;
                s
            } else {
                std::fs::read_to_string(p)
                    .map_err(|e| Error::invalid(format!("--resources {p}: {e}")))?
            };
            serde_json::from_str(&text).map_err(|e| Error::invalid(format!("--resources: {e}")))?
        }
        None => serde_json::json!({}),
    };
    let num = |k: &str| -> Result<Option<i64>> {
        f.val(k)
            .map(|s| {
                s.parse::<i64>()
                    .map_err(|_| Error::invalid(format!("--{k}: invalid number {s:?}")))
            })
            .transpose()
    };
    let set = |v: &mut serde_json::Value, a: &str, b: &str, x: serde_json::Value| {
        if !v[a].is_object() {
            v[a] = serde_json::json!({});
        }
        v[a][b] = x;
    };
    for (flag, sec, key) in [
        ("memory", "memory", "limit"),
        ("memory-reservation", "memory", "reservation"),
        ("memory-swap", "memory", "swap"),
        ("cpu-shares", "cpu", "shares"),
        ("cpu-quota", "cpu", "quota"),
        ("cpu-period", "cpu", "period"),
        ("pids-limit", "pids", "limit"),
        ("blkio-weight", "blockIO", "weight"),
    ] {
        if let Some(n) = num(flag)? {
            set(&mut v, sec, key, serde_json::json!(n));
        }
    }
    for (flag, key) in [("cpuset-cpus", "cpus"), ("cpuset-mems", "mems")] {
        if let Some(s) = f.val(flag) {
            set(&mut v, "cpu", key, serde_json::json!(s));
        }
    }
    crate::spec::normalize_resources(&mut v);
    let r: oci_spec::runtime::LinuxResources =
        serde_json::from_value(v).map_err(|e| Error::invalid(format!("resources: {e}")))?;
    container::update(root, &id, &r)?;
    Ok(0)
}

/// `features`: what this runtime supports, in runc's format.
pub fn features() -> String {
    let v = serde_json::json!({
        "ociVersionMin": "1.0.0",
        "ociVersionMax": "1.2.0",
        "hooks": ["prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"],
        "mountOptions": ["async","atime","bind","defaults","dev","diratime","dirsync","exec","mand","noatime","nodev","nodiratime","noexec","nomand","norelatime","nostrictatime","nosuid","private","rbind","relatime","remount","ro","rprivate","rshared","rslave","runbindable","rw","shared","slave","strictatime","suid","sync","tmpcopyup","unbindable"],
        "linux": {
            "namespaces": ["cgroup", "ipc", "mount", "network", "pid", "user", "uts"],
            "capabilities": crate::caps::NAMES,
            "cgroup": {"v1": true, "v2": true, "systemd": false, "systemdUser": false},
            "seccomp": {
                "enabled": true,
                "actions": ["SCMP_ACT_ALLOW","SCMP_ACT_ERRNO","SCMP_ACT_KILL","SCMP_ACT_KILL_PROCESS","SCMP_ACT_KILL_THREAD","SCMP_ACT_LOG","SCMP_ACT_TRACE","SCMP_ACT_TRAP"],
                "operators": ["SCMP_CMP_EQ","SCMP_CMP_GE","SCMP_CMP_GT","SCMP_CMP_LE","SCMP_CMP_LT","SCMP_CMP_MASKED_EQ","SCMP_CMP_NE"],
                "archs": ["SCMP_ARCH_X86","SCMP_ARCH_X86_64","SCMP_ARCH_X32","SCMP_ARCH_AARCH64","SCMP_ARCH_ARM"],
                "knownFlags": ["SECCOMP_FILTER_FLAG_LOG","SECCOMP_FILTER_FLAG_SPEC_ALLOW","SECCOMP_FILTER_FLAG_TSYNC"]
            },
            "apparmor": {"enabled": false},
            "selinux": {"enabled": false}
        }
    });
    serde_json::to_string_pretty(&v).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &[&str]) -> Vec<String> {
        v.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn flags_like_runc() {
        let f = parse_flags(
            &s(&["--bundle", "/b", "-pid-file=/p", "--no-pivot", "c1"]),
            CREATE_VALS,
            CREATE_BOOLS,
            &[("b", "bundle")],
        )
        .unwrap();
        assert_eq!(f.val("bundle"), Some("/b"));
        assert_eq!(f.val("pid-file"), Some("/p"));
        assert!(f.has("no-pivot"));
        assert_eq!(f.pos, vec!["c1"]);
        let f = parse_flags(
            &s(&["-d", "c1", "ls", "-l"]),
            &[],
            &["detach"],
            &[("d", "detach")],
        )
        .unwrap();
        assert!(f.has("detach"));
        assert_eq!(f.pos, vec!["c1", "ls", "-l"]);
        let e = parse_flags(&s(&["--nope", "c1"]), &[], &[], &[]).unwrap_err();
        assert!(e.to_string().contains("-nope"));
    }

    #[test]
    fn unknown_command_and_missing_id() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().to_str().unwrap();
        assert_eq!(run(s(&["--root", root, "frobnicate"])), 1);
        assert_eq!(run(s(&["--root", root, "state"])), 1);
        assert_eq!(run(s(&["--root", root, "state", "nope"])), 1);
        assert_eq!(run(s(&["--root", root, "delete", "--force", "nope"])), 0);
        assert_eq!(run(s(&["--root", root, "list", "-q"])), 0);
    }

    #[test]
    fn signals() {
        use nix::sys::signal::Signal;
        assert_eq!(container::parse_signal("KILL").unwrap(), Signal::SIGKILL);
        assert_eq!(container::parse_signal("SIGTERM").unwrap(), Signal::SIGTERM);
        assert_eq!(container::parse_signal("9").unwrap(), Signal::SIGKILL);
        assert!(container::parse_signal("NOPE").is_err());
    }
}
