//! `recommend`'s other source: the cAdvisor series the monitoring stack already keeps in
//! Prometheus, read over the window with `query_range`. Unlike sampling it covers every node and
//! needs no wait. Per task (cAdvisor's `com.docker.swarm.*` container labels):
//!
//! ```text
//! cpu     sum by (task) (rate(container_cpu_usage_seconds_total{service="S"}[R]))
//! memory  sum by (task) (container_memory_working_set_bytes{service="S"})
//! ```
//!
//! with `service` and `task` spelled `container_label_com_docker_swarm_service_name` and
//! `container_label_com_docker_swarm_task_name`, a step of the window / 5,000 (at least 15 s,
//! cAdvisor's housekeeping interval in the stack) and R = max(1m, step). Each (task, step) with
//! both series is one sample, as one `docker stats` reading is when sampling.

use super::sizing::Observed;
use crate::prometheus::{promql_string, Prometheus, PrometheusError, Series};
use std::collections::{BTreeSet, HashMap};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

const SERVICE_LABEL: &str = "container_label_com_docker_swarm_service_name";
const TASK_LABEL: &str = "container_label_com_docker_swarm_task_name";
const MIN_STEP: Duration = Duration::from_secs(15);
const MIN_RATE_WINDOW: Duration = Duration::from_secs(60);
/// Points per series; Prometheus refuses more than 11,000.
const MAX_POINTS: u32 = 5_000;

/// Values by (task, timestamp in ms).
type Points = HashMap<(String, i64), f64>;

/// Fill `observed` with the samples of the `window` that ends now.
pub async fn observe(
    prometheus: &Prometheus,
    mut observed: Observed,
    window: Duration,
) -> Result<Observed, PrometheusError> {
    let range = Range::ending_now(window);
    let selector = format!("{{{SERVICE_LABEL}={}}}", promql_string(&observed.service));
    let cpu = format!(
        "sum by ({TASK_LABEL}) (rate(container_cpu_usage_seconds_total{selector}[{}s]))",
        range.rate_window.as_secs()
    );
    let memory = format!("sum by ({TASK_LABEL}) (container_memory_working_set_bytes{selector})");
    let query = |q: String| async move {
        let series = prometheus
            .range(&q, range.start, range.end, range.step)
            .await?;
        Ok::<_, PrometheusError>(points(series))
    };
    let (cpu, memory) = tokio::try_join!(query(cpu), query(memory))?;
    pair(&mut observed, &cpu, &memory);
    Ok(observed)
}

/// The query range: `[start, end]` in unix seconds, its step and the rate window.
struct Range {
    start: u64,
    end: u64,
    step: Duration,
    rate_window: Duration,
}

impl Range {
    fn ending_now(window: Duration) -> Self {
        let end = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let step = (window / MAX_POINTS).max(MIN_STEP);
        let step = Duration::from_secs(step.as_secs_f64().ceil() as u64);
        Self {
            start: end.saturating_sub(window.as_secs()),
            end,
            step,
            rate_window: step.max(MIN_RATE_WINDOW),
        }
    }
}

fn points(matrix: Vec<Series>) -> Points {
    let mut out = Points::new();
    for series in matrix {
        let task = series.metric.get(TASK_LABEL).cloned().unwrap_or_default();
        for (time, value) in series.values {
            if let Ok(value) = value.parse::<f64>() {
                if value.is_finite() && value >= 0.0 {
                    out.insert((task.clone(), (time * 1000.0).round() as i64), value);
                }
            }
        }
    }
    out
}

/// One sample per (task, time) where both series have a value, in time order. The task count is
/// the average number of tasks per step: a task replaced during the window is not two.
fn pair(observed: &mut Observed, cpu: &Points, memory: &Points) {
    let mut keys: Vec<&(String, i64)> = cpu.keys().filter(|k| memory.contains_key(*k)).collect();
    keys.sort_by(|(a_task, a_time), (b_task, b_time)| (a_time, a_task).cmp(&(b_time, b_task)));
    let steps: BTreeSet<i64> = keys.iter().map(|(_, time)| *time).collect();
    for key in &keys {
        observed.cpu.push(cpu[*key]);
        observed.memory.push(memory[*key] as u64);
    }
    if !steps.is_empty() {
        observed.tasks = (keys.len() as f64 / steps.len() as f64).round() as u64;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstest::rstest;

    fn points_of(rows: &[(&str, i64, f64)]) -> Points {
        rows.iter()
            .map(|(task, time, value)| ((task.to_string(), *time), *value))
            .collect()
    }

    #[test]
    fn samples_pair_cpu_and_memory_by_task_and_time() {
        let cpu = points_of(&[("a", 1, 0.2), ("b", 1, 0.4), ("a", 2, 0.3), ("c", 3, 0.9)]);
        let memory = points_of(&[
            ("a", 1, 10.0),
            ("b", 1, 20.0),
            ("a", 2, 30.0),
            ("b", 3, 5.0),
        ]);
        let mut observed = Observed::default();
        pair(&mut observed, &cpu, &memory);
        assert_eq!(observed.cpu, [0.2, 0.4, 0.3], "only times both series have");
        assert_eq!(observed.memory, [10, 20, 30]);
        assert_eq!(
            observed.tasks, 2,
            "3 samples over 2 steps: 1.5 tasks on average"
        );
    }

    #[test]
    fn no_series_is_no_sample() {
        let mut observed = Observed::default();
        pair(&mut observed, &Points::new(), &Points::new());
        assert!(observed.cpu.is_empty());
        assert_eq!(observed.tasks, 0);
    }

    #[rstest]
    #[case::ten_minutes(600, 15, 60)]
    #[case::a_day(86_400, 18, 60)]
    #[case::a_week(604_800, 121, 121)]
    fn the_step_keeps_the_points_per_series_bounded(
        #[case] window: u64,
        #[case] step: u64,
        #[case] rate_window: u64,
    ) {
        let range = Range::ending_now(Duration::from_secs(window));
        assert_eq!(range.step.as_secs(), step);
        assert_eq!(range.rate_window.as_secs(), rate_window);
        assert_eq!(range.end - range.start, window);
        assert!(window / step <= u64::from(MAX_POINTS));
    }
}
