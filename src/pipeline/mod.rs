//! Match → gate → journal → act for one notification, in that order and nothing more. The HTTP
//! receiver drives it; each (alert, rule) pair ends as exactly one [`DecisionRecord`].
//!
//! `admit` asks the gate (duplicates, cooldown and anti-flap, budgets, the decision on a fresh
//! read) and journals the intent (fsynced) before the answer; `worker` hands each admitted action
//! to act's worker, one at a time per service, and records its outcome; `recover` resumes what a
//! crash left unfinished; `shutdown` drains what is in flight. This file orders the alerts of a
//! notification and waits for outcomes when asked to.

mod admit;
mod cluster;
mod context;
mod locks;
mod recover;
mod shutdown;
mod worker;

pub use crate::act::worker::Finished;

pub use cluster::{ClusterMode, Unavailable};
pub use recover::Recovery;

use crate::act::view::SwarmView;
use crate::act::{DockerError, Swarm};
use crate::clock::{Clock, SystemClock};
use crate::decision::{Decision, DecisionRecord};
use crate::gate::{ActionKey, Budgets, DeliveryKey, Gate, LocalMemory, Window};
use crate::journal::{Entry, Intent, Journal, JournalError, Outcome};
use crate::model::Change;
use crate::parse::{Alert, Notification};
use crate::prometheus::Prometheus;
use crate::record::actions::{ActionLog, ActionView};
use crate::record::grafana::Annotator;
use crate::record::metrics::Metrics;
use crate::record::record_decision;
use crate::rules::{ActionKind, Rule, RuleSet};
use futures_util::stream::{FuturesOrdered, StreamExt};
use locks::ServiceLocks;
use moka::sync::Cache;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};
use tokio::sync::oneshot;

/// How long `?wait=true` holds an answer for outcomes.
const WAIT_LIMIT: Duration = Duration::from_secs(60);

/// How many alerts of one notification are decided at once. Alerts of one service queue on its
/// admission lock anyway; this bounds the memory of a notification with thousands of alerts.
const ALERTS_IN_FLIGHT: usize = 32;

/// How long an admission lookup that found no service is believed.
const ABSENT_FOR: Duration = Duration::from_secs(1);

/// Whether decisions may touch the swarm.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Act,
    DryRun,
}

/// How the pipeline behaves; from `[docker]` and `[limits]`.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub opt_in_label: String,
    /// How long an admitted action keeps retrying while Docker is unreachable.
    pub retry_for: Duration,
    /// How long admission waits for a read of the service before queuing without one.
    pub admission_read_timeout: Duration,
    pub actions_per_minute: u32,
    pub actions_per_service_per_hour: u32,
    /// How long a backup_now job is followed to completion.
    pub backup_timeout: Duration,
    /// `[cluster] enabled`: claims on the services, answers once the claim landed.
    pub cluster: Option<ClusterMode>,
    /// `[prometheus] url`, where `query:` rules read their value; `None` when unset (the rules
    /// loader refuses such rules then).
    pub prometheus: Option<Arc<Prometheus>>,
}

/// Where decisions and outcomes are recorded.
pub struct Records {
    pub journal: Journal,
    pub metrics: Arc<Metrics>,
    pub annotator: Option<Annotator>,
}

#[cfg(any(test, feature = "test-support"))]
impl Records {
    /// A journal with fresh metrics and no Grafana (tests and benchmarks; `serve` records to all).
    pub fn journal_only(journal: Journal) -> Self {
        Self {
            journal,
            metrics: Arc::new(Metrics::new()),
            annotator: None,
        }
    }
}

/// The long-lived state behind every request.
pub struct Pipeline {
    rules: RwLock<Arc<RuleSet>>,
    swarm: Arc<dyn Swarm>,
    clock: Arc<dyn Clock>,
    gate: Gate,
    journal: Journal,
    metrics: Arc<Metrics>,
    annotator: Option<Annotator>,
    actions: ActionLog,
    /// Admission is serialized per service (short: a read and an fsync) ...
    admit_locks: ServiceLocks,
    /// ... and so is execution (long: it may wait for Docker), separately, so an outage never
    /// stalls the webhook.
    exec_locks: ServiceLocks,
    /// Names Docker just said do not exist. A payload naming one absent service in a thousand
    /// alerts (or a thousand payloads) costs one lookup per second, not one each: alerts about
    /// absent services are refused anyway, so a second of staleness never delays an action on a
    /// service that exists.
    absent: Cache<String, ()>,
    settings: PipelineSettings,
    ids: IdSource,
    execution: shutdown::Execution,
    /// What the operator pages read (status page, readiness, `docker_up`): shared, ≤ 1 s old.
    view: SwarmView,
    cluster: Option<cluster::Cluster>,
}

