//! `build --secret id=ID[,src=PATH|,env=VAR][,type=file|env]`: each spec parsed as buildx does,
//! its value read here on the client, and all of them sent to the daemon in berth's
//! `X-Berth-Build-Secrets` header (see `berth_build::secrets`). A bad spec fails before any
//! request, with pflag's wording and exit status 125.

use std::collections::BTreeMap;

use anyhow::Result;
use berth_build::secrets::{encode_header, SecretSpec, HEADER};

use crate::client::Exit;

/// The header fits the daemon's request-head buffer with room to spare.
const MAX_HEADER_LEN: usize = 256 * 1024;

/// The `(name, value)` of the secrets header for the `--secret` flags; `None` without any.
/// A secret read from an unset environment variable is left out (the build then reports it
/// missing where a mount requires it).
pub fn secrets_header(specs: &[String]) -> Result<Option<(&'static str, String)>> {
    if specs.is_empty() {
        return Ok(None);
    }
    let mut values = BTreeMap::new();
    for raw in specs {
        let spec =
            SecretSpec::parse(raw, |name| std::env::var_os(name).is_some()).map_err(|e| {
                Exit::msg(
                    125,
                    format!("invalid argument {raw:?} for \"--secret\" flag: {e}"),
                )
            })?;
        if let Some(value) = spec.read().map_err(|e| Exit::msg(1, e.to_string()))? {
            values.insert(spec.id, value);
        }
    }
    let header = encode_header(&values);
    if header.len() > MAX_HEADER_LEN {
        return Err(Exit::msg(
            1,
            format!(
                "build secrets too big: {} bytes encoded, at most {MAX_HEADER_LEN}",
                header.len()
            ),
        ));
    }
    Ok(Some((HEADER, header)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exit_of(e: &anyhow::Error) -> (i32, String) {
        let x = e.downcast_ref::<Exit>().unwrap();
        (x.code, x.msg.clone().unwrap_or_default())
    }

    #[test]
    fn values_are_read_and_encoded() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("tok");
        std::fs::write(&f, "s3cret").unwrap();
        let (name, value) = secrets_header(&[format!("id=tok,src={}", f.display())])
            .unwrap()
            .unwrap();
        assert_eq!(name, "X-Berth-Build-Secrets");
        let decoded = berth_build::secrets::decode_header(&value).unwrap();
        assert_eq!(decoded["tok"], b"s3cret");
        assert!(secrets_header(&[]).unwrap().is_none());
    }

    #[test]
    fn bad_specs_are_flag_errors() {
        let e = secrets_header(&["id=a,bogus=1".into()]).unwrap_err();
        assert_eq!(
            exit_of(&e),
            (
                125,
                "invalid argument \"id=a,bogus=1\" for \"--secret\" flag: unexpected key 'bogus' in 'bogus=1'"
                    .into()
            )
        );
        let e = secrets_header(&["id=a,src=/surely/not/here".into()]).unwrap_err();
        let (code, msg) = exit_of(&e);
        assert_eq!(code, 1);
        assert!(msg.starts_with("failed to stat /surely/not/here"), "{msg}");
    }
}
