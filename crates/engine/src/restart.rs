//! Restart policies (`--restart no|on-failure[:N]|always|unless-stopped`) with dockerd's
//! back-off: 100 ms doubling up to one minute, reset once a run lasted 10 s; a container the
//! user stopped or killed is not restarted, and after a daemon restart `always` containers
//! come back, `unless-stopped` ones only if the user had not stopped them.

use std::time::Duration;

use berth_api::RestartPolicy;

use crate::{EngineError, Result};

const FIRST_DELAY: Duration = Duration::from_millis(100);
const MAX_DELAY: Duration = Duration::from_secs(60);
const RESET_AFTER: Duration = Duration::from_secs(10);

/// Checks a policy from `create` or `update`.
pub fn validate(p: &RestartPolicy) -> Result<()> {
    match p.name.as_str() {
        "" | "no" | "always" | "unless-stopped" if p.maximum_retry_count != 0 => {
            Err(EngineError::InvalidArgument(
                "invalid restart policy: maximum retry count can only be used with 'on-failure'"
                    .into(),
            ))
        }
        "" | "no" | "always" | "unless-stopped" => Ok(()),
        "on-failure" if p.maximum_retry_count < 0 => Err(EngineError::InvalidArgument(
            "invalid restart policy: maximum retry count cannot be negative".into(),
        )),
        "on-failure" => Ok(()),
        other => Err(EngineError::InvalidArgument(format!(
            "invalid restart policy: unknown policy '{other}'; use one of 'no', 'always', 'on-failure', or 'unless-stopped'"
        ))),
    }
}

/// Whether a container that just exited is restarted by its policy.
pub fn should_restart(
    p: &RestartPolicy,
    exit_code: i64,
    restart_count: i64,
    manually_stopped: bool,
) -> bool {
    if manually_stopped {
        return false;
    }
    match p.name.as_str() {
        "always" | "unless-stopped" => true,
        "on-failure" => {
            exit_code != 0 && (p.maximum_retry_count == 0 || restart_count < p.maximum_retry_count)
        }
        _ => false,
    }
}

/// Whether a stopped container is started when the daemon starts.
pub fn restart_on_boot(
    p: &RestartPolicy,
    exit_code: i64,
    restart_count: i64,
    manually_stopped: bool,
) -> bool {
    match p.name.as_str() {
        "always" => true,
        _ => should_restart(p, exit_code, restart_count, manually_stopped),
    }
}

/// The next back-off delay after a run that lasted `ran`.
pub fn next_delay(prev: Duration, ran: Duration) -> Duration {
    let prev = if ran >= RESET_AFTER {
        Duration::ZERO
    } else {
        prev
    };
    if prev.is_zero() {
        FIRST_DELAY
    } else {
        (prev * 2).min(MAX_DELAY)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(name: &str, max: i64) -> RestartPolicy {
        RestartPolicy {
            name: name.into(),
            maximum_retry_count: max,
        }
    }

    #[test]
    fn policies() {
        assert!(!should_restart(&p("no", 0), 1, 0, false));
        assert!(!should_restart(&p("", 0), 1, 0, false));
        assert!(should_restart(&p("always", 0), 0, 9, false));
        assert!(!should_restart(&p("always", 0), 0, 0, true));
        assert!(should_restart(&p("unless-stopped", 0), 0, 0, false));
        assert!(should_restart(&p("on-failure", 3), 1, 2, false));
        assert!(!should_restart(&p("on-failure", 3), 1, 3, false));
        assert!(!should_restart(&p("on-failure", 3), 0, 0, false));
        assert!(should_restart(&p("on-failure", 0), 2, 100, false));
    }

    #[test]
    fn boot() {
        assert!(restart_on_boot(&p("always", 0), 0, 0, true));
        assert!(!restart_on_boot(&p("unless-stopped", 0), 0, 0, true));
        assert!(restart_on_boot(&p("unless-stopped", 0), 0, 0, false));
        assert!(!restart_on_boot(&p("no", 0), 1, 0, false));
    }

    #[test]
    fn backoff_doubles_caps_and_resets() {
        let mut d = Duration::ZERO;
        let quick = Duration::from_millis(5);
        d = next_delay(d, quick);
        assert_eq!(d, Duration::from_millis(100));
        d = next_delay(d, quick);
        assert_eq!(d, Duration::from_millis(200));
        for _ in 0..20 {
            d = next_delay(d, quick);
        }
        assert_eq!(d, MAX_DELAY);
        assert_eq!(next_delay(d, Duration::from_secs(11)), FIRST_DELAY);
    }

    #[test]
    fn validation() {
        assert!(validate(&p("always", 0)).is_ok());
        assert!(validate(&p("always", 2)).is_err());
        assert!(validate(&p("sometimes", 0)).is_err());
        assert!(validate(&p("on-failure", -1)).is_err());
    }
}
