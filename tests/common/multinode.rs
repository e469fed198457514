//! The multi-node test bed as tests see it: a real swarm of 3 managers + 1 worker on this machine
//! (`scripts/multinode.sh`: a dockerd per network namespace, a switch namespace holding the bed's
//! /24), swarmpilot's image built and loaded on every node, the swarmpilot stack deployed with a
//! test's config, rules and token, opted-in test services, requests to replicas and a clustered
//! Alertmanager pair — all sent from inside the bed's namespaces.
//!
//! Traffic rule: only loopback and the bed's /24. Every address a test is about to send to goes
//! through [`Bed::assert_in_bed`] first, and requests to the bed run in its switch namespace,
//! which has no default route: nothing a test sends there can leave the machine.
//!
//! The bed is shared: by the tests of one binary, by the test binaries of one run, and by runs (a
//! bed left by an interrupted run is reused, or repaired by `up`). So every name is unique
//! (`sptest_<tag>_<pid>_<n>`), published ports are chosen among the free ones, and what a dead test
//! process left behind is removed the first time a process asks for the bed.

use super::swarm::TestService;
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The image `scripts/build-image.sh` builds and every bed node gets.
pub const IMAGE: &str = "swarmpilot:local";
/// The test image `scripts/multinode.sh up` puts on every node (FROM scratch + busybox-static).
pub const BED_TEST_IMAGE: &str = "swarmpilot-test/busybox:1";

/// One node of the bed, as `scripts/multinode.sh info` describes it.
#[derive(Debug, Clone)]
pub struct Node {
    /// `mn1`..`mn4`, also its hostname (what `{{.Node.Hostname}}` and `docker service ps` show).
    pub name: String,
    pub addr: Ipv4Addr,
    pub socket: PathBuf,
    pub manager: bool,
}

/// The bed: where its nodes are and how to reach them.
#[derive(Debug)]
pub struct Bed {
    pub dir: PathBuf,
    /// `/run/netns/<switch>`: clients run here with `nsenter --net=…`.
    pub switch_ns: PathBuf,
    /// The switch's own address on the /24 (where clients started in it listen).
    pub switch_addr: Ipv4Addr,
    subnet: (Ipv4Addr, u8),
    pub nodes: Vec<Node>,
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn script(name: &str) -> PathBuf {
    root().join("scripts").join(name)
}

/// Run a command; its stdout (trimmed) or its stderr (trimmed) as the error.
fn run(command: &mut Command) -> Result<String, String> {
    let out = command.output().map_err(|e| format!("{command:?}: {e}"))?;
    text_result(out)
}

fn text_result(out: Output) -> Result<String, String> {
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

/// The bed, brought up (or repaired) once per test binary by `scripts/multinode.sh up`; the
/// first call also removes what dead test processes left on it.
pub fn bed() -> &'static Bed {
    static BED: OnceLock<Bed> = OnceLock::new();
    BED.get_or_init(|| {
        let started = Instant::now();
        let status = Command::new("bash")
            .arg(script("multinode.sh"))
            .arg("up")
            .status()
            .expect("bash runs");
        assert!(
            status.success(),
            "scripts/multinode.sh up failed (it needs root, docker.io and busybox-static: scripts/test.sh sets them up)"
        );
        let info = run(Command::new("bash").arg(script("multinode.sh")).arg("info"))
            .expect("multinode.sh info");
        let bed = Bed::parse(&info);
        bed.remove_leftovers();
        eprintln!("bed: up in {:?}", started.elapsed());
        bed
    })
}

/// swarmpilot's image, built (`scripts/build-image.sh`: incremental, a no-op when nothing
/// changed) and loaded into every node (`multinode.sh load`: a no-op for the same tarball), once
/// per test binary.
pub fn ensure_image() -> &'static Bed {
    static IMAGE_READY: OnceLock<()> = OnceLock::new();
    let bed = bed();
    IMAGE_READY.get_or_init(|| {
        let started = Instant::now();
        // A static debug build unless told otherwise: the image is the Dockerfile's final stage
        // either way, and a cold release build would take most of CI's budget.
        let profile = std::env::var("SP_PROFILE").unwrap_or_else(|_| "dev".into());
        let out = Command::new("bash")
            .arg(script("build-image.sh"))
            .env("SP_PROFILE", profile)
            .output()
            .expect("bash runs");
        assert!(
            out.status.success(),
            "scripts/build-image.sh failed:\n{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let tar = root().join("target/swarmpilot-image.tar");
        run(Command::new("bash")
            .arg(script("multinode.sh"))
            .arg("load")
            .arg(&tar))
        .unwrap_or_else(|e| panic!("multinode.sh load: {e}"));
        eprintln!(
            "bed: image {IMAGE} built and loaded in {:?}",
            started.elapsed()
        );
    });
    bed
}

impl Bed {
    fn parse(info: &str) -> Self {
        let mut dir = None;
        let mut switch_ns = None;
        let mut switch_addr = None;
        let mut subnet = None;
        let mut nodes = Vec::new();
        for line in info.lines() {
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            match key {
                "dir" => dir = Some(PathBuf::from(value)),
                "switch_ns" => switch_ns = Some(PathBuf::from(value)),
                "switch_addr" => switch_addr = value.parse().ok(),
                "subnet" => {
                    subnet = value
                        .split_once('/')
                        .and_then(|(ip, len)| Some((ip.parse().ok()?, len.parse().ok()?)))
                }
                "node" => {
                    let fields: Vec<&str> = value.split_whitespace().collect();
                    assert_eq!(fields.len(), 4, "node line {value:?}");
                    nodes.push(Node {
                        name: fields[0].to_string(),
                        addr: fields[1].parse().expect("node address"),
                        socket: PathBuf::from(fields[2]),
                        manager: fields[3] == "manager",
                    });
                }
                _ => {}
            }
        }
        let missing = |what: &str| format!("multinode.sh info gave no {what}:\n{info}");
        Bed {
            dir: dir.unwrap_or_else(|| panic!("{}", missing("dir"))),
            switch_ns: switch_ns.unwrap_or_else(|| panic!("{}", missing("switch_ns"))),
            switch_addr: switch_addr.unwrap_or_else(|| panic!("{}", missing("switch_addr"))),
            subnet: subnet.unwrap_or_else(|| panic!("{}", missing("subnet"))),
            nodes,
        }
    }

