//! The policy's parsing, scope matching, identity rules and evaluation.

use super::*;
use crate::keys::{generate_key_pair, SigningKey};
use crate::payload::SignedPayload;

struct Keys {
    dir: tempfile::TempDir,
    key: SigningKey,
    other: SigningKey,
}

fn keys() -> Keys {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = generate_key_pair(b"").unwrap();
    std::fs::write(dir.path().join("k.pub"), public).unwrap();
    let (other_private, other_public) = generate_key_pair(b"").unwrap();
    std::fs::write(dir.path().join("o.pub"), other_public).unwrap();
    Keys {
        dir,
        key: SigningKey::from_encrypted_pem(&private, b"").unwrap(),
        other: SigningKey::from_encrypted_pem(&other_private, b"").unwrap(),
    }
}

fn r(s: &str) -> DockerReference {
    DockerReference::parse(s).unwrap()
}

fn digest(c: char) -> String {
    format!("sha256:{}", c.to_string().repeat(64))
}

fn sig(key: &SigningKey, identity: &str, d: &str) -> UntrustedSignature {
    let payload = SignedPayload {
        docker_reference: identity.into(),
        manifest_digest: d.into(),
    }
    .to_bytes(0);
    UntrustedSignature {
        media_type: crate::attachment::SIGNATURE_MEDIA_TYPE.into(),
        signature: Some(SignedPayload::sign(&payload, key)),
        payload,
    }
}

fn policy(k: &Keys, json: &str) -> Policy {
    Policy::parse(json.as_bytes(), k.dir.path()).unwrap()
}

const SIGNED: &str = r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker":{
  "127.0.0.1:5000/signed":[{"type":"sigstoreSigned","keyPath":"k.pub"}],
  "127.0.0.1:5000/repo":[{"type":"sigstoreSigned","keyPath":"k.pub","signedIdentity":{"type":"matchRepository"}}],
  "127.0.0.1:5000":[{"type":"reject"}]}}}"#;

#[test]
fn most_specific_scope_wins() {
    let k = keys();
    let p = policy(&k, SIGNED);
    assert!(matches!(
        p.for_docker(&r("127.0.0.1:5000/signed:v1"))[0],
        Requirement::SigstoreSigned(_)
    ));
    assert!(matches!(
        p.for_docker(&r("127.0.0.1:5000/other:v1"))[0],
        Requirement::Reject
    ));
    assert!(matches!(
        p.for_docker(&r("busybox"))[0],
        Requirement::InsecureAcceptAnything
    ));
    let p = policy(
        &k,
        r#"{"default":[{"type":"reject"}],"transports":{"docker":{
        "":[{"type":"insecureAcceptAnything"}],
        "*.example.com":[{"type":"reject"}],
        "a.example.com/ns/x:v1":[{"type":"insecureAcceptAnything"}]}}}"#,
    );
    assert!(matches!(
        p.for_docker(&r("a.example.com/ns/x:v1"))[0],
        Requirement::InsecureAcceptAnything
    ));
    assert!(matches!(
        p.for_docker(&r("a.example.com/ns/x:v2"))[0],
        Requirement::Reject
    ));
    assert!(
        matches!(
            p.for_docker(&r("quay.io/x"))[0],
            Requirement::InsecureAcceptAnything
        ),
        "transport default"
    );
}

