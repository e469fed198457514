//! Hostile input through the real server: service names that try to reach a shell, a path or a
//! template.

use crate::common::*;

#[tokio::test]
async fn hostile_service_names_never_reach_docker_a_shell_or_a_path() {
    // An engine that is not there: any lookup would be admitted as `queued` and journaled, so
    // `no_service` with an empty journal shows no Docker call was even attempted.
    let app = spawn_app_with(|s| s.docker.host = "unix:///nonexistent/docker.sock".into()).await;
    let names = [
        "web; rm -rf /".to_string(),
        "$(reboot)".into(),
        "`id`".into(),
        "../../etc/passwd".into(),
        "web\nX-Injected: yes".into(),
        "web\0".into(),
        "{{.Spec}}".into(),
        "x".repeat(4096),
    ];
    for name in &names {
        let d = app.fire("TestHighCPU", name).await;
        let d = only(&d);
        assert_eq!(d["decision"], "no_service", "{name:?}: {d}");
        assert!(d["reason"]
            .as_str()
            .unwrap()
            .contains("is not a valid service name"));
        // Echoed back bounded, as data.
        assert!(d["service"].as_str().unwrap().chars().count() <= 129);
    }
    assert!(app.journal().is_empty(), "nothing journaled");
    // The control: a well-formed unknown name is looked up (and, Docker being away, queued).
    let r = app
        .post_webhook_to("webhook", &alert_payload("TestHighCPU", "well_formed_name"))
        .await;
    let body: serde_json::Value = r.json().await.unwrap();
    assert_eq!(body["decisions"][0]["decision"], "queued", "{body}");
}
