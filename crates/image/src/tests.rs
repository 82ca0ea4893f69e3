//! Store-level tests: the fixtures they share (handmade layers and docker-archives), and tags,
//! removal, prune and writable layers. Load/save/import tests are in `tests/archive.rs`.

mod archive;
mod layer_blobs;

use std::fs;
use std::path::Path;

use serde_json::json;

use crate::content::{digest_bytes, digest_hex};
use crate::layer_tar::tests::TarBuilder;
use crate::{chain_ids, ImageError, ImageStore};

fn config_for(layers: &[Vec<u8>], cmd: &str) -> Vec<u8> {
    let diffs: Vec<String> = layers.iter().map(|l| digest_bytes(l)).collect();
    let history: Vec<serde_json::Value> = (0..layers.len())
        .map(|i| json!({"created": "2024-01-02T03:04:05Z", "created_by": format!("step {i}")}))
        .chain(std::iter::once(
            json!({"created": "2024-01-02T03:04:05Z", "created_by": "CMD", "empty_layer": true}),
        ))
        .collect();
    serde_json::to_vec(&json!({
        "architecture": "amd64",
        "os": "linux",
        "created": "2024-01-02T03:04:05Z",
        "config": {"Cmd": [cmd], "Env": ["PATH=/bin"], "Labels": {"a": "b"}},
        "rootfs": {"type": "layers", "diff_ids": diffs},
        "history": history,
    }))
    .unwrap()
}

/// A docker-archive as `docker save` (pre-25) writes it: `<n>/layer.tar`, `<hex>.json`,
/// `manifest.json`.
/// (layers, tags, cmd) of one image in a handmade archive.
type ArchiveImage<'a> = (Vec<Vec<u8>>, Vec<&'a str>, &'a str);

fn docker_archive(images: &[ArchiveImage<'_>]) -> Vec<u8> {
    let mut b = tar::Builder::new(Vec::new());
    let mut manifest = Vec::new();
    let add = |b: &mut tar::Builder<Vec<u8>>, path: &str, data: &[u8]| {
        let mut h = tar::Header::new_ustar();
        h.set_path(path).unwrap();
        h.set_size(data.len() as u64);
        h.set_mode(0o644);
        h.set_cksum();
        b.append(&h, data).unwrap();
    };
    for (layers, tags, cmd) in images {
        let cfg = config_for(layers, cmd);
        let cfg_name = format!("{}.json", digest_hex(&digest_bytes(&cfg)));
        add(&mut b, &cfg_name, &cfg);
        let mut paths = Vec::new();
        for l in layers {
            let p = format!("{}/layer.tar", &digest_hex(&digest_bytes(l))[..16]);
            add(&mut b, &p, l);
            paths.push(p);
        }
        manifest.push(json!({"Config": cfg_name, "RepoTags": tags, "Layers": paths}));
    }
    add(
        &mut b,
        "manifest.json",
        &serde_json::to_vec(&manifest).unwrap(),
    );
    b.into_inner().unwrap()
}

fn base_layer() -> Vec<u8> {
    TarBuilder::new()
        .dir("bin/")
        .file_mode("bin/sh", b"shell", 0o755)
        .file("etc/os-release", b"berth")
        .build()
}

fn top_layer() -> Vec<u8> {
    TarBuilder::new()
        .file("app/run", b"app")
        .file("etc/.wh.os-release", b"")
        .build()
}

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ImageStore::open(&dir.path().join("image")).unwrap();
    (dir, s)
}

fn dir_entries(p: &Path) -> usize {
    fs::read_dir(p).map(|r| r.count()).unwrap_or(0)
}

fn load_busybox(s: &ImageStore) -> String {
    let ar = docker_archive(&[(
        vec![base_layer(), top_layer()],
        vec!["busybox:latest"],
        "sh",
    )]);
    let loaded = s.load(&mut &ar[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].tags, vec!["busybox:latest".to_string()]);
    loaded[0].id.clone()
}

