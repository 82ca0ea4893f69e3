//! Archive tests: `load` of docker-archive and OCI layouts (gzip'd, legacy, hostile or
//! broken ones refused without leaving anything behind), `save` round trips, and `import`.

use std::io::Write;

use super::*;

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(data).unwrap();
    gz.finish().unwrap()
}

#[test]
fn load_docker_archive_and_resolve() {
    let (_d, s) = store();
    let id = load_busybox(&s);
    let cfg = config_for(&[base_layer(), top_layer()], "sh");
    assert_eq!(id, digest_bytes(&cfg));
    for name in [
        "busybox",
        "busybox:latest",
        "docker.io/library/busybox",
        id.as_str(),
        digest_hex(&id),
        &digest_hex(&id)[..12],
        &digest_hex(&id)[..1],
    ] {
        let r = s.resolve(name).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(r.id, id);
        assert_eq!(r.config.cmd.0, vec!["sh".to_string()]);
    }
    match s.resolve("nosuch") {
        Err(ImageError::NotFound(m)) => assert_eq!(m, "No such image: nosuch:latest"),
        other => panic!("{other:?}"),
    }
    match s.resolve("sha256:ffff") {
        Err(ImageError::NotFound(m)) => assert_eq!(m, "No such image: sha256:ffff"),
        other => panic!("{other:?}"),
    }
    assert!(matches!(
        s.resolve("Bad:Ref:"),
        Err(ImageError::InvalidArgument(_))
    ));
    assert_eq!(s.count(), 1);

    // Layers are unpacked under their chain IDs.
    let chains = chain_ids(&[digest_bytes(&base_layer()), digest_bytes(&top_layer())]);
    let base = s
        .root()
        .join("layers")
        .join(digest_hex(&chains[0]))
        .join("diff");
    let top = s
        .root()
        .join("layers")
        .join(digest_hex(&chains[1]))
        .join("diff");
    assert_eq!(fs::read(base.join("bin/sh")).unwrap(), b"shell");
    assert_eq!(fs::read(top.join("app/run")).unwrap(), b"app");

    let list = s.list(false).unwrap();
    assert_eq!(list.len(), 1);
    assert_eq!(list[0].repo_tags, vec!["busybox:latest".to_string()]);
    assert_eq!(list[0].created, 1704164645);
    assert_eq!(
        list[0].size,
        (base_layer().len() + top_layer().len()) as i64
    );
    assert_eq!(list[0].labels.get("a").map(String::as_str), Some("b"));

    let ins = s.inspect("busybox").unwrap();
    assert_eq!(ins.id, id);
    assert_eq!(ins.created, "2024-01-02T03:04:05Z");
    assert_eq!(ins.root_fs.kind, "layers");
    assert_eq!(ins.root_fs.layers.len(), 2);
    assert_eq!(ins.graph_driver.name, "overlay2");
    assert_eq!(ins.graph_driver.data["UpperDir"], top.to_string_lossy());
    assert_eq!(ins.graph_driver.data["LowerDir"], base.to_string_lossy());
    assert!(ins.metadata.contains_key("LastTagTime"));

    let h = s.history("busybox").unwrap();
    assert_eq!(h.len(), 3);
    assert_eq!(h[0].id, id);
    assert_eq!(h[0].created_by, "CMD");
    assert_eq!(h[0].size, 0);
    assert_eq!(h[0].tags, vec!["busybox:latest".to_string()]);
    assert_eq!(h[1].id, "<missing>");
    assert_eq!(h[1].size, top_layer().len() as i64);
    assert_eq!(h[2].created_by, "step 0");

    // Idempotent reload.
    assert_eq!(load_busybox(&s), id);
    assert_eq!(s.count(), 1);

    // Persisted across reopen.
    let root = s.root().to_path_buf();
    drop(s);
    let s = ImageStore::open(&root).unwrap();
    assert_eq!(s.resolve("busybox").unwrap().id, id);
    assert_eq!(
        s.list(true).unwrap()[0].repo_tags,
        vec!["busybox:latest".to_string()]
    );
}

