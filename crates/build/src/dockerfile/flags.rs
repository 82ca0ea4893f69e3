//! Instruction flags (`--from=x`, `--link`, `--mount=…`): BuildKit's `extractBuilderFlags`
//! (leading words that start with `--`, quotes and escapes inside them) and `BFlags` (the
//! known flags per instruction, booleans, repeatable strings).

/// A flag's declared kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagKind {
    /// `--name=value`, once.
    String,
    /// `--name=value`, repeatable.
    Strings,
    /// `--name` or `--name=true|false`.
    Bool,
}

/// The parsed flags of one instruction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Flags {
    values: Vec<(String, String)>,
}

impl Flags {
    /// The last value of a string flag.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values
            .iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// All values of a repeatable flag, in order.
    pub fn all(&self, name: &str) -> Vec<String> {
        self.values
            .iter()
            .filter(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
            .collect()
    }

    /// A boolean flag.
    pub fn bool(&self, name: &str) -> bool {
        self.get(name) == Some("true")
    }
}

/// Splits the leading `--flag` words from the rest of the line.
pub fn extract(line: &str) -> (Vec<String>, String) {
    let chars: Vec<char> = line.chars().collect();
    let mut words = Vec::new();
    let mut pos = 0;
    loop {
        while pos < chars.len() && chars[pos].is_whitespace() {
            pos += 1;
        }
        if pos + 1 >= chars.len() || chars[pos] != '-' || chars[pos + 1] != '-' {
            let rest: String = chars[pos..].iter().collect();
            return (words, rest);
        }
        let mut word = String::new();
        let mut quote: Option<char> = None;
        while pos < chars.len() {
            let c = chars[pos];
            match quote {
                Some(q) if c == q => quote = None,
                Some(_) if c == '\\' && pos + 1 < chars.len() => {
                    pos += 1;
                    word.push(chars[pos]);
                }
                Some(_) => word.push(c),
                None if c.is_whitespace() => break,
                None if c == '"' || c == '\'' => quote = Some(c),
                None if c == '\\' && pos + 1 < chars.len() => {
                    pos += 1;
                    word.push(chars[pos]);
                }
                None => word.push(c),
            }
            pos += 1;
        }
        if word == "--" {
            let rest: String = chars[pos..].iter().collect();
            return (words, rest.trim_start().to_string());
        }
        words.push(word);
    }
}

/// Checks the words against the flags an instruction knows.
pub fn parse(words: &[String], known: &[(&str, FlagKind)]) -> Result<Flags, String> {
    let mut flags = Flags::default();
    let mut seen = std::collections::BTreeSet::new();
    for word in words {
        let Some(arg) = word.strip_prefix("--") else {
            return Err(format!("arg should start with -- : {word}"));
        };
        let (name, value) = match arg.split_once('=') {
            Some((n, v)) => (n, Some(v)),
            None => (arg, None),
        };
        let Some((_, kind)) = known.iter().find(|(k, _)| *k == name) else {
            return Err(format!("unknown flag: {name}"));
        };
        match kind {
            FlagKind::Bool => {
                let v = match value.map(|v| v.to_ascii_lowercase()) {
                    None => "true".to_string(),
                    Some(v) if v == "true" || v == "false" => v,
                    Some(v) => {
                        return Err(format!("expecting boolean value for flag {name}, not: {v}"))
                    }
                };
                flags.values.push((name.to_string(), v));
            }
            FlagKind::String | FlagKind::Strings => {
                let Some(v) = value else {
                    return Err(format!("missing a value on flag: {name}"));
                };
                if *kind == FlagKind::String && !seen.insert(name.to_string()) {
                    return Err(format!("duplicate flag specified: {name}"));
                }
                flags.values.push((name.to_string(), v.to_string()));
            }
        }
    }
    Ok(flags)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extracts_leading_flags() {
        let (w, rest) = extract("--from=build --chown=\"a b\":c src /dst");
        assert_eq!(w, vec!["--from=build", "--chown=a b:c"]);
        assert_eq!(rest, "src /dst");
        let (w, rest) = extract("  -- --not-a-flag x");
        assert!(w.is_empty());
        assert_eq!(rest, "--not-a-flag x");
        let (w, rest) = extract("echo --x");
        assert!(w.is_empty());
        assert_eq!(rest, "echo --x");
    }

    #[test]
    fn checks_known_flags() {
        let known = [
            ("from", FlagKind::String),
            ("link", FlagKind::Bool),
            ("mount", FlagKind::Strings),
        ];
        let f = parse(
            &[
                "--from=a".into(),
                "--link".into(),
                "--mount=x".into(),
                "--mount=y".into(),
            ],
            &known,
        )
        .unwrap();
        assert_eq!(f.get("from"), Some("a"));
        assert!(f.bool("link"));
        assert_eq!(f.all("mount"), vec!["x", "y"]);
        assert_eq!(
            parse(&["--nope=1".into()], &known).unwrap_err(),
            "unknown flag: nope"
        );
        assert_eq!(
            parse(&["--from".into()], &known).unwrap_err(),
            "missing a value on flag: from"
        );
        assert!(!parse(&["--link=false".into()], &known)
            .unwrap()
            .bool("link"));
        assert!(parse(&["--link=maybe".into()], &known).is_err());
    }
}
