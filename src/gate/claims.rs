//! Cluster mode's memory: claims written on the service itself, as labels, by the very update
//! that acts. Swarm replicates a service spec through its Raft log and refuses an update whose
//! version index is stale ("update out of sequence"), so a claim set in the acting update is a
//! compare-and-set: of two replicas racing on one service, one lands, the other re-reads and
//! finds the claim. Nothing extra is written; nothing at all when an alert is refused.
//!
//! Per (service, action):
//! - `swarmpilot.cooldown.<action>` — when its cooldown ends (RFC 3339, UTC, milliseconds);
//! - `swarmpilot.delivery.<action>` — the delivery that started it (16 hex digits), so the same
//!   alert arriving at another replica later is a `duplicate`;
//!
//! and per service `swarmpilot.actions`: the times (unix seconds) of its actions within the last
//! hour, the per-service budget every replica counts. This module only reads and writes label
//! values; the pipeline reads the service and the act step sends the labels.

use super::admission::fmt_secs;
use super::budget::BudgetSpent;
use super::cooldown::Window;
use super::DeliveryKey;
use crate::clock::{saturating_add, saturating_sub, unix_secs};
use crate::decision::{Decision, Refusal};
use crate::rules::ActionKind;
use std::collections::HashMap;
use std::time::{Duration, SystemTime};

/// Prefix of the per-action cooldown label.
pub const COOLDOWN_PREFIX: &str = "swarmpilot.cooldown.";
/// Prefix of the per-action delivery label.
pub const DELIVERY_PREFIX: &str = "swarmpilot.delivery.";
/// The per-service budget log.
pub const ACTIONS_LABEL: &str = "swarmpilot.actions";
/// The task templates a rollback moved the service away from (hashes, newest last).
pub const ROLLED_BACK_FROM_LABEL: &str = "swarmpilot.rolled_back_from";
/// How many rolled-back-from templates a service remembers: rollback's own history keeps 10.
const BAD_KEPT: usize = 10;

const HOUR: Duration = Duration::from_secs(3600);

/// One (service, action)'s claim as its labels carry it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Claim {
    pub until: SystemTime,
    pub delivery: DeliveryKey,
}

impl Claim {
    /// The claim on `kind` in `labels`, if both its labels are there and readable. A label an
    /// operator edited into something else counts as no claim: it cannot name a delivery.
    pub fn read(labels: &HashMap<String, String>, kind: ActionKind) -> Option<Self> {
        let until = labels.get(&cooldown_label(kind))?;
        let delivery = labels.get(&delivery_label(kind))?;
        Some(Self {
            until: humantime::parse_rfc3339(until).ok()?,
            delivery: DeliveryKey(u64::from_str_radix(delivery, 16).ok()?),
        })
    }

    /// The window it keeps, seen at `now`; `None` once it has run out.
    pub fn window(&self, now: SystemTime) -> Option<Window> {
        let left = self.until.duration_since(now).ok()?;
        (!left.is_zero()).then_some(Window::Running(left))
    }

    /// The labels that write it.
    pub fn labels(&self, kind: ActionKind) -> [(String, String); 2] {
        [
            (
                cooldown_label(kind),
                humantime::format_rfc3339_millis(self.until).to_string(),
            ),
            (delivery_label(kind), format!("{:016x}", self.delivery.0)),
        ]
    }
}

pub fn cooldown_label(kind: ActionKind) -> String {
    format!("{COOLDOWN_PREFIX}{kind}")
}

pub fn delivery_label(kind: ActionKind) -> String {
    format!("{DELIVERY_PREFIX}{kind}")
}

