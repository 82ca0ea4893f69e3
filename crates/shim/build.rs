//! Build script of berth-shim: links the `berth-shim` binary (only the binary; the library and
//! the tests are left alone) statically and with its hot code packed together, so that an idle
//! shim keeps as few pages resident as possible (one shim runs per container).
//!
//! - **Static, non-PIE.** Dynamically linked, every shim maps the dynamic loader, `libc.so.6`
//!   and `libgcc_s.so.1` and dirties pages with their relocations: about 1.1 MiB of its
//!   resident set. `-C target-feature=+crt-static` would do, but it cannot be set for one
//!   package (cargo applies `RUSTFLAGS` to proc-macros too, which crt-static breaks). So the
//!   binary's link line gets `-no-pie -static`, and a directory of linker scripts named like the
//!   shared libraries rustc asks for (`-lc`, `-lgcc_s`, `-lm`) that point the linker at the
//!   static archives (`libc.a` from libc6-dev, `libgcc_eh.a`/`libgcc.a` from gcc).
//! - **Hot code first.** The kernel maps a file's page cache into a process in whole folios or
//!   fault-around windows (64 KiB here), so one function run at start-up pins its whole
//!   neighbourhood. `link/hot-symbols.txt` lists the functions a shim runs (start-up, START,
//!   idle, log output, exit): glibc's (stable names) and std's (mangled names of the current
//!   toolchain; names that no longer exist are ignored). With rust-lld (rustc's default linker
//!   on x86_64-unknown-linux-gnu since 1.90) they are placed first with
//!   `--symbol-ordering-file`. The list was made by linking with it, recording the shim's
//!   instruction-fetch page faults (`perf record -e exceptions:page_fault_user`) through a
//!   container's life, adding each faulting function and repeating until nothing new faulted.
//!
//! `BERTH_SHIM_DYNAMIC=1` links the binary the default (dynamic) way instead.

use std::env;
use std::fs;
use std::path::PathBuf;
use std::process::Command;

/// Linker scripts, by the file name the linker looks for, that send it to the static archives.
const STATIC_LIB_SCRIPTS: [(&str, &str); 3] = [
    (
        "libc.so",
        "/* berth-shim: static glibc */\nGROUP ( -l:libc.a -l:libgcc_eh.a -l:libgcc.a )\n",
    ),
    (
        "libgcc_s.so",
        "/* berth-shim: static libgcc */\nINPUT ( -l:libgcc_eh.a -l:libgcc.a )\n",
    ),
    (
        "libm.so",
        "/* berth-shim: static libm */\nINPUT ( -l:libm.a )\n",
    ),
];

/// The ordering file, relative to the package.
const HOT_SYMBOLS: &str = "link/hot-symbols.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed={HOT_SYMBOLS}");
    println!("cargo:rerun-if-env-changed=BERTH_SHIM_DYNAMIC");
    let target_os = env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    if target_os != "linux" || target_env != "gnu" || env::var_os("BERTH_SHIM_DYNAMIC").is_some() {
        return;
    }
    let out_dir = PathBuf::from(env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let scripts = out_dir.join("static-libs");
    fs::create_dir_all(&scripts).expect("creating the linker script directory");
    for (name, text) in STATIC_LIB_SCRIPTS {
        fs::write(scripts.join(name), text).expect("writing a linker script");
    }
    println!("cargo:rustc-link-arg-bins=-L{}", scripts.display());
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-static");

    if links_with_rust_lld() {
        let manifest_dir =
            PathBuf::from(env::var_os("CARGO_MANIFEST_DIR").expect("cargo sets the manifest dir"));
        let order = manifest_dir.join(HOT_SYMBOLS);
        println!(
            "cargo:rustc-link-arg-bins=-Wl,--symbol-ordering-file={}",
            order.display()
        );
        println!("cargo:rustc-link-arg-bins=-Wl,--no-warn-symbol-ordering");
    }
}

/// Whether the binary is linked by rust-lld: x86_64-unknown-linux-gnu with rustc 1.90 or later
/// and no linker chosen by the user (GNU ld has no `--symbol-ordering-file`).
fn links_with_rust_lld() -> bool {
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") {
        return false;
    }
    if env::var_os("RUSTC_LINKER").is_some() {
        return false;
    }
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    if flags.contains("linker") || flags.contains("fuse-ld") || flags.contains("self-contained") {
        return false;
    }
    let rustc = env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let Ok(out) = Command::new(rustc).arg("-vV").output() else {
        return false;
    };
    let text = String::from_utf8_lossy(&out.stdout);
    let release = text
        .lines()
        .find_map(|l| l.strip_prefix("release: "))
        .unwrap_or("");
    let mut parts = release
        .split(['.', '-'])
        .map(|p| p.parse::<u32>().unwrap_or(0));
    let (major, minor) = (parts.next().unwrap_or(0), parts.next().unwrap_or(0));
    (major, minor) >= (1, 90)
}
