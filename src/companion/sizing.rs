//! The arithmetic of `recommend`, pure so it is tested without Docker: percentiles of the sampled
//! usage, the reservation / limit / replica-range formulas, and the three output formats.
//!
//! The formulas (also in the README):
//! - reservations: cpus = max(p50 rounded to the nearest 0.05, 0.05); memory = max(p50, 16 MiB) rounded up
//!   to a whole MiB.
//! - limits: cpus = max(p95 × 1.25 rounded up to 0.05, 0.10, reservation); memory =
//!   max(p95 × 1.25 rounded up to a whole MiB, 32 MiB, reservation).
//! - replicas, with T = 0.7 × the recommended CPU limit (the load one replica should carry) and
//!   n = the tasks sampled: min = max(1, ⌈n × p50 / T⌉), max = max(min + 1, ⌈2 × n × p95 / T⌉).

use serde_json::{json, Value};
use std::fmt::Write;

const MIB: u64 = 1024 * 1024;
/// Rounding step and floors, in hundredths of a core.
const CPU_STEP_CENTI: u64 = 5;
const CPU_RESERVATION_FLOOR_CENTI: u64 = 5;
const CPU_LIMIT_FLOOR_CENTI: u64 = 10;
const MEMORY_RESERVATION_FLOOR_MIB: u64 = 16;
/// Docker refuses limits under 6 MiB; 32 leaves a small process room to start.
const MEMORY_LIMIT_FLOOR_MIB: u64 = 32;
const HEADROOM: f64 = 1.25;
/// The share of its CPU limit one replica should carry on average.
const REPLICA_TARGET_SHARE: f64 = 0.7;
/// `max` leaves room for twice the observed peak.
const PEAK_FACTOR: f64 = 2.0;

/// What was observed of one service: per-task samples, pooled over its tasks.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// Swarm service name.
    pub service: String,
    /// The compose key: the service name without its stack prefix.
    pub compose_name: String,
    pub stack: Option<String>,
    /// Tasks whose containers were sampled.
    pub tasks: u64,
    /// CPU use in cores, one value per sample.
    pub cpu: Vec<f64>,
    /// Memory in bytes (usage minus inactive file cache, as `docker stats` shows it).
    pub memory: Vec<u64>,
    /// The service's current CPU limit in cores, if any (to flag throttling).
    pub current_cpu_limit: Option<f64>,
}

/// CPU in hundredths of a core and memory in MiB: exact values for YAML and comparisons.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resources {
    pub cpus_centi: u64,
    pub memory_mib: u64,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub cpu_p50: f64,
    pub cpu_p95: f64,
    pub memory_p50: u64,
    pub memory_p95: u64,
    pub reservations: Resources,
    pub limits: Resources,
    pub min_replicas: u64,
    pub max_replicas: u64,
    /// The p95 is at the current CPU limit: real demand may be higher than what was seen.
    pub throttled: bool,
}

/// Nearest-rank percentile (`p` in 0..=100) of unsorted values; `None` when empty.
pub fn percentile<T: Copy + PartialOrd>(values: &[T], p: f64) -> Option<T> {
    if values.is_empty() {
        return None;
    }
    let mut sorted = values.to_vec();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap_or(std::cmp::Ordering::Equal));
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

/// Cores rounded up to the 0.05 step, in hundredths. The epsilon keeps 0.55 × 20 = 11.000000000000002
/// from rounding up to 0.60.
pub fn cpu_centi_ceil(cores: f64) -> u64 {
    let steps = (cores.max(0.0) * 100.0 / CPU_STEP_CENTI as f64 - 1e-9).ceil();
    steps.max(0.0) as u64 * CPU_STEP_CENTI
}

/// Cores rounded to the nearest 0.05 step (halves up), in hundredths: a reservation is what the
/// service typically uses, not a bound.
pub fn cpu_centi_round(cores: f64) -> u64 {
    let steps = (cores.max(0.0) * 100.0 / CPU_STEP_CENTI as f64 + 1e-9).round();
    steps.max(0.0) as u64 * CPU_STEP_CENTI
}

/// Bytes rounded up to whole MiB.
pub fn mib_ceil(bytes: f64) -> u64 {
    (bytes.max(0.0) / MIB as f64 - 1e-9).ceil().max(0.0) as u64
}

/// The recommendation for one service, `None` when nothing was sampled.
pub fn recommend(observed: &Observed) -> Option<Recommendation> {
    let cpu_p50 = percentile(&observed.cpu, 50.0)?;
    let cpu_p95 = percentile(&observed.cpu, 95.0)?;
    let memory_p50 = percentile(&observed.memory, 50.0)?;
    let memory_p95 = percentile(&observed.memory, 95.0)?;
    let reservations = Resources {
        cpus_centi: cpu_centi_round(cpu_p50).max(CPU_RESERVATION_FLOOR_CENTI),
        memory_mib: mib_ceil(memory_p50 as f64).max(MEMORY_RESERVATION_FLOOR_MIB),
    };
    let limits = Resources {
        cpus_centi: cpu_centi_ceil(cpu_p95 * HEADROOM)
            .max(CPU_LIMIT_FLOOR_CENTI)
            .max(reservations.cpus_centi),
        memory_mib: mib_ceil(memory_p95 as f64 * HEADROOM)
            .max(MEMORY_LIMIT_FLOOR_MIB)
            .max(reservations.memory_mib),
    };
    let (min_replicas, max_replicas) = replica_range(observed.tasks, cpu_p50, cpu_p95, limits);
    let throttled = observed
        .current_cpu_limit
        .is_some_and(|limit| limit > 0.0 && cpu_p95 >= 0.9 * limit);
    Some(Recommendation {
        cpu_p50,
        cpu_p95,
        memory_p50,
        memory_p95,
        reservations,
        limits,
        min_replicas,
        max_replicas,
        throttled,
    })
}

