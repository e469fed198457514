use super::*;
use rstest::rstest;
use serde_json::json;

fn service(mode: serde_json::Value, update_state: Option<&str>) -> Service {
    let mut value = json!({
        "ID": "s1",
        "Spec": {"Name": "app_web", "Mode": mode, "TaskTemplate": {"ContainerSpec": {"Image": "web:2"}}},
    });
    if let Some(state) = update_state {
        value["UpdateStatus"] = json!({"State": state, "Message": "update paused due to failure"});
    }
    serde_json::from_value(value).unwrap()
}

fn task(image: &str, state: &str, desired: &str, err: &str) -> Task {
    serde_json::from_value(json!({
        "ID": format!("{image}-{state}"),
        "ServiceID": "s1",
        "Spec": {"ContainerSpec": {"Image": image}, "Runtime": "container"},
        "DesiredState": desired,
        "Status": {"State": state, "Err": err, "Timestamp": "2026-01-01T00:00:00Z"},
    }))
    .unwrap()
}

fn replicated(n: i64) -> serde_json::Value {
    json!({"Replicated": {"Replicas": n}})
}

fn on_new_image(t: &Task) -> bool {
    t.spec
        .as_ref()
        .and_then(|s| s.container_spec.as_ref())
        .and_then(|c| c.image.as_deref())
        == Some("web:2")
}

#[rstest]
#[case::all_new_tasks_running(replicated(2), None, vec![task("web:2", "running", "running", ""), task("web:2", "running", "running", "")], Progress::Converged)]
#[case::completed_update(replicated(1), Some("completed"), vec![task("web:2", "running", "running", "")], Progress::Converged)]
#[case::old_tasks_do_not_count(replicated(2), None, vec![task("web:1", "running", "running", ""), task("web:2", "running", "running", "")], Progress::Pending("1/2 tasks running".into()))]
#[case::crashing_tasks_say_why(replicated(1), None, vec![task("web:2", "failed", "shutdown", "task: non-zero exit (1)"), task("web:2", "starting", "running", "")], Progress::Pending("0/1 tasks running: task: non-zero exit (1)".into()))]
#[case::updating(replicated(1), Some("updating"), vec![task("web:2", "running", "running", "")], Progress::Pending("updating: update paused due to failure".into()))]
#[case::paused_is_a_failure(replicated(1), Some("paused"), vec![task("web:1", "running", "running", "")], Progress::Failed("update paused: update paused due to failure".into()))]
#[case::rolled_back_is_a_failure(replicated(1), Some("rollback_completed"), vec![task("web:1", "running", "running", "")], Progress::Failed("update rollback_completed: update paused due to failure".into()))]
#[case::zero_replicas(replicated(0), None, vec![], Progress::Converged)]
#[case::replicated_job(json!({"ReplicatedJob": {}}), None, vec![], Progress::Converged)]
#[case::global_all_running(json!({"Global": {}}), None, vec![task("web:2", "running", "running", "")], Progress::Converged)]
#[case::global_none_yet(json!({"Global": {}}), None, vec![], Progress::Pending("0/1 tasks running".into()))]
fn convergence(
    #[case] mode: serde_json::Value,
    #[case] update_state: Option<&str>,
    #[case] tasks: Vec<Task>,
    #[case] expected: Progress,
) {
    let s = service(mode, update_state);
    assert_eq!(assess(&s, &tasks, &on_new_image, false), expected);
}

#[test]
fn a_completed_rollback_is_accepted_when_waiting_for_the_old_spec() {
    let s = service(replicated(1), Some("rollback_completed"));
    let tasks = [task("web:2", "running", "running", "")];
    assert_eq!(assess(&s, &tasks, &on_new_image, true), Progress::Converged);
}

#[test]
fn a_task_runs_the_current_template_whatever_the_runtime_field() {
    let s = service(replicated(1), None);
    assert!(runs_current_template(
        &s,
        &task("web:2", "running", "running", "")
    ));
    assert!(!runs_current_template(
        &s,
        &task("web:1", "running", "running", "")
    ));
}

#[test]
fn convergence_counts_once_the_same_tasks_stayed_up_for_the_stable_period() {
    let start = Instant::now();
    let mut settle = Settle::new(Duration::from_secs(5));
    let up = [task("web:2", "running", "running", "")];
    let converged = || Progress::Converged;
    let at = |secs| start + Duration::from_secs(secs);
    assert!(matches!(
        settle.observe(converged(), &up, at(0)),
        Progress::Pending(_)
    ));
    assert!(matches!(
        settle.observe(converged(), &up, at(4)),
        Progress::Pending(_)
    ));
    assert_eq!(settle.observe(converged(), &up, at(5)), Progress::Converged);
}

#[test]
fn a_task_replaced_meanwhile_starts_the_stable_period_again() {
    let start = Instant::now();
    let mut settle = Settle::new(Duration::from_secs(5));
    let at = |secs| start + Duration::from_secs(secs);
    let first = [task("web:2", "running", "running", "")];
    let mut second = first.clone();
    second[0].id = Some("replacement".into());
    settle.observe(Progress::Converged, &first, at(0));
    let pending = Progress::Pending("0/1 tasks running".into());
    assert_eq!(settle.observe(pending.clone(), &[], at(2)), pending);
    assert!(matches!(
        settle.observe(Progress::Converged, &second, at(6)),
        Progress::Pending(_)
    ));
    assert!(
        matches!(
            settle.observe(Progress::Converged, &first, at(12)),
            Progress::Pending(_)
        ),
        "another task set"
    );
    assert_eq!(
        settle.observe(Progress::Converged, &first, at(17)),
        Progress::Converged
    );
}

#[test]
fn a_failure_passes_through() {
    let mut settle = Settle::new(Duration::ZERO);
    let failed = Progress::Failed("update paused".into());
    assert_eq!(settle.observe(failed.clone(), &[], Instant::now()), failed);
}
