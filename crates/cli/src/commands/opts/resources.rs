//! The resource flags (`--memory`, `--cpus`, `--pids-limit`, ...) that `create`/`run` and
//! `update` share, and the memory-size value parsing they use.

use anyhow::{anyhow, Result};
use clap::Args;

use crate::human::ram_in_bytes;

/// The resource flags `create`/`run` and `update` share.
#[derive(Args, Debug, Clone, Default)]
pub struct ResourceFlags {
    /// Memory limit
    #[arg(short = 'm', long = "memory")]
    pub memory: Option<String>,
    /// Swap limit equal to memory plus swap: '-1' to enable unlimited swap
    #[arg(long = "memory-swap", allow_hyphen_values = true)]
    pub memory_swap: Option<String>,
    /// Memory soft limit
    #[arg(long = "memory-reservation")]
    pub memory_reservation: Option<String>,
    /// Number of CPUs
    #[arg(long = "cpus")]
    pub cpus: Option<String>,
    /// CPU shares (relative weight)
    #[arg(short = 'c', long = "cpu-shares")]
    pub cpu_shares: Option<i64>,
    /// Limit CPU CFS period
    #[arg(long = "cpu-period")]
    pub cpu_period: Option<i64>,
    /// Limit CPU CFS quota
    #[arg(long = "cpu-quota", allow_hyphen_values = true)]
    pub cpu_quota: Option<i64>,
    /// CPUs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-cpus")]
    pub cpuset_cpus: Option<String>,
    /// MEMs in which to allow execution (0-3, 0,1)
    #[arg(long = "cpuset-mems")]
    pub cpuset_mems: Option<String>,
    /// Tune container pids limit (set -1 for unlimited)
    #[arg(long = "pids-limit", allow_hyphen_values = true)]
    pub pids_limit: Option<i64>,
}

impl ResourceFlags {
    /// `--cpus` as NanoCpus (rounded to the nanosecond, as Docker's exact rational parse).
    pub fn nano_cpus(&self) -> Result<Option<i64>> {
        self.cpus
            .as_deref()
            .map(|c| {
                let f: f64 = c.parse().map_err(|_| {
                    anyhow!("invalid argument \"{c}\" for \"--cpus\" flag: failed to parse {c} as a rational number")
                })?;
                Ok((f * 1e9).round() as i64)
            })
            .transpose()
    }
}

/// A memory size flag's value in bytes: `-1` (unlimited) or a size with a unit; `flag` names
/// the flag in the error, as Docker does.
pub fn memory_bytes(v: &str, flag: &str) -> Result<i64> {
    if v == "-1" {
        return Ok(-1);
    }
    ram_in_bytes(v).map_err(|e| anyhow!("invalid argument \"{v}\" for \"{flag}\" flag: {e}"))
}
