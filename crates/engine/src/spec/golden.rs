//! Golden tests: the `config.json` berth writes for a table of `docker run` flag sets, and the
//! `process.json` it writes for a table of `docker exec` flag sets, compared with reviewed files
//! under `crates/engine/tests/golden/` (see the README there).
//!
//! Each case is the `POST /containers/create` body the docker CLI sends for the flags, turned into
//! a [`SpecInput`] the way `start_locked` in engine.rs does. Set `BERTH_UPDATE_GOLDEN=1` to
//! rewrite the files instead of comparing, then review the diff.

use std::path::{Path, PathBuf};

use berth_api::{ContainerConfig, ContainerCreateRequest, HostConfig};
use serde_json::{json, Value};

use oci_spec::runtime::Spec;

use super::{
    build, bundle_process, exec_process, process_to_json, to_json, ExecProcessInput, SpecInput,
    VolumeBind,
};
use crate::defaults::DEFAULT_CAPS;
use crate::seccomp;
use crate::user::ResolvedUser;

/// The container ID every case uses.
const ID: &str = "4f1c5a2b9d3e8f7a6b5c4d3e2f1a0b9c8d7e6f5a4b3c2d1e0f9a8b7c6d5e4f3a";
/// The engine's data root in these cases (`--data-root`).
const DATA_ROOT: &str = "/var/lib/berth";
/// The engine's default `--init` binary.
const INIT: &str = "/usr/local/libexec/berth/docker-init";
/// What replaces the host's own hostname (`--network host`) in the files.
const HOST_HOSTNAME: &str = "<host-hostname>";
/// What replaces `linux.seccomp` when it is Docker's default profile for the default capabilities
/// (written once, to `seccomp-default.json`).
const SECCOMP_DEFAULT: &str = "<seccomp-default.json>";

/// One `docker run`: its command line (documentation), the create body the CLI sends, and what
/// the engine resolves beside it (named volumes, the `container:` network's namespace).
struct RunCase {
    name: &'static str,
    docker: &'static str,
    body: Value,
    user: Option<ResolvedUser>,
    volumes: Vec<VolumeBind>,
    netns_path: Option<&'static str>,
}

fn run_case(name: &'static str, docker: &'static str, body: Value) -> RunCase {
    RunCase {
        name,
        docker,
        body,
        user: None,
        volumes: vec![],
        netns_path: None,
    }
}

