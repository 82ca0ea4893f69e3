//! Build script of berth-shim: links the `berth-shim` binary (only the binary; the library and
//! the tests are left alone) statically and with its hot code packed together, so that an idle
//! shim keeps as few pages resident as possible (one shim runs per container).
//!
//! - **Static, non-PIE** (`build-support/static_link.rs`). Dynamically linked, every shim
//!   maps the dynamic loader, `libc.so.6` and `libgcc_s.so.1` and dirties pages with their
//!   relocations: about 1.1 MiB of its resident set.
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
use std::path::PathBuf;
use std::process::Command;

include!("../../build-support/static_link.rs");

/// The ordering file, relative to the package.
const HOT_SYMBOLS: &str = "link/hot-symbols.txt";

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_link.rs");
    println!("cargo:rerun-if-changed={HOT_SYMBOLS}");
    if !static_link_wanted("BERTH_SHIM_DYNAMIC") {
        return;
    }
    link_binaries_statically(&[]);

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
