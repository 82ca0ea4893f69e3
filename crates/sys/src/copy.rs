//! Copying a directory tree by descriptors, never following a symbolic link.
//!
//! [`copy_dir_contents`] is Docker's volume copy-up: what an image has at a mount path goes
//! into an empty new volume with owners, modes, times, symbolic links, device nodes, FIFOs and
//! hard links kept (as `cp -a` and Docker's `fs.CopyDir`). Every entry is reached by a single
//! name under a directory descriptor and opened with `O_NOFOLLOW`, so a link in the image (or
//! one swapped in while we copy) is copied as a link and never leads out of the tree.
//! Extended attributes are not copied.

use std::collections::HashMap;
use std::ffi::CString;
use std::io;
use std::os::fd::{AsRawFd, OwnedFd, RawFd};
use std::rc::Rc;

use crate::at::{self, create_at, cstring as cstr, readlinkat};
use crate::root::{fstat, is_type};

fn check(rc: libc::c_int) -> io::Result<()> {
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// Sets owner (not following a final link) and times of `name` in `dirfd` from `st`.
fn own_and_time(dirfd: RawFd, name: &CString, st: &libc::stat) -> io::Result<()> {
    at::fchownat_nofollow(dirfd, name.as_bytes(), st.st_uid, st.st_gid)?;
    at::utimensat_nofollow(dirfd, name.as_bytes(), &timespecs(st))
}

/// Sets owner, then mode (chown may clear set-id bits), then times, on a descriptor of a file
/// or directory we created.
fn finish_fd(fd: &OwnedFd, st: &libc::stat) -> io::Result<()> {
    std::os::unix::fs::fchown(fd, Some(st.st_uid), Some(st.st_gid))?;
    at::fchmod(fd.as_raw_fd(), st.st_mode & 0o7777)?;
    at::futimens(fd.as_raw_fd(), &timespecs(st))
}

/// The access and modification times of `st`, as utimensat and futimens take them.
fn timespecs(st: &libc::stat) -> [libc::timespec; 2] {
    [
        libc::timespec {
            tv_sec: st.st_atime,
            tv_nsec: st.st_atime_nsec,
        },
        libc::timespec {
            tv_sec: st.st_mtime,
            tv_nsec: st.st_mtime_nsec,
        },
    ]
}

/// Copies what directory `src` holds into directory `dst` (both opened `O_RDONLY |
/// O_DIRECTORY`), recursively: directories, regular files, symbolic links (as links), device
/// nodes, FIFOs and sockets, with owners, modes and times; files that are hard links of each
/// other in `src` are hard links of each other in `dst`. Last, `dst` itself takes `src`'s
/// owner, mode and times (as `cp -a src/. dst/`: a volume takes the image directory's owner
/// and mode). An entry that already exists in `dst` is an error (`EEXIST`).
pub fn copy_dir_contents(src: &OwnedFd, dst: &OwnedFd) -> io::Result<()> {
    let mut links = HashMap::new();
    copy_dir(src, &Rc::new(dst.try_clone()?), &mut links)?;
    finish_fd(dst, &fstat(src.as_raw_fd())?)
}

/// A hard-linked inode's first copy: the directory it is in and its name there.
type Links = HashMap<(u64, u64), (Rc<OwnedFd>, CString)>;

/// The names in directory `fd`, `.` and `..` left out.
fn names(fd: &OwnedFd) -> io::Result<Vec<Vec<u8>>> {
    use std::os::unix::ffi::OsStrExt;
    let mut out = Vec::new();
    // The directory the descriptor pins, whatever its path has become meanwhile.
    for e in std::fs::read_dir(format!("/proc/self/fd/{}", fd.as_raw_fd()))? {
        out.push(e?.file_name().as_bytes().to_vec());
    }
    out.sort();
    Ok(out)
}

fn copy_dir(src: &OwnedFd, dst: &Rc<OwnedFd>, links: &mut Links) -> io::Result<()> {
    let (s, d) = (src.as_raw_fd(), dst.as_raw_fd());
    for raw in names(src)? {
        let name = cstr(&raw)?;
        let st = match stat_name(s, &name) {
            Ok(st) => st,
            Err(e) if e.raw_os_error() == Some(libc::ENOENT) => continue, // gone meanwhile
            Err(e) => return Err(e),
        };
        match st.st_mode & libc::S_IFMT {
            libc::S_IFDIR => {
                at::mkdirat(d, name.as_bytes(), 0o700)?;
                let sub_src = create_at(s, name.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
                let sub_dst = create_at(d, name.as_bytes(), libc::O_RDONLY | libc::O_DIRECTORY, 0)?;
                let sub_dst = Rc::new(sub_dst);
                copy_dir(&sub_src, &sub_dst, links)?;
                finish_fd(&sub_dst, &fstat(sub_src.as_raw_fd())?)?;
            }
            libc::S_IFREG => copy_file(s, dst, &name, &st, links)?,
            libc::S_IFLNK => {
                at::symlinkat(readlinkat(s, name.as_bytes())?, d, name.as_bytes())?;
                own_and_time(d, &name, &st)?;
            }
            _ => {
                // The type bits come from the source.
                at::mknodat(d, name.as_bytes(), st.st_mode & libc::S_IFMT, st.st_rdev)?;
                own_and_time(d, &name, &st)?;
                // chmod through a pinned O_PATH descriptor: never through a link.
                let pinned = create_at(d, name.as_bytes(), libc::O_PATH, 0)?;
                if fstat(pinned.as_raw_fd())?.st_mode & libc::S_IFMT != st.st_mode & libc::S_IFMT {
                    return Err(io::Error::from_raw_os_error(libc::EXDEV));
                }
                at::chmod_pinned(pinned.as_raw_fd(), st.st_mode & 0o7777)?;
            }
        }
    }
    Ok(())
}

/// `fstatat(dirfd, name, AT_SYMLINK_NOFOLLOW)`.
fn stat_name(dirfd: RawFd, name: &CString) -> io::Result<libc::stat> {
    // SAFETY: stat is plain old data; zeroed is a valid value.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `name` is a valid C string and `st` a valid out pointer.
    check(unsafe { libc::fstatat(dirfd, name.as_ptr(), &mut st, libc::AT_SYMLINK_NOFOLLOW) })?;
    Ok(st)
}

fn copy_file(
    s: RawFd,
    dst: &Rc<OwnedFd>,
    name: &CString,
    st: &libc::stat,
    links: &mut Links,
) -> io::Result<()> {
    let key = (st.st_dev, st.st_ino);
    if st.st_nlink > 1 {
        if let Some((dir, first)) = links.get(&key) {
            // A final link is not followed.
            return at::linkat(
                dir.as_raw_fd(),
                first.as_bytes(),
                dst.as_raw_fd(),
                name.as_bytes(),
            );
        }
    }
    let from = create_at(
        s,
        name.as_bytes(),
        libc::O_RDONLY | libc::O_NONBLOCK | libc::O_NOCTTY,
        0,
    )?;
    let now = fstat(from.as_raw_fd())?;
    if !is_type(&now, libc::S_IFREG) || now.st_ino != st.st_ino {
        // Swapped for something else since it was listed.
        return Err(io::Error::from_raw_os_error(libc::EXDEV));
    }
    let to = create_at(
        dst.as_raw_fd(),
        name.as_bytes(),
        libc::O_WRONLY | libc::O_CREAT | libc::O_EXCL,
        0o600,
    )?;
    let (mut r, mut w) = (std::fs::File::from(from), std::fs::File::from(to));
    io::copy(&mut r, &mut w)?;
    let to = OwnedFd::from(w);
    finish_fd(&to, st)?;
    if st.st_nlink > 1 {
        links.insert(key, (Rc::clone(dst), name.clone()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
