//! The layer-tar unpacker on any bytes (plain, or gzip'd): an error or an unpacked layer, never
//! a panic, and nothing written outside the directory it unpacks into (symlinks, hard links,
//! `..`, absolute names, whiteouts of paths outside).
#![no_main]

use std::path::Path;

use berth_image::layer_tar::{apply_layer, LayerLimits};
use libfuzzer_sys::fuzz_target;

/// Every path under `dir` (not following symlinks), sorted.
fn listing(dir: &Path) -> Vec<String> {
    let mut out = Vec::new();
    let mut todo = vec![dir.to_path_buf()];
    while let Some(d) = todo.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            let p = e.path();
            if e.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                todo.push(p.clone());
            }
            out.push(p.to_string_lossy().into_owned());
        }
    }
    out.sort();
    out
}

fuzz_target!(|data: &[u8]| {
    // <tmp>/outside/{bait, root}: the layer goes into root; bait and the rest of outside must
    // stay as they were.
    let tmp = tempfile::tempdir().expect("tempdir");
    let outside = tmp.path().join("outside");
    let root = outside.join("root");
    std::fs::create_dir_all(&root).expect("mkdir");
    std::fs::write(outside.join("bait"), b"bait").expect("bait");
    let before: Vec<String> = listing(&outside)
        .into_iter()
        .filter(|p| !p.starts_with(&root.to_string_lossy().into_owned()))
        .collect();
    let limits = LayerLimits {
        max_size: 64 << 20,
        max_ratio: 1000,
        ratio_floor: 1 << 20,
    };
    let _ = apply_layer(&mut &data[..], &root, None, limits);
    let root_prefix = format!("{}/", root.to_string_lossy());
    let after: Vec<String> = listing(&outside)
        .into_iter()
        .filter(|p| !p.starts_with(&root_prefix) && *p != root.to_string_lossy())
        .collect();
    let mut before = before;
    before.retain(|p| *p != root.to_string_lossy());
    assert_eq!(before, after, "the layer wrote outside its directory");
    assert_eq!(
        std::fs::read(outside.join("bait")).ok().as_deref(),
        Some(&b"bait"[..]),
        "the layer changed a file outside its directory"
    );
    assert!(
        std::fs::symlink_metadata(&root)
            .map(|m| m.is_dir())
            .unwrap_or(false),
        "the layer replaced its own root"
    );
});
