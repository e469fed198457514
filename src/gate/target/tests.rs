use super::*;
use crate::clock::ManualClock;
use crate::gate::change::{plan as plan_action, Context};
use crate::gate::stabilization::Recommendations;
use crate::model::ServiceMode;
use crate::rules::{Action, StepLimit};
use rstest::rstest;
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

const OPT_IN: &str = "swarmpilot.enable";

fn tracking() -> TargetTracking {
    TargetTracking {
        target: Finite::new(0.6).unwrap(),
        value_from: ValueSource::Annotation {
            name: "value".into(),
        },
        tolerance: Finite::new(0.1).unwrap(),
        min_replicas: 1,
        max_replicas: 20,
        scale_down_stabilization_ms: 300_000,
        max_step_up: StepLimit::DEFAULT_UP,
        max_step_down: StepLimit::DEFAULT_DOWN,
        reading: None,
    }
}

/// The rule with a reading of `value` taken at `current` replicas (as admission takes it).
fn read(mut tracking: TargetTracking, value: f64, replicas: Option<u64>) -> TargetTracking {
    tracking.reading = Some(Reading {
        value: Finite::new(value).unwrap(),
        replicas,
        since_ms: None,
    });
    tracking
}

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
        force_update: 0,
        template: crate::model::Template::from_task_spec(&Default::default()),
        spec: Default::default(),
    }
}

/// Decide without a stabilization memory (every recommendation is the window's highest).
fn decide(tracking: &TargetTracking, svc: &ServiceState) -> Result<Planned, Refusal> {
    let replicas = match svc.mode {
        ServiceMode::Replicated { replicas } => replicas,
        _ => unreachable!(),
    };
    plan(tracking, svc, replicas, &unknown_start(&|r| r))
}

/// A window whose alert's start is not known (only remembered recommendations hold it).
fn unknown_start<'a>(highest: &'a dyn Fn(u64) -> u64) -> Window<'a> {
    Window {
        highest,
        off_target_for: None,
    }
}

fn replicas(result: &Result<Planned, Refusal>) -> Result<(u64, u64), Decision> {
    match result {
        Ok(Planned {
            change: Change::Replicas { from, to },
            ..
        }) => Ok((*from, *to)),
        Ok(other) => panic!("not a replica change: {other:?}"),
        Err(refusal) => Err(refusal.decision),
    }
}

/// HPA's formula, ⌈current × ratio⌉, with the float care: a product within 1e-9 of a whole
/// number is that number.
#[rstest]
#[case::load_times_1_75(4, 1.05 / 0.6, 7)]
#[case::load_times_3(2, 1.8 / 0.6, 6)]
#[case::decimal_noise_above_a_whole(4, 0.9 / 0.6, 6)]
#[case::decimal_noise_below_a_whole(6, 0.2 / 0.6, 2)]
#[case::a_third_times_three(3, 1.0 / 3.0, 1)]
#[case::half_rounds_up(3, 0.5, 2)]
#[case::just_past_a_whole_rounds_up(4, 1.001, 5)]
#[case::no_load(10, 0.0, 0)]
#[case::capped(5_000, 3.0, MAX_REPLICAS)]
#[case::absurd(1, 1e300, MAX_REPLICAS)]
#[case::overflowed_to_infinity(1, f64::INFINITY, MAX_REPLICAS)]
#[case::exactly_the_cap(5_000, 2.0, MAX_REPLICAS)]
fn the_formula(#[case] current: u64, #[case] ratio: f64, #[case] desired: u64) {
    assert_eq!(desired_replicas(current, ratio), desired);
}

#[test]
fn the_float_noise_is_real() {
    // What the epsilon is for: without it these would be 8 replicas and "outside the tolerance".
    let (current, ratio) = std::hint::black_box((4.0_f64, 1.05_f64 / 0.6));
    assert!(current * ratio > 7.0, "{}", current * ratio);
    assert_eq!(desired_replicas(4, 1.05 / 0.6), 7);
    let off = std::hint::black_box(0.66_f64 / 0.6 - 1.0);
    assert!(off.abs() > 0.1, "{off}");
    assert!(within_tolerance(0.66 / 0.6, 0.1));
}

