use super::*;

fn env() -> BTreeMap<String, String> {
    [("A", "a"), ("EMPTY", ""), ("SP", "x y"), ("N", "1")]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn w(s: &str) -> String {
    process_word(s, &env(), '\\').unwrap()
}

#[test]
fn plain_and_braced() {
    assert_eq!(w("$A"), "a");
    assert_eq!(w("${A}b"), "ab");
    assert_eq!(w("$Ab"), "");
    assert_eq!(w("pre-$A-post"), "pre-a-post");
    assert_eq!(w("$UNSET"), "");
    assert_eq!(w("cost $"), "cost $");
    assert_eq!(w("$1"), "");
}

#[test]
fn modifiers() {
    assert_eq!(w("${UNSET:-def}"), "def");
    assert_eq!(w("${EMPTY:-def}"), "def");
    assert_eq!(w("${EMPTY-def}"), "");
    assert_eq!(w("${UNSET-def}"), "def");
    assert_eq!(w("${A:-def}"), "a");
    assert_eq!(w("${A:+alt}"), "alt");
    assert_eq!(w("${EMPTY:+alt}"), "");
    assert_eq!(w("${EMPTY+alt}"), "alt");
    assert_eq!(w("${UNSET+alt}"), "");
    assert_eq!(w("${UNSET:-$A$A}"), "aa");
    assert_eq!(w("${UNSET:-a b}"), "a b");
    assert_eq!(w("${A:?boom}"), "a");
    let e = process_word("${UNSET:?must be set}", &env(), '\\').unwrap_err();
    assert_eq!(e.0, "UNSET: must be set");
    let e = process_word("${EMPTY:?}", &env(), '\\').unwrap_err();
    assert_eq!(e.0, "EMPTY: is not allowed to be empty");
    assert_eq!(w("${EMPTY?x}"), "");
    let e = process_word("${A", &env(), '\\').unwrap_err();
    assert!(e.0.contains("missing '}'"), "{e}");
    assert!(process_word("${A:=x}", &env(), '\\').is_err());
}

#[test]
fn quotes_and_escapes() {
    assert_eq!(w("'$A'"), "$A");
    assert_eq!(w("\"$A\""), "a");
    assert_eq!(w("\\$A"), "$A");
    assert_eq!(w("\"\\$A\""), "$A");
    assert_eq!(w("\"a\\nb\""), "a\\nb");
    assert_eq!(w("a\\ b"), "a b");
    assert_eq!(w("\"v 2\""), "v 2");
    assert_eq!(w("'it''s'"), "its");
    assert!(process_word("'open", &env(), '\\').is_err());
    assert!(process_word("\"open", &env(), '\\').is_err());
    // Backtick as the escape character: backslash is literal.
    assert_eq!(
        process_word("C:\\dir`$A", &env(), '`').unwrap(),
        "C:\\dir$A"
    );
}

#[test]
fn words_split_on_unquoted_space() {
    let v = process_words("a \"b c\" $SP '' d\\ e", &env(), '\\').unwrap();
    assert_eq!(v, vec!["a", "b c", "x", "y", "", "d e"]);
    assert_eq!(
        process_words("  ", &env(), '\\').unwrap(),
        Vec::<String>::new()
    );
}

#[test]
fn referenced() {
    let mut names = referenced_names("$A ${B:-$C} '$D'", '\\');
    names.sort();
    assert_eq!(names, vec!["A", "B", "C"]);
}

#[test]
fn heredoc_bodies_keep_quotes() {
    let out = expand_heredoc("echo \"$A\" '$A' \\$A \\n\n", &env(), '\\').unwrap();
    assert_eq!(out, "echo \"a\" 'a' $A \\n\n");
}