/// What the labels of a fresh read say about acting on (service, `kind`) for `delivery` at
/// `now`: the same checks as the local memory's (duplicate, cooldown, scale_down's anti-flap),
/// plus the per-service budget of the last hour (`per_hour`, 0 = unlimited).
pub fn check(
    labels: &HashMap<String, String>,
    service: &str,
    kind: ActionKind,
    delivery: DeliveryKey,
    per_hour: u32,
    now: SystemTime,
) -> Result<(), Refusal> {
    let claim = Claim::read(labels, kind);
    if let Some((claim, Window::Running(left))) = claim.and_then(|c| Some((c, c.window(now)?))) {
        let left = fmt_secs(left);
        return Err(if claim.delivery == delivery {
            Refusal::new(
                Decision::Duplicate,
                format!("this alert was already handled by this rule (claimed on {service}; {left} of cooldown left)"),
            )
        } else {
            Refusal::new(
                Decision::Cooldown,
                format!("{kind} on {service} ran recently (claimed on the service); {left} of cooldown left"),
            )
        });
    }
    if kind == ActionKind::ScaleDown {
        let up = Claim::read(labels, ActionKind::ScaleUp).and_then(|c| c.window(now));
        if let Some(Window::Running(left)) = up {
            return Err(Refusal::new(
                Decision::Cooldown,
                format!(
                    "scale_up on {service} ran recently (claimed on the service); scale_down waits {} (anti-flap)",
                    fmt_secs(left)
                ),
            ));
        }
    }
    if per_hour > 0 {
        let times = recent_actions(labels, now);
        if times.len() >= per_hour as usize {
            let oldest = times[times.len() - per_hour as usize];
            let next_in = saturating_add(oldest, HOUR)
                .duration_since(now)
                .unwrap_or_default();
            let spent = BudgetSpent::Service {
                service: service.to_string(),
                next_in,
            };
            return Err(Refusal::new(Decision::RateLimited, spent.to_string()));
        }
    }
    Ok(())
}

/// The times of the service's actions within the hour before `now`, oldest first.
pub fn recent_actions(labels: &HashMap<String, String>, now: SystemTime) -> Vec<SystemTime> {
    let horizon = unix_secs(saturating_sub(now, HOUR));
    let mut times: Vec<u64> = labels
        .get(ACTIONS_LABEL)
        .map(|v| v.split(',').filter_map(|t| t.trim().parse().ok()).collect())
        .unwrap_or_default();
    times.retain(|&t| t > horizon);
    times.sort_unstable();
    times
        .into_iter()
        .map(|t| SystemTime::UNIX_EPOCH + Duration::from_secs(t))
        .collect()
}

/// The labels an acting update writes in cluster mode: the claim on `kind`, and the budget log
/// with this action added (bounded by what the budget can ever need to count).
pub fn stamp(
    labels: &HashMap<String, String>,
    kind: ActionKind,
    claim: Claim,
    per_hour: u32,
    now: SystemTime,
) -> Vec<(String, String)> {
    let mut out: Vec<(String, String)> = claim.labels(kind).into();
    let mut times = recent_actions(labels, now);
    times.push(now);
    let keep = (per_hour.max(1) as usize).min(times.len());
    let log: Vec<String> = times[times.len() - keep..]
        .iter()
        .map(|t| unix_secs(*t).to_string())
        .collect();
    out.push((ACTIONS_LABEL.to_string(), log.join(",")));
    out
}