    /// A node by name (`mn2`) or number (`2`).
    pub fn node(&self, node: &str) -> &Node {
        let name = match node.parse::<u8>() {
            Ok(n) => format!("mn{n}"),
            Err(_) => node.to_string(),
        };
        self.nodes
            .iter()
            .find(|n| n.name == name)
            .unwrap_or_else(|| panic!("no bed node {node:?}"))
    }

    pub fn managers(&self) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(|n| n.manager)
    }

    /// The docker CLI against one node's engine (never the primary one).
    pub fn docker(&self, node: &str, args: &[&str]) -> Result<String, String> {
        run(&mut self.docker_command(node, args))
    }

    fn docker_command(&self, node: &str, args: &[&str]) -> Command {
        let mut command = Command::new("docker");
        command
            .args(args)
            .env(
                "DOCKER_HOST",
                format!("unix://{}", self.node(node).socket.display()),
            )
            // The CLI's own settings must not point it elsewhere.
            .env_remove("DOCKER_CONTEXT");
        command
    }

    /// A manager whose engine answers for the swarm (a test may have killed some), for swarm-wide
    /// commands.
    pub fn manager(&self) -> &Node {
        self.answering_manager()
            .expect("no bed manager answers for the swarm (no quorum?)")
    }

    fn answering_manager(&self) -> Option<&Node> {
        self.managers()
            .find(|n| self.docker(&n.name, &["node", "ls", "-q"]).is_ok())
    }

    /// The docker CLI against a manager that answers for the swarm; an error while none does
    /// (an election).
    pub fn swarm_docker(&self, args: &[&str]) -> Result<String, String> {
        let manager = self
            .answering_manager()
            .ok_or("no bed manager answers for the swarm (no quorum?)")?;
        self.docker(&manager.name.clone(), args)
    }

    /// `kill -9` a node's dockerd (its containers keep running).
    pub fn kill(&self, node: &str) {
        let n = self.node(node).name.trim_start_matches("mn").to_string();
        run(Command::new("bash")
            .arg(script("multinode.sh"))
            .args(["kill", &n]))
        .unwrap_or_else(|e| panic!("multinode.sh kill {n}: {e}"));
    }

    /// Start a node's dockerd again and wait until it is back in the swarm.
    pub fn start(&self, node: &str) {
        let n = self.node(node).name.trim_start_matches("mn").to_string();
        run(Command::new("bash")
            .arg(script("multinode.sh"))
            .args(["start", &n]))
        .unwrap_or_else(|e| panic!("multinode.sh start {n}: {e}"));
    }

    /// The node a swarm node hostname (as `docker service ps` prints it) names.
    pub fn node_named(&self, hostname: &str) -> Option<&Node> {
        self.nodes.iter().find(|n| n.name == hostname)
    }