#[rstest]
#[case::on_target(1.0, 0.1, true)]
#[case::at_the_upper_edge(1.1, 0.1, true)]
#[case::at_the_lower_edge(0.9, 0.1, true)]
#[case::just_past(1.1001, 0.1, false)]
#[case::zero_tolerance_exact(1.0, 0.0, true)]
#[case::zero_tolerance_off(1.01, 0.0, false)]
#[case::no_load_is_never_within(0.0, 0.99, false)]
fn the_tolerance(#[case] ratio: f64, #[case] tolerance: f64, #[case] within: bool) {
    assert_eq!(within_tolerance(ratio, tolerance), within);
}

/// From a reading to the change or refusal: tolerance, direction, rate policies, bounds.
#[rstest]
#[case::up_straight_to_the_count(4, 1.05, &[], Ok((4, 7)))]
#[case::load_times_3_in_one_step(2, 1.8, &[], Ok((2, 6)))]
#[case::down_when_no_window(6, 0.2, &[], Ok((6, 2)))]
#[case::within_tolerance(4, 0.65, &[], Err(Decision::NoChange))]
#[case::at_the_tolerance_edge(4, 0.66, &[], Err(Decision::NoChange))]
#[case::rounds_up_to_today(4, 0.5, &[], Err(Decision::NoChange))]
#[case::to_the_rule_max(10, 3.0, &[], Ok((10, 20)))]
#[case::label_max_tighter(5, 1.8, &[("swarmpilot.max_replicas", "9")], Ok((5, 9)))]
#[case::rule_max_tighter(12, 1.8, &[("swarmpilot.max_replicas", "50")], Ok((12, 20)))]
#[case::at_max(20, 1.8, &[], Err(Decision::AtBound))]
#[case::above_max_by_hand_is_left(25, 1.8, &[], Err(Decision::AtBound))]
#[case::down_to_the_rule_min(6, 0.0, &[], Ok((6, 1)))]
#[case::label_min_tighter(6, 0.0, &[("swarmpilot.min_replicas", "3")], Ok((6, 3)))]
#[case::at_min(1, 0.0, &[], Err(Decision::AtBound))]
#[case::below_min_up_to_it(1, 0.7, &[("swarmpilot.min_replicas", "3")], Ok((1, 3)))]
#[case::bad_label(4, 1.8, &[("swarmpilot.max_replicas", "lots")], Err(Decision::Refused))]
#[case::no_replicas_to_scale_from(0, 1.8, &[], Err(Decision::Refused))]
fn decisions(
    #[case] current: u64,
    #[case] value: f64,
    #[case] labels: &[(&str, &str)],
    #[case] expected: Result<(u64, u64), Decision>,
) {
    let t = read(tracking(), value, Some(current));
    let got = decide(&t, &service(current, labels));
    assert_eq!(replicas(&got), expected, "{got:?}");
}

#[rstest]
#[case::up(4, 1.05, "value 1.05 vs target 0.6 (×1.75), tolerance 0.1")]
#[case::rate_limited(2, 6.0, "value 6 vs target 0.6 (×10), tolerance 0.1; max_step_up 100% or 4, whichever is more allows 6 of 20")]
#[case::rate_limited_and_bounded(12, 6.0, "value 6 vs target 0.6 (×10), tolerance 0.1; max_step_up 100% or 4, whichever is more allows 24 of 120; max_replicas 20 (rule)")]
#[case::down(
    6,
    0.2,
    "value 0.2 vs target 0.6 (×0.33), tolerance 0.1, stabilized over 5m"
)]
#[case::down_to_min(
    6,
    0.0,
    "value 0 vs target 0.6 (×0), tolerance 0.1, stabilized over 5m; min_replicas 1 (rule)"
)]
fn decisions_explain_themselves(#[case] current: u64, #[case] value: f64, #[case] why: &str) {
    let t = read(tracking(), value, Some(current));
    let planned = decide(&t, &service(current, &[])).unwrap();
    assert_eq!(planned.why.as_deref(), Some(why));
}