/// The templates (hashes) a rollback moved the service away from, as its label lists them.
pub fn bad_templates(labels: &HashMap<String, String>) -> Vec<u64> {
    labels
        .get(ROLLED_BACK_FROM_LABEL)
        .map(|v| {
            v.split(',')
                .filter_map(|h| u64::from_str_radix(h.trim(), 16).ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The label a rollback away from template `from` writes: the list with `from` added last.
pub fn rolled_back_from(labels: &HashMap<String, String>, from: u64) -> (String, String) {
    let mut bad = bad_templates(labels);
    bad.retain(|&h| h != from);
    bad.push(from);
    let keep = bad.len().min(BAD_KEPT);
    let text: Vec<String> = bad[bad.len() - keep..]
        .iter()
        .map(|h| format!("{h:016x}"))
        .collect();
    (ROLLED_BACK_FROM_LABEL.to_string(), text.join(","))
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    const T0: u64 = 1_764_662_400; // 2025-12-02T08:00:00Z

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + secs)
    }

    fn labels(pairs: &[(String, String)]) -> HashMap<String, String> {
        pairs.iter().cloned().collect()
    }

    fn claimed(kind: ActionKind, until: SystemTime, delivery: u64) -> HashMap<String, String> {
        labels(&stamp(
            &HashMap::new(),
            kind,
            Claim {
                until,
                delivery: DeliveryKey(delivery),
            },
            12,
            at(0),
        ))
    }

    #[test]
    fn a_claim_reads_back_as_written() {
        let claim = Claim {
            until: at(300) + Duration::from_millis(250),
            delivery: DeliveryKey(0xdead_beef_0000_0001),
        };
        let written = labels(&claim.labels(ActionKind::ScaleUp));
        assert_eq!(
            written
                .get("swarmpilot.cooldown.scale_up")
                .map(String::as_str),
            Some("2025-12-02T08:05:00.250Z")
        );
        assert_eq!(
            written
                .get("swarmpilot.delivery.scale_up")
                .map(String::as_str),
            Some("deadbeef00000001")
        );
        assert_eq!(Claim::read(&written, ActionKind::ScaleUp), Some(claim));
        assert_eq!(Claim::read(&written, ActionKind::ScaleDown), None);
    }

    #[rstest]
    #[case::same_delivery_in_window(ActionKind::ScaleUp, 7, 100, Some(Decision::Duplicate))]
    #[case::other_delivery_in_window(ActionKind::ScaleUp, 8, 100, Some(Decision::Cooldown))]
    #[case::window_over(ActionKind::ScaleUp, 7, 300, None)]
    #[case::window_over_later(ActionKind::ScaleUp, 8, 301, None)]
    #[case::anti_flap(ActionKind::ScaleDown, 9, 100, Some(Decision::Cooldown))]
    #[case::anti_flap_over(ActionKind::ScaleDown, 9, 300, None)]
    #[case::other_action(ActionKind::Restart, 7, 100, None)]
    fn claims_refuse_like_the_local_memory(
        #[case] kind: ActionKind,
        #[case] delivery: u64,
        #[case] now: u64,
        #[case] refused: Option<Decision>,
    ) {
        let on_service = claimed(ActionKind::ScaleUp, at(300), 7);
        let result = check(&on_service, "web", kind, DeliveryKey(delivery), 0, at(now));
        assert_eq!(result.err().map(|r| r.decision), refused);
    }

    #[rstest]
    #[case::garbage_until("soon", "0000000000000007")]
    #[case::garbage_delivery("2025-12-02T08:05:00Z", "xyz")]
    #[case::empty("", "")]
    fn an_unreadable_claim_is_no_claim(#[case] until: &str, #[case] delivery: &str) {
        let edited = labels(&[
            ("swarmpilot.cooldown.scale_up".into(), until.into()),
            ("swarmpilot.delivery.scale_up".into(), delivery.into()),
        ]);
        assert_eq!(Claim::read(&edited, ActionKind::ScaleUp), None);
        assert!(check(
            &edited,
            "web",
            ActionKind::ScaleUp,
            DeliveryKey(7),
            0,
            at(0)
        )
        .is_ok());
    }

    #[test]
    fn the_hourly_budget_counts_the_log_on_the_service() {
        let mut on_service = HashMap::new();
        for minute in [0, 10, 20] {
            let claim = Claim {
                until: at(minute * 60),
                delivery: DeliveryKey(minute),
            };
            let stamped = stamp(&on_service, ActionKind::Restart, claim, 3, at(minute * 60));
            on_service.extend(stamped);
        }
        assert_eq!(
            on_service.get(ACTIONS_LABEL).map(String::as_str),
            Some(format!("{},{},{}", T0, T0 + 600, T0 + 1200).as_str())
        );
        let refused = check(
            &on_service,
            "web",
            ActionKind::ScaleUp,
            DeliveryKey(1),
            3,
            at(1800),
        )
        .expect_err("three actions in the hour");
        assert_eq!(refused.decision, Decision::RateLimited);
        assert!(refused.reason.contains("next in 30m"), "{}", refused.reason);
        // An hour after the first, one more fits; the log never grows past the budget.
        assert!(check(
            &on_service,
            "web",
            ActionKind::ScaleUp,
            DeliveryKey(1),
            3,
            at(3601)
        )
        .is_ok());
        let next = Claim {
            until: at(3601),
            delivery: DeliveryKey(9),
        };
        let stamped = labels(&stamp(&on_service, ActionKind::ScaleUp, next, 3, at(3601)));
        assert_eq!(
            stamped.get(ACTIONS_LABEL).map(String::as_str),
            Some(format!("{},{},{}", T0 + 600, T0 + 1200, T0 + 3601).as_str())
        );
    }

    #[test]
    fn rolled_back_from_keeps_the_last_ten_distinct() {
        let mut on_service = HashMap::new();
        for hash in (1..=12).chain([5]) {
            let (key, value) = rolled_back_from(&on_service, hash);
            on_service.insert(key, value);
        }
        let expected: Vec<u64> = (3..=12).filter(|&h| h != 5).chain([5]).collect();
        assert_eq!(bad_templates(&on_service), expected);
    }

    #[test]
    fn an_unlimited_budget_keeps_one_entry() {
        let claim = Claim {
            until: at(60),
            delivery: DeliveryKey(1),
        };
        let stamped = labels(&stamp(
            &HashMap::new(),
            ActionKind::ScaleUp,
            claim,
            0,
            at(0),
        ));
        assert_eq!(
            stamped.get(ACTIONS_LABEL).map(String::as_str),
            Some(T0.to_string().as_str())
        );
    }
}