    fn in_subnet(&self, ip: Ipv4Addr) -> bool {
        let (net, len) = self.subnet;
        let mask = u32::MAX.checked_shl(32 - u32::from(len)).unwrap_or(0);
        u32::from(ip) & mask == u32::from(net) & mask
    }

    /// Whether `target` (a URL, `ip:port` or an IP) is loopback or inside the bed's /24; why not.
    pub fn check_in_bed(&self, target: &str) -> Result<(), String> {
        let host = host_of(target).ok_or_else(|| format!("cannot tell the host of {target:?}"))?;
        let ip: IpAddr = host.parse().map_err(|_| {
            format!("{target:?} names {host:?}, not an address; resolve it in the bed first")
        })?;
        let inside = match ip {
            IpAddr::V4(v4) => self.in_subnet(v4),
            IpAddr::V6(_) => false,
        };
        if ip.is_loopback() || inside {
            Ok(())
        } else {
            Err(format!(
                "{target:?} is neither loopback nor inside the bed's {}/{}",
                self.subnet.0, self.subnet.1
            ))
        }
    }

    /// Fail loudly unless `target` is loopback or inside the bed's /24: the one check before
    /// sending anything to an address a test discovered.
    pub fn assert_in_bed(&self, target: &str) {
        if let Err(why) = self.check_in_bed(target) {
            panic!("traffic rule: {why}");
        }
    }

    /// A command run inside the switch namespace (no default route: nothing leaves the bed).
    pub fn in_switch(&self, program: &str) -> Command {
        let mut command = Command::new("nsenter");
        command
            .arg(format!("--net={}", self.switch_ns.display()))
            .arg("--")
            .arg(program);
        command
    }

    /// An HTTP request from inside the switch namespace (curl). `headers` as `Name: value`.
    pub fn http(
        &self,
        method: &str,
        url: &str,
        headers: &[&str],
        body: Option<&str>,
    ) -> Result<HttpReply, String> {
        self.assert_in_bed(url);
        let mut curl = self.in_switch("curl");
        curl.args(["-sS", "--max-time", "10", "-X", method, "-o", "-"])
            .args(["-w", "\n%{http_code} %{time_total}"]);
        for header in headers {
            curl.args(["-H", header]);
        }
        if let Some(body) = body {
            curl.args(["--data-binary", body]);
        }
        curl.arg(url);
        let out = run(&mut curl).map_err(|e| format!("{method} {url}: {e}"))?;
        let (body, trailer) = out.rsplit_once('\n').unwrap_or(("", &out));
        let no_trailer = || format!("{method} {url}: no status and time in {out:?}");
        let (status, seconds) = trailer.trim().split_once(' ').ok_or_else(no_trailer)?;
        Ok(HttpReply {
            status: status.parse().map_err(|_| no_trailer())?,
            body: body.to_string(),
            took: Duration::from_secs_f64(seconds.parse().map_err(|_| no_trailer())?),
        })
    }

    pub fn get(&self, url: &str) -> Result<HttpReply, String> {
        self.http("GET", url, &[], None)
    }

