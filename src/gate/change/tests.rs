use super::*;
use rstest::rstest;
use std::collections::HashMap;

const OPT_IN: &str = "swarmpilot.enable";

fn service(replicas: u64, labels: &[(&str, &str)]) -> ServiceState {
    let mut all: HashMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    all.entry(OPT_IN.into()).or_insert_with(|| "true".into());
    ServiceState {
        id: "id1".into(),
        name: "web".into(),
        version: 7,
        labels: all,
        mode: ServiceMode::Replicated { replicas },
        update_state: None,
        force_update: 3,
        template: crate::model::Template::from_task_spec(&Default::default()),
        spec: Default::default(),
    }
}

fn up(step: u64, max: u64) -> Action {
    Action::ScaleUp {
        step,
        max_replicas: max,
    }
}

fn down(step: u64, min: u64) -> Action {
    Action::ScaleDown {
        step,
        min_replicas: min,
    }
}

#[rstest]
#[case::up_by_step(2, 2, 10, 4)]
#[case::up_clamped_to_bound(3, 5, 4, 4)]
#[case::up_at_bound_stays(4, 1, 4, 4)]
#[case::up_above_bound_never_shrinks(7, 1, 4, 7)]
#[case::down_by_step(5, -2, 1, 3)]
#[case::down_clamped(2, -5, 1, 1)]
#[case::down_at_bound(1, -1, 1, 1)]
#[case::down_below_bound_never_grows(0, -1, 1, 0)]
#[case::down_to_zero_allowed(1, -1, 0, 0)]
fn clamps(#[case] current: u64, #[case] delta: i64, #[case] bound: u64, #[case] expected: u64) {
    assert_eq!(clamp_step(current, delta, bound), expected);
}

#[rstest]
#[case::rule_bound(2, up(2, 10), &[], Ok(Change::Replicas { from: 2, to: 4 }))]
#[case::label_tighter_max(2, up(5, 10), &[(MAX_REPLICAS_LABEL, "3")], Ok(Change::Replicas { from: 2, to: 3 }))]
#[case::rule_tighter_max(2, up(5, 3), &[(MAX_REPLICAS_LABEL, "8")], Ok(Change::Replicas { from: 2, to: 3 }))]
#[case::label_tighter_min(4, down(3, 1), &[(MIN_REPLICAS_LABEL, "2")], Ok(Change::Replicas { from: 4, to: 2 }))]
#[case::rule_tighter_min(4, down(3, 3), &[(MIN_REPLICAS_LABEL, "1")], Ok(Change::Replicas { from: 4, to: 3 }))]
fn plans_replicas(
    #[case] replicas: u64,
    #[case] action: Action,
    #[case] labels: &[(&str, &str)],
    #[case] expected: Result<Change, Refusal>,
) {
    assert_eq!(
        plan_change(&action, &service(replicas, labels), Context::new(OPT_IN)),
        expected
    );
}

#[rstest]
#[case::at_label_bound(2, up(2, 10), &[(MAX_REPLICAS_LABEL, "2")], Decision::AtBound, "2 replicas, max_replicas is 2 (label swarmpilot.max_replicas)")]
#[case::at_rule_bound(10, up(2, 10), &[], Decision::AtBound, "10 replicas, max_replicas is 10 (rule)")]
#[case::at_min(1, down(1, 1), &[], Decision::AtBound, "1 replicas, min_replicas is 1 (rule)")]
#[case::bad_label(2, up(2, 10), &[(MAX_REPLICAS_LABEL, "many")], Decision::Refused, "label swarmpilot.max_replicas=\"many\" on web is not a whole number from 0 to 10000")]
#[case::not_opted_in(2, up(2, 10), &[(OPT_IN, "false")], Decision::NotManaged, "service web does not carry swarmpilot.enable=true")]
#[case::opt_in_must_be_exact(2, up(2, 10), &[(OPT_IN, "yes")], Decision::NotManaged, "service web does not carry swarmpilot.enable=true")]
fn refuses(
    #[case] replicas: u64,
    #[case] action: Action,
    #[case] labels: &[(&str, &str)],
    #[case] decision: Decision,
    #[case] reason: &str,
) {
    let refusal =
        plan_change(&action, &service(replicas, labels), Context::new(OPT_IN)).unwrap_err();
    assert_eq!(
        (refusal.decision, refusal.reason.as_str()),
        (decision, reason)
    );
}

#[rstest]
#[case("updating")]
#[case("paused")]
#[case("rollback_started")]
#[case("rollback_paused")]
fn busy_services_are_left_alone(#[case] state: &str) {
    let mut svc = service(2, &[]);
    svc.update_state = Some(state.into());
    for action in [up(1, 5), down(1, 1), Action::Restart] {
        let refusal = plan_change(&action, &svc, Context::new(OPT_IN)).unwrap_err();
        assert_eq!(refusal.decision, Decision::Busy);
    }
}

#[test]
fn completed_update_is_not_busy() {
    let mut svc = service(2, &[]);
    svc.update_state = Some("completed".into());
    assert!(plan_change(&Action::Restart, &svc, Context::new(OPT_IN)).is_ok());
}

#[test]
fn restart_bumps_force_update() {
    let change = plan_change(&Action::Restart, &service(2, &[]), Context::new(OPT_IN)).unwrap();
    assert_eq!(change, Change::ForceUpdate { from: 3, to: 4 });
}