#[rstest]
#[case::within(4, 0.62, &[], Decision::NoChange, "value 0.62 vs target 0.6 (×1.03) is within tolerance 0.1: 4 replicas stay")]
#[case::rounds(4, 0.5, &[], Decision::NoChange, "value 0.5 vs target 0.6 (×0.83), tolerance 0.1: 4 × 0.83 rounds to 4: 4 replicas stay")]
#[case::at_max(20, 1.8, &[], Decision::AtBound, "value 1.8 vs target 0.6 (×3), tolerance 0.1: recommends 60; 20 replicas, max_replicas is 20 (rule)")]
#[case::at_label_min(3, 0.1, &[("swarmpilot.min_replicas", "3")], Decision::AtBound, "value 0.1 vs target 0.6 (×0.17), tolerance 0.1, stabilized over 5m: recommends 1; 3 replicas, min_replicas is 3 (label swarmpilot.min_replicas)")]
#[case::zero(0, 1.8, &[], Decision::Refused, "service web has 0 replicas: there is no value per replica to scale from; start it by hand or with scale_up")]
#[case::bad_label(4, 1.8, &[("swarmpilot.max_replicas", "-1")], Decision::Refused, "label swarmpilot.max_replicas=\"-1\" on web is not a whole number from 0 to 10000")]
fn refusals_explain_themselves(
    #[case] current: u64,
    #[case] value: f64,
    #[case] labels: &[(&str, &str)],
    #[case] decision: Decision,
    #[case] reason: &str,
) {
    let t = read(tracking(), value, Some(current));
    let refusal = decide(&t, &service(current, labels)).unwrap_err();
    assert_eq!(
        (refusal.decision, refusal.reason.as_str()),
        (decision, reason)
    );
}

/// Rate policies: at most +N or +P % up, −N or −P % down per action (one per cooldown).
#[rstest]
#[case::up_by_count(StepLimit::replicas(2), 4, 3.0, (4, 6))]
#[case::up_by_percent(StepLimit::percent(50), 4, 3.0, (4, 6))]
#[case::up_percent_rounds_up(StepLimit::percent(50), 3, 3.0, (3, 5))]
#[case::up_within_the_limit(StepLimit::replicas(10), 4, 1.05, (4, 7))]
#[case::hpa_default_doubles_large(StepLimit::DEFAULT_UP, 10, 3.0, (10, 20))]
#[case::absurd_value_cannot_multiply_by_50(StepLimit::DEFAULT_UP, 8, 1e12, (8, 16))]
fn rate_policy_up(
    #[case] limit: StepLimit,
    #[case] current: u64,
    #[case] value: f64,
    #[case] expected: (u64, u64),
) {
    let mut t = read(tracking(), value, Some(current));
    t.max_replicas = 10_000;
    t.max_step_up = limit;
    assert_eq!(replicas(&decide(&t, &service(current, &[]))), Ok(expected));
}

#[rstest]
#[case::down_by_count(StepLimit::replicas(1), 6, 0.1, (6, 5))]
#[case::down_by_percent(StepLimit::percent(50), 6, 0.1, (6, 3))]
#[case::down_percent_rounds_down(StepLimit::percent(50), 3, 0.1, (3, 2))]
#[case::down_percent_at_least_one(StepLimit::percent(10), 4, 0.1, (4, 3))]
#[case::down_within_the_limit(StepLimit::replicas(10), 6, 0.2, (6, 2))]
fn rate_policy_down(
    #[case] limit: StepLimit,
    #[case] current: u64,
    #[case] value: f64,
    #[case] expected: (u64, u64),
) {
    let mut t = read(tracking(), value, Some(current));
    t.max_step_down = limit;
    assert_eq!(replicas(&decide(&t, &service(current, &[]))), Ok(expected));
}

