//! The OCI seccomp profile compiled with libseccomp: default action, per-syscall actions with
//! argument conditions, architectures and flags. Unknown syscall names are skipped (as runc
//! does: profiles list syscalls newer or older than the host's libseccomp).
//!
//! Generating the BPF program is the slow part (milliseconds for Docker's default profile,
//! on every container start), so [`compile_cached`] keeps each generated program under the
//! runtime's root, named by a SHA-256 of the profile and the libseccomp version, and later
//! containers with the same profile load it directly ([`CompiledFilter::load`]).

use std::io::{Read, Seek};
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::{Error, Result};
use libseccomp::{
    ScmpAction, ScmpArch, ScmpArgCompare, ScmpCompareOp, ScmpFilterContext, ScmpSyscall,
};
use oci_spec::runtime::{
    Arch, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompFilterFlag, LinuxSeccompOperator,
};

const EPERM: u32 = libc::EPERM as u32;

fn action(a: LinuxSeccompAction, errno: Option<u32>) -> Result<ScmpAction> {
    Ok(match a {
        LinuxSeccompAction::ScmpActKill | LinuxSeccompAction::ScmpActKillThread => {
            ScmpAction::KillThread
        }
        LinuxSeccompAction::ScmpActKillProcess => ScmpAction::KillProcess,
        LinuxSeccompAction::ScmpActTrap => ScmpAction::Trap,
        LinuxSeccompAction::ScmpActErrno => ScmpAction::Errno(errno.unwrap_or(EPERM) as i32),
        LinuxSeccompAction::ScmpActTrace => ScmpAction::Trace(errno.unwrap_or(EPERM) as u16),
        LinuxSeccompAction::ScmpActLog => ScmpAction::Log,
        LinuxSeccompAction::ScmpActAllow => ScmpAction::Allow,
        LinuxSeccompAction::ScmpActNotify => {
            return Err(Error::Seccomp(
                "SCMP_ACT_NOTIFY is not supported (no listenerPath support)".into(),
            ))
        }
    })
}

fn arch(a: Arch) -> ScmpArch {
    match a {
        Arch::ScmpArchNative => ScmpArch::Native,
        Arch::ScmpArchX86 => ScmpArch::X86,
        Arch::ScmpArchX86_64 => ScmpArch::X8664,
        Arch::ScmpArchX32 => ScmpArch::X32,
        Arch::ScmpArchArm => ScmpArch::Arm,
        Arch::ScmpArchAarch64 => ScmpArch::Aarch64,
        Arch::ScmpArchMips => ScmpArch::Mips,
        Arch::ScmpArchMips64 => ScmpArch::Mips64,
        Arch::ScmpArchMips64n32 => ScmpArch::Mips64N32,
        Arch::ScmpArchMipsel => ScmpArch::Mipsel,
        Arch::ScmpArchMipsel64 => ScmpArch::Mipsel64,
        Arch::ScmpArchMipsel64n32 => ScmpArch::Mipsel64N32,
        Arch::ScmpArchPpc => ScmpArch::Ppc,
        Arch::ScmpArchPpc64 => ScmpArch::Ppc64,
        Arch::ScmpArchPpc64le => ScmpArch::Ppc64Le,
        Arch::ScmpArchS390 => ScmpArch::S390,
        Arch::ScmpArchS390x => ScmpArch::S390X,
        Arch::ScmpArchRiscv64 => ScmpArch::Riscv64,
    }
}

fn op(o: LinuxSeccompOperator, value_two: Option<u64>) -> ScmpCompareOp {
    match o {
        LinuxSeccompOperator::ScmpCmpNe => ScmpCompareOp::NotEqual,
        LinuxSeccompOperator::ScmpCmpLt => ScmpCompareOp::Less,
        LinuxSeccompOperator::ScmpCmpLe => ScmpCompareOp::LessOrEqual,
        LinuxSeccompOperator::ScmpCmpEq => ScmpCompareOp::Equal,
        LinuxSeccompOperator::ScmpCmpGe => ScmpCompareOp::GreaterEqual,
        LinuxSeccompOperator::ScmpCmpGt => ScmpCompareOp::Greater,
        LinuxSeccompOperator::ScmpCmpMaskedEq => ScmpCompareOp::MaskedEqual(value_two.unwrap_or(0)),
    }
}