#[test]
fn signed_image_accepted_and_tampering_refused() {
    let k = keys();
    let p = policy(&k, SIGNED);
    let image = r("127.0.0.1:5000/signed:v1");
    let reqs = p.for_docker(&image);
    let good = sig(&k.key, "127.0.0.1:5000/signed:v1", &digest('a'));
    let d = evaluate(reqs, &image, &digest('a'), std::slice::from_ref(&good)).unwrap();
    assert_eq!(d.verified.len(), 1);
    assert_eq!(
        d.verified[0].key_fingerprint,
        k.key.public_key().fingerprint()
    );
    assert!(d.verified[0].key_source.ends_with("k.pub"));
    // Unsigned.
    let e = evaluate(reqs, &image, &digest('a'), &[]).unwrap_err();
    assert!(e.to_string().contains("no signature exists"), "{e}");
    // Another key.
    let e = evaluate(
        reqs,
        &image,
        &digest('a'),
        &[sig(&k.other, "127.0.0.1:5000/signed:v1", &digest('a'))],
    )
    .unwrap_err();
    assert!(e.to_string().contains("trusted key"), "{e}");
    // Another digest (the tag moved to another manifest).
    let e = evaluate(reqs, &image, &digest('b'), std::slice::from_ref(&good)).unwrap_err();
    assert!(e.to_string().contains("does not match"), "{e}");
    // Another repository's signature.
    let e = evaluate(
        reqs,
        &image,
        &digest('a'),
        &[sig(&k.key, "127.0.0.1:5000/evil:v1", &digest('a'))],
    )
    .unwrap_err();
    assert!(e.to_string().contains("not accepted"), "{e}");
    // Another tag (matchRepoDigestOrExact by tag is exact).
    assert!(evaluate(
        reqs,
        &image,
        &digest('a'),
        &[sig(&k.key, "127.0.0.1:5000/signed:v2", &digest('a'))]
    )
    .is_err());
    // A tampered payload under a good signature.
    let mut swapped = good.clone();
    swapped.payload = String::from_utf8(swapped.payload)
        .unwrap()
        .replace("signed:v1", "signed:v9")
        .into_bytes();
    assert!(evaluate(reqs, &image, &digest('a'), &[swapped.clone()]).is_err());
    // One good signature among bad ones is enough.
    evaluate(reqs, &image, &digest('a'), &[swapped, good.clone()]).unwrap();
    // A wrong media type is not a signature.
    let mut odd = good;
    odd.media_type = "text/plain".into();
    assert!(evaluate(reqs, &image, &digest('a'), &[odd]).is_err());
    // The reject scope.
    let e = evaluate(
        p.for_docker(&r("127.0.0.1:5000/x:1")),
        &r("127.0.0.1:5000/x:1"),
        &digest('a'),
        &[],
    )
    .unwrap_err();
    assert!(e.to_string().contains("rejected"), "{e}");
}

#[test]
fn by_digest_matches_the_repository() {
    let k = keys();
    let p = policy(&k, SIGNED);
    let image = r(&format!("127.0.0.1:5000/signed@{}", digest('a')));
    let s = sig(&k.key, "127.0.0.1:5000/signed:any", &digest('a'));
    evaluate(p.for_docker(&image), &image, &digest('a'), &[s]).unwrap();
}

#[test]
fn identity_rules() {
    let i = r("127.0.0.1:5000/repo:v1");
    use SignedIdentity::*;
    assert!(identity_matches(&MatchExact, &i, "127.0.0.1:5000/repo:v1"));
    assert!(!identity_matches(&MatchExact, &i, "127.0.0.1:5000/repo:v2"));
    assert!(identity_matches(
        &MatchRepository,
        &i,
        "127.0.0.1:5000/repo:v2"
    ));
    assert!(identity_matches(
        &MatchRepository,
        &i,
        "127.0.0.1:5000/repo"
    ));
    assert!(!identity_matches(
        &MatchRepository,
        &i,
        "127.0.0.1:5000/other:v1"
    ));
    assert!(!identity_matches(
        &MatchRepoDigestOrExact,
        &i,
        "127.0.0.1:5000/repo"
    ));
    let exact = ExactReference("docker.io/library/busybox:latest".into());
    assert!(identity_matches(&exact, &i, "busybox:latest"));
    assert!(!identity_matches(&exact, &i, "busybox:1"));
    let repo = ExactRepository("docker.io/library/busybox".into());
    assert!(identity_matches(&repo, &i, "busybox:9"));
    let remap = RemapIdentity {
        prefix: "127.0.0.1:5000".into(),
        signed_prefix: "quay.io/team".into(),
    };
    assert!(identity_matches(&remap, &i, "quay.io/team/repo:v1"));
    assert!(!identity_matches(&remap, &i, "127.0.0.1:5000/repo:v1"));
    assert!(
        !identity_matches(
            &remap,
            &r("127.0.0.1:50000/repo:v1"),
            "quay.io/team/repo:v1"
        ),
        "prefix ends at a '/'"
    );
    assert!(!identity_matches(&MatchRepository, &i, "NOT A REFERENCE"));
}