/// Scale-down stabilization with the injected clock: a scale-down takes the highest
/// recommendation of the window; scale-ups are never held back.
#[test]
fn stabilization_holds_a_dip_and_lets_a_lasting_drop_through() {
    let clock = ManualClock::default();
    let memory = Recommendations::new(Arc::new(clock.clone()));
    let key = ("web".to_string(), "cpu-target".to_string());
    let window = Duration::from_secs(300);
    let remember = |r| memory.recommend(&key, r, window, true);
    let step = |current: u64, value: f64| {
        let t = read(tracking(), value, Some(current));
        let svc = service(current, &[]);
        let result = plan(&t, &svc, current, &unknown_start(&remember));
        (replicas(&result), result)
    };

    // Load ×3 at 2 replicas: straight to 6.
    assert_eq!(step(2, 1.8).0, Ok((2, 6)));
    // A minute later the load dips to a third: 2 would do, but 6 was wanted within 5m.
    clock.advance(Duration::from_secs(60));
    let (held, result) = step(6, 0.2);
    assert_eq!(held, Err(Decision::NoChange));
    assert_eq!(
        result.unwrap_err().reason,
        "value 0.2 vs target 0.6 (×0.33) recommends 2, but 6 was recommended within scale_down_stabilization 5m: 6 replicas stay"
    );
    // Load back up within the window: no scale-down happened, nothing to undo.
    clock.advance(Duration::from_secs(60));
    assert_eq!(step(6, 0.6).0, Err(Decision::NoChange));
    // It drops and stays down: held until 5m after the last recommendation of 6 …
    clock.advance(Duration::from_secs(120));
    assert_eq!(step(6, 0.2).0, Err(Decision::NoChange));
    clock.advance(Duration::from_secs(179));
    assert_eq!(step(6, 0.2).0, Err(Decision::NoChange));
    // … then one scale-down, straight to the count the value asks for.
    clock.advance(Duration::from_secs(2));
    let (down, result) = step(6, 0.2);
    assert_eq!(down, Ok((6, 2)));
    assert_eq!(
        result.unwrap().why.as_deref(),
        Some("value 0.2 vs target 0.6 (×0.33), tolerance 0.1, stabilized over 5m")
    );
}

/// Alertmanager sends nothing while a service is on target: the time before the alert started
/// firing recommended the replicas the service had, and a window reaching back past the start
/// holds them — a dip after a long quiet spell removes nothing.
#[rstest]
#[case::dip_after_a_quiet_spell(Some(60), Err(Decision::NoChange))]
#[case::just_inside(Some(299), Err(Decision::NoChange))]
#[case::off_target_all_window(Some(300), Ok((6, 2)))]
#[case::start_unknown(None, Ok((6, 2)))]
fn the_quiet_time_before_the_alert_counts_in_the_window(
    #[case] fired_secs: Option<u64>,
    #[case] expected: Result<(u64, u64), Decision>,
) {
    let t = read(tracking(), 0.2, Some(6));
    let nothing_remembered = |r| r;
    let window = Window {
        highest: &nothing_remembered,
        off_target_for: fired_secs.map(Duration::from_secs),
    };
    let result = plan(&t, &service(6, &[]), 6, &window);
    assert_eq!(replicas(&result), expected);
    if fired_secs == Some(60) {
        assert_eq!(
            result.unwrap_err().reason,
            "value 0.2 vs target 0.6 (×0.33) recommends 2, but it has been off target only 1m (the alert's startsAt), less than scale_down_stabilization 5m: before that it was on target at these replicas, 6 stay"
        );
    }
}

#[test]
fn a_scale_up_never_waits_for_the_window() {
    let t = read(tracking(), 1.8, Some(2));
    let window = Window {
        highest: &|r| r,
        off_target_for: Some(Duration::ZERO),
    };
    assert_eq!(
        replicas(&plan(&t, &service(2, &[]), 2, &window)),
        Ok((2, 6))
    );
}

#[test]
fn stabilization_scales_down_to_the_highest_of_the_window() {
    let clock = ManualClock::default();
    let memory = Recommendations::new(Arc::new(clock.clone()));
    let key = ("web".to_string(), "cpu-target".to_string());
    let remember = |r| memory.recommend(&key, r, Duration::from_secs(300), true);
    let t = read(tracking(), 0.3, Some(8));
    // 8 × 0.3 / 0.6 = 4 recommended, then a deeper dip recommends 2: the window says 4.
    assert_eq!(
        replicas(&plan(&t, &service(8, &[]), 8, &unknown_start(&remember))),
        Ok((8, 4))
    );
    clock.advance(Duration::from_secs(30));
    let deeper = read(tracking(), 0.15, Some(8));
    let result = plan(&deeper, &service(8, &[]), 8, &unknown_start(&remember));
    assert_eq!(replicas(&result), Ok((8, 4)));
    assert!(result
        .unwrap()
        .why
        .unwrap()
        .ends_with("stabilized over 5m (highest recommendation 4, now 2)"),);
}

