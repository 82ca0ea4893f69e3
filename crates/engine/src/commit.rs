//! `docker commit` (`POST /commit`): a container's filesystem changes become a new image layer
//! on top of the container's image, with the container's config (merged with the request's
//! config and `--change` instructions). A running container is paused (freezer) while its
//! writable layer is read, as dockerd does by default.

use berth_api::ContainerConfig;
use berth_image::ChildImage;

use crate::context::Context;
use crate::{EngineError, Result};
use std::sync::Arc;

/// What `POST /commit` asks for.
#[derive(Debug, Clone, Default)]
pub struct CommitOptions {
    /// `repo` and `tag` of the new image (both empty: untagged).
    pub repo: String,
    pub tag: String,
    /// `-m`.
    pub comment: String,
    /// `-a`.
    pub author: String,
    /// `-p` (Docker's default is true).
    pub pause: bool,
    /// `-c`: Dockerfile instructions applied to the config.
    pub changes: Vec<String>,
    /// The request body: fields set here replace the container's.
    pub config: Option<ContainerConfig>,
}

/// Overlays the set fields of `user` on `base` (dockerd's `merge`: Env merged by key,
/// ExposedPorts and Volumes added, others replaced when set).
pub fn merge_config(base: &mut ContainerConfig, user: &ContainerConfig) {
    if !user.user.is_empty() {
        base.user = user.user.clone();
    }
    for kv in &user.env {
        let key = kv.split('=').next().unwrap_or(kv);
        match base
            .env
            .iter_mut()
            .find(|e| e.split('=').next() == Some(key))
        {
            Some(e) => *e = kv.clone(),
            None => base.env.push(kv.clone()),
        }
    }
    if let Some(ports) = &user.exposed_ports {
        base.exposed_ports
            .get_or_insert_with(Default::default)
            .extend(ports.clone());
    }
    if let Some(vols) = &user.volumes {
        base.volumes
            .get_or_insert_with(Default::default)
            .extend(vols.clone());
    }
    if !user.cmd.0.is_empty() {
        base.cmd = user.cmd.clone();
    }
    if !user.entrypoint.0.is_empty() {
        base.entrypoint = user.entrypoint.clone();
    }
    if !user.working_dir.is_empty() {
        base.working_dir = user.working_dir.clone();
    }
    if !user.labels.is_empty() {
        base.labels.extend(user.labels.clone());
    }
    if !user.on_build.is_empty() {
        base.on_build = user.on_build.clone();
    }
    if user.stop_signal.is_some() {
        base.stop_signal = user.stop_signal.clone();
    }
    if user.healthcheck.is_some() {
        base.healthcheck = user.healthcheck.clone();
    }
}

/// The reference `repo[:tag]` of a commit, or none.
fn commit_reference(repo: &str, tag: &str) -> Result<Option<String>> {
    if repo.is_empty() {
        if !tag.is_empty() {
            return Err(EngineError::InvalidArgument(
                "invalid reference format: repository name must be given with a tag".into(),
            ));
        }
        return Ok(None);
    }
    let r = if tag.is_empty() {
        repo.to_string()
    } else {
        format!("{repo}:{tag}")
    };
    berth_image::Reference::parse(&r).map_err(|e| EngineError::InvalidArgument(e.to_string()))?;
    Ok(Some(r))
}

/// Pauses a running container for its commit; returns whether it was paused. A container
/// that is exiting meanwhile (the pause fails and the exit follows within a grace) is
/// committed as it is: nothing is writing to it any more.
async fn pause_unless_exiting(
    ctx: &Arc<Context>,
    c: &Arc<crate::container::Container>,
) -> Result<bool> {
    let exits = c.exits.subscribe();
    match crate::control::container_pause(ctx, &c.id).await {
        Ok(()) => Ok(true),
        Err(e) => {
            let grace = Some(std::time::Duration::from_secs(2));
            if !c.running() || crate::exit::wait_exit(c, exits, grace).await {
                Ok(false)
            } else {
                Err(e)
            }
        }
    }
}

/// `docker commit`: returns the new image's id (`sha256:…`).
pub(crate) async fn container_commit(
    ctx: &Arc<Context>,
    key: &str,
    opts: CommitOptions,
) -> Result<String> {
    let reference = commit_reference(&opts.repo, &opts.tag)?;
    let c = ctx.lookup(key)?;
    let (id, image_id, mut config, running, paused) = {
        let r = c.rec.lock().unwrap();
        (
            r.id.clone(),
            r.image_id.clone(),
            r.config.clone(),
            r.state.running(),
            r.state.paused(),
        )
    };
    // dockerd's history entry of a commit names the container's command.
    let created_by = config.cmd.0.join(" ");
    if let Some(user) = &opts.config {
        merge_config(&mut config, user);
    }
    for ch in &opts.changes {
        for line in ch.lines().filter(|l| !l.trim().is_empty()) {
            crate::changes::apply(&mut config, line).map_err(EngineError::InvalidArgument)?;
        }
    }
    config.image = String::new();
    config.hostname = String::new();
    config.domainname = String::new();
    let want_pause = opts.pause && running && !paused;
    // Recorded before the freeze: a daemon killed mid-commit thaws the container when it opens.
    let frozen = match want_pause {
        true => Some(crate::inflight::begin(
            ctx,
            crate::inflight::Operation::CommitPause {
                container: id.clone(),
            },
        )?),
        false => None,
    };
    let pause_now = want_pause && pause_unless_exiting(ctx, &c).await?;
    let child = ChildImage {
        parent: Some(image_id.clone()),
        config,
        created_by,
        author: opts.author.clone(),
        comment: opts.comment.clone(),
        tags: reference.iter().cloned().collect(),
    };
    let images = ctx.images.clone();
    let cid = id.clone();
    let result = tokio::task::spawn_blocking(move || images.commit_rw_layer(&cid, &child))
        .await
        .map_err(|e| EngineError::Internal(format!("task failed: {e}")));
    if pause_now {
        let _ = crate::control::container_unpause(ctx, &id).await;
    }
    drop(frozen);
    let new_id = result??;
    let name = c
        .rec
        .lock()
        .unwrap()
        .name
        .trim_start_matches('/')
        .to_string();
    let mut attrs = vec![
        ("comment", opts.comment.clone()),
        ("imageID", new_id.clone()),
        ("name", name),
    ];
    if let Some(r) = &reference {
        attrs.push(("imageRef", r.clone()));
    }
    ctx.event("container", "commit", &id, &attrs);
    Ok(new_id)
}

#[cfg(test)]
mod tests {
    use super::*;
    use berth_api::StrList;

    #[test]
    fn merge_overrides_set_fields_only() {
        let mut base = ContainerConfig {
            env: vec!["A=1".into(), "B=2".into()],
            cmd: StrList(vec!["sh".into()]),
            working_dir: "/w".into(),
            ..Default::default()
        };
        let user = ContainerConfig {
            env: vec!["B=3".into(), "C=4".into()],
            cmd: StrList(vec!["x".into()]),
            ..Default::default()
        };
        merge_config(&mut base, &user);
        assert_eq!(base.env, vec!["A=1", "B=3", "C=4"]);
        assert_eq!(base.cmd.0, vec!["x"]);
        assert_eq!(base.working_dir, "/w");
    }

    #[test]
    fn references() {
        assert_eq!(commit_reference("", "").unwrap(), None);
        assert_eq!(
            commit_reference("app", "v1").unwrap(),
            Some("app:v1".to_string())
        );
        assert!(commit_reference("", "v1").is_err());
        assert!(commit_reference("UPPER", "").is_err());
    }
}