/// The table of `docker run` flag sets (the image is busybox: `Env: [PATH=…]`, `Cmd: [sh]`).
fn run_cases() -> Vec<RunCase> {
    vec![
        run_case("plain", "docker run busybox", json!({})),
        RunCase {
            user: Some(ResolvedUser {
                uid: 1000,
                gid: 1000,
                additional_gids: vec![],
                home: "/".into(),
            }),
            ..run_case(
                "user",
                "docker run --user 1000:1000 busybox",
                json!({"User": "1000:1000"}),
            )
        },
        run_case(
            "env",
            "docker run -e FOO=bar --env HOME=/tmp -e PATH=/opt/bin busybox",
            json!({"Env": ["FOO=bar", "HOME=/tmp", "PATH=/opt/bin"]}),
        ),
        run_case(
            "workdir",
            "docker run --workdir /app busybox",
            json!({"WorkingDir": "/app"}),
        ),
        run_case(
            "privileged",
            "docker run --privileged busybox",
            json!({"HostConfig": {"Privileged": true}}),
        ),
        run_case(
            "cap-add-drop",
            "docker run --cap-add NET_ADMIN --cap-add sys_ptrace --cap-drop MKNOD busybox",
            json!({"HostConfig": {"CapAdd": ["NET_ADMIN", "sys_ptrace"], "CapDrop": ["MKNOD"]}}),
        ),
        run_case(
            "read-only",
            "docker run --read-only busybox",
            json!({"HostConfig": {"ReadonlyRootfs": true}}),
        ),
        run_case(
            "resources",
            "docker run --memory 64m --memory-reservation 32m --cpus 1.5 --cpu-shares 512 --cpuset-cpus 0-1 --pids-limit 100 busybox",
            json!({"HostConfig": {"Memory": 67108864, "MemoryReservation": 33554432, "NanoCpus": 1500000000u64, "CpuShares": 512, "CpusetCpus": "0-1", "PidsLimit": 100}}),
        ),
        run_case(
            "ulimit",
            "docker run --ulimit nofile=1024:2048 --ulimit nproc=512 --ulimit core=-1 busybox",
            json!({"HostConfig": {"Ulimits": [
                {"Name": "nofile", "Soft": 1024, "Hard": 2048},
                {"Name": "nproc", "Soft": 512, "Hard": 512},
                {"Name": "core", "Soft": -1, "Hard": -1}
            ]}}),
        ),
        RunCase {
            volumes: vec![VolumeBind {
                source: PathBuf::from(format!("{DATA_ROOT}/volumes/cache/_data")),
                destination: "/cache".into(),
                read_only: false,
            }],
            ..run_case(
                "volumes",
                "docker run -v /srv/data:/data:ro -v /srv/shared:/shared/sub:rshared -v cache:/cache busybox",
                json!({"HostConfig": {"Binds": ["/srv/data:/data:ro", "/srv/shared:/shared/sub:rshared", "cache:/cache"]}}),
            )
        },
        run_case(
            "tmpfs",
            "docker run --tmpfs /run:size=64m,exec --tmpfs /tmp busybox",
            json!({"HostConfig": {"Tmpfs": {"/run": "size=64m,exec", "/tmp": ""}}}),
        ),
        run_case(
            "network-none",
            "docker run --network none busybox",
            json!({"HostConfig": {"NetworkMode": "none"}}),
        ),
        run_case(
            "network-host",
            "docker run --network host busybox",
            json!({"HostConfig": {"NetworkMode": "host"}}),
        ),
        RunCase {
            netns_path: Some("/proc/4242/ns/net"),
            ..run_case(
                "network-container",
                "docker run --network container:web busybox",
                json!({"HostConfig": {"NetworkMode": "container:web"}}),
            )
        },
        run_case(
            "security-opt",
            "docker run --security-opt no-new-privileges --security-opt seccomp=unconfined busybox",
            json!({"HostConfig": {"SecurityOpt": ["no-new-privileges", "seccomp=unconfined"]}}),
        ),
        run_case(
            "device",
            "docker run --device /dev/null:/dev/mynull:rw busybox",
            json!({"HostConfig": {"Devices": [{"PathOnHost": "/dev/null", "PathInContainer": "/dev/mynull", "CgroupPermissions": "rw"}]}}),
        ),
        run_case(
            "sysctl",
            "docker run --sysctl net.ipv4.ip_forward=1 busybox",
            json!({"HostConfig": {"Sysctls": {"net.ipv4.ip_forward": "1"}}}),
        ),
        run_case(
            "tty",
            "docker run -it busybox",
            json!({"Tty": true, "OpenStdin": true, "AttachStdin": true, "StdinOnce": true}),
        ),
        run_case(
            "init-hostname-shm",
            "docker run --init --hostname web --shm-size 128m busybox",
            json!({"Hostname": "web", "HostConfig": {"Init": true, "ShmSize": 134217728}}),
        ),
        run_case(
            "host-namespaces",
            "docker run --pid host --ipc host --uts host busybox",
            json!({"HostConfig": {"PidMode": "host", "IpcMode": "host", "UTSMode": "host"}}),
        ),
    ]
}

/// The create body merged with the image's config (as `merge_image_config` does for busybox).
fn request(body: &Value) -> (ContainerConfig, HostConfig) {
    let mut body = body.clone();
    body["Image"] = json!("busybox");
    let req: ContainerCreateRequest = serde_json::from_value(body).unwrap();
    let mut c = req.config;
    let mut env =
        vec!["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".to_string()];
    for kv in &c.env {
        let k = kv.split('=').next().unwrap_or("");
        env.retain(|e| e.split('=').next() != Some(k));
        env.push(kv.clone());
    }
    c.env = env;
    if c.entrypoint.0.is_empty() && c.cmd.0.is_empty() {
        c.cmd.0 = vec!["sh".into()];
    }
    (c, req.host_config)
}