/// The worker's fresh read may show another count than admission's: the value's load is kept,
/// so the target is the same and the `from` is today's.
#[rstest]
#[case::unchanged(4, 4, Ok((4, 7)))]
#[case::someone_scaled_up_meanwhile(4, 6, Ok((6, 7)))]
#[case::someone_reached_it_meanwhile(4, 7, Err(Decision::NoChange))]
#[case::no_read_at_admission_uses_the_fresh_count(0, 6, Ok((6, 11)))]
fn a_fresh_read_keeps_the_load_not_the_from(
    #[case] read_at: u64,
    #[case] fresh: u64,
    #[case] expected: Result<(u64, u64), Decision>,
) {
    let read_at = (read_at > 0).then_some(read_at);
    let t = read(tracking(), 1.05, read_at);
    assert_eq!(replicas(&decide(&t, &service(fresh, &[]))), expected);
}

#[test]
fn a_changed_count_says_so() {
    let t = read(tracking(), 1.05, Some(4));
    let planned = decide(&t, &service(6, &[])).unwrap();
    assert_eq!(
        planned.why.as_deref(),
        Some("value 1.05 at 4 replicas (0.7 now) vs target 0.6 (×1.17), tolerance 0.1")
    );
}

#[test]
fn a_rule_without_a_reading_is_refused() {
    let refusal = decide(&tracking(), &service(4, &[])).unwrap_err();
    assert_eq!(refusal.decision, Decision::Refused);
}

#[test]
fn global_busy_and_unmanaged_services_are_refused_first() {
    let action = Action::ScaleToTarget(Box::new(read(tracking(), 1.8, Some(2))));
    let mut global = service(2, &[]);
    global.mode = ServiceMode::Global;
    let mut busy = service(2, &[]);
    busy.update_state = Some("updating".into());
    let unmanaged = service(2, &[(OPT_IN, "false")]);
    for (svc, decision) in [
        (global, Decision::Refused),
        (busy, Decision::Busy),
        (unmanaged, Decision::NotManaged),
    ] {
        let refusal = plan_action(&action, &svc, Context::new(OPT_IN)).unwrap_err();
        assert_eq!(refusal.decision, decision, "{}", refusal.reason);
    }
}

fn alert_with(annotations: &[(&str, &str)]) -> Alert {
    Alert {
        annotations: annotations
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    }
}

/// Every bad value is a refusal with its reason, never an action.
#[rstest]
#[case::absent(&[("summary", "CPU off target")], "the alert has no annotation \"value\" (value_from annotation:value): nothing to scale on")]
#[case::empty(&[("value", "")], "annotation value = \"\" is not a number")]
#[case::unparsable(&[("value", "high")], "annotation value = \"high\" is not a number")]
#[case::humanized(&[("value", "1.05k")], "annotation value = \"1.05k\" is not a number")]
#[case::nan(&[("value", "NaN")], "annotation value = \"NaN\" is not a finite number")]
#[case::plus_inf(&[("value", "+Inf")], "annotation value = \"+Inf\" is not a finite number")]
#[case::minus_inf(&[("value", "-Inf")], "annotation value = \"-Inf\" is not a finite number")]
#[case::overflow(&[("value", "1e400")], "annotation value = \"1e400\" is not a finite number")]
#[case::negative(&[("value", "-0.5")], "annotation value = \"-0.5\" is negative: a value per replica never is")]
fn bad_values_are_refused(#[case] annotations: &[(&str, &str)], #[case] reason: &str) {
    let refusal = read_value(&tracking(), &alert_with(annotations))
        .unwrap()
        .unwrap_err();
    assert_eq!(
        (refusal.decision, refusal.reason.as_str()),
        (Decision::Refused, reason)
    );
}

#[test]
fn a_huge_annotation_is_shortened_in_the_reason() {
    let huge = "9".repeat(10_000) + "x";
    let refusal = read_value(&tracking(), &alert_with(&[("value", &huge)]))
        .unwrap()
        .unwrap_err();
    assert!(refusal.reason.len() < 200, "{}", refusal.reason);
}