#[test]
fn load_gzipped_archive() {
    let (_d, s) = store();
    let ar = gzip(&docker_archive(&[(
        vec![gzip(&base_layer())],
        vec!["x/y:1"],
        "sh",
    )]));
    // The layer inside is gzip'd: its diff ID is of the uncompressed tar, so fix the config.
    let loaded = s.load(&mut &ar[..]);
    // config_for hashed the gzip'd bytes, so the diff IDs do not match: refused.
    assert!(
        matches!(loaded, Err(ImageError::InvalidArgument(_))),
        "{loaded:?}"
    );
    assert_eq!(s.count(), 0);
    let ar = gzip(&docker_archive(&[(
        vec![base_layer()],
        vec!["x/y:1"],
        "sh",
    )]));
    let loaded = s.load(&mut &ar[..]).unwrap();
    assert_eq!(loaded[0].tags, vec!["x/y:1".to_string()]);
}

fn assert_unchanged(s: &ImageStore) {
    assert_eq!(s.count(), 0);
    let root = s.root();
    for d in ["layers", "blobs/sha256", "tmp", "ingest", "images"] {
        assert_eq!(dir_entries(&root.join(d)), 0, "{d} not empty");
    }
}

#[test]
fn load_refuses_path_traversal_and_leaves_store_unchanged() {
    let (_d, s) = store();
    let evil = TarBuilder::new()
        .file("ok", b"fine")
        .file("../../evil", b"x")
        .build();
    let ar = docker_archive(&[(vec![base_layer(), evil], vec!["evil:latest"], "sh")]);
    let e = s.load(&mut &ar[..]).unwrap_err();
    assert!(e.to_string().contains("escapes"), "{e}");
    assert_unchanged(&s);
    assert!(!s.root().join("../evil").exists());
}

#[test]
fn load_refuses_digest_mismatch_and_missing_files() {
    let (_d, s) = store();
    // Manifest points the layer at the wrong file.
    let mut b = tar::Builder::new(Vec::new());
    let layer = base_layer();
    let cfg = config_for(std::slice::from_ref(&layer), "sh");
    let other = top_layer();
    for (p, d) in [("c.json", &cfg), ("l/layer.tar", &other)] {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_cksum();
        b.append(&h, &d[..]).unwrap();
    }
    let m = serde_json::to_vec(
        &json!([{"Config": "c.json", "RepoTags": ["a:b"], "Layers": ["l/layer.tar"]}]),
    )
    .unwrap();
    let mut h = tar::Header::new_ustar();
    h.set_path("manifest.json").unwrap();
    h.set_size(m.len() as u64);
    h.set_cksum();
    b.append(&h, &m[..]).unwrap();
    let ar = b.into_inner().unwrap();
    let e = s.load(&mut &ar[..]).unwrap_err();
    assert!(e.to_string().contains("layer digest mismatch"), "{e}");
    assert_unchanged(&s);

    // A manifest naming a missing layer.
    let mut ar = docker_archive(&[(vec![layer], vec!["a:b"], "sh")]);
    let s2 = String::from_utf8_lossy(&ar).into_owned();
    let pos = s2.find("layer.tar\"").unwrap();
    ar[pos] = b'X';
    let e = s.load(&mut &ar[..]).unwrap_err();
    assert!(e.to_string().contains("missing file"), "{e}");
    assert_unchanged(&s);

    // Not an archive at all.
    assert!(s.load(&mut &b"garbage"[..]).is_err());
    assert_unchanged(&s);
}

