//! Target tracking's arithmetic (design §8, HPA's algorithm): from the alert's per-replica value
//! and a fresh read of the service to one absolute replica count, explained, or a refusal.
//!
//! In order: desired = ⌈current × value / target⌉ (no change while |value / target − 1| ≤
//! tolerance); that recommendation is remembered, and a scale-down takes the highest of the
//! stabilization window; the rate policy limits the step; the rule's and the service's bounds
//! (the tighter wins) clamp it, never moving against the recommendation.

use super::change::{label_bound, MAX_REPLICAS_LABEL, MIN_REPLICAS_LABEL};
use crate::decision::{Decision, Refusal};
use crate::model::{Change, Planned, ServiceState};
use crate::parse::Alert;
use crate::prometheus::{Instant, PrometheusError, Sample};
use crate::rules::{Finite, Reading, TargetTracking, ValueSource, MAX_REPLICAS};
use std::time::Duration;

/// Relative slack for floating point. Decimal values are not exact in binary: 4 × 0.9 / 0.6 is
/// 6.000000000000001 in f64 and 0.66 / 0.6 − 1 is 0.10000000000000009, which must be 6 and "at
/// the tolerance", not 7 and "past it". A product within 1e-9 (relative) of a whole number is
/// that number, and the tolerance is widened by 1e-9; at 10,000 replicas that is 1e-5 of a
/// replica, far below anything a reading means, and far above f64's error (≈ 1e-16 per step).
pub const EPSILON: f64 = 1e-9;

/// The alert's value for `tracking` when it carries it (`value_from: annotation:<name>`); `None`
/// for a `query:` rule, whose value is Prometheus' answer ([`query_value`]).
pub fn read_value(tracking: &TargetTracking, alert: &Alert) -> Option<Result<Finite, Refusal>> {
    match &tracking.value_from {
        ValueSource::Annotation { name } => Some(annotation_value(name, alert)),
        ValueSource::Query { .. } => None,
    }
}

/// The annotation `name` of the alert as a value. Never an action on a guess: a missing,
/// unparsable, NaN, infinite or negative value is a refusal naming it.
pub fn annotation_value(name: &str, alert: &Alert) -> Result<Finite, Refusal> {
    let Some(text) = alert.annotations.get(name) else {
        return Err(refused(format!(
            "the alert has no annotation {name:?} (value_from annotation:{name}): nothing to scale on"
        )));
    };
    checked_value(text, &format!("annotation {name}"))
}

/// Prometheus' answer to a `query:` rule for `service` as a value: one sample (or a scalar)
/// holding a usable number; anything else — an error, a timeout, no series, several — is a
/// refusal that says what came back.
pub fn query_value(
    answer: Result<Instant, PrometheusError>,
    service: &str,
) -> Result<Finite, Refusal> {
    let text = match answer {
        Err(e) => return Err(refused(format!("the query for {service} failed: {e}"))),
        Ok(Instant::Scalar(value)) => value,
        Ok(Instant::Vector(samples)) => match <[Sample; 1]>::try_from(samples) {
            Ok([sample]) => sample.value,
            Err(samples) if samples.is_empty() => {
                return Err(refused(format!(
                    "the query for {service} returned no series: nothing to scale on (is the service scraped?)"
                )))
            }
            Err(samples) => {
                return Err(refused(format!(
                    "the query for {service} returned {} series, not one: aggregate it (avg, sum, max …)",
                    samples.len()
                )))
            }
        },
        Ok(Instant::Other(kind)) => {
            return Err(refused(format!(
                "the query for {service} returned a {kind}, not one value"
            )))
        }
    };
    checked_value(&text, "the query's value")
}

/// `text` as a value per replica: a finite number, not negative. `what` names its source.
fn checked_value(text: &str, what: &str) -> Result<Finite, Refusal> {
    let shown = shorten(text);
    let Ok(value) = text.trim().parse::<f64>() else {
        return Err(refused(format!("{what} = {shown:?} is not a number")));
    };
    let Some(value) = Finite::new(value) else {
        return Err(refused(format!(
            "{what} = {shown:?} is not a finite number"
        )));
    };
    if value.get() < 0.0 {
        return Err(refused(format!(
            "{what} = {shown:?} is negative: a value per replica never is"
        )));
    }
    // -0 reads as 0 in every message.
    Ok(Finite::new(value.get().abs()).unwrap_or(value))
}

