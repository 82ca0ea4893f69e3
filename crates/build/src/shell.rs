//! Variable substitution with the Dockerfile rules (BuildKit's `shell.Lex`): `$v`, `${v}`,
//! `${v:-w}`, `${v-w}`, `${v:+w}`, `${v+w}`, `${v:?msg}`, `${v?msg}`, single and double quotes,
//! and the escape character (`\` or the one set with `# escape=`). Quotes and escapes are removed
//! from the result, as the builder does for the instructions it expands.

use std::collections::BTreeMap;

/// An error while expanding a word; the text is BuildKit's.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ExpandError(pub String);

/// The variables visible to an expansion.
pub trait Lookup {
    /// The value of `name`, or `None` when it is not set.
    fn lookup(&self, name: &str) -> Option<String>;
}

impl Lookup for BTreeMap<String, String> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Lookup for Vec<(String, String)> {
    fn lookup(&self, name: &str) -> Option<String> {
        self.iter()
            .rev()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.clone())
    }
}

/// Expands one word: the whole input is one result, whitespace kept.
pub fn process_word(input: &str, env: &dyn Lookup, escape: char) -> Result<String, ExpandError> {
    let mut lex = Lexer::new(input, env, escape);
    lex.process(None)?;
    Ok(lex.raw)
}

/// Expands a heredoc body (`COPY <<EOF`): `$` references are replaced, quotes stay as they
/// are, and the escape character only escapes `$` and itself.
pub fn expand_heredoc(input: &str, env: &dyn Lookup, escape: char) -> Result<String, ExpandError> {
    let mut lex = Lexer::new(input, env, escape);
    lex.literal_quotes = true;
    lex.process(None)?;
    Ok(lex.raw)
}

/// Expands and splits on unquoted whitespace (`VOLUME a b`, `EXPOSE 80 443`). A quoted empty
/// string (`""`) is a word.
pub fn process_words(
    input: &str,
    env: &dyn Lookup,
    escape: char,
) -> Result<Vec<String>, ExpandError> {
    let mut lex = Lexer::new(input, env, escape);
    Ok(lex.process(None)?.words)
}

/// The names of the variables a word refers to (used to find which build args are used).
pub fn referenced_names(input: &str, escape: char) -> Vec<String> {
    struct Recorder(std::cell::RefCell<Vec<String>>);
    impl Lookup for Recorder {
        fn lookup(&self, name: &str) -> Option<String> {
            self.0.borrow_mut().push(name.to_string());
            None
        }
    }
    let rec = Recorder(Default::default());
    let _ = process_word(input, &rec, escape);
    rec.0.into_inner()
}

#[derive(Default)]
struct Words {
    words: Vec<String>,
    current: String,
    in_word: bool,
}

impl Words {
    fn push_char(&mut self, c: char) {
        self.current.push(c);
        self.in_word = true;
    }
    fn push_str(&mut self, s: &str) {
        self.current.push_str(s);
        self.in_word = true;
    }
    fn mark(&mut self) {
        self.in_word = true;
    }
    fn split(&mut self) {
        if self.in_word {
            self.words.push(std::mem::take(&mut self.current));
            self.in_word = false;
        }
    }
    fn finish(mut self) -> Self {
        self.split();
        self
    }
}

struct Lexer<'a> {
    chars: Vec<char>,
    pos: usize,
    env: &'a dyn Lookup,
    escape: char,
    raw: String,
    /// Heredoc mode: quotes are literal, the escape character only escapes `$` and itself.
    literal_quotes: bool,
}

impl<'a> Lexer<'a> {
    fn new(input: &str, env: &'a dyn Lookup, escape: char) -> Self {
        Lexer {
            chars: input.chars().collect(),
            pos: 0,
            env,
            escape,
            raw: String::new(),
            literal_quotes: false,
        }
    }

    fn peek(&self) -> Option<char> {
        self.chars.get(self.pos).copied()
    }

    fn next(&mut self) -> Option<char> {
        let c = self.peek();
        if c.is_some() {
            self.pos += 1;
        }
        c
    }

