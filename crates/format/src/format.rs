//! A subset of Go's `text/template` as docker's `--format` uses it, evaluated on JSON values.
//!
//! Supported: literal text, `{{.A.B}}`, `{{.}}`, `{{json .X}}`, `{{index .M "k"}}`,
//! `{{.Label "k"}}` (method call: looks up the hidden `__Label` map), pipes (`|`),
//! `upper lower title join split len truncate pad printf print println eq ne not and or`,
//! `{{range}}`/`{{if}}`/`{{with}}` with `{{else}}` and `{{end}}`, variables (`$`, `$v`,
//! `range $k, $v := ...`), trim markers (`{{-`, `-}}`), and docker's `table` prefix.
//!
//! This module owns the `Template` type and docker's `--format` handling (`Format`: escapes,
//! `json`, the `table` prefix); `parse` builds the node tree and `eval` renders it.

mod eval;
mod parse;

use anyhow::Result;
use serde_json::{Map, Value};

use eval::Eval;
use parse::Node;

/// A parsed template.
#[derive(Debug, Clone)]
pub struct Template {
    nodes: Vec<Node>,
}

impl Template {
    pub fn parse(src: &str) -> Result<Template> {
        Ok(Template {
            nodes: parse::parse(src)?,
        })
    }

    /// Renders the template with `data` as dot.
    pub fn render(&self, data: &Value) -> Result<String> {
        let mut ev = Eval {
            vars: vec![("".to_string(), data.clone())],
            header: None,
        };
        let mut out = String::new();
        ev.nodes(&self.nodes, data, &mut out)?;
        Ok(out)
    }

    /// Renders the header row: every field evaluates to its header name.
    pub fn render_header(&self, headers: &Map<String, Value>) -> Result<String> {
        let mut ev = Eval {
            vars: vec![("".to_string(), Value::Null)],
            header: Some(headers),
        };
        let mut out = String::new();
        ev.nodes(&self.nodes, &Value::Null, &mut out)?;
        Ok(out)
    }
}

/// Docker's format argument handling: `\t`/`\n` escapes, `json`, and the `table` prefix.
pub struct Format {
    pub table: bool,
    pub tmpl: Template,
}

pub fn replace_escapes(s: &str) -> String {
    s.replace("\\t", "\t").replace("\\n", "\n")
}

impl Format {
    /// `default` is used for "" and "table" (a `table ...` template).
    pub fn new(format: &str, default: &str) -> Result<Format> {
        let f = if format.is_empty() || format == "table" {
            default.to_string()
        } else if format == "json" {
            "{{json .}}".to_string()
        } else {
            format.to_string()
        };
        let f = replace_escapes(&f);
        let (table, body) = match f.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start_matches(' ').to_string())
            }
            _ => (false, f.clone()),
        };
        Ok(Format {
            table,
            tmpl: Template::parse(&body)?,
        })
    }

    /// Renders every row (and the header in table mode); returns the text to print.
    pub fn render_all(&self, rows: &[Value], headers: &Map<String, Value>) -> Result<String> {
        let mut out = String::new();
        if self.table {
            out.push_str(&self.tmpl.render_header(headers)?);
            out.push('\n');
        }
        for r in rows {
            out.push_str(&self.tmpl.render(r)?);
            out.push('\n');
        }
        if self.table {
            out = crate::table::align(&out);
        }
        Ok(out)
    }
}