/// The host's hard limits in these cases: RLIMIT_NOFILE is capped at 1048576.
fn rlimit_hard(t: &str) -> Option<u64> {
    (t == "RLIMIT_NOFILE").then_some(1 << 20)
}

/// The spec of one case.
fn run_spec(case: &RunCase) -> Result<Spec, String> {
    let (config, host) = request(&case.body);
    let dir = PathBuf::from(format!("{DATA_ROOT}/containers/{ID}"));
    let rootfs = dir.join("rootfs");
    let etc_files = vec![
        (dir.join("hostname"), "/etc/hostname"),
        (dir.join("hosts"), "/etc/hosts"),
        (dir.join("resolv.conf"), "/etc/resolv.conf"),
    ];
    let mut args: Vec<String> = config.entrypoint.0.clone();
    args.extend(config.cmd.0.iter().cloned());
    let init = Path::new(INIT);
    let hard = rlimit_hard;
    build(&SpecInput {
        id: ID,
        netns_path: case.netns_path.map(PathBuf::from),
        config: &config,
        host: &host,
        rootfs: &rootfs,
        args,
        user: case.user.clone().unwrap_or(ResolvedUser {
            home: "/root".into(),
            ..Default::default()
        }),
        etc_files,
        volumes: case.volumes.clone(),
        init_path: (host.init == Some(true)).then_some(init),
        default_ulimits: &[],
        rlimit_hard: &hard,
        kernel: (6, 1),
        cap_bounding: u64::MAX,
    })
}

/// Docker's default seccomp profile for the default capabilities, as berth turns it into OCI.
fn default_seccomp() -> Value {
    let caps: Vec<String> = DEFAULT_CAPS.iter().map(|c| c.to_string()).collect();
    let target = seccomp::Target {
        arch: seccomp::Target::host_arch(),
        kernel: (6, 1),
        caps: &caps,
    };
    serde_json::to_value(seccomp::to_oci(seccomp::DEFAULT_PROFILE, &target).unwrap()).unwrap()
}

/// Replaces what depends on the host (its hostname) and the default seccomp profile.
fn normalise(mut v: Value) -> Value {
    let host = nix::unistd::gethostname()
        .ok()
        .and_then(|s| s.into_string().ok())
        .unwrap_or_default();
    if !host.is_empty() && v["hostname"] == json!(host) {
        v["hostname"] = json!(HOST_HOSTNAME);
        if let Some(env) = v["process"]["env"].as_array_mut() {
            for e in env {
                if e.as_str() == Some(&format!("HOSTNAME={host}")) {
                    *e = json!(format!("HOSTNAME={HOST_HOSTNAME}"));
                }
            }
        }
    }
    if v["linux"].get("seccomp") == Some(&default_seccomp()) {
        v["linux"]["seccomp"] = json!(SECCOMP_DEFAULT);
    }
    v
}

fn golden_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden")
}

/// Compares `actual` with the golden file `rel` (or rewrites it under `BERTH_UPDATE_GOLDEN=1`);
/// returns a description of the mismatch.
fn check(rel: &str, actual: &Value) -> Option<String> {
    let path = golden_dir().join(rel);
    let text = serde_json::to_string_pretty(actual).unwrap() + "\n";
    if std::env::var_os("BERTH_UPDATE_GOLDEN").is_some() {
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
        return None;
    }
    match std::fs::read_to_string(&path) {
        Ok(want) if want == text => None,
        Ok(want) => Some(format!(
            "{rel} differs (BERTH_UPDATE_GOLDEN=1 rewrites it):\n--- want\n{want}\n+++ got\n{text}"
        )),
        Err(e) => Some(format!("{rel}: {e} (BERTH_UPDATE_GOLDEN=1 writes it)")),
    }
}

