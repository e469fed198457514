//! What a `scale_to_target` rule says (design §8): the per-replica value to hold, where the
//! alert carries its reading, and the bounds, tolerance, stabilization and rate policies HPA
//! knows by the same names. Only the rule's words live here; the arithmetic is the gate's
//! (`gate/target.rs`).

use crate::prometheus::ServiceQuery;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// A number that is finite by construction: rule values and alert readings are validated into
/// it, so no NaN or infinity ever reaches the replica arithmetic. With NaN excluded, `==` on
/// `f64` is an equivalence, which makes `Eq` sound (journal entries compare whole).
#[derive(Debug, Clone, Copy, PartialEq, PartialOrd, Serialize)]
#[serde(transparent)]
pub struct Finite(f64);

impl Eq for Finite {}

impl Finite {
    /// `None` for NaN and ±∞.
    pub fn new(value: f64) -> Option<Self> {
        value.is_finite().then_some(Self(value))
    }

    pub fn get(self) -> f64 {
        self.0
    }
}

impl std::fmt::Display for Finite {
    /// Rust's shortest round-trip form: `0.6`, `1.05`, `3` (a person wrote these numbers).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl<'de> Deserialize<'de> for Finite {
    /// A journal line is input too: a number that is not finite is refused, not carried.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let value = f64::deserialize(deserializer)?;
        Self::new(value).ok_or_else(|| serde::de::Error::custom("not a finite number"))
    }
}

/// Where the value comes from: the alert (`value_from: annotation:<name>`) or Prometheus at
/// decision time (`query:`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "from", rename_all = "snake_case")]
pub enum ValueSource {
    /// `annotation:<name>`: the alert rule sets it, typically to `{{ $value }}`.
    Annotation { name: String },
    /// `query:`: PromQL evaluated against `[prometheus] url` when the decision is made, the
    /// service put in as a label value; fresher than what the alert saw when it fired.
    Query { query: ServiceQuery },
}

impl std::fmt::Display for ValueSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ValueSource::Annotation { name } => write!(f, "annotation:{name}"),
            ValueSource::Query { .. } => f.write_str("query"),
        }
    }
}

/// How far one action may move the replicas in one direction: a count, a percent of the
/// current replicas, or both, in which case the larger allowance wins (HPA's default
/// `selectPolicy: Max`). A rule sets one form; the default for scale-ups is HPA's own
/// (100 % or 4 replicas, whichever is more).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepLimit {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percent: Option<u64>,
}

impl StepLimit {
    /// HPA's default scale-up policy.
    pub const DEFAULT_UP: Self = Self {
        replicas: Some(4),
        percent: Some(100),
    };
    /// HPA's default scale-down policy: all of it (stabilization is what holds replicas).
    pub const DEFAULT_DOWN: Self = Self {
        replicas: None,
        percent: Some(100),
    };

    pub fn replicas(n: u64) -> Self {
        Self {
            replicas: Some(n),
            percent: None,
        }
    }

    pub fn percent(p: u64) -> Self {
        Self {
            replicas: None,
            percent: Some(p),
        }
    }

    /// Replicas one scale-up from `current` may add: a percent rounds up (HPA: "the proposal
    /// has to be rounded up", else a small service could never grow) and is at least one.
    pub fn up_allowance(self, current: u64) -> u64 {
        let by_percent = self
            .percent
            .map_or(0, |p| current.saturating_mul(p).div_ceil(100).max(1));
        self.replicas.unwrap_or(0).max(by_percent)
    }

    /// Replicas one scale-down from `current` may remove: a percent rounds down (the smaller
    /// change: removing is what hurts if the value was wrong) but is at least one, so a small
    /// service can still shrink.
    pub fn down_allowance(self, current: u64) -> u64 {
        let by_percent = self
            .percent
            .map_or(0, |p| (current.saturating_mul(p) / 100).max(1));
        self.replicas.unwrap_or(0).max(by_percent)
    }
}

impl std::fmt::Display for StepLimit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (self.percent, self.replicas) {
            (Some(p), Some(n)) => write!(f, "{p}% or {n}, whichever is more"),
            (Some(p), None) => write!(f, "{p}%"),
            (None, Some(n)) => write!(f, "{n}"),
            (None, None) => f.write_str("none"),
        }
    }
}

