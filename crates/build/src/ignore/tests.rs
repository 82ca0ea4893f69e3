use super::*;

fn m(lines: &str) -> IgnoreMatcher {
    IgnoreMatcher::parse(lines).unwrap()
}

#[test]
fn star_question_and_classes() {
    let p = m("*.log\nfile?.txt\n[ab]*.md\n");
    assert!(p.is_excluded("x.log"));
    assert!(!p.is_excluded("dir/x.log"), "* does not cross /");
    assert!(p.is_excluded("file1.txt"));
    assert!(!p.is_excluded("file10.txt"));
    assert!(p.is_excluded("a.md"));
    assert!(p.is_excluded("b-notes.md"));
    assert!(!p.is_excluded("c.md"));
    let n = m("[^a]*\n");
    assert!(!n.is_excluded("abc"));
    assert!(n.is_excluded("xyz"));
    let r = m("v[0-9]\n");
    assert!(r.is_excluded("v5"));
    assert!(!r.is_excluded("vx"));
}

#[test]
fn double_star() {
    let p = m("**/*.go\n");
    assert!(p.is_excluded("a.go"));
    assert!(p.is_excluded("x/y/z.go"));
    assert!(!p.is_excluded("x/y/z.rs"));
    let q = m("docs/**\n");
    assert!(q.is_excluded("docs/a/b"));
    let mid = m("a/**/b\n");
    assert!(mid.is_excluded("a/b"));
    assert!(mid.is_excluded("a/x/y/b"));
    assert!(!mid.is_excluded("a/x/y/c"));
}

#[test]
fn directories_and_parents() {
    let p = m("node_modules\n/build\n./tmp/\n");
    assert!(p.is_excluded("node_modules"));
    assert!(p.is_excluded("node_modules/x/y.js"));
    assert!(
        !p.is_excluded("src/node_modules"),
        "patterns are anchored at the root"
    );
    assert!(p.is_excluded("build/out"));
    assert!(p.is_excluded("tmp/a"));
}

#[test]
fn exceptions_and_order() {
    let p = m("*.md\n!README.md\n");
    assert!(p.is_excluded("CHANGES.md"));
    assert!(!p.is_excluded("README.md"));
    let q = m("!README.md\n*.md\n");
    assert!(q.is_excluded("README.md"), "later lines win");
    let d = m("docs\n!docs/keep.txt\n");
    assert!(d.is_excluded("docs/other.txt"));
    assert!(!d.is_excluded("docs/keep.txt"));
    let comment = m("# *.rs\n\n  \n");
    assert!(comment.is_empty());
    assert!(IgnoreMatcher::parse("[abc\n").is_err());
    assert!(IgnoreMatcher::parse("!\n").is_err());
}

#[test]
fn escapes() {
    let p = m("\\*.txt\n");
    assert!(p.is_excluded("*.txt"));
    assert!(!p.is_excluded("a.txt"));
}

#[test]
fn clean_paths() {
    assert_eq!(clean_path("./a/../b//c/"), "b/c");
    assert_eq!(clean_path("/a/./b"), "/a/b");
    assert_eq!(clean_path("."), ".");
    assert_eq!(clean_path("../x"), "../x");
}

fn touch(root: &Path, rel: &str) {
    let p = root.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, rel).unwrap();
}

#[test]
fn kept_files_walks_context() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    for f in [
        "a.txt",
        "b.log",
        "docs/x.md",
        "docs/keep.md",
        "src/main.rs",
        "Dockerfile",
    ] {
        touch(root, f);
    }
    std::fs::create_dir(root.join("empty")).unwrap();
    std::fs::write(root.join(".dockerignore"), "*.log\ndocs\n!docs/keep.md\n").unwrap();
    let matcher = load(root, Some(Path::new("Dockerfile"))).unwrap();
    let kept: Vec<String> = kept_files(root, &matcher)
        .unwrap()
        .into_iter()
        .map(|e| e.path)
        .collect();
    assert_eq!(
        kept,
        vec![
            ".dockerignore",
            "Dockerfile",
            "a.txt",
            "docs",
            "docs/keep.md",
            "empty",
            "src",
            "src/main.rs"
        ]
    );
    // The Dockerfile-specific ignore file wins over .dockerignore.
    std::fs::write(root.join("Dockerfile.dockerignore"), "src\n").unwrap();
    let matcher = load(root, Some(Path::new("Dockerfile"))).unwrap();
    assert!(matcher.is_excluded("src/main.rs"));
    assert!(!matcher.is_excluded("b.log"));
    let matcher = load(root, None).unwrap();
    assert!(matcher.is_excluded("b.log"));
}
