//! Byte-level JSON re-formatting that keeps the daemon's key order (Go's `json.Indent` and
//! `json.Compact`).

/// Removes insignificant whitespace.
pub fn compact(src: &str) -> String {
    let mut out = String::with_capacity(src.len());
    let mut in_str = false;
    let mut esc = false;
    for c in src.chars() {
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
        } else if c == '"' {
            in_str = true;
            out.push(c);
        } else if !c.is_whitespace() {
            out.push(c);
        }
    }
    out
}

/// Indents JSON like `json.Indent(dst, src, prefix, indent)`; empty `{}`/`[]` stay compact.
pub fn indent(src: &str, prefix: &str, ind: &str) -> String {
    let src = compact(src);
    let chars: Vec<char> = src.chars().collect();
    let mut out = String::with_capacity(src.len() * 2);
    let mut depth = 0usize;
    let mut in_str = false;
    let mut esc = false;
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(prefix);
        for _ in 0..depth {
            out.push_str(ind);
        }
    };
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if in_str {
            out.push(c);
            if esc {
                esc = false;
            } else if c == '\\' {
                esc = true;
            } else if c == '"' {
                in_str = false;
            }
            i += 1;
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                if chars.get(i + 1) == Some(&close) {
                    out.push(c);
                    out.push(close);
                    i += 2;
                    continue;
                }
                out.push(c);
                depth += 1;
                newline(&mut out, depth);
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c => out.push(c),
        }
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indents_like_go() {
        let s = r#"{"Id":"a b","Args":[],"Cfg":{},"L":[1,2],"S":"x,{y}:\"z"}"#;
        assert_eq!(
            indent(s, "", "    "),
            "{\n    \"Id\": \"a b\",\n    \"Args\": [],\n    \"Cfg\": {},\n    \"L\": [\n        1,\n        2\n    ],\n    \"S\": \"x,{y}:\\\"z\"\n}"
        );
        assert_eq!(
            compact("{ \"a\" : [ 1, \"b c\" ] }\n"),
            r#"{"a":[1,"b c"]}"#
        );
    }
}
