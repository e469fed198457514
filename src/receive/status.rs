//! `GET /`: the page an operator opens first. Plain server-rendered HTML (maud escapes every
//! value), no scripts, refreshed every 15 s: managed services, cooldowns, recent actions.

use super::error::ApiError;
use super::AppState;
use crate::gate::Window;
use crate::model::{is_busy_update_state, ServiceSummary};
use crate::record::actions::ActionView;
use actix_web::{web, HttpRequest, HttpResponse};
use maud::{html, Markup, PreEscaped, DOCTYPE};
use std::time::{Duration, SystemTime};

const STYLE: &str = "body{font:14px system-ui,sans-serif;margin:1.5rem;color:#1d2329}\
h1{font-size:1.4rem}h2{font-size:1.1rem;margin-top:1.6rem}\
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:.3rem .6rem;border-bottom:1px solid #dde1e5}\
th{background:#f3f5f7}.ok{color:#137333}.bad{color:#b3261e;font-weight:600}.muted{color:#6b7280}\
.pill{padding:.1rem .45rem;border-radius:.6rem;background:#eef2f6}";

pub async fn page(req: HttpRequest, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    state.check_page_auth(&req)?;
    let pipeline = &state.pipeline;
    // Shared and at most a second old: a dashboard left open, or a flood of GETs, costs Docker
    // one service list and one task list per second.
    let services = pipeline.swarm_view().services().await;
    pipeline.note_docker(&services);
    let mut cooldowns = pipeline.cooldowns();
    cooldowns.sort_by(|a, b| a.0.cmp(&b.0));
    let actions = pipeline.recent_actions(50);
    let rules = pipeline.rules().len();
    let body = html! {
        (DOCTYPE)
        html lang="en" {
            head {
                meta charset="utf-8";
                meta http-equiv="refresh" content="15";
                title { "swarmpilot" }
                style { (PreEscaped(STYLE)) }
            }
            body {
                h1 { "swarmpilot" }
                p.muted {
                    (rules) " rules loaded · " (state.opt_in_label) "=true opts a service in · "
                    "updated " (rfc3339(pipeline.now()))
                    @if state.dry_run { " · " span.bad { "dry run: the swarm is never changed" } }
                }
                h2 { "Managed services" }
                @match &services {
                    Ok(list) => (services_table(list)),
                    Err(e) => p.bad id="docker-down" { (e.to_string()) },
                }
                h2 { "Cooldowns" }
                (cooldowns_table(&cooldowns))
                h2 { "Recent actions" }
                (actions_table(&actions))
            }
        }
    };
    Ok(HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(body.into_string()))
}

fn services_table(services: &[ServiceSummary]) -> Markup {
    html! {
        @if services.is_empty() {
            p.muted { "No service carries the opt-in label." }
        } @else {
            table id="services" {
                tr { th { "Service" } th { "Replicas (running/desired)" } th { "Image" } th { "Update state" } }
                @for s in services {
                    tr {
                        td { (s.name) }
                        @let desired = s.desired.map_or("global".to_string(), |d| d.to_string());
                        td class=(if Some(s.running) == s.desired { "ok" } else { "bad" }) {
                            (s.running) "/" (desired)
                        }
                        td { (s.image) }
                        @let update = s.update_state.clone().unwrap_or_else(|| "—".into());
                        td class=(if is_busy_update_state(&update) { "bad" } else { "" }) { (update) }
                    }
                }
            }
        }
    }
}

fn cooldowns_table(cooldowns: &[((String, crate::rules::ActionKind), Window)]) -> Markup {
    html! {
        @if cooldowns.is_empty() {
            p.muted { "No cooldown running." }
        } @else {
            table id="cooldowns" {
                tr { th { "Service" } th { "Action" } th { "Remaining" } }
                @for ((service, action), left) in cooldowns {
                    tr {
                        td { (service) }
                        td { span.pill { (action.as_str()) } }
                        td { (window_text(*left)) }
                    }
                }
            }
        }
    }
}

fn actions_table(actions: &[ActionView]) -> Markup {
    html! {
        @if actions.is_empty() {
            p.muted { "No action yet." }
        } @else {
            table id="actions" {
                tr { th { "Time (UTC)" } th { "Service" } th { "Action" } th { "Change" } th { "Outcome" } th { "Rule / alert" } th { "Reason" } }
                @for a in actions {
                    tr {
                        td { (rfc3339(crate::clock::from_unix_ms(a.time_ms))) }
                        td { (a.service) }
                        td { span.pill { (a.action) } }
                        td { (a.change.as_deref().unwrap_or("—")) }
                        @let outcome = a.outcome.map_or("pending", |o| o.as_str());
                        td class=(if outcome == "succeeded" { "ok" } else if outcome == "pending" { "muted" } else { "bad" }) { (outcome) }
                        td { (a.rule) " / " (a.alert) }
                        td.muted { (a.reason) }
                    }
                }
            }
        }
    }
}

fn window_text(window: Window) -> String {
    match window {
        Window::Held => "until its action finishes, then the full cooldown".into(),
        Window::Running(left) => {
            humantime::format_duration(Duration::from_secs(left.as_secs())).to_string()
        }
    }
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_seconds(t).to_string()
}