/// ⌈current × ratio⌉, a product within [`EPSILON`] of a whole number taken as that number, and
/// at most [`MAX_REPLICAS`] (an absurd value, or a ratio that overflowed to ∞, ends there; the
/// rate policy and the bounds then limit what is done).
pub fn desired_replicas(current: u64, ratio: f64) -> u64 {
    let exact = current as f64 * ratio;
    // NaN (never produced here: ratio ≥ 0, current > 0) would land on the cap too.
    if exact.is_nan() || exact >= MAX_REPLICAS as f64 {
        return MAX_REPLICAS;
    }
    let nearest = exact.round();
    let whole = if (exact - nearest).abs() <= EPSILON * nearest.max(1.0) {
        nearest
    } else {
        exact.ceil()
    };
    // In 0..=MAX_REPLICAS: ratio ≥ 0 and the cap above.
    whole.max(0.0) as u64
}

/// HPA's tolerance: no change while |ratio − 1| ≤ tolerance (widened by [`EPSILON`]).
pub fn within_tolerance(ratio: f64, tolerance: f64) -> bool {
    (ratio - 1.0).abs() <= tolerance + EPSILON
}

/// The numbers of one decision, for the decision itself and its explanation.
struct Numbers {
    value: Finite,
    /// The replica count the value was read against, when it differs from today's.
    read_at: Option<u64>,
    /// The value spread over today's replicas (the same load).
    value_now: f64,
    target: Finite,
    ratio: f64,
}

impl Numbers {
    /// The value was read against `reading.replicas` (admission's read); today's count may
    /// differ when the worker's fresh read comes later (an operator, another rule, a resume).
    /// The load the value describes (value × those replicas) is what is kept, so the desired
    /// count stays ⌈load / target⌉ whatever the fresh read shows: never acting on a stale
    /// `from`, and never compounding someone else's change.
    fn new(tracking: &TargetTracking, reading: Reading, current: u64) -> Self {
        let read_at = reading.replicas.filter(|&r| r != current && r > 0);
        let value_now = match read_at {
            Some(read_at) => reading.value.get() / current as f64 * read_at as f64,
            None => reading.value.get(),
        };
        Self {
            value: reading.value,
            read_at,
            value_now,
            target: tracking.target,
            ratio: value_now / tracking.target.get(),
        }
    }

    /// "value 1.05 vs target 0.6 (×1.75)"
    fn head(&self) -> String {
        let value = match self.read_at {
            Some(at) => format!(
                "value {} at {at} replicas ({} now)",
                number(self.value.get()),
                approx(self.value_now)
            ),
            None => format!("value {}", number(self.value.get())),
        };
        format!(
            "{value} vs target {} (×{})",
            number(self.target.get()),
            ratio(self.ratio)
        )
    }
}

/// A bound and where it comes from, for messages.
struct Bound {
    value: u64,
    source: String,
}

impl Bound {
    fn new(rule: u64, label: Option<u64>, label_name: &str, tighter: fn(u64, u64) -> u64) -> Self {
        let value = label.map_or(rule, |l| tighter(l, rule)).min(MAX_REPLICAS);
        let source = if label == Some(value) {
            format!("label {label_name}")
        } else {
            "rule".into()
        };
        Self { value, source }
    }
}

impl std::fmt::Display for Bound {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} ({})", self.value, self.source)
    }
}

/// What the scale-down stabilization window holds.
pub struct Window<'a> {
    /// Remembers a recommendation and answers the highest of the window, this one included.
    pub highest: &'a dyn Fn(u64) -> u64,
    /// How long the value has been off target (the alert has fired), when known. Until then it
    /// was within the tolerance, a recommendation of the replicas the service had that no alert
    /// carried: a window that reaches back past the alert's start holds today's count.
    pub off_target_for: Option<Duration>,
}

