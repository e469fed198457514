//! The real swarm: the single place that builds the bollard client and speaks to the engine.

use super::endpoint::Endpoint;
use super::{DockerError, Swarm, SwarmFuture};
use crate::model::{
    Change, JobTask, ServiceMode, ServiceState, ServiceSummary, Stamp, Template, ACTION_LABEL,
};
use bollard::models::{Service, ServiceSpec};
use bollard::query_parameters::{
    ListServicesOptionsBuilder, ListTasksOptionsBuilder, UpdateServiceOptions,
};
use bollard::Docker;
use std::collections::HashMap;
use std::sync::RwLock;
use std::time::Duration;

/// The labels of a kept template (see [`Swarm::save_template`]).
const TEMPLATE_SERVICE_LABEL: &str = "swarmpilot.template.service";
const TEMPLATE_HASH_LABEL: &str = "swarmpilot.template.hash";
/// How many templates are kept per service, as rollback's own history keeps.
const TEMPLATES_KEPT: usize = 10;

/// The image a register service names: it never runs (0 replicas), so nothing pulls it.
const REGISTER_IMAGE: &str = "swarmpilot-register:never-runs";

/// Every service labelled `<opt_in_label>=true`, as the engine has it.
pub async fn opted_in_services(
    docker: &Docker,
    opt_in_label: &str,
) -> Result<Vec<Service>, DockerError> {
    let label = format!("{opt_in_label}=true");
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = ListServicesOptionsBuilder::new().filters(&filters).build();
    docker.list_services(Some(options)).await.map_err(classify)
}

/// A swarm manager reached through the Docker Engine API.
#[derive(Debug)]
pub struct DockerSwarm {
    endpoint: Endpoint,
    timeout: Duration,
    /// Built on first use and kept; an engine whose socket is missing at start is retried on the
    /// next call, so swarmpilot starts while Docker is down and reports it on `/-/ready`.
    client: RwLock<Option<Docker>>,
}

impl DockerSwarm {
    /// Prepare a client for `host` (empty: `DOCKER_HOST`, else the local socket). Only a host
    /// swarmpilot cannot understand is an error here; an absent engine is found out per call.
    pub fn connect(host: &str, timeout: Duration) -> Result<Self, DockerError> {
        Ok(Self::at(Endpoint::configured(host)?, timeout))
    }

    /// Prepare a client for an endpoint already resolved.
    pub fn at(endpoint: Endpoint, timeout: Duration) -> Self {
        let swarm = Self {
            endpoint,
            timeout,
            client: RwLock::new(None),
        };
        let _ = swarm.client();
        swarm
    }

    /// Where this client reaches the engine.
    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    fn build_client(&self) -> Result<Docker, DockerError> {
        self.endpoint
            .bollard(self.timeout)
            .map_err(|e| DockerError::Unreachable(e.to_string()))
    }

