//! Detach keys: Docker's key-sequence syntax (`ctrl-p,ctrl-q`, `a,ctrl-[`, `DEL`) and the
//! scanner that finds the sequence in a terminal's input stream, as dockerd's and the docker
//! CLI's escape proxy do. The daemon scans an attached TTY's stdin (ending the client's
//! stream on a match and leaving the container running); the CLI scans its own stdin so that
//! it knows the stream ended by detaching.

/// The default sequence: ctrl-p ctrl-q.
pub const DEFAULT_KEYS: [u8; 2] = [0x10, 0x11];

/// Names of the control characters, indexed by their code (`ctrl-@` is 0, `ctrl-_` is 31).
const CTRL_NAMES: [&str; 32] = [
    "ctrl-@", "ctrl-a", "ctrl-b", "ctrl-c", "ctrl-d", "ctrl-e", "ctrl-f", "ctrl-g", "ctrl-h",
    "ctrl-i", "ctrl-j", "ctrl-k", "ctrl-l", "ctrl-m", "ctrl-n", "ctrl-o", "ctrl-p", "ctrl-q",
    "ctrl-r", "ctrl-s", "ctrl-t", "ctrl-u", "ctrl-v", "ctrl-w", "ctrl-x", "ctrl-y", "ctrl-z",
    "ctrl-[", "ctrl-\\", "ctrl-]", "ctrl-^", "ctrl-_",
];

/// A key name that is neither one character, `ctrl-X` nor `DEL` (Docker's wording).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("Unknown character: '{0}'")]
pub struct UnknownKey(pub String);

/// Parses a comma-separated key list as Docker's `term.ToBytes` does: one character stands
/// for itself, `ctrl-@`…`ctrl-_` for its control code, `DEL` for 127.
pub fn parse_keys(keys: &str) -> Result<Vec<u8>, UnknownKey> {
    keys.split(',')
        .map(|k| {
            if k.len() == 1 {
                return Ok(k.as_bytes()[0]);
            }
            if k == "DEL" {
                return Ok(127);
            }
            CTRL_NAMES
                .iter()
                .position(|n| *n == k)
                .map(|code| code as u8)
                .ok_or_else(|| UnknownKey(k.to_string()))
        })
        .collect()
}

/// The keys to scan for: `keys` parsed, or the default when it is empty.
pub fn keys_or_default(keys: &str) -> Result<Vec<u8>, UnknownKey> {
    if keys.is_empty() {
        Ok(DEFAULT_KEYS.to_vec())
    } else {
        parse_keys(keys)
    }
}

/// What one chunk of input came to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scanned {
    /// Bytes to pass on (possibly empty: a partial sequence is held back until it is decided).
    Pass(Vec<u8>),
    /// The sequence was typed: pass the bytes before it, then detach (the rest is dropped).
    Detach(Vec<u8>),
}

/// Finds the detach sequence across chunk boundaries. Bytes that begin the sequence are held
/// back until the sequence either completes (they are swallowed) or breaks (they are passed on).
#[derive(Debug, Clone)]
pub struct Scanner {
    keys: Vec<u8>,
    matched: usize,
}

impl Scanner {
    /// A scanner for `keys` (non-empty; an empty list never detaches).
    pub fn new(keys: Vec<u8>) -> Self {
        Scanner { keys, matched: 0 }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Scanned {
        if self.keys.is_empty() {
            return Scanned::Pass(chunk.to_vec());
        }
        let mut out = Vec::with_capacity(chunk.len());
        for &b in chunk {
            if b == self.keys[self.matched] {
                self.matched += 1;
                if self.matched == self.keys.len() {
                    self.matched = 0;
                    return Scanned::Detach(out);
                }
                continue;
            }
            // The held-back prefix was not the sequence after all.
            out.extend_from_slice(&self.keys[..self.matched]);
            self.matched = 0;
            if b == self.keys[0] {
                self.matched = 1;
                if self.keys.len() == 1 {
                    self.matched = 0;
                    return Scanned::Detach(out);
                }
            } else {
                out.push(b);
            }
        }
        Scanned::Pass(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_dockers_syntax() {
        assert_eq!(parse_keys("ctrl-p,ctrl-q").unwrap(), vec![16, 17]);
        assert_eq!(
            parse_keys("a,ctrl-@,ctrl-_,DEL").unwrap(),
            vec![b'a', 0, 31, 127]
        );
        assert_eq!(parse_keys("ctrl-\\").unwrap(), vec![28]);
        assert_eq!(
            parse_keys("ctrl-p,bogus").unwrap_err().to_string(),
            "Unknown character: 'bogus'"
        );
        assert!(parse_keys("").is_err(), "an empty name is no key");
        assert_eq!(keys_or_default("").unwrap(), DEFAULT_KEYS.to_vec());
    }

    #[test]
    fn detaches_on_the_whole_sequence_only() {
        let mut s = Scanner::new(DEFAULT_KEYS.to_vec());
        assert_eq!(s.feed(b"ab"), Scanned::Pass(b"ab".to_vec()));
        assert_eq!(
            s.feed(b"x\x10"),
            Scanned::Pass(b"x".to_vec()),
            "prefix held"
        );
        assert_eq!(
            s.feed(b"y"),
            Scanned::Pass(b"\x10y".to_vec()),
            "broken: passed"
        );
        assert_eq!(s.feed(b"z\x10\x11rest"), Scanned::Detach(b"z".to_vec()));
    }

    #[test]
    fn sequence_split_across_chunks() {
        let mut s = Scanner::new(vec![1, 2, 3]);
        assert_eq!(s.feed(b"q\x01"), Scanned::Pass(b"q".to_vec()));
        assert_eq!(s.feed(b"\x02"), Scanned::Pass(vec![]));
        assert_eq!(s.feed(b"\x03"), Scanned::Detach(vec![]));
    }

    #[test]
    fn a_broken_prefix_can_start_the_sequence_again() {
        let mut s = Scanner::new(DEFAULT_KEYS.to_vec());
        assert_eq!(s.feed(b"\x10\x10\x11"), Scanned::Detach(vec![0x10]));
        let mut one = Scanner::new(vec![b'x']);
        assert_eq!(one.feed(b"abxc"), Scanned::Detach(b"ab".to_vec()));
    }
}