fn e(what: &str, err: impl std::fmt::Display) -> Error {
    Error::Seccomp(format!("{what}: {err}"))
}

/// Builds (but does not load) the filter for a profile.
pub fn build(s: &LinuxSeccomp) -> Result<ScmpFilterContext> {
    let def = action(s.default_action(), s.default_errno_ret())?;
    let mut ctx = ScmpFilterContext::new_filter(def).map_err(|x| e("new filter", x))?;
    if let Some(archs) = s.architectures() {
        for a in archs {
            ctx.add_arch(arch(*a))
                .map_err(|x| e(&format!("add arch {a:?}"), x))?;
        }
    }
    if let Some(flags) = s.flags() {
        for f in flags {
            match f {
                LinuxSeccompFilterFlag::SeccompFilterFlagLog => {
                    ctx.set_ctl_log(true).map_err(|x| e("flag LOG", x))?
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagTsync => {
                    ctx.set_ctl_tsync(true).map_err(|x| e("flag TSYNC", x))?
                }
                LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                    ctx.set_ctl_ssb(true).map_err(|x| e("flag SPEC_ALLOW", x))?
                }
            }
        }
    }
    // the runtime sets no_new_privs itself when asked to
    ctx.set_ctl_nnp(false).map_err(|x| e("nnp", x))?;
    for (i, sc) in s.syscalls().iter().flatten().enumerate() {
        let act = action(sc.action(), sc.errno_ret())?;
        if act == def {
            continue;
        }
        let conds: Vec<ScmpArgCompare> = sc
            .args()
            .iter()
            .flatten()
            .map(|a| ScmpArgCompare::new(a.index() as u32, op(a.op(), a.value_two()), a.value()))
            .collect();
        for name in sc.names() {
            let Ok(nr) = ScmpSyscall::from_name(name) else {
                continue; // unknown to this libseccomp/arch: skipped like runc
            };
            let r = if conds.is_empty() {
                ctx.add_rule(act, nr)
            } else {
                ctx.add_rule_conditional(act, nr, &conds)
            };
            r.map_err(|x| e(&format!("linux.seccomp.syscalls[{i}] {name}"), x))?;
        }
    }
    Ok(ctx)
}

/// A filter ready to load: the BPF program libseccomp generated for a profile and the
/// `seccomp(2)` flags the profile asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompiledFilter {
    program: Vec<u8>,
    flags: libc::c_uint,
}

impl CompiledFilter {
    /// Installs the filter on the calling process.
    pub fn load(&self) -> Result<()> {
        crate::sys::seccomp_set_filter(&self.program, self.flags).map_err(|x| e("load filter", x))
    }
}

/// The `seccomp(2)` flags for the profile's `flags`.
fn load_flags(s: &LinuxSeccomp) -> libc::c_uint {
    let mut flags = 0;
    for f in s.flags().iter().flatten() {
        flags |= match f {
            LinuxSeccompFilterFlag::SeccompFilterFlagLog => libc::SECCOMP_FILTER_FLAG_LOG,
            LinuxSeccompFilterFlag::SeccompFilterFlagTsync => libc::SECCOMP_FILTER_FLAG_TSYNC,
            LinuxSeccompFilterFlag::SeccompFilterFlagSpecAllow => {
                libc::SECCOMP_FILTER_FLAG_SPEC_ALLOW
            }
        };
    }
    flags as libc::c_uint
}

/// Generates the BPF program for a profile (no cache).
pub fn compile(s: &LinuxSeccomp) -> Result<CompiledFilter> {
    let ctx = build(s)?;
    let fd = nix::sys::memfd::memfd_create(
        c"berth-seccomp",
        nix::sys::memfd::MemFdCreateFlag::MFD_CLOEXEC,
    )
    .map_err(|x| e("memfd_create", x))?;
    let mut file = std::fs::File::from(fd);
    ctx.export_bpf(&mut file)
        .map_err(|x| e("export filter", x))?;
    let mut program = Vec::new();
    file.rewind()
        .and_then(|_| file.read_to_end(&mut program))
        .map_err(|x| e("read the exported filter", x))?;
    Ok(CompiledFilter {
        program,
        flags: load_flags(s),
    })
}

