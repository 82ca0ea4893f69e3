//! Where new layer trees go on disk. ext2/3/4 put a new directory in its parent's block group
//! (Orlov allocator), so every layer unpacked under `tmp/` lands in the groups of the layers
//! removed before it; and on ext4 without a journal the inode allocator steps past each inode
//! freed in the last minutes (`recently_deleted`), once for every file it creates. A pull of a
//! 200 MB, 10 000-file layer right after an `rmi` spent more than a second there. Marking
//! `tmp/` with the "top of directory hierarchy" flag (`chattr +T`, `FS_TOPDIR_FL`) makes the
//! kernel spread each directory made in it over the block groups, as it does for top-level
//! directories, i.e. unrelated trees, which layers are. Other filesystems ignore the flag or
//! refuse it; either way nothing else changes.

use std::fs::File;
use std::path::Path;

use berth_sys::file::{inode_flags, set_inode_flags};

/// `FS_TOPDIR_FL` of `linux/fs.h`.
const FS_TOPDIR_FL: libc::c_int = 0x0002_0000;

/// Sets the top-of-hierarchy flag on directory `dir`, best effort. Returns whether the flag is
/// set now.
pub(crate) fn spread_subdirectories(dir: &Path) -> bool {
    let Ok(d) = File::open(dir) else {
        return false;
    };
    let Ok(flags) = inode_flags(&d) else {
        return false;
    };
    if flags & FS_TOPDIR_FL != 0 {
        return true;
    }
    let new = flags | FS_TOPDIR_FL;
    set_inode_flags(&d, new).is_ok() && inode_flags(&d).is_ok_and(|f| f & FS_TOPDIR_FL != 0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn marks_a_directory_where_the_filesystem_has_the_flag() {
        let dir = tempfile::tempdir_in(std::env::temp_dir()).unwrap();
        let Ok(before) = inode_flags(&File::open(dir.path()).unwrap()) else {
            return; // no inode flags here (tmpfs, overlay): nothing to check
        };
        let set = spread_subdirectories(dir.path());
        let after = inode_flags(&File::open(dir.path()).unwrap()).unwrap();
        assert_eq!(set, after & FS_TOPDIR_FL != 0);
        // Nothing but the flag changed, and a second call changes nothing.
        assert_eq!(after & !FS_TOPDIR_FL, before & !FS_TOPDIR_FL);
        assert_eq!(spread_subdirectories(dir.path()), set);
        // Not a directory that exists: no flag, no panic.
        assert!(!spread_subdirectories(&dir.path().join("missing")));
    }
}
