//! Store-level tests of tag logs and rollback: every way a tag moves is logged, prune keeps
//! logged images, rollback walks back, and the log survives reopening the store.

use crate::layer_tar::tests::TarBuilder;
use crate::{ImageError, ImageStore};

fn store() -> (tempfile::TempDir, ImageStore) {
    let dir = tempfile::tempdir().unwrap();
    let s = ImageStore::open(dir.path()).unwrap();
    (dir, s)
}

/// A one-layer image whose only file holds `marker`, tagged `tag` when given.
fn import(s: &ImageStore, marker: &str, tag: Option<&str>) -> String {
    let tar = TarBuilder::new().file("marker", marker.as_bytes()).build();
    s.import(&mut &tar[..], tag, Default::default(), marker)
        .unwrap()
}

fn no_containers(_: &str) -> bool {
    false
}

#[test]
fn moves_are_logged_newest_first_with_how() {
    let (_d, s) = store();
    let a = import(&s, "a", Some("app:1"));
    let b = import(&s, "b", None);
    s.tag(&b, "app:1").unwrap();
    // Pointing a tag at the image it already has is not a move.
    s.tag(&b, "app:1").unwrap();
    s.tag_as(&a, "app:1", crate::TagMove::Build).unwrap();
    let log = s.tag_log("app:1").unwrap();
    let got: Vec<(&str, Option<&str>, &str)> = log
        .iter()
        .map(|e| (e.id.as_str(), e.previous.as_deref(), e.how.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            (a.as_str(), Some(b.as_str()), "build"),
            (b.as_str(), Some(a.as_str()), "tag"),
            (a.as_str(), None, "import"),
        ]
    );
    assert!(log.iter().all(|e| e.created.is_some()));
    assert!(chrono::DateTime::parse_from_rfc3339(&log[0].time).is_ok());
}

#[test]
fn unknown_tag_and_digest_references() {
    let (_d, s) = store();
    import(&s, "a", Some("app:1"));
    match s.tag_log("app:2") {
        Err(ImageError::NotFound(m)) => assert_eq!(m, "No such image: app:2"),
        other => panic!("{other:?}"),
    }
    match s.rollback("nothere") {
        Err(ImageError::NotFound(m)) => assert_eq!(m, "No such image: nothere:latest"),
        other => panic!("{other:?}"),
    }
    let digest = format!("app@sha256:{}", "0".repeat(64));
    assert!(matches!(
        s.tag_log(&digest),
        Err(ImageError::InvalidArgument(_))
    ));
}

#[test]
fn rollback_walks_back_then_refuses_and_changes_nothing() {
    let (_d, s) = store();
    let a = import(&s, "a", Some("app"));
    let b = import(&s, "b", Some("app"));
    let c = import(&s, "c", Some("app"));
    let r = s.rollback("app").unwrap();
    assert_eq!(
        (r.tag.as_str(), r.from.as_str(), r.to.as_str()),
        ("app:latest", c.as_str(), b.as_str())
    );
    let r = s.rollback("app:latest").unwrap();
    assert_eq!((r.from.as_str(), r.to.as_str()), (b.as_str(), a.as_str()));
    assert_eq!(s.resolve("app").unwrap().id, a);
    let before = s.tag_log("app").unwrap();
    match s.rollback("app") {
        Err(ImageError::Conflict(m)) => {
            assert_eq!(m, "app:latest has no earlier image to roll back to")
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(s.resolve("app").unwrap().id, a);
    assert_eq!(s.tag_log("app").unwrap(), before);
    assert_eq!(before[0].how, "rollback");
    assert_eq!(before.len(), 5);
}

#[test]
fn prune_keeps_logged_images_but_rmi_by_id_works() {
    let (_d, s) = store();
    let a = import(&s, "a", Some("app:1"));
    let b = import(&s, "b", Some("app:1"));
    let stray = import(&s, "stray", None);
    let plain = import(&s, "plain", Some("plain:1"));
    // `a` is untagged now but in app:1's log: prune keeps it, and -a keeps app:1's image too.
    let r = s.prune(true, &no_containers).unwrap();
    let deleted: Vec<String> = r
        .images_deleted
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.deleted)
        .collect();
    assert!(deleted.contains(&stray));
    assert!(!deleted.contains(&a));
    let r = s.prune(false, &no_containers).unwrap();
    let deleted: Vec<String> = r
        .images_deleted
        .unwrap_or_default()
        .into_iter()
        .filter_map(|i| i.deleted)
        .collect();
    assert!(
        deleted.contains(&plain),
        "a tag without history prunes as in Docker"
    );
    assert!(!deleted.contains(&a) && !deleted.contains(&b));
    assert!(s.resolve(&a).is_ok());
    // Removing the logged image by ID works; a rollback to it then fails clearly.
    s.remove(&a, false, &no_containers).unwrap();
    match s.rollback("app:1") {
        Err(ImageError::Conflict(m)) => assert_eq!(
            m,
            format!("cannot roll back app:1: its previous image {a} was removed")
        ),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.resolve("app:1").unwrap().id, b);
    let log = s.tag_log("app:1").unwrap();
    assert_eq!(log[1].id, a);
    assert_eq!(log[1].created, None);
}

#[test]
fn removing_the_tag_forgets_its_log() {
    let (_d, s) = store();
    let a = import(&s, "a", Some("app:1"));
    import(&s, "b", Some("app:1"));
    s.remove("app:1", false, &no_containers).unwrap();
    assert!(matches!(s.tag_log("app:1"), Err(ImageError::NotFound(_))));
    // With the log gone, the old image is an ordinary dangling image again.
    s.prune(true, &no_containers).unwrap();
    assert!(s.resolve(&a).is_err());
    s.tag(&import(&s, "c", None), "app:1").unwrap();
    assert_eq!(s.tag_log("app:1").unwrap().len(), 1);
}

#[test]
fn log_survives_reopen() {
    let (d, s) = store();
    let a = import(&s, "a", Some("app"));
    let b = import(&s, "b", Some("app"));
    drop(s);
    let s = ImageStore::open(d.path()).unwrap();
    let log = s.tag_log("app").unwrap();
    assert_eq!(log.len(), 2);
    assert_eq!(log[0].id, b);
    let r = s.rollback("app").unwrap();
    assert_eq!(r.to, a);
    drop(s);
    let s = ImageStore::open(d.path()).unwrap();
    assert_eq!(s.resolve("app").unwrap().id, a);
    assert_eq!(s.tag_log("app").unwrap()[0].how, "rollback");
}