/// Decide the replicas of `service` (now `current`, replicated) for `tracking`, the
/// recommendations of the scale-down stabilization window in `window`.
pub fn plan(
    tracking: &TargetTracking,
    service: &ServiceState,
    current: u64,
    window: &Window<'_>,
) -> Result<Planned, Refusal> {
    let highest_of_window = window.highest;
    let Some(reading) = tracking.reading else {
        return Err(refused("no value was read from the alert".into()));
    };
    if current == 0 {
        return Err(refused(format!(
            "service {} has 0 replicas: there is no value per replica to scale from; start it by hand or with scale_up",
            service.name
        )));
    }
    let hi = Bound::new(
        tracking.max_replicas,
        label_bound(service, MAX_REPLICAS_LABEL)?,
        MAX_REPLICAS_LABEL,
        u64::min,
    );
    let lo = Bound::new(
        tracking.min_replicas,
        label_bound(service, MIN_REPLICAS_LABEL)?,
        MIN_REPLICAS_LABEL,
        u64::max,
    );
    let n = Numbers::new(tracking, reading, current);
    let tolerance = number(tracking.tolerance.get());
    let in_tolerance = within_tolerance(n.ratio, tracking.tolerance.get());
    let raw = if in_tolerance {
        current
    } else {
        desired_replicas(current, n.ratio)
    };
    // Every recommendation is remembered, those that change nothing too (HPA does the same):
    // a later dip must see that this many replicas were wanted.
    let highest = highest_of_window(raw);
    let span = tracking.scale_down_stabilization();
    let off_target_for = window.off_target_for;
    let window = humantime::format_duration(span);
    let head = n.head();
    if raw == current {
        let why = if in_tolerance {
            format!("{head} is within tolerance {tolerance}")
        } else {
            format!(
                "{head}, tolerance {tolerance}: {current} × {} rounds to {current}",
                ratio(n.ratio)
            )
        };
        return Err(no_change(format!("{why}: {current} replicas stay")));
    }
    if raw > current {
        return up(
            tracking,
            current,
            raw,
            &hi,
            &lo,
            format!("{head}, tolerance {tolerance}"),
        );
    }
    if let Some(fired) = off_target_for.filter(|fired| *fired < span) {
        return Err(no_change(format!(
            "{head} recommends {raw}, but it has been off target only {} (the alert's startsAt), less than scale_down_stabilization {window}: before that it was on target at these replicas, {current} stay",
            super::admission::fmt_secs(fired)
        )));
    }
    let stabilized = highest.max(raw).min(current);
    if stabilized == current {
        return Err(no_change(format!(
            "{head} recommends {raw}, but {highest} was recommended within scale_down_stabilization {window}: {current} replicas stay"
        )));
    }
    let mut why = format!("{head}, tolerance {tolerance}, stabilized over {window}");
    if stabilized > raw {
        why.push_str(&format!(
            " (highest recommendation {stabilized}, now {raw})"
        ));
    }
    down(tracking, current, stabilized, &lo, why)
}

fn up(
    tracking: &TargetTracking,
    current: u64,
    wanted: u64,
    hi: &Bound,
    lo: &Bound,
    mut why: String,
) -> Result<Planned, Refusal> {
    if current >= hi.value {
        return Err(Refusal::new(
            Decision::AtBound,
            format!("{why}: recommends {wanted}; {current} replicas, max_replicas is {hi}"),
        ));
    }
    let allowed = current.saturating_add(tracking.max_step_up.up_allowance(current));
    let limited = wanted.min(allowed);
    if limited < wanted {
        why.push_str(&format!(
            "; max_step_up {} allows {limited} of {wanted}",
            tracking.max_step_up
        ));
    }
    let to = limited.max(lo.value).min(hi.value);
    if to < limited {
        why.push_str(&format!("; max_replicas {hi}"));
    } else if to > limited {
        why.push_str(&format!("; min_replicas {lo}"));
    }
    Ok(Planned {
        change: Change::Replicas { from: current, to },
        why: Some(why),
    })
}

fn down(
    tracking: &TargetTracking,
    current: u64,
    wanted: u64,
    lo: &Bound,
    mut why: String,
) -> Result<Planned, Refusal> {
    if current <= lo.value {
        return Err(Refusal::new(
            Decision::AtBound,
            format!("{why}: recommends {wanted}; {current} replicas, min_replicas is {lo}"),
        ));
    }
    let allowed = current.saturating_sub(tracking.max_step_down.down_allowance(current));
    let limited = wanted.max(allowed);
    if limited > wanted {
        why.push_str(&format!(
            "; max_step_down {} allows {limited} of {wanted}",
            tracking.max_step_down
        ));
    }
    // Moving down, max_replicas is not applied: a service an operator scaled past it comes
    // down at the rate policy's pace, like any other.
    let to = limited.max(lo.value);
    if to > limited {
        why.push_str(&format!("; min_replicas {lo}"));
    }
    Ok(Planned {
        change: Change::Replicas { from: current, to },
        why: Some(why),
    })
}

fn refused(reason: String) -> Refusal {
    Refusal::new(Decision::Refused, reason)
}

fn no_change(reason: String) -> Refusal {
    Refusal::new(Decision::NoChange, reason)
}

/// A number as a person wrote it (`0.6`, `1.05`), or in exponent form when it would be long.
fn number(value: f64) -> String {
    let magnitude = value.abs();
    if magnitude != 0.0 && !(1e-6..1e9).contains(&magnitude) {
        format!("{value:e}")
    } else {
        format!("{value}")
    }
}

/// A ratio to two decimals, without trailing zeros: `1.75`, `3`, `0.33`.
pub fn ratio(value: f64) -> String {
    if !value.is_finite() || value.abs() >= 1e9 {
        return number(value);
    }
    let text = format!("{value:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// A computed number to four decimals, without trailing zeros: `0.7`, not `0.7000000000000001`.
fn approx(value: f64) -> String {
    if !value.is_finite() || value.abs() >= 1e9 {
        return number(value);
    }
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Annotation values are anyone's text; messages carry a bounded prefix.
fn shorten(text: &str) -> String {
    const MAX: usize = 64;
    match text.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &text[..i]),
        None => text.to_string(),
    }
}

#[cfg(test)]
mod tests;
