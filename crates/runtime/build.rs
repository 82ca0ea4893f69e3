//! Build script of berth-runtime: links the `berth-runtime` binary (only the binary; the
//! library and the tests are left alone) statically and without PIE, libseccomp included
//! (`libseccomp.a` from libseccomp-dev), with `build-support/static_link.rs`.
//!
//! The runtime is executed three times in every container's life (`create`, `start`,
//! `delete`), each time while someone waits. Dynamically linked, each run spent about a
//! millisecond in the dynamic loader (mapping `libseccomp.so.2`, `libgcc_s.so.1` and
//! `libc.so.6`, and relocating a 4 MiB position-independent executable) before `main`: a
//! `docker run` took about 3 ms longer.
//!
//! The static link needs the libseccomp crate's pkg-config probe off (`.cargo/config.toml`
//! sets `LIBSECCOMP_NO_PKG_CONFIG`): the probe puts the system library directory ahead of the
//! linker scripts, which would mix static start files with the shared libc (a binary that
//! crashes at once). Without that setting the binary is linked the default (dynamic) way, as
//! it is with `BERTH_RUNTIME_DYNAMIC=1`.

include!("../../build-support/static_link.rs");

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=../../build-support/static_link.rs");
    println!("cargo:rerun-if-env-changed=LIBSECCOMP_NO_PKG_CONFIG");
    if !static_link_wanted("BERTH_RUNTIME_DYNAMIC") {
        return;
    }
    if std::env::var_os("LIBSECCOMP_NO_PKG_CONFIG").is_none() {
        println!(
            "cargo:warning=LIBSECCOMP_NO_PKG_CONFIG is unset (see .cargo/config.toml): \
             berth-runtime is linked dynamically"
        );
        return;
    }
    link_binaries_statically(&[(
        "libseccomp.so",
        "/* berth-runtime: static libseccomp */\nINPUT ( -l:libseccomp.a )\n",
    )]);
}