#[rstest]
#[case::plain("1.05", 1.05)]
#[case::spaces(" 0.6 \n", 0.6)]
#[case::exponent("1e-3", 0.001)]
#[case::go_exponent("1.5e+06", 1.5e6)]
#[case::zero("0", 0.0)]
#[case::minus_zero("-0", 0.0)]
fn good_values_are_read(#[case] text: &str, #[case] value: f64) {
    let read = read_value(&tracking(), &alert_with(&[("value", text)]))
        .unwrap()
        .unwrap();
    assert_eq!(read.get(), value);
    assert!(read.get().is_sign_positive());
}

/// Nothing a rule or a payload can hold makes the arithmetic panic or wrap.
#[rstest]
#[case::tiny_target(1e-300, 1e300, 4)]
#[case::huge_target(1e300, 1e-300, 4)]
#[case::max_current(0.6, 1.2, u64::MAX)]
#[case::past_max_replicas(0.6, 0.3, 20_000)]
fn extremes_neither_panic_nor_wrap(#[case] target: f64, #[case] value: f64, #[case] current: u64) {
    let mut t = read(tracking(), value, Some(current));
    t.target = Finite::new(target).unwrap();
    t.max_step_up = StepLimit::percent(1000);
    t.max_step_down = StepLimit::replicas(MAX_REPLICAS);
    let result = decide(&t, &service(current, &[]));
    if let Ok(Planned {
        change: Change::Replicas { to, .. },
        ..
    }) = result
    {
        assert!(to <= current.max(MAX_REPLICAS), "{to}");
    }
}

fn sample(value: &str) -> Sample {
    Sample {
        metric: [("service".to_string(), "web".to_string())].into(),
        value: value.into(),
    }
}

#[rstest]
#[case::one_sample(Instant::Vector(vec![sample("0.75")]), 0.75)]
#[case::scalar(Instant::Scalar("1.5".into()), 1.5)]
#[case::zero(Instant::Vector(vec![sample("0")]), 0.0)]
fn a_query_answer_of_one_number_is_the_value(#[case] answer: Instant, #[case] value: f64) {
    assert_eq!(query_value(Ok(answer), "web").unwrap().get(), value);
}

#[rstest]
#[case::no_series(Instant::Vector(vec![]), "the query for web returned no series: nothing to scale on (is the service scraped?)")]
#[case::two_series(Instant::Vector(vec![sample("1"), sample("2")]), "the query for web returned 2 series, not one: aggregate it (avg, sum, max …)")]
#[case::matrix(Instant::Other("matrix".into()), "the query for web returned a matrix, not one value")]
#[case::nan(Instant::Vector(vec![sample("NaN")]), "the query's value = \"NaN\" is not a finite number")]
#[case::inf(Instant::Scalar("+Inf".into()), "the query's value = \"+Inf\" is not a finite number")]
#[case::negative(Instant::Vector(vec![sample("-1")]), "the query's value = \"-1\" is negative: a value per replica never is")]
fn a_query_answer_that_is_not_one_usable_number_is_refused(
    #[case] answer: Instant,
    #[case] reason: &str,
) {
    let refusal = query_value(Ok(answer), "web").unwrap_err();
    assert_eq!(refusal.decision, Decision::Refused);
    assert_eq!(refusal.reason, reason);
}

#[rstest]
#[case::timeout(
    PrometheusError::Timeout { url: "http://127.0.0.1:9/api/v1/query".into(), timeout: std::time::Duration::from_secs(5) },
    "the query for web failed: prometheus http://127.0.0.1:9/api/v1/query: no answer within 5s"
)]
#[case::bad_query(
    PrometheusError::Query { url: "http://p/api/v1/query".into(), status: 400, message: "bad_data: parse error".into() },
    "the query for web failed: prometheus http://p/api/v1/query answered 400: bad_data: parse error"
)]
fn a_failed_query_is_refused_with_its_error(#[case] error: PrometheusError, #[case] reason: &str) {
    let refusal = query_value(Err(error), "web").unwrap_err();
    assert_eq!(refusal.decision, Decision::Refused);
    assert_eq!(refusal.reason, reason);
}