#[test]
fn key_sources() {
    let k = keys();
    let data = base64::engine::general_purpose::STANDARD
        .encode(std::fs::read(k.dir.path().join("o.pub")).unwrap());
    let p = policy(
        &k,
        &format!(r#"{{"default":[{{"type":"sigstoreSigned","keyData":"{data}"}}]}}"#),
    );
    let image = r("a/b:c");
    evaluate(
        p.for_docker(&image),
        &image,
        &digest('a'),
        &[sig(&k.other, "a/b:c", &digest('a'))],
    )
    .unwrap();
    let p = policy(
        &k,
        r#"{"default":[{"type":"sigstoreSigned","keyPaths":["k.pub","o.pub"]}]}"#,
    );
    for key in [&k.key, &k.other] {
        evaluate(
            p.for_docker(&image),
            &image,
            &digest('a'),
            &[sig(key, "a/b:c", &digest('a'))],
        )
        .unwrap();
    }
}

#[test]
fn bad_policies_name_what_is_wrong() {
    let k = keys();
    for (json, needle) in [
        ("{", "JSON"),
        ("{}", "no \"default\""),
        (r#"{"default":[]}"#, "empty list"),
        (
            r#"{"default":[{"type":"nope"}]}"#,
            "unknown requirement type",
        ),
        (
            r#"{"default":[{"type":"signedBy","keyType":"GPGKeys","keyPath":"k"}]}"#,
            "not supported",
        ),
        (
            r#"{"default":[{"type":"sigstoreSigned"}]}"#,
            "exactly one of",
        ),
        (
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"k.pub","fulcio":{}}]}"#,
            "\"fulcio\"",
        ),
        (
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"absent.pub"}]}"#,
            "absent.pub",
        ),
        (
            r#"{"default":[{"type":"sigstoreSigned","keyPath":"k.pub","signedIdentity":{"type":"exactReference","dockerReference":"busybox"}}]}"#,
            "neither a tag",
        ),
        (r#"{"default":[{"type":"reject","extra":1}]}"#, "\"extra\""),
        (
            r#"{"default":[{"type":"reject"}],"transports":{"docker":{"Bad Scope":[{"type":"reject"}]}}}"#,
            "invalid docker scope",
        ),
        (
            r#"{"default":[{"type":"reject"}],"transports":{"docker-archive":{"/x.tar":[{"type":"reject"}]}}}"#,
            "only the \"\" scope",
        ),
    ] {
        let e = Policy::parse(json.as_bytes(), k.dir.path())
            .unwrap_err()
            .to_string();
        assert!(e.contains(needle), "{json}: {e}");
    }
}

#[test]
fn archives_follow_their_rule() {
    let k = keys();
    let p = policy(
        &k,
        r#"{"default":[{"type":"sigstoreSigned","keyPath":"k.pub"}]}"#,
    );
    assert!(evaluate_archive(&p)
        .unwrap_err()
        .to_string()
        .contains("archives carry no signatures"));
    let p = policy(
        &k,
        r#"{"default":[{"type":"reject"}],"transports":{"docker-archive":{"":[{"type":"insecureAcceptAnything"}]}}}"#,
    );
    evaluate_archive(&p).unwrap();
    let p = policy(
        &k,
        r#"{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker-archive":{"":[{"type":"reject"}]}}}"#,
    );
    assert!(evaluate_archive(&p).is_err());
}

#[test]
fn absent_policy_file_is_none() {
    let k = keys();
    assert!(Policy::load(&k.dir.path().join("policy.json"))
        .unwrap()
        .is_none());
    std::fs::write(k.dir.path().join("policy.json"), "junk").unwrap();
    let e = Policy::load(&k.dir.path().join("policy.json")).unwrap_err();
    assert!(e.to_string().contains("policy.json"), "{e}");
}