#[cfg(target_arch = "x86_64")]
#[test]
fn golden_run_specs() {
    let mut failures = Vec::new();
    failures.extend(check("seccomp-default.json", &default_seccomp()));
    for case in run_cases() {
        let spec =
            run_spec(&case).unwrap_or_else(|e| panic!("{} ({}): {e}", case.name, case.docker));
        // What the engine writes to config.json.
        let v: Value = serde_json::from_slice(&to_json(&spec)).unwrap();
        failures.extend(check(&format!("run/{}.json", case.name), &normalise(v)));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn golden_cases_are_documented() {
    let exec: Vec<(String, &str)> = exec_cases()
        .iter()
        .map(|c| (format!("exec/{}.json", c.name), c.docker))
        .collect();
    let readme = std::fs::read_to_string(golden_dir().join("README.md")).unwrap();
    let run = run_cases()
        .iter()
        .map(|c| (format!("run/{}.json", c.name), c.docker))
        .collect::<Vec<_>>();
    for (file, docker) in run.into_iter().chain(exec) {
        assert!(
            readme.contains(&format!("`{file}` | `{docker}`")),
            "README.md does not describe {file} ({docker})"
        );
    }
}

/// One `docker exec`: its command line, the exec-create body the CLI sends, the user the
/// engine resolves for `-u`, and the `docker run` case whose container it runs in.
struct ExecCase {
    name: &'static str,
    docker: &'static str,
    body: Value,
    user: Option<ResolvedUser>,
    container: &'static str,
}

fn exec_case(name: &'static str, docker: &'static str, body: Value) -> ExecCase {
    ExecCase {
        name,
        docker,
        body,
        user: None,
        container: "plain",
    }
}

/// The table of `docker exec` flag sets (`c` is a container started by a run case).
fn exec_cases() -> Vec<ExecCase> {
    let app = ResolvedUser {
        uid: 1000,
        gid: 1000,
        additional_gids: vec![1000, 27],
        home: "/home/app".into(),
    };
    vec![
        exec_case("plain", "docker exec c ls -l", json!({"Cmd": ["ls", "-l"]})),
        ExecCase {
            user: Some(app.clone()),
            ..exec_case(
                "user",
                "docker exec -u app c id",
                json!({"Cmd": ["id"], "User": "app"}),
            )
        },
        exec_case(
            "env",
            "docker exec -e FOO=bar -e PATH=/opt/bin c env",
            json!({"Cmd": ["env"], "Env": ["FOO=bar", "PATH=/opt/bin"]}),
        ),
        exec_case(
            "workdir",
            "docker exec -w /tmp c pwd",
            json!({"Cmd": ["pwd"], "WorkingDir": "/tmp"}),
        ),
        exec_case(
            "tty",
            "docker exec -it c sh",
            json!({"Cmd": ["sh"], "Tty": true, "AttachStdin": true}),
        ),
        exec_case(
            "privileged",
            "docker exec --privileged c sh",
            json!({"Cmd": ["sh"], "Privileged": true}),
        ),
        ExecCase {
            container: "tty",
            ..exec_case(
                "no-tty-in-tty-container",
                "docker exec c ls (in a container run with -it)",
                json!({"Cmd": ["ls"]}),
            )
        },
        ExecCase {
            user: Some(app),
            container: "security-opt",
            ..exec_case(
                "all",
                "docker exec -it -u app -e A=1 -w /srv --privileged c sh (in the security-opt container)",
                json!({"Cmd": ["sh"], "Tty": true, "User": "app", "Env": ["A=1"], "WorkingDir": "/srv", "Privileged": true}),
            )
        },
    ]
}

#[test]
fn golden_exec_processes() {
    let mut failures = Vec::new();
    let runs = run_cases();
    for case in exec_cases() {
        let run = runs.iter().find(|r| r.name == case.container).unwrap();
        let spec = run_spec(run).unwrap();
        let cfg: berth_api::ExecConfig = serde_json::from_value(case.body.clone()).unwrap();
        // As exec_launch: the container's process read back from its config.json.
        let base = bundle_process(&to_json(&spec)).unwrap();
        let input = ExecProcessInput {
            config: &cfg,
            user: case.user.clone(),
            cap_bounding: u64::MAX,
        };
        let p = exec_process(&base, &input).unwrap();
        let p: Value = serde_json::from_slice(&process_to_json(&p)).unwrap();
        failures.extend(check(&format!("exec/{}.json", case.name), &p));
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
