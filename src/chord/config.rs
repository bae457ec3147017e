//! Ring parameters, validated once so the state machine can trust them.

use core::fmt;

use crate::time::Duration;

/// Parameters of one Chord node. Build with [`Config::default`] and adjust, then
/// [`Config::validate`] (done by [`crate::chord::Node::new`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Length of the successor list (1..=32). 8 survives 50% simultaneous failures with
    /// probability 1 - 0.5^8 per node.
    pub successors: usize,
    /// Period of stabilization and finger refresh (≥ 10 ms).
    pub stabilize_interval: Duration,
    /// How long a peer may take to acknowledge a forwarded request or answer a
    /// stabilization before it is considered unreachable (≥ 1 ms, < request_timeout).
    pub hop_timeout: Duration,
    /// How long the origin of a lookup or join waits for its answer.
    pub request_timeout: Duration,
    /// A predecessor silent for this long is checked directly (pinged); it is dropped
    /// only when `strikes` checks in a row go unanswered (≥ stabilize_interval).
    pub predecessor_timeout: Duration,
    /// Wait for a timed peer's answer only as long as its round trips say (RFC 6298, at
    /// least a quarter of `hop_timeout`); `false`: always `hop_timeout`. Drivers whose
    /// links open on demand (the browser: a message may wait for a connection to be
    /// signalled) turn it off.
    pub adaptive_timeouts: bool,
    /// Consecutive unanswered requests or checks after which a neighbour or finger is
    /// taken for failed (1..=16). Every miss is followed by a direct check, so one lost
    /// message never removes a live node.
    pub strikes: u8,
    /// Attempts a join makes (through the node given, then through any other it knows)
    /// before it reports `JoinFailed` (1..=32).
    pub join_attempts: u8,
    /// Pause before the second join attempt; it doubles for each further one (≤ 8×).
    pub join_backoff: Duration,
    /// Maximum number of hops a request may take (1..=255).
    pub hop_limit: u8,
    /// Finger checks started per stabilization round while a sweep is under way (1..=32).
    /// Fingers are checked over their distinct targets only (about log2 N of them), a
    /// known finger by one ping, a missing or outdated one by a lookup; a sweep that found
    /// nothing new is followed by a pause (see `chord::fingers`).
    pub fingers_per_round: u8,
    /// Bound on requests in flight that this node originated.
    pub max_requests: usize,
    /// Bound on forwarded requests awaiting a hop acknowledgement.
    pub max_forwards: usize,
}

impl Default for Config {
    fn default() -> Config {
        Config {
            successors: 8,
            stabilize_interval: Duration::from_millis(1000),
            hop_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_millis(8000),
            predecessor_timeout: Duration::from_millis(3500),
            adaptive_timeouts: true,
            strikes: 3,
            join_attempts: 5,
            join_backoff: Duration::from_millis(1000),
            hop_limit: 64,
            fingers_per_round: 2,
            max_requests: 4096,
            max_forwards: 4096,
        }
    }
}

/// An out-of-range configuration value.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum ConfigError {
    OutOfRange {
        field: &'static str,
        value: u64,
        min: u64,
        max: u64,
    },
    /// `hop_timeout` must be shorter than `request_timeout`.
    HopTimeoutNotBelowRequestTimeout,
    /// `predecessor_timeout` must be at least `stabilize_interval`.
    PredecessorTimeoutTooShort,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::OutOfRange { field, value, min, max } => {
                write!(f, "config {field} = {value} is out of range {min}..={max}")
            }
            ConfigError::HopTimeoutNotBelowRequestTimeout => {
                write!(f, "config hop_timeout must be shorter than request_timeout")
            }
            ConfigError::PredecessorTimeoutTooShort => {
                write!(f, "config predecessor_timeout must be at least stabilize_interval")
            }
        }
    }
}

impl std::error::Error for ConfigError {}

fn range(field: &'static str, value: u64, min: u64, max: u64) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::OutOfRange { field, value, min, max });
    }
    Ok(())
}

impl Config {
    pub fn validate(&self) -> Result<(), ConfigError> {
        const DAY_MS: u64 = 86_400_000;
        range("successors", self.successors as u64, 1, 32)?;
        range("stabilize_interval", self.stabilize_interval.as_millis(), 10, DAY_MS)?;
        range("hop_timeout", self.hop_timeout.as_millis(), 1, DAY_MS)?;
        range("request_timeout", self.request_timeout.as_millis(), 2, DAY_MS)?;
        range("predecessor_timeout", self.predecessor_timeout.as_millis(), 10, DAY_MS)?;
        range("hop_limit", self.hop_limit as u64, 1, 255)?;
        range("strikes", self.strikes as u64, 1, 16)?;
        range("join_attempts", self.join_attempts as u64, 1, 32)?;
        range("join_backoff", self.join_backoff.as_millis(), 1, DAY_MS)?;
        range("fingers_per_round", self.fingers_per_round as u64, 1, 32)?;
        range("max_requests", self.max_requests as u64, 1, 1 << 20)?;
        range("max_forwards", self.max_forwards as u64, 1, 1 << 20)?;
        if self.hop_timeout >= self.request_timeout {
            return Err(ConfigError::HopTimeoutNotBelowRequestTimeout);
        }
        if self.predecessor_timeout < self.stabilize_interval {
            return Err(ConfigError::PredecessorTimeoutTooShort);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid_and_bad_values_are_named() {
        assert_eq!(Config::default().validate(), Ok(()));
        let c = Config { successors: 0, ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::OutOfRange { field: "successors", value: 0, min: 1, max: 32 }));
        let c = Config { hop_limit: 0, ..Config::default() };
        assert!(matches!(c.validate(), Err(ConfigError::OutOfRange { field: "hop_limit", .. })));
        let c = Config { hop_timeout: Duration::from_secs(9), ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::HopTimeoutNotBelowRequestTimeout));
        let c = Config { predecessor_timeout: Duration::from_millis(100), ..Config::default() };
        assert_eq!(c.validate(), Err(ConfigError::PredecessorTimeoutTooShort));
        assert!(c.validate().unwrap_err().to_string().contains("predecessor_timeout"));
    }
}