#[test]
fn store_is_send_sync() {
    fn check<T: Send + Sync>() {}
    check::<ImageStore>();
}

#[test]
fn tag_and_remove_semantics() {
    let (_d, s) = store();
    let id = load_busybox(&s);
    let never = |_: &str| false;
    assert!(
        matches!(s.tag("busybox", "Bad Tag"), Err(ImageError::InvalidArgument(m)) if m == "invalid reference format")
    );
    assert!(matches!(s.tag("nosuch", "x"), Err(ImageError::NotFound(_))));
    s.tag("busybox", "mybox:1").unwrap();
    assert_eq!(s.inspect("mybox:1").unwrap().repo_tags.len(), 2);

    // By ID with several tags: conflict unless forced.
    match s.remove(&digest_hex(&id)[..12], false, &never) {
        Err(ImageError::Conflict(m)) => {
            assert!(m.starts_with("conflict: unable to delete"), "{m}");
            assert!(m.contains("referenced in multiple repositories"), "{m}");
        }
        other => panic!("{other:?}"),
    }
    // By name with several tags: only untag.
    let items = s.remove("busybox", false, &never).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].untagged.as_deref(), Some("busybox:latest"));
    assert!(s.resolve("busybox").is_err());
    assert_eq!(s.count(), 1);

    // In use: the last tag cannot go without force.
    let used = |x: &str| x == id;
    match s.remove("mybox:1", false, &used) {
        Err(ImageError::Conflict(m)) => assert!(m.starts_with("conflict: unable to"), "{m}"),
        other => panic!("{other:?}"),
    }
    // The last tag: untag and delete, with its layers.
    let items = s.remove("mybox:1", false, &never).unwrap();
    assert_eq!(items[0].untagged.as_deref(), Some("mybox:1"));
    assert_eq!(items[1].deleted.as_deref(), Some(id.as_str()));
    assert_eq!(items.len(), 4); // untagged, image, two layers
    assert_eq!(s.count(), 0);
    assert_eq!(dir_entries(&s.root().join("layers")), 0);
    assert_eq!(dir_entries(&s.root().join("blobs/sha256")), 0);
    assert!(
        matches!(s.remove("mybox:1", false, &never), Err(ImageError::NotFound(m)) if m == "No such image: mybox:1")
    );
}

#[test]
fn shared_layers_survive_removal_of_one_image() {
    let (_d, s) = store();
    let ar = docker_archive(&[
        (vec![base_layer(), top_layer()], vec!["a:1"], "one"),
        (vec![base_layer()], vec!["b:1"], "two"),
    ]);
    let loaded = s.load(&mut &ar[..]).unwrap();
    assert_eq!(loaded.len(), 2);
    assert_eq!(dir_entries(&s.root().join("layers")), 2);
    let never = |_: &str| false;
    let items = s.remove("a:1", false, &never).unwrap();
    assert_eq!(items.len(), 3); // untagged, image, top layer only
    let base = chain_ids(&[digest_bytes(&base_layer())]);
    assert!(s
        .root()
        .join("layers")
        .join(digest_hex(&base[0]))
        .join("diff/bin/sh")
        .exists());
    assert!(s.layer_data_exists(&digest_bytes(&base_layer())));
    assert!(!s.layer_data_exists(&digest_bytes(&top_layer())));
    // The remaining image still works.
    let m = s.create_rw_layer("c1", "b:1").unwrap();
    assert!(m.options[0].contains(digest_hex(&base[0])));
}

#[test]
fn force_remove_by_id_in_use_only_untags() {
    let (_d, s) = store();
    let id = load_busybox(&s);
    let used = |x: &str| x == id;
    match s.remove(&id, false, &used) {
        Err(ImageError::Conflict(m)) => assert!(m.starts_with("conflict: unable to delete"), "{m}"),
        other => panic!("{other:?}"),
    }
    let items = s.remove(&id, true, &used).unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0].untagged.as_deref(), Some("busybox:latest"));
    assert_eq!(s.count(), 1);
    assert!(s.list(false).unwrap()[0].repo_tags.is_empty());
}