/// The cache file name for a profile: SHA-256 over the libseccomp version, the kernel release
/// (libseccomp adapts the program to what the running kernel supports) and the profile.
fn cache_key(s: &LinuxSeccomp) -> Result<String> {
    let json = serde_json::to_vec(s).map_err(|x| e("serialize profile", x))?;
    let v = libseccomp::ScmpVersion::current().map_err(|x| e("libseccomp version", x))?;
    let mut h = Sha256::new();
    h.update(format!("libseccomp {}.{}.{}\n", v.major, v.minor, v.micro));
    let kernel = nix::sys::utsname::uname()
        .map(|u| u.release().to_string_lossy().into_owned())
        .unwrap_or_default();
    h.update(format!("kernel {kernel}\n"));
    h.update(&json);
    Ok(format!("{:x}.bpf", h.finalize()))
}

/// [`compile`], through a cache of generated programs in `dir` (created 0700 when missing).
/// A cache that cannot be read or written is bypassed, never an error.
pub fn compile_cached(dir: &Path, s: &LinuxSeccomp) -> Result<CompiledFilter> {
    let key = cache_key(s)?;
    let path = dir.join(&key);
    if let Ok(program) = std::fs::read(&path) {
        if !program.is_empty() && program.len().is_multiple_of(8) {
            return Ok(CompiledFilter {
                program,
                flags: load_flags(s),
            });
        }
    }
    let compiled = compile(s)?;
    let _ = store(dir, &key, &compiled.program);
    Ok(compiled)
}

fn store(dir: &Path, key: &str, program: &[u8]) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)?;
    // A cache: a host crash at worst costs a recompilation.
    berth_sys::write_atomic(&dir.join(key), program, berth_sys::Durability::Atomic)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builds_a_profile_with_conditions() {
        let s: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ERRNO","defaultErrnoRet":1,
                "architectures":["SCMP_ARCH_X86_64","SCMP_ARCH_X86","SCMP_ARCH_X32"],
                "syscalls":[{"names":["read","write","nosuchsyscall"],"action":"SCMP_ACT_ALLOW"},
                  {"names":["personality"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":0,"op":"SCMP_CMP_EQ"}]},
                  {"names":["clone"],"action":"SCMP_ACT_ALLOW",
                   "args":[{"index":0,"value":2114060288,"valueTwo":0,"op":"SCMP_CMP_MASKED_EQ"}]}]}"#,
        )
        .unwrap();
        build(&s).unwrap();
        let c = compile(&s).unwrap();
        assert!(!c.program.is_empty() && c.program.len().is_multiple_of(8));
        let n: LinuxSeccomp =
            serde_json::from_str(r#"{"defaultAction":"SCMP_ACT_NOTIFY"}"#).unwrap();
        assert!(build(&n).is_err());
    }

    #[test]
    fn cache_returns_the_same_program_and_keys_by_profile() {
        let dir = tempfile::tempdir().unwrap();
        let a: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW","flags":["SECCOMP_FILTER_FLAG_LOG"],
                "syscalls":[{"names":["mount"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let b: LinuxSeccomp = serde_json::from_str(
            r#"{"defaultAction":"SCMP_ACT_ALLOW",
                "syscalls":[{"names":["umount2"],"action":"SCMP_ACT_ERRNO"}]}"#,
        )
        .unwrap();
        let first = compile_cached(dir.path(), &a).unwrap();
        assert_eq!(first, compile(&a).unwrap());
        assert_eq!(first.flags, libc::SECCOMP_FILTER_FLAG_LOG as libc::c_uint);
        let files = || std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(files(), 1);
        // served from the cache: equal to a fresh compile
        assert_eq!(compile_cached(dir.path(), &a).unwrap(), first);
        let other = compile_cached(dir.path(), &b).unwrap();
        assert_ne!(other.program, first.program);
        assert_eq!(files(), 2);
        // a damaged cache entry is ignored and rewritten
        let entry = dir.path().join(cache_key(&a).unwrap());
        std::fs::write(&entry, b"bad").unwrap();
        assert_eq!(compile_cached(dir.path(), &a).unwrap(), first);
        assert_eq!(std::fs::read(&entry).unwrap(), first.program);
        // an unwritable cache directory is bypassed
        let file_not_dir = dir.path().join("f");
        std::fs::write(&file_not_dir, b"").unwrap();
        assert_eq!(compile_cached(&file_not_dir, &a).unwrap(), first);
    }
}