/// Builds a headers map from (field, header) pairs.
pub fn headers(pairs: &[(&str, &str)]) -> Map<String, Value> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), Value::String(v.to_string())))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn r(t: &str, v: Value) -> String {
        Template::parse(t).unwrap().render(&v).unwrap()
    }

    /// Found by the `template` fuzz target: dot given an argument (`{{. 1}}`) underflowed a
    /// slice index and panicked. Go refuses it: an error here too.
    #[test]
    fn dot_with_an_argument_is_an_error_not_a_panic() {
        let v = json!({"A": 1});
        for t in ["{{. 1}}", "{{\t...............\t1\t}}s~}]\r"] {
            let e = Template::parse(t).and_then(|t| t.render(&v)).unwrap_err();
            assert!(e.to_string().contains("template"), "{t:?}: {e}");
        }
        assert_eq!(r("{{.}}", json!("x")), "x");
    }

    #[test]
    fn fields_and_text() {
        let v = json!({"State": {"Status": "running", "Pid": 42}, "Id": "abc", "Config": {"Image": "busybox"}});
        assert_eq!(r("{{.State.Status}}", v.clone()), "running");
        assert_eq!(
            r("id={{.Id}} pid={{.State.Pid}}", v.clone()),
            "id=abc pid=42"
        );
        assert_eq!(r("{{.Config.Image}}", v.clone()), "busybox");
        assert_eq!(r("{{.Nope}}", v.clone()), "<no value>");
        assert_eq!(
            r("{{json .State}}", v.clone()),
            r#"{"Pid":42,"Status":"running"}"#
        );
        assert_eq!(r("{{ .Id }}", v), "abc");
    }

    #[test]
    fn functions() {
        let v = json!({"Labels": {"a.b": "x", "c": "y"}, "Names": ["n1", "n2"], "Name": "Foo", "__Label": {"a.b": "x"}});
        assert_eq!(r(r#"{{index .Labels "a.b"}}"#, v.clone()), "x");
        assert_eq!(r(r#"{{.Label "a.b"}}"#, v.clone()), "x");
        assert_eq!(r(r#"{{.Label "zz"}}"#, v.clone()), "");
        assert_eq!(r("{{upper .Name}} {{lower .Name}}", v.clone()), "FOO foo");
        assert_eq!(r("{{.Name | upper}}", v.clone()), "FOO");
        assert_eq!(r(r#"{{join .Names ","}}"#, v.clone()), "n1,n2");
        assert_eq!(r("{{len .Names}}", v.clone()), "2");
        assert_eq!(
            r("{{json .}}", v.clone()),
            r#"{"Labels":{"a.b":"x","c":"y"},"Name":"Foo","Names":["n1","n2"]}"#
        );
        assert_eq!(r("{{.Names}}", v.clone()), "[n1 n2]");
        assert_eq!(r("{{.Labels}}", v), "map[a.b:x c:y]");
    }

    #[test]
    fn control() {
        let v = json!({"Mounts": [{"S": "/a"}, {"S": "/b"}], "L": {"k1": "v1", "k2": "v2"}, "On": true});
        assert_eq!(r("{{range .Mounts}}{{.S}};{{end}}", v.clone()), "/a;/b;");
        assert_eq!(
            r("{{range $k, $v := .L}}{{$k}}={{$v}} {{end}}", v.clone()),
            "k1=v1 k2=v2 "
        );
        assert_eq!(r("{{if .On}}yes{{else}}no{{end}}", v.clone()), "yes");
        assert_eq!(r("{{if .Off}}yes{{else}}no{{end}}", v.clone()), "no");
        assert_eq!(r(r#"{{if eq .L.k1 "v1"}}eq{{end}}"#, v.clone()), "eq");
        assert_eq!(r("{{with .L}}{{.k2}}{{end}}", v.clone()), "v2");
        assert_eq!(r("a {{- .L.k1 -}} b", v.clone()), "av1b");
        assert_eq!(r("{{range .Mounts}}{{$.On}}{{end}}", v), "truetrue");
    }

    #[test]
    fn table_format() {
        let f = Format::new("table {{.ID}}\\t{{.Names}}", "").unwrap();
        assert!(f.table);
        let h = headers(&[("ID", "CONTAINER ID"), ("Names", "NAMES")]);
        let out = f
            .render_all(&[json!({"ID": "abcdef123456", "Names": "x"})], &h)
            .unwrap();
        assert_eq!(out, "CONTAINER ID   NAMES\nabcdef123456   x\n");
        let f = Format::new("{{.ID}}: {{.Names}}", "").unwrap();
        assert!(!f.table);
        let out = f
            .render_all(&[json!({"ID": "a", "Names": "x"})], &h)
            .unwrap();
        assert_eq!(out, "a: x\n");
    }

    #[test]
    fn errors() {
        assert!(Template::parse("{{.A").is_err());
        assert!(Template::parse("{{range .A}}").is_err());
        assert!(Template::parse("{{nosuch .A}}")
            .unwrap()
            .render(&json!({}))
            .is_err());
    }
}