#[test]
fn save_load_round_trip() {
    let (_d, s) = store();
    let id = load_busybox(&s);
    s.tag("busybox", "localhost:5000/a/b:t").unwrap();
    let mut out = Vec::new();
    s.save(
        &["busybox".to_string(), "localhost:5000/a/b:t".to_string()],
        &mut out,
    )
    .unwrap();

    // The archive has Docker 25+'s layout.
    let mut ar = tar::Archive::new(&out[..]);
    let names: Vec<String> = ar
        .entries()
        .unwrap()
        .map(|e| e.unwrap().path().unwrap().to_string_lossy().into_owned())
        .collect();
    for want in [
        "manifest.json",
        "index.json",
        "oci-layout",
        "repositories",
        &format!("blobs/sha256/{}", digest_hex(&id)),
    ] {
        assert!(
            names.iter().any(|n| n == want),
            "{want} missing in {names:?}"
        );
    }

    let (_d2, s2) = store();
    let loaded = s2.load(&mut &out[..]).unwrap();
    assert_eq!(loaded.len(), 1);
    assert_eq!(loaded[0].id, id);
    let mut tags = loaded[0].tags.clone();
    tags.sort();
    assert_eq!(
        tags,
        vec![
            "busybox:latest".to_string(),
            "localhost:5000/a/b:t".to_string()
        ]
    );
    assert_eq!(s2.inspect("localhost:5000/a/b:t").unwrap().id, id);

    // Save by ID: untagged in the archive, loads as the same image.
    let mut out = Vec::new();
    s.save(&[digest_hex(&id)[..12].to_string()], &mut out)
        .unwrap();
    let (_d3, s3) = store();
    let loaded = s3.load(&mut &out[..]).unwrap();
    assert_eq!(loaded[0].id, id);
    assert!(loaded[0].tags.is_empty());
    assert!(s3.list(false).unwrap()[0].repo_tags.is_empty());
}

#[test]
fn load_oci_layout_with_gzip_layers() {
    let (_d, s) = store();
    let layer = base_layer();
    let gz = gzip(&layer);
    let cfg = config_for(std::slice::from_ref(&layer), "sh");
    let manifest = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": digest_bytes(&cfg), "size": cfg.len()},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": digest_bytes(&gz), "size": gz.len()}],
    }))
    .unwrap();
    let index = serde_json::to_vec(&json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": digest_bytes(&manifest),
            "size": manifest.len(),
            "annotations": {"org.opencontainers.image.ref.name": "quay.io/x/y:2"},
        }],
    }))
    .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in [
        (
            "oci-layout".to_string(),
            br#"{"imageLayoutVersion":"1.0.0"}"#.to_vec(),
        ),
        ("index.json".to_string(), index),
        (
            format!("blobs/sha256/{}", digest_hex(&digest_bytes(&manifest))),
            manifest.clone(),
        ),
        (
            format!("blobs/sha256/{}", digest_hex(&digest_bytes(&cfg))),
            cfg.clone(),
        ),
        (
            format!("blobs/sha256/{}", digest_hex(&digest_bytes(&gz))),
            gz.clone(),
        ),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(&p).unwrap();
        h.set_size(d.len() as u64);
        h.set_cksum();
        b.append(&h, &d[..]).unwrap();
    }
    let ar = b.into_inner().unwrap();
    let loaded = s.load(&mut &ar[..]).unwrap();
    assert_eq!(loaded[0].id, digest_bytes(&cfg));
    assert_eq!(loaded[0].tags, vec!["quay.io/x/y:2".to_string()]);
    // The stored layer blob is the uncompressed tar.
    assert_eq!(s.list(false).unwrap()[0].size, layer.len() as i64);
}

