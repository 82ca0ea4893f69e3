//! berth's own tag-log objects ("tags remember"; Docker has no such endpoints):
//! `GET /images/{name}/log` and `POST /images/{name}/rollback`.

use serde::{Deserialize, Serialize};

/// One move of a tag, as `GET /images/{name}/log` lists them (newest first).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagLogItem {
    /// The image the tag pointed to after this move (`sha256:…`).
    pub id: String,
    /// The image it pointed to before; absent when the move created the tag.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub previous: Option<String>,
    /// When the tag moved, RFC 3339.
    pub time: String,
    /// How: `build`, `pull`, `load`, `tag`, `commit`, `import` or `rollback`.
    pub how: String,
    /// When the image was created (Unix seconds); absent when the image was removed since.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub created: Option<i64>,
}

/// The answer of `POST /images/{name}/rollback`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase", default)]
pub struct TagRollback {
    /// The tag, familiar form (`busybox:latest`).
    pub tag: String,
    /// The image it pointed to before the rollback.
    pub from: String,
    /// The image it points to now.
    pub to: String,
}
