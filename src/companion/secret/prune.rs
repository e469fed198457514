//! Removing old versions: a version goes once no service mounts it, it is not the newest of its
//! family, and it is older than the grace period — on `secret prune`, after a rotation, and
//! every `secrets.prune_interval` in `serve`.

use super::{is_of_family, list_services, mounted, Version, FAMILY_LABEL};
use crate::act::docker::classify;
use crate::act::DockerError;
use crate::settings::SecretSettings;
use bollard::models::Secret;
use bollard::query_parameters::ListSecretsOptionsBuilder;
use bollard::Docker;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::{Duration, SystemTime};

/// The versions to remove: not the newest of their family, mounted by no service, and at least
/// `grace` old.
pub fn prunable<'a>(
    versions: &'a [Version],
    in_use: &HashSet<String>,
    now: SystemTime,
    grace: Duration,
) -> Vec<&'a Version> {
    let mut families: BTreeMap<&str, Vec<&Version>> = BTreeMap::new();
    for v in versions {
        families.entry(&v.family).or_default().push(v);
    }
    let mut out = Vec::new();
    for mut members in families.into_values() {
        // Names sort by their timestamp suffix; the newest is kept even when unused, so there
        // is always a version to roll services onto.
        members.sort_by(|a, b| a.name.cmp(&b.name));
        members.pop();
        out.extend(members.into_iter().filter(|v| {
            let age = now.duration_since(v.created).unwrap_or_default();
            !in_use.contains(&v.id) && age >= grace
        }));
    }
    out
}

/// Remove the prunable versions of `family` (every family when `None`); returns their names.
pub async fn prune(
    docker: &Docker,
    family: Option<&str>,
    grace: Duration,
) -> Result<Vec<String>, DockerError> {
    let versions = versions(docker, family).await?;
    let in_use: HashSet<String> = list_services(docker)
        .await?
        .iter()
        .flat_map(|s| {
            let template = s.spec.as_ref().and_then(|spec| spec.task_template.as_ref());
            mounted(template).map(String::from).collect::<Vec<_>>()
        })
        .collect();
    let mut removed = Vec::new();
    for v in prunable(&versions, &in_use, SystemTime::now(), grace) {
        match docker.delete_secret(&v.id).await.map_err(classify) {
            Ok(()) => removed.push(v.name.clone()),
            // A service may have started using it since we looked; it stays.
            Err(e) => tracing::warn!(secret = %v.name, error = %e, "not pruned"),
        }
    }
    Ok(removed)
}

async fn versions(docker: &Docker, family: Option<&str>) -> Result<Vec<Version>, DockerError> {
    let label = match family {
        Some(f) => format!("{FAMILY_LABEL}={f}"),
        None => FAMILY_LABEL.to_string(),
    };
    let filters = HashMap::from([("label", vec![label.as_str()])]);
    let options = ListSecretsOptionsBuilder::new().filters(&filters).build();
    let secrets = docker.list_secrets(Some(options)).await.map_err(classify)?;
    Ok(secrets.into_iter().filter_map(to_version).collect())
}

pub(super) fn to_version(secret: Secret) -> Option<Version> {
    let spec = secret.spec?;
    let name = spec.name?;
    let family = spec.labels?.get(FAMILY_LABEL)?.clone();
    // Only names of the version form: a hand-made secret that borrowed the label is left alone.
    if name == family || !is_of_family(&name, &family) {
        return None;
    }
    let created = secret
        .created_at
        .as_deref()
        .and_then(|t| humantime::parse_rfc3339_weak(t).ok())?;
    Some(Version {
        id: secret.id?,
        name,
        family,
        created,
    })
}

/// `serve`'s background prune: every `prune_interval` (never when it is 0), all families, with
/// `grace`, until `stop` turns true. In dry-run mode it only logs that it would run.
pub fn spawn_pruner(
    docker: crate::settings::DockerSettings,
    secrets: SecretSettings,
    dry_run: bool,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    if secrets.prune_interval.is_zero() {
        return;
    }
    tokio::spawn(async move {
        let period = secrets.prune_interval;
        let mut ticks = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
        loop {
            tokio::select! {
                _ = ticks.tick() => {}
                _ = stop.wait_for(|stopping| *stopping) => return,
            }
            if dry_run {
                tracing::info!("dry run: secret prune skipped");
                continue;
            }
            let result = match crate::companion::connect(&docker).await {
                Ok(client) => prune(&client, None, secrets.grace).await,
                Err(e) => Err(e),
            };
            match result {
                Ok(removed) if removed.is_empty() => {
                    tracing::debug!("secret prune: nothing to remove")
                }
                Ok(removed) => tracing::info!(removed = %removed.join(","), "secret prune"),
                Err(e) => tracing::warn!(error = %e, "secret prune failed"),
            }
        }
    });
}