    /// Published ports in use by any service on the bed.
    fn published_ports(&self) -> BTreeSet<u16> {
        let ids = self
            .swarm_docker(&["service", "ls", "-q"])
            .unwrap_or_default();
        let mut args = vec![
            "service",
            "inspect",
            "--format",
            "{{range .Endpoint.Ports}}{{.PublishedPort}} {{end}}{{range .Spec.EndpointSpec.Ports}}{{.PublishedPort}} {{end}}",
        ];
        args.extend(ids.split_whitespace());
        if args.len() == 4 {
            return BTreeSet::new();
        }
        self.swarm_docker(&args)
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// A port no bed service publishes: host-mode ports are bound in every node's namespace.
    pub fn free_published_port(&self) -> u16 {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let used = self.published_ports();
        // Processes start apart and each moves on per call, so two runs at once rarely race for
        // the same port.
        let start = (std::process::id() % 500) * 20 + NEXT.fetch_add(1, Ordering::SeqCst);
        (0..10_000u32)
            .map(|i| 20_000 + ((start + i) % 10_000) as u16)
            .find(|p| !used.contains(p))
            .expect("a free port in 20000-29999")
    }

    /// Remove what test processes that no longer run left on the bed: stacks, services, secrets
    /// (all named `sptest_<tag>_<pid>_<n>`) and the stacks' volumes on every node.
    fn remove_leftovers(&self) {
        let dead = |name: &str| leftover_pid(name).is_some_and(|pid| !pid_alive(pid));
        let stacks = self
            .swarm_docker(&["stack", "ls", "--format", "{{.Name}}"])
            .unwrap_or_default();
        for stack in stacks.lines().filter(|s| dead(s)) {
            let _ = self.swarm_docker(&["stack", "rm", stack]);
        }
        let services = self
            .swarm_docker(&["service", "ls", "--format", "{{.Name}}"])
            .unwrap_or_default();
        for service in services.lines().filter(|s| dead(s)) {
            let _ = self.swarm_docker(&["service", "rm", service]);
        }
        let secrets = self
            .swarm_docker(&["secret", "ls", "--format", "{{.Name}}"])
            .unwrap_or_default();
        for secret in secrets.lines().filter(|s| dead(s)) {
            let _ = self.swarm_docker(&["secret", "rm", secret]);
        }
        // Volumes go once their containers are gone: best effort now, the next run retries.
        for node in &self.nodes {
            let volumes = self
                .docker(&node.name, &["volume", "ls", "-q"])
                .unwrap_or_default();
            for volume in volumes.lines().filter(|v| dead(v)) {
                let _ = self.docker(&node.name, &["volume", "rm", volume]);
            }
        }
    }
}

/// The pid in a name made by [`TestService::unique_name`] (`sptest_<tag>_<pid>_<n>…`).
pub fn leftover_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix("sptest_")?;
    let parts: Vec<&str> = rest.split('_').collect();
    // The tag may hold underscores; the pid is the first all-digit part followed by another.
    parts
        .windows(2)
        .find(|w| {
            !w[0].is_empty()
                && w[0].bytes().all(|b| b.is_ascii_digit())
                && w[1].bytes().all(|b| b.is_ascii_digit())
        })
        .and_then(|w| w[0].parse().ok())
}

fn pid_alive(pid: u32) -> bool {
    Path::new(&format!("/proc/{pid}")).exists()
}

/// The host part of a URL, `ip:port`, `[v6]:port` or a bare address.
fn host_of(target: &str) -> Option<String> {
    if target.contains("://") {
        let url = reqwest::Url::parse(target).ok()?;
        return Some(
            url.host_str()?
                .trim_start_matches('[')
                .trim_end_matches(']')
                .to_string(),
        );
    }
    if let Ok(addr) = target.parse::<std::net::SocketAddr>() {
        return Some(addr.ip().to_string());
    }
    Some(target.to_string())
}

/// An answer to [`Bed::http`].
#[derive(Debug)]
pub struct HttpReply {
    pub status: u16,
    pub body: String,
    /// The request's own time as curl measured it (connect to last byte), without the cost of
    /// starting curl in the namespace.
    pub took: Duration,
}

impl HttpReply {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.body))
    }
}

/// What a deployed stack runs with. The default: the shipped config
/// (stacks/swarmpilot/swarmpilot.toml), the shipped rules, a fresh token, 2 replicas.
#[derive(Debug, Clone)]
pub struct StackSetup {
    pub config: String,
    /// `scaling.yml`'s text; `healing.yml` and `backup.yml` are empty unless set.
    pub scaling_rules: String,
    pub healing_rules: String,
    pub backup_rules: String,
    pub token: String,
    pub replicas: u64,
    /// Cluster mode, as the shipped stack sets it (`SWARMPILOT_CLUSTER__ENABLED`); off deploys
    /// the replicas in local mode.
    pub cluster: bool,
}

impl Default for StackSetup {
    fn default() -> Self {
        let read = |path: &str| std::fs::read_to_string(root().join(path)).unwrap();
        Self {
            config: read("stacks/swarmpilot/swarmpilot.toml"),
            scaling_rules: read("rules/scaling.yml"),
            healing_rules: read("rules/healing.yml"),
            backup_rules: read("rules/backup.yml"),
            token: format!("bed-token-{}", std::process::id()),
            replicas: 2,
            cluster: true,
        }
    }
}

impl StackSetup {
    /// Only these rules (as scaling.yml), none of the shipped ones.
    pub fn only_rules(mut self, rules: &str) -> Self {
        self.scaling_rules = rules.to_string();
        self.healing_rules = "rules: []\n".into();
        self.backup_rules = "rules: []\n".into();
        self
    }
}

/// A running replica: the node it runs on and its base URL from the switch namespace.
#[derive(Debug, Clone)]
pub struct Replica {
    pub node: Node,
    pub url: String,
}

