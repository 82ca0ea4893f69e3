// Shared by the build scripts of berth-shim and berth-runtime (`include!`d): links a package's
// binaries (only its binaries; its library and tests are left alone) statically and without
// PIE.
//
// `-C target-feature=+crt-static` would do, but it cannot be set for one package (cargo applies
// `RUSTFLAGS` to proc-macros too, which crt-static breaks). So the binaries' link line gets
// `-no-pie -static`, and a directory of linker scripts named like the shared libraries rustc
// asks for (`-lc`, `-lgcc_s`, `-lm`, and any the package adds) that point the linker at the
// static archives (`libc.a` from libc6-dev, `libgcc_eh.a`/`libgcc.a` from gcc).

/// Linker scripts, by the file name the linker looks for, that send it to glibc's and libgcc's
/// static archives.
const STATIC_LIB_SCRIPTS: [(&str, &str); 3] = [
    (
        "libc.so",
        "/* berth: static glibc */\nGROUP ( -l:libc.a -l:libgcc_eh.a -l:libgcc.a )\n",
    ),
    (
        "libgcc_s.so",
        "/* berth: static libgcc */\nINPUT ( -l:libgcc_eh.a -l:libgcc.a )\n",
    ),
    (
        "libm.so",
        "/* berth: static libm */\nINPUT ( -l:libm.a )\n",
    ),
];

/// Whether the target is one this static link is made for (Linux with glibc) and `opt_out`
/// (an environment variable asking for the default dynamic link) is unset.
fn static_link_wanted(opt_out: &str) -> bool {
    println!("cargo:rerun-if-env-changed={opt_out}");
    let target_os = std::env::var("CARGO_CFG_TARGET_OS").unwrap_or_default();
    let target_env = std::env::var("CARGO_CFG_TARGET_ENV").unwrap_or_default();
    target_os == "linux" && target_env == "gnu" && std::env::var_os(opt_out).is_none()
}

/// Writes the linker scripts (glibc's and libgcc's, then `extra`) and asks for a static,
/// non-PIE link of the package's binaries.
fn link_binaries_statically(extra: &[(&str, &str)]) {
    let out_dir = std::path::PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    let scripts = out_dir.join("static-libs");
    std::fs::create_dir_all(&scripts).expect("creating the linker script directory");
    for (name, text) in STATIC_LIB_SCRIPTS.iter().chain(extra) {
        std::fs::write(scripts.join(name), text).expect("writing a linker script");
    }
    println!("cargo:rustc-link-arg-bins=-L{}", scripts.display());
    println!("cargo:rustc-link-arg-bins=-no-pie");
    println!("cargo:rustc-link-arg-bins=-static");
}