    fn client(&self) -> Result<Docker, DockerError> {
        if let Some(docker) = self
            .client
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            return Ok(docker.clone());
        }
        let docker = self.build_client()?;
        *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(docker.clone());
        Ok(docker)
    }

    /// The bollard client itself, for the companion commands (`recommend`, `secret`, `deploy`)
    /// that need engine calls the [`Swarm`] trait does not carry. Same host, timeout and
    /// negotiated API version as everything else.
    pub fn docker(&self) -> Result<Docker, DockerError> {
        self.client()
    }

    /// Agree on the API version with the engine; an engine that is down keeps the default.
    pub async fn negotiate(self) -> Self {
        let Ok(docker) = self.client() else {
            return self;
        };
        match docker.negotiate_version().await {
            Ok(docker) => {
                *self.client.write().unwrap_or_else(|e| e.into_inner()) = Some(docker);
            }
            Err(e) => tracing::warn!(error = %e, "could not negotiate the Docker API version"),
        }
        self
    }

    async fn list_named(&self, name: &str) -> Result<Option<ServiceState>, DockerError> {
        // The engine's name filter matches prefixes too; keep only the exact name.
        let filters = HashMap::from([("name", vec![name])]);
        let options = ListServicesOptionsBuilder::new().filters(&filters).build();
        let services = self
            .client()?
            .list_services(Some(options))
            .await
            .map_err(classify)?;
        Ok(services
            .into_iter()
            .filter(|s| service_name(s) == Some(name))
            .find_map(to_state))
    }

    async fn update(
        &self,
        service: &ServiceState,
        change: Change,
        with: &Stamp,
    ) -> Result<(), DockerError> {
        let mut spec = service.spec.clone();
        stamp(&mut spec, with);
        match change {
            Change::Replicas { to, .. } => set_replicas(&mut spec, to)?,
            Change::ForceUpdate { to, .. } => {
                let template = spec.task_template.get_or_insert_with(Default::default);
                template.force_update = Some(to);
            }
            Change::Job { to, .. } => {
                let template = spec.task_template.get_or_insert_with(Default::default);
                template.force_update = Some(to);
                if service.mode != ServiceMode::ReplicatedJob {
                    set_replicas(&mut spec, 1)?;
                }
            }
            Change::Template { .. } => {
                return Err(DockerError::Unrepresentable(
                    "a template change without the template (use restore_template)".into(),
                ))
            }
        }
        self.send(service, spec).await
    }

    async fn replace_template(
        &self,
        service: &ServiceState,
        template: &Template,
        with: &Stamp,
    ) -> Result<(), DockerError> {
        let mut spec = service.spec.clone();
        stamp(&mut spec, with);
        let task = template
            .to_task_spec(service.force_update)
            .map_err(DockerError::Unrepresentable)?;
        spec.task_template = Some(task);
        self.send(service, spec).await
    }

    async fn previous(&self, id: &str) -> Result<Option<Template>, DockerError> {
        let raw =
            super::raw::get_json(&self.endpoint, &format!("/services/{id}"), self.timeout).await?;
        Ok(Template::from_raw(&raw["PreviousSpec"]["TaskTemplate"]))
    }

    async fn previous_action_label(&self, id: &str) -> Result<Option<String>, DockerError> {
        let raw =
            super::raw::get_json(&self.endpoint, &format!("/services/{id}"), self.timeout).await?;
        Ok(raw["PreviousSpec"]["Labels"][ACTION_LABEL]
            .as_str()
            .map(String::from))
    }

    async fn tasks_of_run(&self, id: &str, force_update: u64) -> Result<Vec<JobTask>, DockerError> {
        let filters = HashMap::from([("service", vec![id])]);
        let options = ListTasksOptionsBuilder::new().filters(&filters).build();
        let tasks = self
            .client()?
            .list_tasks(Some(options))
            .await
            .map_err(classify)?;
        Ok(tasks
            .into_iter()
            .filter(|t| t.spec.as_ref().and_then(|s| s.force_update).unwrap_or(0) == force_update)
            .map(|t| {
                let status = t.status.unwrap_or_default();
                JobTask {
                    state: status.state.map(|s| s.to_string()).unwrap_or_default(),
                    error: status.err.filter(|e| !e.is_empty()),
                    exit_code: status.container_status.and_then(|c| c.exit_code),
                }
            })
            .collect())
    }

    async fn summaries(&self, opt_in_label: &str) -> Result<Vec<ServiceSummary>, DockerError> {
        let docker = self.client()?;
        let services = opted_in_services(&docker, opt_in_label).await?;
        let filters = HashMap::from([("desired-state", vec!["running"])]);
        let options = ListTasksOptionsBuilder::new().filters(&filters).build();
        let tasks = docker.list_tasks(Some(options)).await.map_err(classify)?;
        let mut running: HashMap<String, u64> = HashMap::new();
        for task in tasks {
            let is_running = task
                .status
                .and_then(|s| s.state)
                .is_some_and(|s| s.to_string() == "running");
            if let (true, Some(id)) = (is_running, task.service_id) {
                *running.entry(id).or_default() += 1;
            }
        }
        let mut out: Vec<ServiceSummary> = services
            .into_iter()
            .filter_map(to_state)
            .map(|s| ServiceSummary {
                running: running.get(&s.id).copied().unwrap_or(0),
                image: s.template.image().to_string(),
                desired: match s.mode {
                    ServiceMode::Replicated { replicas } => Some(replicas),
                    _ => None,
                },
                update_state: s.update_state,
                name: s.name,
            })
            .collect();
        out.sort_by(|a, b| a.name.cmp(&b.name));
        Ok(out)
    }

    /// A Swarm config per (service, template), named by both so a second save of the same one
    /// is a name conflict (409), which is success. Older ones beyond the history are removed.
    async fn keep_template(&self, service: &str, template: &Template) -> Result<(), DockerError> {
        use base64::Engine as _;
        let json = serde_json::to_vec(template)
            .map_err(|e| DockerError::Unrepresentable(e.to_string()))?;
        let hash = format!("{:016x}", template.hash());
        let spec = bollard::models::ConfigSpec {
            name: Some(format!(
                "swarmpilot-template-{:016x}-{hash}",
                name_digest(service)
            )),
            labels: Some(HashMap::from([
                (TEMPLATE_SERVICE_LABEL.to_string(), service.to_string()),
                (TEMPLATE_HASH_LABEL.to_string(), hash),
            ])),
            data: Some(base64::engine::general_purpose::STANDARD.encode(json)),
            ..Default::default()
        };
        match self.client()?.create_config(spec).await.map_err(classify) {
            Err(DockerError::Api { status: 409, .. }) => return Ok(()),
            other => other.map(drop)?,
        }
        let kept = self.kept_templates(service).await?;
        for (id, _) in kept.iter().take(kept.len().saturating_sub(TEMPLATES_KEPT)) {
            // Another replica may be pruning the same one.
            match self.client()?.delete_config(id).await.map_err(classify) {
                Ok(()) | Err(DockerError::Api { status: 404, .. }) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The kept templates of `service` with their config ids, oldest first (by Raft index).
    async fn kept_templates(&self, service: &str) -> Result<Vec<(String, Template)>, DockerError> {
        use base64::Engine as _;
        let label = format!("{TEMPLATE_SERVICE_LABEL}={service}");
        let filters = HashMap::from([("label", vec![label.as_str()])]);
        let options = bollard::query_parameters::ListConfigsOptionsBuilder::new()
            .filters(&filters)
            .build();
        let configs = self
            .client()?
            .list_configs(Some(options))
            .await
            .map_err(classify)?;
        let mut kept: Vec<(u64, String, Template)> = configs
            .into_iter()
            .filter_map(|config| {
                let index = config.version.and_then(|v| v.index).unwrap_or(0);
                let data = config.spec?.data?;
                let json = base64::engine::general_purpose::STANDARD
                    .decode(data)
                    .ok()?;
                let template: Template = serde_json::from_slice(&json).ok()?;
                Some((index, config.id?, template))
            })
            .collect();
        kept.sort_by_key(|(index, _, _)| *index);
        Ok(kept.into_iter().map(|(_, id, t)| (id, t)).collect())
    }

    /// A replicated service at 0 replicas: it never schedules a task, so its image is never
    /// pulled and needs to exist nowhere; only its labels matter.
    async fn create_empty(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<(), DockerError> {
        let spec = ServiceSpec {
            name: Some(name.to_string()),
            labels: Some(labels.iter().cloned().collect()),
            task_template: Some(bollard::models::TaskSpec {
                container_spec: Some(bollard::models::TaskSpecContainerSpec {
                    image: Some(REGISTER_IMAGE.to_string()),
                    ..Default::default()
                }),
                ..Default::default()
            }),
            mode: Some(bollard::models::ServiceSpecMode {
                replicated: Some(bollard::models::ServiceSpecModeReplicated { replicas: Some(0) }),
                ..Default::default()
            }),
            ..Default::default()
        };
        self.client()?
            .create_service(spec, None)
            .await
            .map_err(classify)?;
        Ok(())
    }

    async fn send(&self, service: &ServiceState, spec: ServiceSpec) -> Result<(), DockerError> {
        let options = UpdateServiceOptions {
            version: i32::try_from(service.version).unwrap_or(i32::MAX),
            ..Default::default()
        };
        let response = self
            .client()?
            .update_service(&service.id, spec, options, None)
            .await
            .map_err(classify)?;
        for warning in response.warnings.unwrap_or_default() {
            tracing::warn!(service = %service.name, %warning, "Docker warned about the update");
        }
        Ok(())
    }
}

impl Swarm for DockerSwarm {
    fn find_service<'a>(&'a self, name: &'a str) -> SwarmFuture<'a, Option<ServiceState>> {
        Box::pin(self.list_named(name))
    }

    fn apply<'a>(
        &'a self,
        service: &'a ServiceState,
        change: Change,
        stamp: &'a Stamp,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(self.update(service, change, stamp))
    }

    fn restore_template<'a>(
        &'a self,
        service: &'a ServiceState,
        template: &'a Template,
        stamp: &'a Stamp,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(self.replace_template(service, template, stamp))
    }

    fn set_labels<'a>(
        &'a self,
        service: &'a ServiceState,
        labels: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()> {
        Box::pin(async move {
            let mut spec = service.spec.clone();
            let on_spec = spec.labels.get_or_insert_with(Default::default);
            on_spec.extend(labels.iter().cloned());
            self.send(service, spec).await
        })
    }

    fn create_register<'a>(
        &'a self,
        name: &'a str,
        labels: &'a [(String, String)],
    ) -> SwarmFuture<'a, ()> {
        Box::pin(self.create_empty(name, labels))
    }

    fn previous_action<'a>(&'a self, service_id: &'a str) -> SwarmFuture<'a, Option<String>> {
        Box::pin(self.previous_action_label(service_id))
    }

    fn save_template<'a>(
        &'a self,
        service: &'a str,
        template: &'a Template,
    ) -> SwarmFuture<'a, ()> {
        Box::pin(self.keep_template(service, template))
    }

    fn saved_templates<'a>(&'a self, service: &'a str) -> SwarmFuture<'a, Vec<Template>> {
        Box::pin(async move {
            let kept = self.kept_templates(service).await?;
            Ok(kept.into_iter().map(|(_, template)| template).collect())
        })
    }

    fn previous_template<'a>(&'a self, service_id: &'a str) -> SwarmFuture<'a, Option<Template>> {
        Box::pin(self.previous(service_id))
    }

    fn job_tasks<'a>(
        &'a self,
        service_id: &'a str,
        force_update: u64,
    ) -> SwarmFuture<'a, Vec<JobTask>> {
        Box::pin(self.tasks_of_run(service_id, force_update))
    }

    fn managed_services<'a>(
        &'a self,
        opt_in_label: &'a str,
    ) -> SwarmFuture<'a, Vec<ServiceSummary>> {
        Box::pin(self.summaries(opt_in_label))
    }

    fn ping(&self) -> SwarmFuture<'_, ()> {
        Box::pin(async move { self.client()?.ping().await.map(drop).map_err(classify) })
    }
}

