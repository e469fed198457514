//! The keys of a `scale_to_target` rule, each validated where it is written so `check` points at
//! the faulty value (`file:line:col`), every faulty key of a rule reported at once.

use super::{RawRule, RuleBuilder};
use crate::clock::duration_ms;
use crate::prometheus::ServiceQuery;
use crate::rules::matcher::is_label_name;
use crate::rules::{Finite, StepLimit, TargetTracking, ValueSource, MAX_REPLICAS};
use marked_yaml::Spanned;
use std::time::Duration;

/// HPA's default tolerance: no change within ±10 % of the target.
pub const DEFAULT_TOLERANCE: f64 = 0.1;
/// HPA's default scale-down stabilization window.
pub const DEFAULT_STABILIZATION: Duration = Duration::from_secs(300);
/// HPA's own maximum (3600 s): a longer window would keep replicas for a load long gone.
pub const MAX_STABILIZATION: Duration = Duration::from_secs(3600);
/// A scale-up may at most multiply replicas by 11 in one step; a percent above this is a typo
/// (a count of replicas says "no limit" more plainly).
const MAX_PERCENT_UP: u64 = 1000;
/// A scale-down cannot remove more than all of them.
const MAX_PERCENT_DOWN: u64 = 100;

impl RuleBuilder<'_> {
    /// Every key of a `scale_to_target` rule, or `None` with each faulty one reported.
    pub(super) fn target_tracking(&mut self, raw: &RawRule) -> Option<TargetTracking> {
        let target = match &raw.target {
            Some(target) => self.target(target),
            None => self.missing(raw, "target, the per-replica value to hold"),
        };
        let value_from = match (&raw.value_from, &raw.query) {
            (Some(value_from), None) => self.value_from(value_from),
            (None, Some(query)) => self.query(query),
            (Some(_), Some(query)) => {
                self.error(
                    query,
                    "query and value_from both say where the value comes from: keep one".into(),
                );
                None
            }
            (None, None) => self.missing(
                raw,
                "value_from (annotation:<name>, the alert annotation that holds the value) or query (PromQL for it)",
            ),
        };
        let tolerance = match &raw.tolerance {
            Some(tolerance) => self.tolerance(tolerance),
            None => Finite::new(DEFAULT_TOLERANCE),
        };
        // 0 replicas would end target tracking: a service without replicas has no value per
        // replica to scale back up from.
        let min_replicas = match &raw.min_replicas {
            Some(min) => self.replicas("min_replicas", min, 1),
            None => Some(1),
        };
        let max_replicas = match &raw.max_replicas {
            Some(max) => self.replicas("max_replicas", max, 1),
            None => self.missing(raw, "max_replicas, the bound it never exceeds"),
        };
        if let (Some(min), Some(max), Some(at)) = (min_replicas, max_replicas, &raw.max_replicas) {
            if max < min {
                self.error(
                    at,
                    format!("max_replicas {max} is below min_replicas {min}"),
                );
            }
        }
        let stabilization = self.stabilization(raw.scale_down_stabilization.as_ref());
        let max_step_up = match &raw.max_step_up {
            Some(step) => self.step_limit("max_step_up", step, MAX_PERCENT_UP),
            None => Some(StepLimit::DEFAULT_UP),
        };
        let max_step_down = match &raw.max_step_down {
            Some(step) => self.step_limit("max_step_down", step, MAX_PERCENT_DOWN),
            None => Some(StepLimit::DEFAULT_DOWN),
        };
        Some(TargetTracking {
            target: target?,
            value_from: value_from?,
            tolerance: tolerance?,
            min_replicas: min_replicas?,
            max_replicas: max_replicas?,
            scale_down_stabilization_ms: duration_ms(stabilization?),
            max_step_up: max_step_up?,
            max_step_down: max_step_down?,
            reading: None,
        })
    }

    /// A required key that is absent: reported at the action, which is what asks for it.
    fn missing<T>(&mut self, raw: &RawRule, what: &str) -> Option<T> {
        self.error(&raw.action, format!("scale_to_target needs {what}"));
        None
    }

    fn target(&mut self, raw: &Spanned<String>) -> Option<Finite> {
        let parsed = number(raw).filter(|t| t.get() > 0.0);
        if parsed.is_none() {
            let message = format!(
                "target must be a finite number greater than 0, not {:?}",
                raw.as_str()
            );
            self.error(raw, message);
        }
        parsed
    }

    /// In [0, 1): a tolerance of 1 would call a value of 0 (no load at all) on target.
    fn tolerance(&mut self, raw: &Spanned<String>) -> Option<Finite> {
        let parsed = number(raw).filter(|t| (0.0..1.0).contains(&t.get()));
        if parsed.is_none() {
            let message = format!(
                "tolerance must be a number from 0 up to (not including) 1, not {:?}",
                raw.as_str()
            );
            self.error(raw, message);
        }
        parsed
    }

    fn value_from(&mut self, raw: &Spanned<String>) -> Option<ValueSource> {
        let name = raw.trim().strip_prefix("annotation:").map(str::trim);
        match name {
            Some(name) if is_label_name(name) => Some(ValueSource::Annotation {
                name: name.to_string(),
            }),
            _ => {
                let message = format!(
                    "value_from must be annotation:<name>, the alert annotation that holds the value (a label name), not {:?}",
                    raw.as_str()
                );
                self.error(raw, message);
                None
            }
        }
    }

    /// PromQL checked with Prometheus' grammar, reported at the `query` key (the grammar's
    /// positions are within the query, which a block scalar may spread over lines).
    fn query(&mut self, raw: &Spanned<String>) -> Option<ValueSource> {
        match ServiceQuery::parse(raw) {
            Ok(query) => Some(ValueSource::Query { query }),
            Err(message) => {
                self.error(raw, message);
                None
            }
        }
    }

    fn stabilization(&mut self, raw: Option<&Spanned<String>>) -> Option<Duration> {
        let Some(raw) = raw else {
            return Some(DEFAULT_STABILIZATION);
        };
        match humantime::parse_duration(raw) {
            Ok(window) if window <= MAX_STABILIZATION => Some(window),
            Ok(_) | Err(humantime::DurationError::NumberOverflow) => {
                let message = format!(
                    "scale_down_stabilization {:?} is too long: at most {}",
                    raw.as_str(),
                    humantime::format_duration(MAX_STABILIZATION)
                );
                self.error(raw, message);
                None
            }
            Err(e) => {
                self.error(raw, format!("invalid duration {:?}: {e}", raw.as_str()));
                None
            }
        }
    }

    /// `4` (replicas) or `100%` (of the current replicas), each from 1.
    fn step_limit(
        &mut self,
        field: &str,
        raw: &Spanned<String>,
        max_percent: u64,
    ) -> Option<StepLimit> {
        let text = raw.trim();
        let parsed = match text.strip_suffix('%') {
            Some(percent) => percent
                .trim()
                .parse::<u64>()
                .ok()
                .filter(|p| (1..=max_percent).contains(p))
                .map(StepLimit::percent),
            None => text
                .parse::<u64>()
                .ok()
                .filter(|n| (1..=MAX_REPLICAS).contains(n))
                .map(StepLimit::replicas),
        };
        if parsed.is_none() {
            let message = format!(
                "{field} must be a whole number of replicas from 1 to {MAX_REPLICAS} or a whole percent from 1% to {max_percent}%, not {:?}",
                raw.as_str()
            );
            self.error(raw, message);
        }
        parsed
    }
}

/// A finite decimal number (`0.6`, `1e-3`); `NaN`, `inf` and anything unparsable are `None`.
fn number(raw: &Spanned<String>) -> Option<Finite> {
    raw.trim().parse::<f64>().ok().and_then(Finite::new)
}

#[cfg(test)]
mod tests;
