use super::*;
use rstest::rstest;

const LOCAL: &str = "no local running task sampled";

#[rstest]
#[case::median_of_odd(&[3.0, 1.0, 2.0], 50.0, 2.0)]
#[case::median_of_even_is_the_lower(&[4.0, 1.0, 3.0, 2.0], 50.0, 2.0)]
#[case::p95_of_twenty_is_the_19th(&(1..=20).map(f64::from).collect::<Vec<_>>(), 95.0, 19.0)]
#[case::p95_of_ten_is_the_max(&(1..=10).map(f64::from).collect::<Vec<_>>(), 95.0, 10.0)]
#[case::single(&[0.4], 95.0, 0.4)]
#[case::p0_is_the_min(&[5.0, 7.0], 0.0, 5.0)]
fn nearest_rank_percentile(#[case] values: &[f64], #[case] p: f64, #[case] expected: f64) {
    assert_eq!(percentile(values, p), Some(expected));
}

#[test]
fn percentile_of_nothing_is_none() {
    assert_eq!(percentile::<f64>(&[], 50.0), None);
}

#[rstest]
#[case(0.0, 0)]
#[case(0.001, 5)]
#[case(0.05, 5)]
#[case(0.5, 50)]
#[case(0.501, 55)]
#[case(0.55, 55)]
#[case(0.625, 65)]
#[case(1.0, 100)]
#[case(-0.2, 0)]
fn cpu_rounds_up_to_a_twentieth(#[case] cores: f64, #[case] centi: u64) {
    assert_eq!(cpu_centi_ceil(cores), centi);
}

#[rstest]
#[case(0.0, 0)]
#[case(0.024, 0)]
#[case(0.025, 5)]
#[case(0.5, 50)]
#[case(0.5003, 50)]
#[case(0.55, 55)]
#[case(0.574, 55)]
#[case(0.575, 60)]
fn reservation_cpu_rounds_to_the_nearest_twentieth(#[case] cores: f64, #[case] centi: u64) {
    assert_eq!(cpu_centi_round(cores), centi);
}

#[rstest]
#[case(0.0, 0)]
#[case(1.0, 1)]
#[case(1_048_576.0, 1)]
#[case(1_048_577.0, 2)]
#[case(100.0 * 1_048_576.0 * 1.25, 125)]
fn memory_rounds_up_to_whole_mib(#[case] bytes: f64, #[case] mib: u64) {
    assert_eq!(mib_ceil(bytes), mib);
}

#[rstest]
#[case(0, "0.00")]
#[case(5, "0.05")]
#[case(65, "0.65")]
#[case(150, "1.50")]
fn cpus_in_compose_form(#[case] centi: u64, #[case] text: &str) {
    assert_eq!(cpus_text(centi), text);
}

fn observed(cpu: &[f64], memory_mib: &[u64], tasks: u64) -> Observed {
    Observed {
        service: "app_web".into(),
        compose_name: "web".into(),
        stack: Some("app".into()),
        tasks,
        cpu: cpu.to_vec(),
        memory: memory_mib.iter().map(|m| m * MIB).collect(),
        current_cpu_limit: None,
    }
}

#[test]
fn a_busy_service_gets_p50_reservations_and_p95_plus_headroom_limits() {
    let o = observed(&[0.5; 10], &[100; 10], 1);
    let r = recommend(&o).unwrap();
    assert_eq!(
        r.reservations,
        Resources {
            cpus_centi: 50,
            memory_mib: 100
        }
    );
    // 0.5 × 1.25 = 0.625 → 0.65; 100 MiB × 1.25 = 125 MiB.
    assert_eq!(
        r.limits,
        Resources {
            cpus_centi: 65,
            memory_mib: 125
        }
    );
    // T = 0.7 × 0.65 = 0.455: min ⌈0.5/0.455⌉ = 2, max ⌈1.0/0.455⌉ = 3.
    assert_eq!((r.min_replicas, r.max_replicas), (2, 3));
}