/// What the alert said, as admission read it: the value, the replica count of the read it was
/// admitted on (`None` when Docker was away at admission) and since when the alert has fired. The value is per replica at that
/// count, so the worker's fresh read applies the same load (value × replicas) to whatever count
/// it finds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reading {
    pub value: Finite,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub replicas: Option<u64>,
    /// Since when the value has been off target: the alert's `startsAt` (unix ms), `None` when
    /// it cannot be read. Before it the value was within the tolerance — a recommendation of the
    /// replicas the service had, which the scale-down window must count although no alert
    /// carried it (Alertmanager sends nothing while a service is on target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub since_ms: Option<u64>,
}

/// A `scale_to_target` rule's parameters, validated at load. Journaled with each intent (with
/// the alert's [`Reading`] filled in), so a resumed action decides as it was admitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TargetTracking {
    /// The per-replica value to hold: finite, > 0.
    pub target: Finite,
    pub value_from: ValueSource,
    /// No change while |value / target − 1| ≤ tolerance: in [0, 1).
    pub tolerance: Finite,
    pub min_replicas: u64,
    pub max_replicas: u64,
    /// A scale-down takes the highest recommendation of this window (ms).
    pub scale_down_stabilization_ms: u64,
    pub max_step_up: StepLimit,
    pub max_step_down: StepLimit,
    /// `None` in the rule as loaded; the alert's reading in an intent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reading: Option<Reading>,
}

impl TargetTracking {
    pub fn scale_down_stabilization(&self) -> Duration {
        Duration::from_millis(self.scale_down_stabilization_ms)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    #[rstest]
    #[case::hpa_default_small(StepLimit::DEFAULT_UP, 2, 4)]
    #[case::hpa_default_large(StepLimit::DEFAULT_UP, 10, 10)]
    #[case::percent_rounds_up(StepLimit::percent(50), 3, 2)]
    #[case::percent_at_least_one(StepLimit::percent(10), 1, 1)]
    #[case::replicas(StepLimit::replicas(3), 100, 3)]
    #[case::from_zero(StepLimit::percent(100), 0, 1)]
    #[case::huge_current_saturates(StepLimit::percent(1000), u64::MAX, u64::MAX / 100 + 1)]
    fn up_allowance(#[case] limit: StepLimit, #[case] current: u64, #[case] allowed: u64) {
        assert_eq!(limit.up_allowance(current), allowed);
    }

    #[rstest]
    #[case::all_of_it(StepLimit::DEFAULT_DOWN, 6, 6)]
    #[case::percent_rounds_down(StepLimit::percent(50), 3, 1)]
    #[case::percent_at_least_one(StepLimit::percent(10), 4, 1)]
    #[case::replicas(StepLimit::replicas(2), 9, 2)]
    fn down_allowance(#[case] limit: StepLimit, #[case] current: u64, #[case] allowed: u64) {
        assert_eq!(limit.down_allowance(current), allowed);
    }

    #[rstest]
    #[case(StepLimit::DEFAULT_UP, "100% or 4, whichever is more")]
    #[case(StepLimit::percent(50), "50%")]
    #[case(StepLimit::replicas(3), "3")]
    fn step_limits_read_as_written(#[case] limit: StepLimit, #[case] text: &str) {
        assert_eq!(limit.to_string(), text);
    }

    #[rstest]
    #[case(f64::NAN)]
    #[case(f64::INFINITY)]
    #[case(f64::NEG_INFINITY)]
    fn finite_refuses_what_is_not(#[case] value: f64) {
        assert_eq!(Finite::new(value), None);
    }

    #[test]
    fn finite_reads_back_from_json_and_refuses_overflow() {
        let v: Finite = serde_json::from_str("1.05").unwrap();
        assert_eq!(v.get(), 1.05);
        assert_eq!(serde_json::to_string(&v).unwrap(), "1.05");
        // serde_json turns an out-of-range literal into an error, never into ∞.
        assert!(serde_json::from_str::<Finite>("1e400").is_err());
    }
}