/// A digest of a service name for config names, which are bounded (64 characters) while
/// service names reach 63: FNV-1a, fixed by its definition like every digest written to Swarm.
fn name_digest(service: &str) -> u64 {
    use std::hash::Hasher;
    let mut hasher = fnv::FnvHasher::default();
    hasher.write(service.as_bytes());
    hasher.finish()
}

/// The action's id and the claims on the service, in the very update that acts (see
/// [`ACTION_LABEL`]).
fn stamp(spec: &mut ServiceSpec, with: &Stamp) {
    let labels = spec.labels.get_or_insert_with(Default::default);
    labels.insert(ACTION_LABEL.to_string(), with.action_id.clone());
    labels.extend(with.labels.iter().cloned());
}

/// Swarm keeps replicas as an `i64` (bollard's model): a larger count is refused, not cast to a
/// negative number.
fn set_replicas(spec: &mut ServiceSpec, replicas: u64) -> Result<(), DockerError> {
    let count = i64::try_from(replicas)
        .map_err(|_| DockerError::Unrepresentable(format!("{replicas} replicas")))?;
    let mode = spec.mode.get_or_insert_with(Default::default);
    let replicated = mode.replicated.get_or_insert_with(Default::default);
    replicated.replicas = Some(count);
    Ok(())
}

