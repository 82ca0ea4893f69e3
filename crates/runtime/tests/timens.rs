//! Time namespaces: `{"type": "time"}` with `linux.timeOffsets` (runtime-spec's objects) gives
//! the container its own boottime/monotonic clocks; the host's and the hooks' clocks stay.

mod common;
use common::*;
use serde_json::json;

fn host_uptime() -> f64 {
    std::fs::read_to_string("/proc/uptime")
        .unwrap()
        .split_whitespace()
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn container_gets_its_own_time_namespace_with_offsets() {
    if !std::path::Path::new("/proc/self/ns/time").exists() {
        panic!("this kernel has no time namespaces (Linux 5.6+ needed); the test cannot run");
    }
    let host_ns = std::fs::read_link("/proc/self/ns/time").unwrap();
    let mut b = Bundle::new("readlink /proc/self/ns/time; cut -d' ' -f1 /proc/uptime");
    b.config["linux"]["namespaces"]
        .as_array_mut()
        .unwrap()
        .push(json!({"type": "time"}));
    let ten_days = 864_000;
    b.config["linux"]["timeOffsets"] = json!({
        "boottime": {"secs": ten_days, "nanosecs": 0},
        "monotonic": {"secs": ten_days, "nanosecs": 0}
    });
    let r = root();
    b.write("/berth-test/berth-timens");
    let o = rt(
        BERTH,
        r.path(),
        &[
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            "berth-timens",
        ],
    );
    let out = text(&o);
    assert!(
        o.status.success(),
        "run: {out} {}",
        String::from_utf8_lossy(&o.stderr)
    );
    let mut lines = out.lines();
    let ns = lines.next().unwrap_or_default();
    let uptime: f64 = lines.next().unwrap_or_default().trim().parse().unwrap();
    assert_ne!(
        ns,
        host_ns.to_string_lossy(),
        "the container shares the host's time namespace"
    );
    assert!(
        uptime >= ten_days as f64 && uptime < ten_days as f64 + host_uptime() + 60.0,
        "uptime in the container: {uptime}"
    );
    // the runtime returned to the host's namespace for its later children
    assert_eq!(std::fs::read_link("/proc/self/ns/time").unwrap(), host_ns);

    // a bad clock name is refused, and nothing is left behind
    b.config["linux"]["timeOffsets"] = json!({"realtime": {"secs": 1, "nanosecs": 0}});
    b.write("/berth-test/berth-timens-bad");
    let o = rt(
        BERTH,
        r.path(),
        &[
            "run",
            "--bundle",
            b.path().to_str().unwrap(),
            "berth-timens-bad",
        ],
    );
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("timeOffsets"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        list_dir(r.path()).is_empty(),
        "left behind: {:?}",
        list_dir(r.path())
    );
    assert!(!cgroup_exists("/berth-test/berth-timens-bad"));
}
