//! The store side of "tags remember": reading a tag's log and rolling a tag back (the log itself
//! is [`crate::taglog`]).

use berth_api::{TagLogItem, TagRollback};

use crate::reference::Reference;
use crate::store::State;
use crate::taglog::{RollbackRefusal, TagMove};
use crate::{ImageError, ImageStore, Result};

/// The tag `name` designates (`busybox` means `busybox:latest`), which must exist.
fn existing_tag(st: &State, name: &str) -> Result<(Reference, String)> {
    let r = Reference::parse(name)?;
    if r.is_digest() {
        return Err(ImageError::InvalidArgument(format!(
            "{name} is a digest reference: only tags have a log"
        )));
    }
    match st.refs.get(&r.full()) {
        Some(id) => Ok((r.clone(), id.clone())),
        None => Err(ImageError::NotFound(format!(
            "No such image: {}",
            r.familiar()
        ))),
    }
}

fn created_unix(st: &State, id: &str) -> Option<i64> {
    let img = st.images.get(id)?;
    Some(
        img.config
            .created
            .as_deref()
            .and_then(|s| chrono::DateTime::parse_from_rfc3339(s).ok())
            .map(|t| t.timestamp())
            .unwrap_or(0),
    )
}

impl ImageStore {
    pub(crate) fn tag_log_impl(&self, name: &str) -> Result<Vec<TagLogItem>> {
        let st = self.lock();
        let (r, _) = existing_tag(&st, name)?;
        Ok(st
            .taglog
            .entries(&r.full())
            .into_iter()
            .map(|e| TagLogItem {
                created: created_unix(&st, &e.id),
                id: e.id,
                previous: e.previous,
                time: e.time,
                how: e.how.as_str().to_string(),
            })
            .collect())
    }

    pub(crate) fn rollback_impl(&self, name: &str) -> Result<TagRollback> {
        let _w = self.write_lock();
        let mut st = self.lock();
        let (r, current) = existing_tag(&st, name)?;
        let target = match st.taglog.rollback_target(&r.full(), &current) {
            Ok(t) => t,
            Err(RollbackRefusal::NoEarlierImage) => {
                return Err(ImageError::Conflict(format!(
                    "{} has no earlier image to roll back to",
                    r.familiar()
                )))
            }
        };
        if !st.images.contains_key(&target) {
            return Err(ImageError::Conflict(format!(
                "cannot roll back {}: its previous image {target} was removed",
                r.familiar()
            )));
        }
        self.set_ref(&mut st, &r, &target, TagMove::Rollback)?;
        self.persist_refs(&st)?;
        Ok(TagRollback {
            tag: r.familiar(),
            from: current,
            to: target,
        })
    }
}

#[cfg(test)]
#[path = "rollback_tests.rs"]
mod tests;