#[test]
fn an_idle_service_gets_the_floors() {
    let o = observed(&[0.0, 0.001, 0.0], &[0, 0, 1], 2);
    let r = recommend(&o).unwrap();
    assert_eq!(
        r.reservations,
        Resources {
            cpus_centi: 5,
            memory_mib: 16
        }
    );
    assert_eq!(
        r.limits,
        Resources {
            cpus_centi: 10,
            memory_mib: 32
        }
    );
    assert_eq!((r.min_replicas, r.max_replicas), (1, 2));
}

#[test]
fn nothing_sampled_recommends_nothing() {
    assert_eq!(recommend(&observed(&[], &[], 0)), None);
}

#[rstest]
#[case::spiky_load_widens_the_range(3, 0.2, 0.8, 100, (1, 7))]
#[case::flat_load(4, 0.3, 0.3, 40, (5, 9))]
#[case::idle(3, 0.0, 0.0, 10, (1, 2))]
fn replica_range_from_load(
    #[case] tasks: u64,
    #[case] p50: f64,
    #[case] p95: f64,
    #[case] limit_centi: u64,
    #[case] expected: (u64, u64),
) {
    let limits = Resources {
        cpus_centi: limit_centi,
        memory_mib: 32,
    };
    assert_eq!(replica_range(tasks, p50, p95, limits), expected);
}

#[rstest]
#[case(Some(0.5), true)]
#[case(Some(2.0), false)]
#[case(None, false)]
fn a_service_at_its_cpu_limit_is_flagged(#[case] limit: Option<f64>, #[case] flagged: bool) {
    let mut o = observed(&[0.49; 5], &[10; 5], 1);
    o.current_cpu_limit = limit;
    assert_eq!(recommend(&o).unwrap().throttled, flagged);
}

#[test]
fn compose_output_is_a_ready_deploy_block() {
    let o = observed(&[0.5; 10], &[100; 10], 1);
    let r = recommend(&o);
    let text = compose(&[(o, r)], LOCAL);
    assert_eq!(
        text,
        "services:\n  web:  # app_web (stack app): 1 task(s), 10 samples\n    deploy:\n      \
         resources:\n        limits: {cpus: '0.65', memory: 125M}\n        reservations: \
         {cpus: '0.50', memory: 100M}\n      labels:\n        swarmpilot.min_replicas: \"2\"\n        \
         swarmpilot.max_replicas: \"3\"\n"
    );
}

#[test]
fn compose_output_notes_a_service_without_samples() {
    let o = observed(&[], &[], 0);
    assert_eq!(
        compose(&[(o, None)], LOCAL),
        "services:\n  # app_web: no local running task sampled\n"
    );
}

#[test]
fn json_output_is_in_cores_and_bytes() {
    let o = observed(&[0.5; 10], &[100; 10], 1);
    let r = recommend(&o);
    let value = json(&[(o, r)], 6, "docker");
    assert_eq!(value["window_seconds"], 6);
    let s = &value["services"][0];
    assert_eq!(s["service"], "app_web");
    assert_eq!(s["cpu"]["p95"], 0.5);
    assert_eq!(s["limits"]["cpus"], 0.65);
    assert_eq!(s["limits"]["memory_bytes"], 125 * MIB);
    assert_eq!(s["replicas"]["min"], 2);
}

#[test]
fn table_aligns_columns_and_explains_missing_samples() {
    let busy = observed(&[0.5; 10], &[100; 10], 1);
    let r = recommend(&busy);
    let mut idle = observed(&[], &[], 0);
    idle.service = "app_idle".into();
    let text = table(&[(busy, r), (idle, None)], LOCAL);
    let lines: Vec<&str> = text.lines().collect();
    assert!(
        lines[0].starts_with("SERVICE   TASKS  SAMPLES  CPU p50/p95"),
        "{text}"
    );
    assert!(
        lines[1].contains("0.50/0.50") && lines[1].contains("0.65/125M"),
        "{text}"
    );
    assert!(lines[1].ends_with("2-3"), "{text}");
    assert!(
        lines[2].ends_with("no local running task sampled"),
        "{text}"
    );
}