#[test]
fn global_services_are_not_scaled() {
    let mut svc = service(2, &[]);
    svc.mode = ServiceMode::Global;
    let refusal = plan_change(&up(1, 5), &svc, Context::new(OPT_IN)).unwrap_err();
    assert_eq!(refusal.decision, Decision::Refused);
}

#[test]
fn rollback_is_allowed_while_paused_and_needs_a_known_template() {
    let mut svc = service(2, &[]);
    svc.update_state = Some("paused".into());
    let current = svc.template.hash();
    let none = plan_change(&Action::Rollback, &svc, Context::new(OPT_IN)).unwrap_err();
    assert_eq!(none.decision, Decision::Refused);
    assert!(
        none.reason.starts_with("nothing to roll back to"),
        "{}",
        none.reason
    );
    let same = Context {
        rollback_to: Some(current),
        ..Context::new(OPT_IN)
    };
    assert!(plan_change(&Action::Rollback, &svc, same).is_err());
    let other = Context {
        rollback_to: Some(42),
        ..Context::new(OPT_IN)
    };
    assert_eq!(
        plan_change(&Action::Rollback, &svc, other),
        Ok(Change::Template {
            from: current,
            to: 42
        })
    );
}

#[rstest]
#[case::idle_replicated(ServiceMode::Replicated { replicas: 0 }, false, Ok(Change::Job { from: 3, to: 4 }))]
#[case::replicated_running(ServiceMode::Replicated { replicas: 1 }, false, Err(Decision::Busy))]
#[case::idle_job(ServiceMode::ReplicatedJob, false, Ok(Change::Job { from: 3, to: 4 }))]
#[case::job_running(ServiceMode::ReplicatedJob, true, Err(Decision::Busy))]
#[case::global(ServiceMode::Global, false, Err(Decision::Refused))]
fn backup_runs(
    #[case] mode: ServiceMode,
    #[case] job_running: bool,
    #[case] expected: Result<Change, Decision>,
) {
    let mut svc = service(0, &[]);
    svc.mode = mode;
    let context = Context {
        job_running,
        ..Context::new(OPT_IN)
    };
    let action = Action::BackupNow { job: "web".into() };
    let got = plan_change(&action, &svc, context).map_err(|r| r.decision);
    assert_eq!(got, expected);
}

/// Huge or negative bounds on a service (labels are anyone's text) and huge steps (an action
/// replayed from a journal) neither panic nor wrap: `current ± step` saturates and is clamped.
#[rstest]
#[case::step_u64_max_up(6, up(u64::MAX, 10), &[], Ok(Change::Replicas { from: 6, to: 10 }))]
#[case::step_2_pow_63_up(6, up(1 << 63, 10), &[], Ok(Change::Replicas { from: 6, to: 10 }))]
#[case::step_u64_max_down(5, down(u64::MAX, 1), &[], Ok(Change::Replicas { from: 5, to: 1 }))]
#[case::step_2_pow_63_down(5, down(1 << 63, 0), &[], Ok(Change::Replicas { from: 5, to: 0 }))]
#[case::rule_bound_u64_max(6, up(u64::MAX, u64::MAX), &[], Ok(Change::Replicas { from: 6, to: 10_000 }))]
#[case::label_at_the_limit(2, up(5, 20_000), &[(MAX_REPLICAS_LABEL, "10000")], Ok(Change::Replicas { from: 2, to: 7 }))]
fn huge_steps_saturate(
    #[case] replicas: u64,
    #[case] action: Action,
    #[case] labels: &[(&str, &str)],
    #[case] expected: Result<Change, Refusal>,
) {
    assert_eq!(
        plan_change(&action, &service(replicas, labels), Context::new(OPT_IN)),
        expected
    );
}

#[rstest]
#[case::max_u64_max(up(1, 10), MAX_REPLICAS_LABEL, "18446744073709551615")]
#[case::max_past_u64(up(1, 10), MAX_REPLICAS_LABEL, "99999999999999999999")]
#[case::max_past_limit(up(1, 10), MAX_REPLICAS_LABEL, "10001")]
#[case::min_negative(down(1, 1), MIN_REPLICAS_LABEL, "-1")]
#[case::min_i64_min(down(1, 1), MIN_REPLICAS_LABEL, "-9223372036854775808")]
#[case::min_u64_max(down(1, 1), MIN_REPLICAS_LABEL, "18446744073709551615")]
fn out_of_range_labels_are_refused(
    #[case] action: Action,
    #[case] label: &str,
    #[case] value: &str,
) {
    let refusal = plan_change(
        &action,
        &service(5, &[(label, value)]),
        Context::new(OPT_IN),
    )
    .unwrap_err();
    assert_eq!(refusal.decision, Decision::Refused);
    assert_eq!(
        refusal.reason,
        format!("label {label}={value:?} on web is not a whole number from 0 to 10000")
    );
}

#[test]
fn force_update_at_its_maximum_is_refused_not_wrapped() {
    let mut svc = service(0, &[]);
    svc.force_update = u64::MAX;
    for action in [Action::Restart, Action::BackupNow { job: "web".into() }] {
        let refusal = plan_change(&action, &svc, Context::new(OPT_IN)).unwrap_err();
        assert_eq!(refusal.decision, Decision::Refused, "{action:?}");
        assert!(
            refusal.reason.contains("ForceUpdate 18446744073709551615"),
            "{}",
            refusal.reason
        );
    }
}