impl Pipeline {
    pub fn new(
        rules: RuleSet,
        swarm: Arc<dyn Swarm>,
        clock: Arc<dyn Clock>,
        records: Records,
        settings: PipelineSettings,
    ) -> Self {
        Self {
            rules: RwLock::new(Arc::new(rules)),
            view: SwarmView::new(
                swarm.clone(),
                Arc::new(SystemClock),
                settings.opt_in_label.clone(),
            ),
            swarm,
            gate: Gate::new(
                Arc::new(LocalMemory::new(clock.clone())),
                Budgets::new(
                    settings.actions_per_minute,
                    settings.actions_per_service_per_hour,
                    clock.clone(),
                ),
                settings.opt_in_label.clone(),
            ),
            clock,
            journal: records.journal,
            metrics: records.metrics,
            annotator: records.annotator,
            actions: ActionLog::default(),
            admit_locks: ServiceLocks::default(),
            exec_locks: ServiceLocks::default(),
            absent: Cache::builder()
                .max_capacity(10_000)
                .time_to_live(ABSENT_FOR)
                .build(),
            cluster: settings.cluster.as_ref().map(cluster::Cluster::new),
            settings,
            ids: IdSource::new(),
            execution: shutdown::Execution::default(),
        }
    }

    pub fn rules(&self) -> Arc<RuleSet> {
        self.rules.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Swap in a new rule set atomically.
    pub fn replace_rules(&self, rules: RuleSet) {
        *self.rules.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(rules);
    }

    /// The injected clock, for what must keep the pipeline's time (rate limits in tests).
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    pub fn swarm(&self) -> &Arc<dyn Swarm> {
        &self.swarm
    }

    /// The swarm as the operator pages see it (see [`SwarmView`]).
    pub fn swarm_view(&self) -> &SwarmView {
        &self.view
    }

    /// The pipeline's (injected) clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub fn metrics(&self) -> &Arc<Metrics> {
        &self.metrics
    }

    /// Append to the journal (fsynced), timing it and counting failures.
    pub(crate) async fn append(&self, entries: &[Entry]) -> Result<(), JournalError> {
        let started = std::time::Instant::now();
        let result = self.journal.append(entries).await;
        self.metrics.journal_appended(started.elapsed());
        if result.is_err() {
            self.metrics.journal_append_failed();
        }
        result
    }

    /// Keep `swarmpilot_docker_up` current from every engine call's result.
    pub fn note_docker<T>(&self, result: &Result<T, DockerError>) {
        let up = !matches!(result, Err(DockerError::Unreachable(_)));
        self.metrics.docker_up(up);
    }

    /// The newest actions from the journal.
    pub fn recent_actions(&self, limit: usize) -> Vec<ActionView> {
        self.actions.recent(limit)
    }

    /// Active cooldowns: time left, or held while their action has not finished.
    pub fn cooldowns(&self) -> Vec<(ActionKey, Window)> {
        self.gate.memory().windows()
    }

    /// Decide every alert of a notification; admitted actions are journaled before this returns
    /// (in cluster mode: have landed). With `wait`, also wait for their outcomes. Alerts for
    /// different services proceed concurrently. Fails when the journal cannot be written, or
    /// in cluster mode when an action cannot be claimed now.
    pub async fn handle(
        self: &Arc<Self>,
        notification: &Notification,
        mode: Mode,
        wait: bool,
    ) -> Result<Vec<DecisionRecord>, Unavailable> {
        let rules = self.rules();
        self.metrics.alerts_received(&notification.alerts);
        // Most alerts of a repeat notification are decided from memory alone, without a future;
        // the rest are decided concurrently, bounded: every alert in flight holds its own
        // future, and a group of thousands of alerts would otherwise hold thousands at once.
        // (A hand-written loop: a stream of borrowing closures trips rustc's higher-ranked
        // lifetime check under tokio::spawn.)
        let mut per_alert: Vec<Option<Result<Vec<Admitted>, Unavailable>>> = notification
            .alerts
            .iter()
            .map(|alert| self.decide_now(&rules, alert))
            .collect();
        let waiting: Vec<usize> = (0..per_alert.len())
            .filter(|&index| per_alert[index].is_none())
            .collect();
        let mut waiting = waiting.into_iter();
        let rules = &*rules;
        let mut in_flight = FuturesOrdered::new();
        loop {
            while in_flight.len() < ALERTS_IN_FLIGHT {
                let Some(index) = waiting.next() else { break };
                let alert = &notification.alerts[index];
                in_flight
                    .push_back(async move { (index, self.handle_alert(rules, alert, mode).await) });
            }
            match in_flight.next().await {
                Some((index, result)) => per_alert[index] = Some(result),
                None => break,
            }
        }
        let mut records = Vec::new();
        let mut pending = Vec::new();
        for result in per_alert.into_iter().flatten() {
            for (record, waiting) in result? {
                if let Some(waiting) = waiting {
                    pending.push((records.len(), waiting));
                }
                records.push(record);
            }
        }
        if let (Some(cluster), false) = (&self.cluster, pending.is_empty()) {
            self.await_claims(cluster, &mut records, &mut pending)
                .await?;
        }
        self.metrics.decisions(&records);
        if wait {
            // Bounded: during a Docker outage an action may wait for up to docker.retry_for; the
            // answer then stays `queued` rather than holding the connection that long.
            let deadline = tokio::time::Instant::now() + WAIT_LIMIT;
            for (index, waiting) in pending.into_iter().filter(|(_, w)| !w.done) {
                if let Ok(Ok(finished)) = tokio::time::timeout_at(deadline, waiting.finished).await
                {
                    apply_finished(&mut records[index], finished);
                }
            }
        }
        Ok(records)
    }