/// The swarmpilot stack (stacks/swarmpilot.yml + stacks/swarmpilot.bed.yml) deployed on the bed
/// under a unique name with its own port, token secret, config and rules; removed when dropped.
pub struct BedStack {
    pub name: String,
    pub port: u16,
    pub token: String,
    secret: String,
    bed: &'static Bed,
    _dir: tempfile::TempDir,
}

impl BedStack {
    /// The Swarm service of the stack.
    pub fn service(&self) -> String {
        format!("{}_swarmpilot", self.name)
    }

    /// Build and load the image if needed, then deploy. Does not wait for the tasks.
    pub fn deploy(tag: &str, setup: StackSetup) -> Self {
        let bed = ensure_image();
        let name = TestService::unique_name(tag);
        let dir = tempfile::tempdir().unwrap();
        let rules = dir.path().join("rules");
        std::fs::create_dir_all(&rules).unwrap();
        for (file, text) in [
            ("scaling.yml", &setup.scaling_rules),
            ("healing.yml", &setup.healing_rules),
            ("backup.yml", &setup.backup_rules),
        ] {
            std::fs::write(rules.join(file), text).unwrap();
        }
        let config = dir.path().join("swarmpilot.toml");
        std::fs::write(&config, &setup.config).unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, &setup.token).unwrap();
        let secret = format!("{name}_token");
        bed.swarm_docker(&["secret", "create", &secret, token_file.to_str().unwrap()])
            .unwrap_or_else(|e| panic!("secret create {secret}: {e}"));
        let stack_file = stack_file_for_image(dir.path(), &setup);
        let port = bed.free_published_port();
        let manager = bed.manager().name.clone();
        let mut deploy = bed.docker_command(
            &manager,
            &[
                "stack",
                "deploy",
                "--resolve-image",
                "never",
                "-c",
                stack_file.to_str().unwrap(),
                "-c",
                root().join("stacks/swarmpilot.bed.yml").to_str().unwrap(),
                &name,
            ],
        );
        deploy
            .env("SP_PORT", port.to_string())
            .env("SP_CONFIG", &config)
            .env("SP_RULES", &rules)
            .env("SP_TOKEN_SECRET", &secret)
            .env("SP_BED_DIR", &bed.dir);
        let stack = BedStack {
            name,
            port,
            token: setup.token,
            secret,
            bed,
            _dir: dir,
        };
        run(&mut deploy).unwrap_or_else(|e| panic!("stack deploy {}: {e}", stack.name));
        stack
    }

    /// The running tasks: (node hostname, current state), from the swarm.
    pub fn tasks(&self) -> Vec<(String, String)> {
        self.bed
            .swarm_docker(&[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.Node}}\t{{.CurrentState}}",
                &self.service(),
            ])
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split_once('\t'))
            .map(|(node, state)| (node.to_string(), state.to_string()))
            .collect()
    }

    /// Whether the container of this stack on `node` passes its Docker health check.
    pub fn healthy_on(&self, node: &str) -> bool {
        self.bed
            .docker(
                node,
                &[
                    "ps",
                    "--filter",
                    &format!("label=com.docker.swarm.service.name={}", self.service()),
                    "--format",
                    "{{.Status}}",
                ],
            )
            .unwrap_or_default()
            .lines()
            .any(|status| status.contains("(healthy)"))
    }

    /// Wait until `n` tasks run and each passes the image's health check; the replicas.
    pub async fn wait_healthy(&self, n: usize) -> Vec<Replica> {
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let tasks = self.tasks();
            let running: Vec<&String> = tasks
                .iter()
                .filter(|(_, state)| state.starts_with("Running"))
                .map(|(node, _)| node)
                .collect();
            if running.len() == n && running.iter().all(|node| self.healthy_on(node)) {
                return running
                    .into_iter()
                    .map(|hostname| self.replica_on(hostname))
                    .collect();
            }
            assert!(
                Instant::now() < deadline,
                "{}: expected {n} healthy tasks, have {tasks:?}; task errors: {}; logs:\n{}",
                self.name,
                self.task_errors(),
                self.logs()
            );
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn replica_on(&self, hostname: &str) -> Replica {
        let node = self
            .bed
            .node_named(hostname)
            .unwrap_or_else(|| panic!("task on {hostname:?}, not a bed node"))
            .clone();
        let url = format!("http://{}:{}", node.addr, self.port);
        self.bed.assert_in_bed(&url);
        Replica { node, url }
    }

    fn task_errors(&self) -> String {
        self.bed
            .swarm_docker(&[
                "service",
                "ps",
                "--no-trunc",
                "--format",
                "{{.Node}} {{.CurrentState}} {{.Error}}",
                &self.service(),
            ])
            .unwrap_or_else(|e| e)
    }

    /// The tasks' logs (swarmpilot logs to stderr), for failure messages.
    pub fn logs(&self) -> String {
        let out = self
            .bed
            .docker_command(
                &self.bed.manager().name,
                &["service", "logs", "--raw", "--tail", "30", &self.service()],
            )
            .output();
        match out {
            Ok(out) => format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            ),
            Err(e) => e.to_string(),
        }
    }

    /// The journal of the replica on `node` (its volume, on the node's data root, which is on
    /// this machine's filesystem), parsed; empty when it has none.
    pub fn journal_on(&self, node: &str) -> Vec<Value> {
        let volume = format!("{}_journal", self.name);
        let Ok(mountpoint) = self.bed.docker(
            node,
            &["volume", "inspect", "--format", "{{.Mountpoint}}", &volume],
        ) else {
            return Vec::new();
        };
        std::fs::read_to_string(Path::new(&mountpoint).join("journal.jsonl"))
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The id of this stack's container on `node`, if one runs there.
    pub fn container_on(&self, node: &str) -> Option<String> {
        let filter = format!("label=com.docker.swarm.service.name={}", self.service());
        self.bed
            .docker(node, &["ps", "-q", "--filter", &filter])
            .ok()
            .and_then(|ids| ids.lines().next().map(String::from))
    }

    /// POST a notification to a replica's /webhook with this stack's token.
    pub fn post_webhook(&self, replica: &Replica, query: &str, body: &Value) -> HttpReply {
        let url = format!("{}/webhook{query}", replica.url);
        let auth = format!("Authorization: Bearer {}", self.token);
        self.bed
            .http(
                "POST",
                &url,
                &[&auth, "Content-Type: application/json"],
                Some(&body.to_string()),
            )
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Remove the stack and wait until its service, containers, secret and volumes are gone.
    pub async fn remove(mut self) {
        self.start_removal();
        let deadline = Instant::now() + Duration::from_secs(60);
        while !self.finish_removal() {
            assert!(
                Instant::now() < deadline,
                "{}: not removed after 60 s",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        self.name.clear();
    }

    fn start_removal(&self) {
        let _ = self.bed.swarm_docker(&["stack", "rm", &self.name]);
    }

    /// One pass of removing what is left; true when nothing is.
    fn finish_removal(&self) -> bool {
        let service_gone = self
            .bed
            .swarm_docker(&["service", "inspect", &self.service()])
            .is_err();
        let containers_gone = self.bed.nodes.iter().all(|node| {
            self.bed
                .docker(
                    &node.name,
                    &[
                        "ps",
                        "-aq",
                        "--filter",
                        &format!("label=com.docker.stack.namespace={}", self.name),
                    ],
                )
                .map(|ids| ids.is_empty())
                .unwrap_or(true)
        });
        if !(service_gone && containers_gone) {
            return false;
        }
        let secret_gone = self
            .bed
            .swarm_docker(&["secret", "rm", &self.secret])
            .is_ok()
            || self
                .bed
                .swarm_docker(&["secret", "inspect", &self.secret])
                .is_err();
        let volume = format!("{}_journal", self.name);
        for node in &self.bed.nodes {
            let _ = self.bed.docker(&node.name, &["volume", "rm", &volume]);
        }
        secret_gone
    }
}

impl Drop for BedStack {
    /// Best effort (a test that failed still cleans up); what is left is removed by the next run.
    fn drop(&mut self) {
        if self.name.is_empty() {
            return;
        }
        self.start_removal();
        let deadline = Instant::now() + Duration::from_secs(30);
        while !self.finish_removal() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(250));
        }
    }
}

/// stacks/swarmpilot.yml as the bed deploys it, written into `dir` with the setup's replicas and
/// mode.
fn stack_file_for_image(dir: &Path, setup: &StackSetup) -> PathBuf {
    let shipped = std::fs::read_to_string(root().join("stacks/swarmpilot.yml")).unwrap();
    let replicas_line = "      replicas: 2\n";
    let cluster_line = "      SWARMPILOT_CLUSTER__ENABLED: \"true\"\n";
    assert!(
        shipped.contains(replicas_line) && shipped.contains(cluster_line),
        "stacks/swarmpilot.yml changed shape: update the bed harness"
    );
    let text = shipped
        .replace(
            replicas_line,
            &format!("      replicas: {}\n", setup.replicas),
        )
        .replace(
            cluster_line,
            &format!("      SWARMPILOT_CLUSTER__ENABLED: \"{}\"\n", setup.cluster),
        );
    let path = dir.join("swarmpilot.yml");
    std::fs::write(&path, text).unwrap();
    path
}

/// An opted-in service of the busybox test image on the bed, removed when dropped.
pub struct BedService {
    pub name: String,
    bed: &'static Bed,
}

impl BedService {
    /// `replicas` tasks of the test image (`swarmpilot.enable=true`, 1 s stop grace) with `extra`
    /// `docker service create` flags; waits until they run.
    pub async fn opted_in(tag: &str, replicas: u64, extra: &[&str]) -> Self {
        let bed = bed();
        let name = TestService::unique_name(tag);
        let replicas_arg = replicas.to_string();
        let mut args = vec![
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            &name,
            "--label",
            "swarmpilot.test=true",
            "--label",
            "swarmpilot.enable=true",
            "--stop-grace-period",
            "1s",
            "--replicas",
            &replicas_arg,
        ];
        args.extend_from_slice(extra);
        args.push(BED_TEST_IMAGE);
        bed.swarm_docker(&args)
            .unwrap_or_else(|e| panic!("service create {name}: {e}"));
        let service = Self { name, bed };
        service.wait_running(replicas).await;
        service
    }

    /// `replicas` tasks that are never scheduled (a constraint no node meets): the spec is what
    /// swarmpilot acts on, and twenty services cost no containers.
    pub fn opted_in_unscheduled(tag: &str, replicas: u64) -> Self {
        let bed = bed();
        let name = TestService::unique_name(tag);
        let replicas_arg = replicas.to_string();
        bed.swarm_docker(&[
            "service",
            "create",
            "--detach",
            "--no-resolve-image",
            "--name",
            &name,
            "--label",
            "swarmpilot.test=true",
            "--label",
            "swarmpilot.enable=true",
            "--constraint",
            "node.labels.sptest_never==true",
            "--replicas",
            &replicas_arg,
            BED_TEST_IMAGE,
        ])
        .unwrap_or_else(|e| panic!("service create {name}: {e}"));
        Self { name, bed }
    }

    /// A label of the service's spec ("" when absent).
    pub fn label(&self, label: &str) -> String {
        self.inspect(&format!("{{{{index .Spec.Labels \"{label}\"}}}}"))
    }

    pub fn inspect(&self, format: &str) -> String {
        self.bed
            .swarm_docker(&["service", "inspect", "--format", format, &self.name])
            .unwrap_or_else(|e| panic!("inspect {}: {e}", self.name))
    }

    pub fn desired_replicas(&self) -> u64 {
        self.inspect("{{.Spec.Mode.Replicated.Replicas}}")
            .parse()
            .unwrap()
    }

    pub fn version(&self) -> u64 {
        self.inspect("{{.Version.Index}}").parse().unwrap()
    }

    pub fn running_tasks(&self) -> usize {
        self.bed
            .swarm_docker(&[
                "service",
                "ps",
                "--filter",
                "desired-state=running",
                "--format",
                "{{.CurrentState}}",
                &self.name,
            ])
            .unwrap_or_default()
            .lines()
            .filter(|l| l.starts_with("Running"))
            .count()
    }

    pub async fn wait_running(&self, n: u64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let running = self.running_tasks();
            if running == n as usize {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{}: {running} tasks running, expected {n}",
                self.name
            );
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }
}

impl Drop for BedService {
    fn drop(&mut self) {
        let _ = self.bed.swarm_docker(&["service", "rm", &self.name]);
        // The templates cluster mode kept for it (Swarm configs).
        let label = format!("label=swarmpilot.template.service={}", self.name);
        if let Ok(ids) = self
            .bed
            .swarm_docker(&["config", "ls", "-q", "--filter", &label])
        {
            for id in ids.lines() {
                let _ = self.bed.swarm_docker(&["config", "rm", id]);
            }
        }
    }
}

/// One Alertmanager of a clustered pair, running inside the switch namespace; killed on drop.
pub struct BedAlertmanager {
    child: Child,
    /// Its API, on the switch's address (reachable from the switch namespace only).
    pub url: String,
    _dir: tempfile::TempDir,
}

impl Drop for BedAlertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Two Alertmanagers gossiping as a cluster on bed addresses, each delivering to its own
/// swarmpilot replica with `token`: the HA pair of a production setup.
pub struct AlertmanagerPair {
    pub first: BedAlertmanager,
    pub second: BedAlertmanager,
}

impl AlertmanagerPair {
    /// Start the pair (Debian's prometheus-alertmanager) with the shipped alertmanager.yml, the
    /// first delivering to `receivers[0]`, the second to `receivers[1]` (replica base URLs).
    pub async fn start(bed: &'static Bed, receivers: [&str; 2], token: &str) -> Self {
        for receiver in receivers {
            bed.assert_in_bed(receiver);
        }
        // The switch namespace holds only what tests start there; loopback's free ports are as
        // good a pick as any.
        let (web1, web2) = (super::free_port(), super::free_port());
        let (gossip1, gossip2) = (super::free_port(), super::free_port());
        let first = BedAlertmanager::start(bed, receivers[0], token, web1, gossip1, gossip2);
        let second = BedAlertmanager::start(bed, receivers[1], token, web2, gossip2, gossip1);
        first.wait_ready(bed).await;
        second.wait_ready(bed).await;
        Self { first, second }
    }

    /// POST `alerts` (Alertmanager's API v2 shape, a JSON array) to both, as Prometheus does.
    pub fn post_alerts(&self, bed: &Bed, alerts: &Value) {
        for am in [&self.first, &self.second] {
            let url = format!("{}/api/v2/alerts", am.url);
            let reply = bed
                .http(
                    "POST",
                    &url,
                    &["Content-Type: application/json"],
                    Some(&alerts.to_string()),
                )
                .unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(reply.status, 200, "{url}: {}", reply.body);
        }
    }

    /// `amtool alert add` on both, as Prometheus sends every alert to every Alertmanager.
    pub fn add_alert(&self, bed: &Bed, labels: &[&str]) {
        for am in [&self.first, &self.second] {
            am.add_alert(bed, labels);
        }
    }
}

impl BedAlertmanager {
    fn start(bed: &Bed, receiver: &str, token: &str, web: u16, gossip: u16, peer: u16) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, token).unwrap();
        let shipped =
            std::fs::read_to_string(root().join("alertmanager/alertmanager.yml")).unwrap();
        let config = shipped
            .replace(
                "http://swarmpilot:9095/webhook",
                &format!("{receiver}/webhook"),
            )
            .replace(
                "/run/secrets/swarmpilot_token",
                token_file.to_str().unwrap(),
            );
        assert_ne!(
            config, shipped,
            "the shipped route was pointed at the replica"
        );
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).unwrap();
        let addr = bed.switch_addr;
        let child = bed
            .in_switch("prometheus-alertmanager")
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!(
                "--storage.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}:{web}"))
            .arg(format!("--cluster.listen-address={addr}:{gossip}"))
            .arg(format!("--cluster.advertise-address={addr}:{gossip}"))
            .arg(format!("--cluster.peer={addr}:{peer}"))
            .args([
                "--cluster.peer-timeout=2s",
                "--cluster.settle-timeout=3s",
                "--cluster.gossip-interval=100ms",
            ])
            .stdout(Stdio::null())
            .stderr(
                std::fs::File::create(dir.path().join("alertmanager.log"))
                    .expect("alertmanager log"),
            )
            .spawn()
            .expect("prometheus-alertmanager installed (scripts/test.sh installs it)");
        Self {
            child,
            url: format!("http://{addr}:{web}"),
            _dir: dir,
        }
    }

    async fn wait_ready(&self, bed: &Bed) {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if matches!(bed.get(&format!("{}/-/ready", self.url)), Ok(r) if r.status == 200) {
                return;
            }
            let log = std::fs::read_to_string(self._dir.path().join("alertmanager.log"))
                .unwrap_or_default();
            assert!(
                Instant::now() < deadline,
                "alertmanager {} not ready:\n{log}",
                self.url
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// `amtool alert add` against this Alertmanager, from the switch namespace.
    pub fn add_alert(&self, bed: &Bed, labels: &[&str]) {
        bed.assert_in_bed(&self.url);
        run(bed
            .in_switch("amtool")
            .args(["alert", "add"])
            .args(labels)
            .arg(format!("--alertmanager.url={}", self.url)))
        .unwrap_or_else(|e| panic!("amtool alert add: {e}"));
    }

    /// The cluster members this one sees (its `/api/v2/status`).
    pub fn peers(&self, bed: &Bed) -> usize {
        bed.get(&format!("{}/api/v2/status", self.url))
            .map(|r| r.json()["cluster"]["peers"].as_array().map_or(0, Vec::len))
            .unwrap_or(0)
    }
}
