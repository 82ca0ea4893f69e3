//! CVE-2019-5736: the processes berth-runtime puts into a container run from a sealed memfd
//! copy of its binary, never from the host's file.

mod common;
use common::*;
use std::io::Write;

#[test]
fn container_init_runs_from_a_sealed_copy_of_the_runtime() {
    let b = Bundle::new("sleep 1000");
    let r = root();
    let id = "sealed-exe";
    b.write(&format!("/berth-test/{id}"));
    let pid = create_with_pid(BERTH, r.path(), &b, id);
    // The init waits for `start` still running the runtime's image: its exe is the copy.
    let exe = std::fs::read_link(format!("/proc/{pid}/exe")).unwrap();
    let host = std::fs::canonicalize(BERTH).unwrap();
    // Writing through the magic link reaches the sealed copy, which refuses.
    let written = std::fs::OpenOptions::new()
        .write(true)
        .open(format!("/proc/{pid}/exe"))
        .and_then(|mut f| f.write_all(b"overwritten"));
    let d = rt(BERTH, r.path(), &["delete", "--force", id]);
    assert!(d.status.success(), "delete: {}", text(&d));
    assert!(
        exe.to_string_lossy().starts_with("/memfd:berth-runtime"),
        "init runs from {} (host binary {})",
        exe.display(),
        host.display()
    );
    assert!(written.is_err(), "the runtime binary took a write");
}