fn service_name(service: &Service) -> Option<&str> {
    service.spec.as_ref()?.name.as_deref()
}

fn to_state(service: Service) -> Option<ServiceState> {
    let spec = service.spec?;
    let mode = match &spec.mode {
        Some(m) if m.global.is_some() => ServiceMode::Global,
        Some(m) if m.replicated_job.is_some() => ServiceMode::ReplicatedJob,
        Some(m) if m.global_job.is_some() => ServiceMode::GlobalJob,
        Some(m) => ServiceMode::Replicated {
            replicas: m
                .replicated
                .as_ref()
                .and_then(|r| r.replicas)
                .unwrap_or(1)
                .max(0) as u64,
        },
        None => ServiceMode::Replicated { replicas: 1 },
    };
    Some(ServiceState {
        id: service.id?,
        name: spec.name.clone()?,
        version: service.version.and_then(|v| v.index).unwrap_or(0),
        labels: spec.labels.clone().unwrap_or_default(),
        mode,
        update_state: service
            .update_status
            .and_then(|s| s.state)
            .map(|s| s.to_string())
            .filter(|s| !s.is_empty()),
        force_update: spec
            .task_template
            .as_ref()
            .and_then(|t| t.force_update)
            .unwrap_or(0),
        template: Template::from_task_spec(&spec.task_template.clone().unwrap_or_default()),
        spec,
    })
}