#[test]
fn tag_move_makes_dangling_and_prune() {
    let (_d, s) = store();
    let old = load_busybox(&s);
    // A different image takes over the tag.
    let ar = docker_archive(&[(vec![base_layer()], vec!["busybox:latest"], "new")]);
    let new = s.load(&mut &ar[..]).unwrap()[0].id.clone();
    assert_ne!(old, new);
    assert_eq!(s.resolve("busybox").unwrap().id, new);
    let list = s.list(false).unwrap();
    assert_eq!(list.len(), 2);
    assert!(list
        .iter()
        .find(|i| i.id == old)
        .unwrap()
        .repo_tags
        .is_empty());

    // In use: not pruned.
    let used_old = |x: &str| x == old;
    let r = s.prune(true, &used_old).unwrap();
    assert!(r.images_deleted.is_none());
    assert_eq!(r.space_reclaimed, 0);

    // busybox:latest's log names `old` (berth's tag log, for `image rollback`): kept.
    let never = |_: &str| false;
    let r = s.prune(true, &never).unwrap();
    assert!(r.images_deleted.is_none());
    // Without the tag its log goes, and `old` is an ordinary dangling image.
    s.tag(&new, "keep:1").unwrap();
    s.remove("busybox:latest", false, &never).unwrap();
    let r = s.prune(true, &never).unwrap();
    let deleted = r.images_deleted.unwrap();
    assert_eq!(deleted[0].deleted.as_deref(), Some(old.as_str()));
    assert_eq!(r.space_reclaimed, top_layer().len() as u64);
    assert_eq!(s.count(), 1);

    // Not dangling-only: tagged unused images go too.
    let r = s.prune(false, &never).unwrap();
    let deleted = r.images_deleted.unwrap();
    assert_eq!(deleted[0].untagged.as_deref(), Some("keep:1"));
    assert_eq!(s.count(), 0);
    assert_eq!(dir_entries(&s.root().join("layers")), 0);
}

