use super::*;
use std::os::unix::fs::symlink;

fn tree() -> (tempfile::TempDir, Root) {
    let t = tempfile::tempdir().unwrap();
    let r = t.path().join("root");
    std::fs::create_dir_all(r.join("etc")).unwrap();
    std::fs::write(r.join("etc/passwd"), "inside").unwrap();
    std::fs::write(t.path().join("secret"), "outside").unwrap();
    symlink("/", r.join("toroot")).unwrap();
    symlink("../../../../..", r.join("up")).unwrap();
    symlink("/etc", r.join("etclink")).unwrap();
    symlink("loop2", r.join("loop1")).unwrap();
    symlink("loop1", r.join("loop2")).unwrap();
    let root = Root::open(&r).unwrap();
    (t, root)
}

#[test]
fn symlinks_stay_inside_the_root() {
    let (_t, root) = tree();
    for p in [
        "/toroot/etc/passwd",
        "/up/etc/passwd",
        "../../etc/passwd",
        "/etclink/passwd",
    ] {
        let fd = root.open_in(p, libc::O_RDONLY).unwrap();
        let s = std::fs::read_to_string(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(s, "inside", "{p}");
    }
    // The file beside the root cannot be reached by any spelling.
    for p in ["/up/secret", "/toroot/../secret", "../secret"] {
        assert!(root.open_in(p, libc::O_RDONLY).is_err(), "{p}");
    }
    assert!(root.open_in("/loop1", libc::O_RDONLY).is_err());
}

#[test]
fn resolve_in_scope() {
    let (_t, root) = tree();
    assert_eq!(root.resolve("/toroot").unwrap(), "/");
    assert_eq!(root.resolve("/up/etc").unwrap(), "/etc");
    assert_eq!(root.resolve("/etclink/passwd").unwrap(), "/etc/passwd");
    assert_eq!(
        root.resolve("/etclink/missing/x").unwrap(),
        "/etc/missing/x"
    );
    assert!(root.resolve("/loop1").is_err());
}

#[test]
fn mkdir_all_creates_inside() {
    let (t, root) = tree();
    root.mkdir_all("/toroot/new/deep").unwrap();
    assert!(t.path().join("root/new/deep").is_dir());
    root.mkdir_all("/up/x").unwrap();
    assert!(t.path().join("root/x").is_dir());
    assert!(!t.path().join("x").exists());
}

#[test]
fn read_regular_reads_a_file_through_links_inside_the_root() {
    let (t, root) = tree();
    assert_eq!(root.read_regular("/etc/passwd", 100).unwrap(), b"inside");
    assert_eq!(
        root.read_regular("/etclink/passwd", 100).unwrap(),
        b"inside"
    );
    // A link to a host path names the root's own path.
    let host_file = t.path().join("secret");
    symlink(&host_file, t.path().join("root/etc/group")).unwrap();
    assert!(matches!(
        root.read_regular("/etc/group", 100),
        Err(ReadError::Missing(_))
    ));
    symlink("../../secret", t.path().join("root/etc/shadow")).unwrap();
    assert!(matches!(
        root.read_regular("/etc/shadow", 100),
        Err(ReadError::Missing(_))
    ));
    assert!(matches!(
        root.read_regular("/loop1", 100),
        Err(ReadError::Io { .. })
    ));
}

#[test]
fn read_regular_refuses_fifos_and_devices_without_opening_them() {
    let (t, root) = tree();
    let fifo = t.path().join("root/etc/fifo");
    let c = std::ffi::CString::new(fifo.to_str().unwrap()).unwrap();
    // SAFETY: `c` is a valid C string for the call.
    assert_eq!(unsafe { libc::mkfifo(c.as_ptr(), 0o644) }, 0);
    // Nobody writes to the FIFO: an open for reading would block this test forever.
    let e = root.read_regular("/etc/fifo", 100).unwrap_err();
    assert!(
        matches!(e, ReadError::NotRegular { kind: "a FIFO", .. }),
        "{e}"
    );
    // The host's own /dev/zero, read through a root at `/`: refused, not read without end.
    let host = Root::open(Path::new("/")).unwrap();
    let e = host.read_regular("/dev/zero", 1 << 20).unwrap_err();
    assert!(
        matches!(
            e,
            ReadError::NotRegular {
                kind: "a character device",
                ..
            }
        ),
        "{e}"
    );
    let e = root.read_regular("/etc", 100).unwrap_err();
    assert!(matches!(
        e,
        ReadError::NotRegular {
            kind: "a directory",
            ..
        }
    ));
}

#[test]
fn read_regular_caps_the_size_without_reading_past_it() {
    let (t, root) = tree();
    let big = std::fs::File::create(t.path().join("root/etc/big")).unwrap();
    // Sparse: 64 GiB of apparent size costs nothing, and must not be read.
    big.set_len(64 << 30).unwrap();
    let e = root.read_regular("/etc/big", 1 << 20).unwrap_err();
    assert!(
        matches!(e, ReadError::TooLarge { limit: 1048576, .. }),
        "{e}"
    );
    assert_eq!(e.to_string(), "/etc/big is larger than 1048576 bytes");
    std::fs::write(t.path().join("root/etc/exact"), [b'x'; 10]).unwrap();
    assert_eq!(root.read_regular("/etc/exact", 10).unwrap().len(), 10);
    assert!(root.read_regular("/etc/exact", 9).is_err());
}

#[test]
fn read_at_most_stops_at_the_cap() {
    assert_eq!(read_at_most(&b"abc"[..], 3).unwrap().unwrap(), b"abc");
    assert!(read_at_most(&b"abcd"[..], 3).unwrap().is_none());
    // An endless reader is read only one byte past the cap.
    assert!(read_at_most(std::io::repeat(0), 1000).unwrap().is_none());
}