    /// Processes until `stop` (not consumed) or the end. Returns the words split on unquoted
    /// whitespace; `self.raw` gets the unsplit text (what `process_word` returns).
    fn process(&mut self, stop: Option<char>) -> Result<Words, ExpandError> {
        let mut words = Words::default();
        let mut raw = String::new();
        while let Some(c) = self.peek() {
            if Some(c) == stop {
                break;
            }
            self.pos += 1;
            if self.literal_quotes && (c == '\'' || c == '"') {
                raw.push(c);
                words.push_char(c);
            } else if self.literal_quotes && c == self.escape {
                match self.peek() {
                    Some(n) if n == '$' || n == self.escape => {
                        self.pos += 1;
                        raw.push(n);
                        words.push_char(n);
                    }
                    _ => {
                        raw.push(c);
                        words.push_char(c);
                    }
                }
            } else if c == '\'' {
                let s = self.single_quoted()?;
                raw.push_str(&s);
                words.push_str(&s);
                words.mark();
            } else if c == '"' {
                let s = self.double_quoted()?;
                raw.push_str(&s);
                words.push_str(&s);
                words.mark();
            } else if c == '$' {
                let s = self.dollar()?;
                raw.push_str(&s);
                // Expanded text is split on whitespace, as a shell would.
                for ch in s.chars() {
                    if ch.is_whitespace() {
                        words.split();
                    } else {
                        words.push_char(ch);
                    }
                }
            } else if c == self.escape {
                match self.next() {
                    Some(n) => {
                        raw.push(n);
                        words.push_char(n);
                    }
                    None => break,
                }
            } else if c.is_whitespace() {
                raw.push(c);
                words.split();
            } else {
                raw.push(c);
                words.push_char(c);
            }
        }
        self.raw = raw;
        Ok(words.finish())
    }

    fn single_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError(
                        "unexpected end of statement while looking for matching single-quote"
                            .into(),
                    ))
                }
                Some('\'') => return Ok(out),
                Some(c) => out.push(c),
            }
        }
    }

    fn double_quoted(&mut self) -> Result<String, ExpandError> {
        let mut out = String::new();
        loop {
            match self.next() {
                None => {
                    return Err(ExpandError(
                        "unexpected end of statement while looking for matching double-quote"
                            .into(),
                    ))
                }
                Some('"') => return Ok(out),
                Some('$') => out.push_str(&self.dollar()?),
                Some(c) if c == self.escape => match self.peek() {
                    Some(n) if n == '"' || n == '$' || n == self.escape => {
                        self.pos += 1;
                        out.push(n);
                    }
                    _ => out.push(c),
                },
                Some(c) => out.push(c),
            }
        }
    }

    fn name(&mut self) -> String {
        let mut name = String::new();
        if let Some(c) = self.peek() {
            if c.is_ascii_digit() {
                self.pos += 1;
                name.push(c);
                return name;
            }
        }
        while let Some(c) = self.peek() {
            if c.is_ascii_alphanumeric() || c == '_' {
                name.push(c);
                self.pos += 1;
            } else {
                break;
            }
        }
        name
    }

    /// Called after a `$`.
    fn dollar(&mut self) -> Result<String, ExpandError> {
        if self.peek() != Some('{') {
            let name = self.name();
            if name.is_empty() {
                return Ok("$".into());
            }
            return Ok(self.env.lookup(&name).unwrap_or_default());
        }
        self.pos += 1;
        let name = self.name();
        if name.is_empty() {
            return Err(ExpandError("missing variable name in substitution".into()));
        }
        match self.next() {
            Some('}') => Ok(self.env.lookup(&name).unwrap_or_default()),
            Some(':') => {
                let modifier = self.next();
                match modifier {
                    Some(m @ ('-' | '+' | '?')) => self.modifier(&name, m, true),
                    Some(m) => Err(ExpandError(format!(
                        "unsupported modifier ({m}) in substitution"
                    ))),
                    None => Err(ExpandError("syntax error: missing '}'".into())),
                }
            }
            Some(m @ ('-' | '+' | '?')) => self.modifier(&name, m, false),
            Some(m) => Err(ExpandError(format!(
                "unsupported modifier ({m}) in substitution"
            ))),
            None => Err(ExpandError("syntax error: missing '}'".into())),
        }
    }

    fn modifier(&mut self, name: &str, m: char, colon: bool) -> Result<String, ExpandError> {
        let saved_raw = std::mem::take(&mut self.raw);
        self.process(Some('}'))?;
        let word = std::mem::replace(&mut self.raw, saved_raw);
        if self.next() != Some('}') {
            return Err(ExpandError("syntax error: missing '}'".into()));
        }
        let value = self.env.lookup(name);
        let unset = match &value {
            None => true,
            Some(v) => colon && v.is_empty(),
        };
        match m {
            '-' => Ok(if unset {
                word
            } else {
                value.unwrap_or_default()
            }),
            '+' => Ok(if unset { String::new() } else { word }),
            _ => {
                if unset {
                    if word.is_empty() {
                        let what = if colon { "empty" } else { "unset" };
                        Err(ExpandError(format!("{name}: is not allowed to be {what}")))
                    } else {
                        Err(ExpandError(format!("{name}: {word}")))
                    }
                } else {
                    Ok(value.unwrap_or_default())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests;
