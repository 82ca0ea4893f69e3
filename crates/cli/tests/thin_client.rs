//! The client stays thin: `berth` links neither the daemon, the engine nor the runtime, and
//! `berth daemon` / `berth runtime` exec the binaries next to it (pid, arguments and exit status
//! are theirs), or say clearly which file is missing.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The workspace's Cargo.lock as package name -> names of its dependencies (every version of a
/// name merged; the lock lists dependencies for all features and targets, so this over-counts,
/// never under-counts).
fn lock_graph() -> BTreeMap<String, BTreeSet<String>> {
    let lock = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../Cargo.lock");
    let text = std::fs::read_to_string(&lock).expect("reading Cargo.lock");
    let mut graph: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    let mut current: Option<String> = None;
    let mut in_deps = false;
    for line in text.lines().map(str::trim) {
        if line == "[[package]]" {
            current = None;
            in_deps = false;
        } else if let Some(name) = line.strip_prefix("name = ") {
            let name = name.trim_matches('"').to_string();
            graph.entry(name.clone()).or_default();
            current = Some(name);
        } else if line.starts_with("dependencies = [") {
            in_deps = !line.ends_with(']');
        } else if in_deps && line == "]" {
            in_deps = false;
        } else if in_deps {
            // "name", "name version" or "name version (source)"
            let dep = line.trim_end_matches(',').trim_matches('"');
            let dep = dep
                .split_whitespace()
                .next()
                .unwrap_or_default()
                .to_string();
            if let Some(c) = &current {
                graph.entry(c.clone()).or_default().insert(dep);
            }
        }
    }
    graph
}

/// Every package `root` depends on, directly or not.
fn closure(graph: &BTreeMap<String, BTreeSet<String>>, root: &str) -> BTreeSet<String> {
    let mut seen = BTreeSet::new();
    let mut todo = vec![root.to_string()];
    while let Some(p) = todo.pop() {
        for d in graph.get(&p).into_iter().flatten() {
            if seen.insert(d.clone()) {
                todo.push(d.clone());
            }
        }
    }
    seen
}

#[test]
fn the_client_does_not_depend_on_the_daemon_engine_or_runtime() {
    let graph = lock_graph();
    // the walk itself works: the daemon reaches the engine and the runtime through the lock
    let daemon = closure(&graph, "berth-daemon");
    for engine_side in ["berth-engine", "berth-runtime", "berth-image", "tokio"] {
        assert!(
            daemon.contains(engine_side),
            "{engine_side} not found: {daemon:?}"
        );
    }
    let client = closure(&graph, "berth");
    for expected in ["berth-api", "berth-usage", "clap", "hyper", "tokio"] {
        assert!(client.contains(expected), "{expected} missing: {client:?}");
    }
    for engine_side in ["berth-daemon", "berth-engine", "berth-runtime"] {
        assert!(
            !client.contains(engine_side),
            "the berth client depends on {engine_side} again (cargo tree -p berth -i {engine_side})"
        );
    }
}

/// A directory of its own holding `berth` (a hard link to the binary under test, so no copy is
/// written while another thread may fork), plus the siblings the test adds.
fn lonely_berth(name: &str) -> (PathBuf, PathBuf) {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!("thin-client-{name}"));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let berth = dir.join("berth");
    if std::fs::hard_link(env!("CARGO_BIN_EXE_berth"), &berth).is_err() {
        std::fs::copy(env!("CARGO_BIN_EXE_berth"), &berth).unwrap();
    }
    (dir, berth)
}

/// Writes an executable shell script (written and closed before anything runs it).
fn script(path: &Path, body: &str) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
}

// One test for everything that writes executables: a binary being written while another test
// thread forks would fail to run (ETXTBSY).
#[test]
fn engine_commands_exec_the_binaries_next_to_berth() {
    let (dir, berth) = lonely_berth("exec");

    // missing siblings: a clear error naming the path, status 127, nothing else run
    for (sub, bin) in [("runtime", "berth-runtime"), ("daemon", "berthd")] {
        for args in [vec![sub, "--help"], vec!["-D", sub, "--help"]] {
            let out = Command::new(&berth).args(&args).output().unwrap();
            let err = String::from_utf8_lossy(&out.stderr);
            assert_eq!(out.status.code(), Some(127), "{args:?}: {err}");
            let want = dir.join(bin);
            assert!(
                err.contains(&format!("{} not found", want.display())),
                "{args:?}: {err}"
            );
            assert!(out.stdout.is_empty(), "{args:?}");
        }
    }

    // present: exec'd in place (same pid), arguments verbatim, its exit status
    script(&dir.join("berth-runtime"), "echo \"runtime $$ $*\"; exit 7");
    script(&dir.join("berthd"), "echo \"daemon $$ $*\"; exit 3");
    for (args, word, code) in [
        (
            vec!["runtime", "--root", "/r", "run", "--bundle", "b", "c1"],
            "runtime",
            7,
        ),
        (vec!["runtime", "--help"], "runtime", 7),
        (vec!["daemon", "--help"], "daemon", 3),
        (
            vec!["daemon", "--data-root", "/d", "-H", "unix:///s"],
            "daemon",
            3,
        ),
        (
            vec!["-H", "unix:///ignored", "daemon", "--nope"],
            "daemon",
            3,
        ),
    ] {
        let child = Command::new(&berth)
            .args(&args)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let out = child.wait_with_output().unwrap();
        assert_eq!(out.status.code(), Some(code), "{args:?}");
        let passed: Vec<&str> = args
            .iter()
            .copied()
            .skip_while(|a| *a != word)
            .skip(1)
            .collect();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            format!("{word} {pid} {}\n", passed.join(" ")),
            "{args:?}"
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}
