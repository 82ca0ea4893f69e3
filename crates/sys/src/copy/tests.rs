use super::*;
use std::os::unix::fs::{symlink, MetadataExt, PermissionsExt};
use std::path::Path;

fn dir_fd(p: &Path) -> OwnedFd {
    std::fs::File::open(p).unwrap().into()
}

#[test]
fn copies_a_tree_with_links_modes_and_times() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir_all(src.join("a/b")).unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(src.join("a/b/f"), "data").unwrap();
    std::fs::set_permissions(src.join("a/b/f"), std::fs::Permissions::from_mode(0o751)).unwrap();
    std::fs::set_permissions(src.join("a"), std::fs::Permissions::from_mode(0o711)).unwrap();
    std::fs::set_permissions(&src, std::fs::Permissions::from_mode(0o750)).unwrap();
    std::fs::hard_link(src.join("a/b/f"), src.join("hard")).unwrap();
    symlink("/etc/passwd", src.join("abs")).unwrap();
    symlink("../../..", src.join("a/up")).unwrap();
    // A FIFO is copied as a FIFO (made, never opened).
    let fifo = CString::new(src.join("fifo").to_str().unwrap()).unwrap();
    // SAFETY: `fifo` is a valid C string.
    assert_eq!(unsafe { libc::mkfifo(fifo.as_ptr(), 0o640) }, 0);
    let old = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
    std::fs::File::open(src.join("a/b/f"))
        .unwrap()
        .set_modified(old)
        .unwrap();

    copy_dir_contents(&dir_fd(&src), &dir_fd(&dst)).unwrap();

    assert_eq!(std::fs::read_to_string(dst.join("a/b/f")).unwrap(), "data");
    let f = std::fs::metadata(dst.join("a/b/f")).unwrap();
    assert_eq!(f.mode() & 0o7777, 0o751);
    assert_eq!(f.mtime(), 1_000_000);
    assert_eq!(
        std::fs::metadata(dst.join("a")).unwrap().mode() & 0o7777,
        0o711
    );
    assert_eq!(f.ino(), std::fs::metadata(dst.join("hard")).unwrap().ino());
    assert_eq!(std::fs::metadata(&dst).unwrap().mode() & 0o7777, 0o750);
    assert_eq!(
        std::fs::read_link(dst.join("abs")).unwrap(),
        Path::new("/etc/passwd")
    );
    assert_eq!(
        std::fs::read_link(dst.join("a/up")).unwrap(),
        Path::new("../../..")
    );
    let ft = std::fs::symlink_metadata(dst.join("fifo")).unwrap();
    assert!(std::os::unix::fs::FileTypeExt::is_fifo(&ft.file_type()));
    assert_eq!(ft.mode() & 0o777, 0o640);
}

#[test]
fn a_linked_directory_is_copied_as_a_link_not_followed() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst, host) = (
        t.path().join("src"),
        t.path().join("dst"),
        t.path().join("host"),
    );
    for d in [&src, &dst, &host] {
        std::fs::create_dir(d).unwrap();
    }
    std::fs::write(host.join("secret"), "host").unwrap();
    symlink(&host, src.join("escape")).unwrap();
    copy_dir_contents(&dir_fd(&src), &dir_fd(&dst)).unwrap();
    assert!(std::fs::symlink_metadata(dst.join("escape"))
        .unwrap()
        .file_type()
        .is_symlink());
    assert_eq!(std::fs::read_dir(&dst).unwrap().count(), 1);
}

#[test]
fn an_existing_entry_is_an_error() {
    let t = tempfile::tempdir().unwrap();
    let (src, dst) = (t.path().join("src"), t.path().join("dst"));
    std::fs::create_dir(&src).unwrap();
    std::fs::create_dir(&dst).unwrap();
    std::fs::write(src.join("f"), "new").unwrap();
    std::fs::write(dst.join("f"), "old").unwrap();
    let e = copy_dir_contents(&dir_fd(&src), &dir_fd(&dst)).unwrap_err();
    assert_eq!(e.raw_os_error(), Some(libc::EEXIST));
    assert_eq!(std::fs::read_to_string(dst.join("f")).unwrap(), "old");
}