#[test]
fn writable_layers() {
    let (_d, s) = store();
    let id = load_busybox(&s);
    let m = s.create_rw_layer("c1", &id).unwrap();
    assert_eq!(m.fstype, "overlay");
    assert_eq!(m.source, "overlay");
    let chains = chain_ids(&[digest_bytes(&base_layer()), digest_bytes(&top_layer())]);
    let lower = m.options[0].strip_prefix("lowerdir=").unwrap();
    let dirs: Vec<&str> = lower.split(':').collect();
    assert_eq!(dirs.len(), 2);
    assert!(dirs[0].contains(digest_hex(&chains[1])), "top first");
    assert!(dirs[1].contains(digest_hex(&chains[0])));
    let upper = m.options[1].strip_prefix("upperdir=").unwrap();
    assert!(Path::new(upper).is_dir());
    assert!(Path::new(m.options[2].strip_prefix("workdir=").unwrap()).is_dir());
    assert_eq!(s.rw_layer_mount("c1").unwrap(), m);
    assert!(!m.options.iter().any(|o| o == "volatile"));

    // A scratch layer (`--rm`, build steps) mounts volatile, also when mounted again, and a
    // volatile mount's leftover `work/incompat` is cleared first.
    let scratch = s.create_scratch_rw_layer("c2", &id).unwrap();
    assert_eq!(scratch.options.last().map(String::as_str), Some("volatile"));
    let work = Path::new(scratch.options[2].strip_prefix("workdir=").unwrap()).to_path_buf();
    std::fs::create_dir_all(work.join("work/incompat/volatile")).unwrap();
    assert_eq!(s.rw_layer_mount("c2").unwrap(), scratch);
    assert!(!work.join("work/incompat").exists());
    s.remove_rw_layer("c2").unwrap();

    s.remove_rw_layer("c1").unwrap();
    assert!(!Path::new(upper).exists());
    assert!(s.rw_layer_mount("c1").is_err());
    assert!(s.create_rw_layer("../x", &id).is_err());

    // An image without layers gets an empty lower dir.
    let cfg = serde_json::to_vec(&json!({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers", "diff_ids": []}})).unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in [
        ("c.json", cfg.clone()),
        (
            "manifest.json",
            serde_json::to_vec(
                &json!([{"Config": "c.json", "RepoTags": ["empty:1"], "Layers": []}]),
            )
            .unwrap(),
        ),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_cksum();
        b.append(&h, &d[..]).unwrap();
    }
    let ar = b.into_inner().unwrap();
    s.load(&mut &ar[..]).unwrap();
    let m = s.create_rw_layer("c2", "empty:1").unwrap();
    let lower = m.options[0].strip_prefix("lowerdir=").unwrap();
    assert!(Path::new(lower).is_dir());
}

#[test]
fn many_layers_use_short_links() {
    let (_d, s) = store();
    let layers: Vec<Vec<u8>> = (0..60)
        .map(|i| TarBuilder::new().file(&format!("f{i}"), b"x").build())
        .collect();
    let ar = docker_archive(&[(layers, vec!["deep:1"], "sh")]);
    s.load(&mut &ar[..]).unwrap();
    let m = s.create_rw_layer("c", "deep:1").unwrap();
    assert!(m.options[0].len() < 4000, "{}", m.options[0].len());
    let first = m.options[0]
        .strip_prefix("lowerdir=")
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .to_string();
    assert!(Path::new(&first).join("f59").exists());
}

/// Mounts the writable layer when the environment allows it (root with overlayfs) and checks the
/// merged view: layers stacked in order, whiteouts hiding lower files.
#[test]
fn overlay_mount_when_possible() {
    use nix::mount::{mount, umount, MsFlags};
    let (_d, s) = store();
    let lower = TarBuilder::new()
        .file("opq/old", b"old")
        .file("keep/x", b"x")
        .build();
    let upper = TarBuilder::new()
        .file("opq/.wh..wh..opq", b"")
        .file("opq/new", b"new")
        .build();
    let ar = docker_archive(&[(
        vec![base_layer(), top_layer(), lower, upper],
        vec!["ov:1"],
        "sh",
    )]);
    let id = s.load(&mut &ar[..]).unwrap()[0].id.clone();
    let m = s.create_rw_layer("mnt", &id).unwrap();
    let target = s.root().join("merged-test");
    fs::create_dir_all(&target).unwrap();
    let opts = m.options.join(",");
    if mount(
        Some(m.source.as_str()),
        &target,
        Some(m.fstype.as_str()),
        MsFlags::empty(),
        Some(opts.as_str()),
    )
    .is_err()
    {
        eprintln!("overlay mount not permitted here; skipping");
        return;
    }
    let res = std::panic::catch_unwind(|| {
        assert_eq!(fs::read(target.join("bin/sh")).unwrap(), b"shell");
        assert_eq!(fs::read(target.join("app/run")).unwrap(), b"app");
        assert!(
            !target.join("etc/os-release").exists(),
            "whiteout must hide the lower file"
        );
        fs::write(target.join("new"), b"rw").unwrap();
    });
    umount(&target).unwrap();
    res.unwrap();
    let upper = m.options[1].strip_prefix("upperdir=").unwrap();
    assert_eq!(fs::read(Path::new(upper).join("new")).unwrap(), b"rw");
}

#[test]
fn tags_win_over_id_prefixes() {
    let (_d, s) = store();
    let id = load_busybox(&s);
    let ar = docker_archive(&[(vec![base_layer()], vec!["other:1"], "other")]);
    let other = s.load(&mut &ar[..]).unwrap()[0].id.clone();
    let prefix = &digest_hex(&id)[..6];
    s.tag("other:1", prefix).unwrap();
    assert_eq!(s.resolve(prefix).unwrap().id, other);
    assert_eq!(s.resolve(&format!("sha256:{prefix}")).unwrap().id, id);
}
