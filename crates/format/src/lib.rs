//! berth-format: the output side of the `berth` command that stands alone: docker's `--format`
//! Go templates (`format`), and the human-readable values and aligned tables they print
//! (`human`, `table`). A crate of its own so that the fuzz targets (`fuzz/`) test the template
//! parser and renderer without the whole CLI.
#![forbid(unsafe_code)]

pub mod format;
pub mod human;
pub mod table;
