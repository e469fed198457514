//! Sampling containers through the engine's stats stream: one streaming request per container
//! for the whole window (the engine sends a sample about every second, each carrying the
//! previous CPU reading, so every sample but the first yields a CPU rate), and the conversion of
//! one sample to cores and bytes the way the `docker stats` CLI computes them.

use bollard::models::{ContainerCpuStats, ContainerStatsResponse};
use bollard::query_parameters::StatsOptions;
use bollard::Docker;
use futures_util::StreamExt;
use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

/// One container's usage at one instant.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Sample {
    /// Cores in use since the previous reading; `None` on the first sample of a stream.
    pub cpu_cores: Option<f64>,
    /// Usage minus the inactive file cache, which the kernel drops under pressure.
    pub memory_bytes: Option<u64>,
}

/// Cores from the CPU counters of a sample and its predecessor: the container's CPU time over
/// the host's, times the host's CPUs (the `docker stats` formula, without its × 100).
pub fn cpu_cores(now: &ContainerCpuStats, before: &ContainerCpuStats) -> Option<f64> {
    let total = |c: &ContainerCpuStats| c.cpu_usage.as_ref().and_then(|u| u.total_usage);
    let (now_total, before_total) = (total(now)?, total(before)?);
    let (now_system, before_system) = (now.system_cpu_usage?, before.system_cpu_usage?);
    if before_system == 0 || now_system <= before_system {
        return None;
    }
    let cpus = now
        .online_cpus
        .filter(|n| *n > 0)
        .map(f64::from)
        .or_else(|| {
            now.cpu_usage
                .as_ref()
                .and_then(|u| u.percpu_usage.as_ref())
                .map(|p| p.len() as f64)
                .filter(|n| *n > 0.0)
        })?;
    let used = now_total.saturating_sub(before_total) as f64;
    Some(used / (now_system - before_system) as f64 * cpus)
}

/// The memory figure `docker stats` shows: usage minus `total_inactive_file` (cgroup v1) or
/// `inactive_file` (v2) when that is smaller than the usage.
pub fn memory_bytes(stats: &ContainerStatsResponse) -> Option<u64> {
    let memory = stats.memory_stats.as_ref()?;
    let usage = memory.usage?;
    let inactive = memory.stats.as_ref().and_then(|s| {
        s.get("total_inactive_file")
            .or_else(|| s.get("inactive_file"))
            .copied()
    });
    Some(match inactive {
        Some(cache) if cache < usage => usage - cache,
        _ => usage,
    })
}

/// One stats message as a [`Sample`].
pub fn sample(stats: &ContainerStatsResponse) -> Sample {
    let cpu = match (&stats.cpu_stats, &stats.precpu_stats) {
        (Some(now), Some(before)) => cpu_cores(now, before),
        _ => None,
    };
    Sample {
        cpu_cores: cpu,
        memory_bytes: memory_bytes(stats),
    }
}

/// What one container's stream gave over the window.
#[derive(Debug, Default)]
pub struct ContainerSamples {
    pub samples: Vec<Sample>,
    /// The engine does not know the container: it runs on another node.
    pub not_local: bool,
}

/// Stream stats of `container` until `until`.
pub async fn sample_container(
    docker: &Docker,
    container: &str,
    until: Instant,
) -> ContainerSamples {
    let options = StatsOptions {
        stream: true,
        one_shot: false,
    };
    let mut stream = docker.stats(container, Some(options));
    let mut out = ContainerSamples::default();
    let deadline = tokio::time::Instant::from_std(until);
    loop {
        match tokio::time::timeout_at(deadline, stream.next()).await {
            Err(_) | Ok(None) => break,
            Ok(Some(Ok(stats))) => out.samples.push(sample(&stats)),
            Ok(Some(Err(e))) => {
                out.not_local = is_not_found(&e);
                if !out.not_local {
                    tracing::warn!(container, error = %e, "stats stream ended early");
                }
                break;
            }
        }
    }
    out
}

fn is_not_found(e: &bollard::errors::Error) -> bool {
    matches!(
        e,
        bollard::errors::Error::DockerResponseServerError {
            status_code: 404,
            ..
        }
    )
}

/// A countdown on stderr while sampling, only when stderr is a terminal (a pipe or a log file
/// gets nothing).
pub async fn show_progress(what: String, window: Duration) {
    let mut stderr = std::io::stderr();
    if !stderr.is_terminal() {
        return;
    }
    let start = Instant::now();
    while start.elapsed() < window {
        let left = window.saturating_sub(start.elapsed()).as_secs();
        let _ = write!(stderr, "\rsampling {what}: {left}s left   ");
        let _ = stderr.flush();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let _ = write!(stderr, "\r{:60}\r", "");
}

#[cfg(test)]
mod tests {
    use super::*;
    use bollard::models::{ContainerCpuUsage, ContainerMemoryStats};
    use rstest::rstest;
    use std::collections::HashMap;

    fn cpu(total: u64, system: u64, online: Option<u32>) -> ContainerCpuStats {
        ContainerCpuStats {
            cpu_usage: Some(ContainerCpuUsage {
                total_usage: Some(total),
                percpu_usage: Some(vec![0, 0]),
                ..Default::default()
            }),
            system_cpu_usage: Some(system),
            online_cpus: online,
            ..Default::default()
        }
    }

    #[rstest]
    // Half a core on a 2-CPU host: 0.5 s of CPU while the host counted 2 s (2 CPUs × 1 s).
    #[case::half_a_core(
        cpu(1_500_000_000, 12_000_000_000, Some(2)),
        cpu(1_000_000_000, 10_000_000_000, Some(2)),
        Some(0.5)
    )]
    #[case::percpu_when_online_missing(
        cpu(2_000_000_000, 12_000_000_000, None),
        cpu(1_000_000_000, 10_000_000_000, None),
        Some(1.0)
    )]
    #[case::first_sample_has_no_previous(cpu(5, 10, Some(2)), cpu(0, 0, Some(2)), None)]
    #[case::idle(
        cpu(7, 12_000_000_000, Some(2)),
        cpu(7, 10_000_000_000, Some(2)),
        Some(0.0)
    )]
    fn cpu_in_cores(
        #[case] now: ContainerCpuStats,
        #[case] before: ContainerCpuStats,
        #[case] expected: Option<f64>,
    ) {
        assert_eq!(cpu_cores(&now, &before), expected);
    }

    fn memory(usage: u64, stats: &[(&str, u64)]) -> ContainerStatsResponse {
        ContainerStatsResponse {
            memory_stats: Some(ContainerMemoryStats {
                usage: Some(usage),
                stats: Some(
                    stats
                        .iter()
                        .map(|(k, v)| (k.to_string(), *v))
                        .collect::<HashMap<_, _>>(),
                ),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[rstest]
    #[case::cgroup_v1(memory(100, &[("total_inactive_file", 30), ("inactive_file", 1)]), Some(70))]
    #[case::cgroup_v2(memory(100, &[("inactive_file", 40)]), Some(60))]
    #[case::cache_larger_than_usage(memory(100, &[("inactive_file", 400)]), Some(100))]
    #[case::no_breakdown(memory(100, &[]), Some(100))]
    #[case::no_memory_stats(ContainerStatsResponse::default(), None)]
    fn memory_without_page_cache(
        #[case] stats: ContainerStatsResponse,
        #[case] expected: Option<u64>,
    ) {
        assert_eq!(memory_bytes(&stats), expected);
    }
}
