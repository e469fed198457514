//! The status page as a person sees it: rendered by headless Chromium (Debian's `chromium`,
//! installed by scripts/test.sh), asserted on the rendered DOM, and saved as a screenshot in
//! `target/status-page.png`.

#[allow(dead_code)]
mod common;

use common::*;
use std::path::PathBuf;
use std::process::Command;

fn chromium(args: &[&str], url: &str) -> std::process::Output {
    let profile = tempfile::tempdir().unwrap();
    let user_data = format!("--user-data-dir={}", profile.path().display());
    let output = Command::new("chromium")
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-quic",
            "--no-first-run",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--hide-scrollbars",
            &user_data,
        ])
        .args(args)
        .arg(url)
        .output()
        .expect("chromium is installed (scripts/test.sh installs it)");
    assert!(
        output.status.success(),
        "chromium failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[tokio::test]
async fn status_page_shows_services_cooldowns_and_actions_in_a_browser() {
    let app = spawn_app().await;
    let svc = TestService::opted_in("status", 2).await;
    let d = app.fire("TestHighCPU", &svc.name).await;
    assert_eq!(only(&d)["decision"], "executed");
    svc.wait_running(4).await;

    let url = format!("{}/", app.address);
    let dom = tokio::task::spawn_blocking({
        let url = url.clone();
        move || String::from_utf8_lossy(&chromium(&["--dump-dom"], &url).stdout).into_owned()
    })
    .await
    .unwrap();
    assert!(dom.contains("<h1>swarmpilot</h1>"), "{dom}");
    let row = format!(
        "<td>{}</td><td class=\"ok\">4/4</td><td>{}</td>",
        svc.name, "swarmpilot-test/busybox:1"
    );
    assert!(
        dom.contains(&row),
        "managed service row {row} missing in {dom}"
    );
    assert!(dom.contains("id=\"cooldowns\""), "{dom}");
    assert!(
        dom.contains("<span class=\"pill\">scale_up</span>"),
        "{dom}"
    );
    assert!(
        dom.contains("<td>replicas 2→4</td><td class=\"ok\">succeeded</td>"),
        "{dom}"
    );
    assert!(dom.contains("test-scale-up / TestHighCPU"), "{dom}");

    let shot = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/status-page.png");
    let _ = std::fs::remove_file(&shot);
    let arg = format!("--screenshot={}", shot.display());
    tokio::task::spawn_blocking(move || chromium(&[&arg, "--window-size=1280,900"], &url))
        .await
        .unwrap();
    let png = std::fs::read(&shot).expect("screenshot written");
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
}