/// See the module doc: the replicas needed to carry the median load at 70 % of the limit, and
/// room for twice the peak, at least one more than the minimum.
pub fn replica_range(tasks: u64, cpu_p50: f64, cpu_p95: f64, limits: Resources) -> (u64, u64) {
    let target = REPLICA_TARGET_SHARE * limits.cpus_centi as f64 / 100.0;
    let n = tasks.max(1) as f64;
    let needed = |load: f64| (load / target - 1e-9).ceil().max(0.0) as u64;
    let min = needed(n * cpu_p50).max(1);
    let max = needed(PEAK_FACTOR * n * cpu_p95).max(min + 1);
    (min, max)
}

/// `0.65` from 65 hundredths: the form compose files use for `cpus`.
pub fn cpus_text(centi: u64) -> String {
    format!("{}.{:02}", centi / 100, centi % 100)
}

/// Bytes as MiB with one decimal, for people.
fn mib_text(bytes: u64) -> String {
    format!("{:.1}Mi", bytes as f64 / MIB as f64)
}

/// One result per service, in the order given.
pub type Report<'a> = [(Observed, Option<Recommendation>)];

/// The human table; `no_samples` says why a service has no recommendation.
pub fn table(report: &Report<'_>, no_samples: &str) -> String {
    let mut rows = vec![[
        "SERVICE".to_string(),
        "TASKS".into(),
        "SAMPLES".into(),
        "CPU p50/p95".into(),
        "MEM p50/p95".into(),
        "RESERVE cpus/mem".into(),
        "LIMIT cpus/mem".into(),
        "REPLICAS".into(),
    ]];
    for (observed, rec) in report {
        let mut row = [
            observed.service.clone(),
            observed.tasks.to_string(),
            observed.cpu.len().to_string(),
            "-".into(),
            "-".into(),
            "-".into(),
            "-".into(),
            no_samples.into(),
        ];
        if let Some(r) = rec {
            row[3] = format!("{:.2}/{:.2}", r.cpu_p50, r.cpu_p95);
            row[4] = format!("{}/{}", mib_text(r.memory_p50), mib_text(r.memory_p95));
            row[5] = format!(
                "{}/{}M",
                cpus_text(r.reservations.cpus_centi),
                r.reservations.memory_mib
            );
            row[6] = format!(
                "{}/{}M",
                cpus_text(r.limits.cpus_centi),
                r.limits.memory_mib
            );
            row[7] = format!("{}-{}", r.min_replicas, r.max_replicas);
            if r.throttled {
                row[7].push_str(" (at its CPU limit: demand may be higher)");
            }
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..8)
        .map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    for row in rows {
        let cells: Vec<String> = row
            .iter()
            .zip(&widths)
            .map(|(cell, w)| format!("{cell:<w$}"))
            .collect();
        let _ = writeln!(out, "{}", cells.join("  ").trim_end());
    }
    out
}

/// Machine-readable: one object per service; CPU in cores, memory in bytes.
/// The JSON document; `source` is where the samples came from (`docker`, `prometheus`).
pub fn json(report: &Report<'_>, window_seconds: u64, source: &str) -> Value {
    let services: Vec<Value> = report
        .iter()
        .map(|(o, rec)| {
            let mut entry = json!({
                "service": o.service,
                "tasks": o.tasks,
                "samples": o.cpu.len(),
            });
            if let Some(r) = rec {
                entry["cpu"] = json!({"p50": round3(r.cpu_p50), "p95": round3(r.cpu_p95)});
                entry["memory_bytes"] = json!({"p50": r.memory_p50, "p95": r.memory_p95});
                entry["reservations"] = resources_json(r.reservations);
                entry["limits"] = resources_json(r.limits);
                entry["replicas"] = json!({"min": r.min_replicas, "max": r.max_replicas});
                entry["throttled"] = json!(r.throttled);
            }
            entry
        })
        .collect();
    json!({"window_seconds": window_seconds, "source": source, "services": services})
}

fn resources_json(r: Resources) -> Value {
    json!({"cpus": r.cpus_centi as f64 / 100.0, "memory_bytes": r.memory_mib * MIB})
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

/// A compose fragment to paste into the stack file: `deploy.resources` per service and the
/// replica range as swarmpilot's own bound labels.
pub fn compose(report: &Report<'_>, no_samples: &str) -> String {
    let mut out = String::from("services:\n");
    for (o, rec) in report {
        let Some(r) = rec else {
            let _ = writeln!(out, "  # {}: {no_samples}", o.service);
            continue;
        };
        let stack = o
            .stack
            .as_deref()
            .map(|s| format!(" (stack {s})"))
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {}:  # {}{stack}: {} task(s), {} samples",
            o.compose_name,
            o.service,
            o.tasks,
            o.cpu.len()
        );
        let _ = write!(
            out,
            "    deploy:\n      resources:\n        limits: {{cpus: '{}', memory: {}M}}\n        \
             reservations: {{cpus: '{}', memory: {}M}}\n      labels:\n        \
             swarmpilot.min_replicas: \"{}\"\n        swarmpilot.max_replicas: \"{}\"\n",
            cpus_text(r.limits.cpus_centi),
            r.limits.memory_mib,
            cpus_text(r.reservations.cpus_centi),
            r.reservations.memory_mib,
            r.min_replicas,
            r.max_replicas
        );
    }
    out
}

#[cfg(test)]
mod tests;