/// Map a bollard error onto swarmpilot's [`DockerError`] (shared with the companion commands).
pub fn classify(e: bollard::errors::Error) -> DockerError {
    use bollard::errors::Error as E;
    match e {
        E::DockerResponseServerError {
            status_code,
            message,
        } if message.contains("update out of sequence") => {
            tracing::debug!(status_code, "update out of sequence");
            DockerError::OutOfSequence
        }
        // A manager that is still starting (after a dockerd restart) answers 503 or an
        // "Unavailable" rpc error: transient, retried like an engine that is away.
        E::DockerResponseServerError {
            status_code,
            message,
        } if status_code == 503 || is_transient(&message) => DockerError::Unreachable(message),
        E::DockerResponseServerError {
            status_code,
            message,
        } => DockerError::Api {
            status: status_code,
            message,
        },
        E::JsonDataError { .. } | E::JsonSerdeError { .. } => DockerError::BadAnswer(e.to_string()),
        other => DockerError::Unreachable(other.to_string()),
    }
}

fn is_transient(message: &str) -> bool {
    [
        "code = Unavailable",
        "does not have a leader",
        "deadline exceeded",
        "raft: no elected cluster leader",
    ]
    .iter()
    .any(|needle| message.contains(needle))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replicas_of(spec: &ServiceSpec) -> Option<i64> {
        spec.mode.as_ref()?.replicated.as_ref()?.replicas
    }

    #[test]
    fn set_replicas_refuses_counts_past_i64_instead_of_casting_them_negative() {
        let mut spec = ServiceSpec::default();
        set_replicas(&mut spec, 3).unwrap();
        assert_eq!(replicas_of(&spec), Some(3));
        for huge in [u64::MAX, 1 << 63] {
            let err = set_replicas(&mut spec, huge).unwrap_err();
            assert_eq!(
                err.to_string(),
                format!("cannot ask Docker for {huge} replicas")
            );
            assert_eq!(replicas_of(&spec), Some(3), "the spec is left as it was");
        }
    }
}
