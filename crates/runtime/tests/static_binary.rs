//! The `berth-runtime` binary is linked statically (see `build.rs`): it has no program
//! interpreter, so no dynamic loader runs before `main` on each of its three runs per
//! container. Guards `.cargo/config.toml`'s `LIBSECCOMP_NO_PKG_CONFIG`, without which the
//! binary silently links dynamically. No root needed.

/// `PT_INTERP`: the program header naming the dynamic loader.
const PT_INTERP: u32 = 3;

/// The types of an ELF64 little-endian file's program headers.
fn program_header_types(elf: &[u8]) -> Vec<u32> {
    assert_eq!(&elf[..4], b"\x7fELF", "not an ELF file");
    assert_eq!(elf[4], 2, "not a 64-bit ELF file");
    let u16_at = |o: usize| u16::from_le_bytes([elf[o], elf[o + 1]]) as usize;
    let phoff = u64::from_le_bytes(elf[0x20..0x28].try_into().unwrap()) as usize;
    let (phentsize, phnum) = (u16_at(0x36), u16_at(0x38));
    (0..phnum)
        .map(|i| {
            let o = phoff + i * phentsize;
            u32::from_le_bytes(elf[o..o + 4].try_into().unwrap())
        })
        .collect()
}

#[test]
fn the_runtime_binary_has_no_dynamic_loader() {
    if std::env::var_os("BERTH_RUNTIME_DYNAMIC").is_some() {
        eprintln!("BERTH_RUNTIME_DYNAMIC is set: the binary is dynamic on purpose");
        return;
    }
    let path = env!("CARGO_BIN_EXE_berth-runtime");
    let elf = std::fs::read(path).unwrap();
    let types = program_header_types(&elf);
    assert!(!types.is_empty());
    assert!(
        !types.contains(&PT_INTERP),
        "{path} is dynamically linked (is LIBSECCOMP_NO_PKG_CONFIG set? see .cargo/config.toml)"
    );
    let out = std::process::Command::new(path)
        .arg("--version")
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stdout).starts_with("berth-runtime version"));
}