#[test]
fn import_rootfs() {
    let (_d, s) = store();
    let rootfs = gzip(&TarBuilder::new().file("hello", b"world").build());
    let cfg = berth_api::ContainerConfig {
        cmd: berth_api::StrList(vec!["/hello".into()]),
        ..Default::default()
    };
    let id = s
        .import(&mut &rootfs[..], Some("imported:v1"), cfg, "")
        .unwrap();
    let ins = s.inspect("imported:v1").unwrap();
    assert_eq!(ins.id, id);
    assert_eq!(ins.config.cmd.0, vec!["/hello".to_string()]);
    assert_eq!(ins.os, "linux");
    assert_eq!(ins.architecture, crate::store::go_arch());
    assert_eq!(ins.root_fs.layers.len(), 1);
    let h = s.history("imported:v1").unwrap();
    assert_eq!(h.len(), 1);
    assert_eq!(h[0].comment, "Imported from -");
    let id2 = s
        .import(
            &mut &TarBuilder::new().build()[..],
            None,
            Default::default(),
            "msg",
        )
        .unwrap();
    assert_eq!(s.history(&id2).unwrap()[0].comment, "msg");
    assert!(matches!(
        s.import(&mut &rootfs[..], Some("BAD"), Default::default(), ""),
        Err(ImageError::InvalidArgument(_))
    ));
}

#[test]
fn load_refuses_escaping_archive_paths_and_truncated_layers() {
    let (_d, s) = store();
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.as_old_mut().name[..9].copy_from_slice(b"../escape");
    h.set_size(1);
    h.set_cksum();
    b.append(&h, &b"x"[..]).unwrap();
    let ar = b.into_inner().unwrap();
    let e = s.load(&mut &ar[..]).unwrap_err();
    assert!(e.to_string().contains("escapes"), "{e}");
    assert_unchanged(&s);

    // manifest.json as a symlink pointing outside the archive.
    let mut b = tar::Builder::new(Vec::new());
    let mut h = tar::Header::new_ustar();
    h.set_path("manifest.json").unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.as_old_mut().linkname[..11].copy_from_slice(b"../../../x/");
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let ar = b.into_inner().unwrap();
    assert!(s.load(&mut &ar[..]).is_err());
    assert_unchanged(&s);

    // A layer cut short.
    let big = TarBuilder::new().file("big", &[1u8; 8192]).build();
    // The config lists the full layer, the archive holds a truncated copy.
    let cfg = config_for(&[base_layer(), big.clone()], "sh");
    let mut b = tar::Builder::new(Vec::new());
    let short = big[..2048].to_vec();
    let m = serde_json::to_vec(
        &json!([{"Config": "c.json", "RepoTags": ["t:1"], "Layers": ["a.tar", "b.tar"]}]),
    )
    .unwrap();
    for (p, d) in [
        ("c.json", cfg),
        ("a.tar", base_layer()),
        ("b.tar", short),
        ("manifest.json", m),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_cksum();
        b.append(&h, &d[..]).unwrap();
    }
    let ar = b.into_inner().unwrap();
    assert!(s.load(&mut &ar[..]).is_err());
    assert_unchanged(&s);
}

#[test]
fn legacy_archive_with_symlinked_layers() {
    let (_d, s) = store();
    let layer = base_layer();
    let cfg = config_for(&[layer.clone(), layer.clone()], "sh");
    let m = serde_json::to_vec(&json!([{"Config": "c.json", "RepoTags": ["l:1"], "Layers": ["a/layer.tar", "b/layer.tar"]}]))
        .unwrap();
    let mut b = tar::Builder::new(Vec::new());
    for (p, d) in [
        ("c.json", cfg.clone()),
        ("a/layer.tar", layer.clone()),
        ("manifest.json", m),
    ] {
        let mut h = tar::Header::new_ustar();
        h.set_path(p).unwrap();
        h.set_size(d.len() as u64);
        h.set_cksum();
        b.append(&h, &d[..]).unwrap();
    }
    let mut h = tar::Header::new_ustar();
    h.set_path("b/layer.tar").unwrap();
    h.set_entry_type(tar::EntryType::Symlink);
    h.set_link_name("../a/layer.tar").unwrap();
    h.set_size(0);
    h.set_cksum();
    b.append(&h, std::io::empty()).unwrap();
    let ar = b.into_inner().unwrap();
    let loaded = s.load(&mut &ar[..]).unwrap();
    assert_eq!(loaded[0].id, digest_bytes(&cfg));
    assert_eq!(dir_entries(&s.root().join("layers")), 2);
}