    /// An alert whose every matching rule is refused before admission (no match, cooldown,
    /// duplicate, ...), decided now; `None` when one needs admission.
    fn decide_now(
        &self,
        rules: &RuleSet,
        alert: &Alert,
    ) -> Option<Result<Vec<Admitted>, Unavailable>> {
        let mut out = Vec::new();
        for rule in rules.matching(alert) {
            match self.before_admission(alert, rule) {
                (record, admit::Early::Refused(not)) => match admit::conclude(record, Err(not)) {
                    Ok(decided) => out.push(decided),
                    Err(unavailable) => return Some(Err(unavailable)),
                },
                (_, admit::Early::Admissible { .. }) => return None,
            }
        }
        if out.is_empty() {
            out.push((no_match(alert), None));
        }
        for (record, _) in &out {
            record_decision(record);
        }
        Some(Ok(out))
    }

    async fn handle_alert(
        self: &Arc<Self>,
        rules: &RuleSet,
        alert: &Alert,
        mode: Mode,
    ) -> Result<Vec<Admitted>, Unavailable> {
        let matched: Vec<&Rule> = rules.matching(alert).collect();
        if matched.is_empty() {
            let record = no_match(alert);
            record_decision(&record);
            return Ok(vec![(record, None)]);
        }
        let mut out = Vec::with_capacity(matched.len());
        for rule in matched {
            let (record, finished) = self.handle_rule(alert, rule, mode).await?;
            record_decision(&record);
            out.push((record, finished));
        }
        Ok(out)
    }
}

type Admitted = (DecisionRecord, Option<Pending>);

/// What an answer can wait for of an admitted action.
struct Pending {
    finished: oneshot::Receiver<Finished>,
    /// Cluster mode: its update landed.
    landing: Option<oneshot::Receiver<Change>>,
    /// Why this change (target tracking), for the answer once it landed.
    why: Option<String>,
    /// The outcome was already applied to the record.
    done: bool,
}

fn apply_finished(record: &mut DecisionRecord, finished: Finished) {
    record.decision = match finished.outcome {
        Outcome::Succeeded => Decision::Executed,
        Outcome::Failed | Outcome::Expired | Outcome::TimedOut => Decision::Failed,
        Outcome::Skipped => finished.refused_as.unwrap_or(Decision::Refused),
    };
    record.reason = finished.reason;
    if let Some(change) = finished.change {
        record.change = Some(change.to_string());
    }
}

/// The delivery an intent was admitted for (restores duplicate detection after a restart).
pub(crate) fn delivery_of(intent: &Intent) -> DeliveryKey {
    DeliveryKey::new(
        &intent.rule,
        &intent.service,
        &intent.fingerprint,
        &intent.starts_at,
        &intent.status,
    )
}

fn no_match(alert: &Alert) -> DecisionRecord {
    DecisionRecord {
        rule: None,
        alert: alert.name().to_string(),
        fingerprint: alert.fingerprint.clone(),
        service: None,
        action: None,
        decision: Decision::NoMatch,
        reason: format!("no rule matches this {} alert", alert.status.as_str()),
        change: None,
        action_id: None,
    }
}

pub(crate) use crate::clock::{from_unix_ms, unix_ms};

/// Label values can be huge; answers and logs carry a bounded prefix.
fn truncate(s: &str) -> String {
    const MAX: usize = 128;
    match s.char_indices().nth(MAX) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_string(),
    }
}

/// Action ids unique across restarts: the process start in ms, then a sequence.
struct IdSource {
    boot: u64,
    seq: AtomicU64,
}

impl IdSource {
    fn new() -> Self {
        Self {
            boot: unix_ms(SystemTime::now()),
            seq: AtomicU64::new(0),
        }
    }

    fn next(&self) -> String {
        let seq = self.seq.fetch_add(1, Ordering::Relaxed) + 1;
        format!("{:x}-{seq:06}", self.boot)
    }
}

/// The (service, action) pair an intent's cooldown window is kept under.
pub(crate) fn action_key(intent: &Intent) -> (String, ActionKind) {
    (intent.service.clone(), intent.action.kind())
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_cluster;
#[cfg(test)]
mod tests_target;
