#!/usr/bin/env bash
# The multi-node test bed: a real Docker Swarm of 3 managers + 1 worker on this one machine, each
# node its own dockerd (with the containerd it manages) in its own network namespace.
#
#   scripts/multinode.sh up              bring the bed up, or repair it, or rebuild it (idempotent)
#   scripts/multinode.sh down            remove everything it made: processes, mounts, namespaces, data
#   scripts/multinode.sh status          nodes, daemons, memory, leader (exit 1 unless all is well)
#   scripts/multinode.sh kill N          kill -9 node N's dockerd (its containers keep running)
#   scripts/multinode.sh start N         start node N's dockerd again and wait until it is back
#   scripts/multinode.sh load TAR        docker load an image tarball into every running node
#   scripts/multinode.sh docker N ARGS…  the docker CLI against node N
#   scripts/multinode.sh addr N          node N's address
#   scripts/multinode.sh ns              the switch namespace, for `nsenter --net=$(… ns) -- curl …`
#   scripts/multinode.sh info            key=value lines: dir, switch namespace, subnet, nodes
#
# Why it looks like this (all verified here, see the README's "Run it highly available"):
# - Network: a "switch" namespace holds a bridge and one veth per node; the node ends sit in the
#   node namespaces. The /24 exists only inside these namespaces, none of which has a default
#   route, so the bed's traffic never reaches the host's interfaces, its iptables or the outside.
#   (A bridge in the root namespace would meet the host's FORWARD DROP policy anyway.)
# - Daemons: `nsenter --net` + `unshare --uts` (a hostname per node, which Swarm reports and a
#   mount source can name), not `ip netns exec`, which remounts /sys and hides the cgroup v1
#   mounts dockerd needs. Every path a daemon owns is per node, set in a per-node config file
#   (which also keeps the host's /etc/docker/daemon.json out); deprecated-key-path gives each
#   node its own engine ID.
# - The primary single-node swarm on /var/run/docker.sock is never touched.
#
# Layout under $SP_BED_DIR (default /var/lib/swarmpilot-bed):
#   mnN/            node N: daemon.json, key.json, data/, exec/, docker.sock, dockerd.log, dockerd.pid
#   sock/mnN.sock   symlink to node N's socket: a service mounts its own node's engine with
#                   source=$BED/sock/{{.Node.Hostname}}.sock
#   images/*.tar    image tarballs every node gets (the test busybox, whatever `load` was given)
set -euo pipefail

# SP_, not SWARMPILOT_: swarmpilot reads every SWARMPILOT_* variable as a setting.
BED=${SP_BED_DIR:-/var/lib/swarmpilot-bed}
NODES=(1 2 3 4)        # mn1-mn3 managers, mn4 a worker
MANAGERS=3
# A second bed beside the first (two sessions on one machine) needs its own SP_BED_DIR,
# SP_BED_NAME and SP_BED_NET; tests find all three through `info`.
PREFIX=${SP_BED_NAME:-spbed}   # namespaces spbed-sw, spbed-mn1…; cgroups /spbed/mnN
NET=${SP_BED_NET:-192.168.213} # the bed's /24: switch .1, node N .(10+N)
OVERLAY_POOL=10.213.0.0/16     # each bed is its own swarm: the pools never meet
SWITCH_NS=/run/netns/$PREFIX-sw
TEST_IMAGE=swarmpilot-test/busybox:1
LOCK=/run/lock/swarmpilot-bed-$PREFIX.lock

log() { printf 'multinode: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

need_root() { [ "$(id -u)" -eq 0 ] || die "must run as root (namespaces, daemons, mounts)"; }

# A bed directory that is not a real path would make `down`'s rm dangerous.
case "$BED" in
  /?*/?*) ;;
  *) die "SP_BED_DIR=$BED: give an absolute path at least two levels deep" ;;
esac
[[ "$PREFIX" =~ ^[a-z][a-z0-9]{0,7}$ ]] || die "SP_BED_NAME=$PREFIX: 1-8 lower-case letters and digits"
# Private ranges only: the bed's addresses must never be someone else's.
[[ "$NET" =~ ^(10\.[0-9]{1,3}|172\.(1[6-9]|2[0-9]|3[01])|192\.168)\.[0-9]{1,3}$ ]] ||
  die "SP_BED_NET=$NET: the first three octets of a private /24 (10.x.y, 172.16-31.y, 192.168.y)"

node_ns() { echo "/run/netns/$PREFIX-mn$1"; }
node_dir() { echo "$BED/mn$1"; }
node_sock() { echo "$BED/sock/mn$1.sock"; }
node_addr() { echo "$NET.$((10 + $1))"; }
check_node() { [[ "${1:-}" =~ ^[1-4]$ ]] || die "node must be 1-4, got '${1:-}'"; }

dk() { # node, docker args…: the CLI against one node, never the primary engine
  local n=$1; shift
  DOCKER_HOST="unix://$(node_sock "$n")" timeout 60 docker "$@"
}

now_ms() { date +%s%3N; }

# --- network -------------------------------------------------------------------------------

ensure_switch() {
  [ -e "$SWITCH_NS" ] || ip netns add "$PREFIX-sw"
  ip -n "$PREFIX-sw" link set lo up
  ip -n "$PREFIX-sw" link show br0 >/dev/null 2>&1 || ip -n "$PREFIX-sw" link add br0 type bridge
  # Clients (curl, Alertmanager) run in the switch namespace and need an address on the /24.
  ip -n "$PREFIX-sw" addr replace "$NET.1/24" dev br0
  ip -n "$PREFIX-sw" link set br0 up
}

ensure_node_net() {
  local n=$1 ns="$PREFIX-mn$n"
  [ -e "$(node_ns "$n")" ] || ip netns add "$ns"
  ip -n "$ns" link set lo up
  # A veth pair dies with either end's namespace: recreate it when the switch end is gone.
  if ! ip -n "$PREFIX-sw" link show "vmn$n" >/dev/null 2>&1; then
    ip -n "$ns" link del eth0 >/dev/null 2>&1 || true
    ip -n "$PREFIX-sw" link add "vmn$n" type veth peer name eth0 netns "$ns"
  fi
  ip -n "$PREFIX-sw" link set "vmn$n" master br0 up
  ip -n "$ns" addr replace "$(node_addr "$n")/24" dev eth0
  ip -n "$ns" link set eth0 up
}

# --- processes -----------------------------------------------------------------------------

# The dockerd of node N, if one runs in the node's namespace (a daemon left in a namespace that
# was deleted and made again is not the node's: `up` replaces it).
daemon_pid() {
  local n=$1 pid comm
  pid=$(cat "$(node_dir "$n")/dockerd.pid" 2>/dev/null) || return 1
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  read -r comm 2>/dev/null <"/proc/$pid/comm" || return 1
  [ "$comm" = dockerd ] || return 1
  [ "/proc/$pid/ns/net" -ef "$(node_ns "$n")" ] || return 1
  echo "$pid"
}

# Every process node N runs: its daemons, shims and userland proxies (found by the node's network
# namespace, or by a command line naming the node's directory when the namespace is already gone),
# and its containers' processes (in the node's cgroup, as containers have namespaces of their own).
node_pids() {
  local n=$1 dir p pid comm cmdline ns
  dir=$(node_dir "$n")
  ns=$(node_ns "$n")
  for p in /proc/[0-9]*; do
    pid=${p#/proc/}
    read -r comm 2>/dev/null <"$p/comm" || continue
    case "$comm" in
      dockerd | containerd | containerd-shim* | docker-proxy) ;;
      *) continue ;;
    esac
    if [ -e "$ns" ] && [ "$p/ns/net" -ef "$ns" ]; then
      echo "$pid"
      continue
    fi
    cmdline=$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null) || continue
    [[ "$cmdline" == *"$dir/"* ]] && echo "$pid"
  done
  find /sys/fs/cgroup/*/"$PREFIX/mn$n" -name cgroup.procs -exec cat {} + 2>/dev/null || true
}

kill_node_processes() {
  local n=$1 pids
  for _ in $(seq 1 50); do
    pids=$(node_pids "$n" | sort -u)
    [ -z "$pids" ] && return 0
    # shellcheck disable=SC2086
    kill -9 $pids 2>/dev/null || true
    sleep 0.2
  done
  die "mn$n: processes survive kill -9: $(node_pids "$n" | sort -u | tr '\n' ' ')"
}

write_daemon_config() {
  local n=$1 dir
  dir=$(node_dir "$n")
  mkdir -p "$dir/data" "$dir/exec" "$BED/sock"
  cat >"$dir/daemon.json" <<JSON
{
  "data-root": "$dir/data",
  "exec-root": "$dir/exec",
  "pidfile": "$dir/dockerd.pid",
  "hosts": ["unix://$dir/docker.sock"],
  "cgroup-parent": "/$PREFIX/mn$n",
  "deprecated-key-path": "$dir/key.json",
  "log-level": "warn"
}
JSON
  ln -sfn "../mn$n/docker.sock" "$(node_sock "$n")"
}

start_daemon() {
  local n=$1 dir pid
  dir=$(node_dir "$n")
  write_daemon_config "$n"
  # A pid file left by a killed daemon names a pid that may be reused: dockerd would refuse to start.
  rm -f "$dir/dockerd.pid"
  # setsid: the daemon outlives this script and a Ctrl-C sent to the caller's process group.
  # 9>&-: the daemon must not inherit the lock (it would hold it for its whole life).
  # DOCKER_SERVICE_PREFER_OFFLINE_IMAGE: there is no registry, use the loaded image as it is.
  DOCKER_SERVICE_PREFER_OFFLINE_IMAGE=1 setsid nsenter --net="$(node_ns "$n")" -- \
    unshare --uts -- sh -c 'echo "$1" >/proc/sys/kernel/hostname && exec dockerd --config-file "$2"' \
    sh "mn$n" "$dir/daemon.json" </dev/null >>"$dir/dockerd.log" 2>&1 9>&- &
  pid=$!
  echo "$pid" >"$dir/starter.pid"
}

wait_daemon() {
  local n=$1
  for _ in $(seq 1 240); do
    dk "$n" version >/dev/null 2>&1 && return 0
    sleep 0.25
  done
  log "mn$n: dockerd did not answer; last lines of $(node_dir "$n")/dockerd.log:"
  tail -n 20 "$(node_dir "$n")/dockerd.log" >&2 || true
  return 1
}

# Start node N's daemon unless it runs; a daemon outside the node's namespace (left from an
# earlier bed whose namespace was deleted) is killed first. Adds the node to STARTED.
STARTED=()
ensure_daemon() {
  local n=$1
  if daemon_pid "$n" >/dev/null; then return 0; fi
  kill_node_processes "$n"
  start_daemon "$n"
  STARTED+=("mn$n")
}

# --- swarm ---------------------------------------------------------------------------------

swarm_state() { dk "$1" info --format '{{.Swarm.LocalNodeState}}' 2>/dev/null || echo unreachable; }

# A manager that answers for the swarm (has quorum), or nothing.
answering_manager() {
  local n
  for n in $(seq 1 "$MANAGERS"); do
    if dk "$n" node ls -q >/dev/null 2>&1; then
      echo "$n"
      return 0
    fi
  done
  return 1
}

# The bed as it must be: exactly mn1..mn4, each once, all Ready; mn1-mn3 managers, one leader.
swarm_healthy() {
  local m listing expected
  m=$(answering_manager) || return 1
  listing=$(dk "$m" node ls --format '{{.Hostname}} {{.Status}} {{.ManagerStatus}}' 2>/dev/null) || return 1
  expected=$(printf '%s\n' "mn1 Ready" "mn2 Ready" "mn3 Ready" "mn4 Ready")
  [ "$(awk '{print $1, $2}' <<<"$listing" | sort)" = "$expected" ] || return 1
  [ "$(grep -c -E ' (Leader|Reachable)$' <<<"$listing")" -eq "$MANAGERS" ] || return 1
  grep -q ' Leader$' <<<"$listing"
}

# A node listed twice (one Down: a node that lost its state and joined again) or a stranger: no
# amount of waiting repairs that.
swarm_confused() {
  local m hosts
  m=$(answering_manager) || return 1
  hosts=$(dk "$m" node ls --format '{{.Hostname}}' 2>/dev/null) || return 1
  [ -n "$(sort <<<"$hosts" | uniq -d)" ] || grep -qvE '^mn[1-4]$' <<<"$hosts"
}

wait_swarm_healthy() { # seconds
  local deadline=$((SECONDS + $1))
  while [ $SECONDS -lt $deadline ]; do
    swarm_healthy && return 0
    swarm_confused && return 1
    sleep 0.5
  done
  return 1
}

join() { # node, role
  local n=$1 role=$2 token
  token=$(dk 1 swarm join-token -q "$role")
  dk "$n" swarm join --token "$token" --advertise-addr "$(node_addr "$n")" \
    --listen-addr "$(node_addr "$n"):2377" "$(node_addr 1):2377" >/dev/null
}

# Form the swarm where it is missing: init on mn1 if no node is in one, join the nodes that are
# not. Returns 1 when the state is one this cannot repair (the caller rebuilds).
form_swarm() {
  local n states=() s
  for n in "${NODES[@]}"; do states[n]=$(swarm_state "$n"); done
  if [ "${states[1]}" != active ]; then
    for s in "${states[@]}"; do [ "$s" = inactive ] || return 1; done
    log "swarm init on mn1 ($(node_addr 1)), overlay pool $OVERLAY_POOL"
    # The overlay pool is kept away from the underlay /24 (and from the primary swarm's 10.0/16).
    dk 1 swarm init --advertise-addr "$(node_addr 1)" --listen-addr "$(node_addr 1):2377" \
      --default-addr-pool "$OVERLAY_POOL" >/dev/null
    states[1]=active
  fi
  for n in "${NODES[@]}"; do
    case "${states[n]}" in
      active | pending) ;;
      inactive)
        if [ "$n" -le "$MANAGERS" ]; then join "$n" manager; else join "$n" worker; fi
        ;;
      *) return 1 ;;
    esac
  done
}

# --- images --------------------------------------------------------------------------------

# The test image every bed node needs, as scripts/setup-swarm.sh makes it for the primary swarm:
# FROM scratch + static busybox, a task that stops at once on SIGTERM. Built on mn1 (not the
# primary engine, which the bed never touches), saved for the other nodes.
ensure_test_image() {
  local tar="$BED/images/test-busybox.tar" dir
  [ -s "$tar" ] && return 0
  [ -x /bin/busybox ] || die "/bin/busybox missing: apt-get install busybox-static (scripts/setup-swarm.sh does)"
  dir=$(mktemp -d)
  cp /bin/busybox "$dir/busybox"
  cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD ["/bin/sh", "-c", "trap \"exit 0\" TERM; while true; do sleep 1; done"]
DOCKERFILE
  # The legacy builder (no BuildKit in Debian's docker.io) warns on stderr: shown only on failure.
  DOCKER_BUILDKIT=0 dk 1 build -q -t "$TEST_IMAGE" "$dir" >"$dir/build.log" 2>&1 ||
    { cat "$dir/build.log" >&2; die "building $TEST_IMAGE on mn1 failed"; }
  dk 1 tag "$TEST_IMAGE" swarmpilot-test/busybox:2
  rm -rf "$dir"
  dk 1 save -o "$tar.tmp" "$TEST_IMAGE" swarmpilot-test/busybox:2
  mv "$tar.tmp" "$tar"
}

# Load every saved tarball into every running node that does not have it yet (or has an older
# one): a node rebuilt or started later gets the same images as the rest.
sync_images() {
  local tar n marker pids=()
  shopt -s nullglob
  for tar in "$BED"/images/*.tar; do
    for n in "${NODES[@]}"; do
      daemon_pid "$n" >/dev/null || continue
      marker="$(node_dir "$n")/loaded/$(basename "$tar")"
      [ -e "$marker" ] && [ ! "$tar" -nt "$marker" ] && continue
      (dk "$n" load -q -i "$tar" >/dev/null && mkdir -p "$(dirname "$marker")" && touch -r "$tar" "$marker") &
      pids+=($!)
    done
  done
  shopt -u nullglob
  local pid failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  [ "$failed" -eq 0 ] || die "docker load failed on a node"
}

# --- commands ------------------------------------------------------------------------------

# One attempt, run as its own process (`up-once`) so that `set -e` holds inside it: in a function
# called as `up || …` bash ignores it.
up_once() {
  local t0 n
  t0=$(now_ms)
  mkdir -p "$BED/sock" "$BED/images"
  ensure_switch
  for n in "${NODES[@]}"; do ensure_node_net "$n"; done
  for n in "${NODES[@]}"; do ensure_daemon "$n"; done
  [ ${#STARTED[@]} -eq 0 ] || log "started dockerd on ${STARTED[*]}"
  for n in "${NODES[@]}"; do wait_daemon "$n"; done
  log "daemons answer after $(($(now_ms) - t0)) ms"
  if ! swarm_healthy; then
    form_swarm || die "the nodes' swarm state is not one to repair"
    # Restarted managers need an election (10-20 s here); a join needs a few seconds.
    wait_swarm_healthy 60 || die "the swarm is not healthy (after up to 60 s)"
  fi
  log "swarm ready after $(($(now_ms) - t0)) ms"
  ensure_test_image
  sync_images
  log "up in $(($(now_ms) - t0)) ms (sockets $BED/sock/mnN.sock, switch namespace $SWITCH_NS)"
}

check_prerequisites() {
  local tool
  for tool in dockerd containerd docker ip nsenter unshare setsid flock; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool missing: run scripts/setup-swarm.sh (installs docker.io)"
  done
  [ -x /bin/busybox ] || die "/bin/busybox missing: run scripts/setup-swarm.sh (installs busybox-static)"
}

cmd_up() {
  check_prerequisites
  bash "$0" up-once && return 0
  # An interrupted run, a half-formed swarm, a daemon that cannot start on its old state: start
  # again from nothing, once.
  log "the bed is not in a state this can repair; rebuilding it"
  cmd_down
  bash "$0" up-once
}

unmount_under() { # dir: every mount below it, deepest first (dockerd's own, left by a kill -9)
  local dir=$1 m
  awk -v d="$dir/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while read -r m; do
    m=$(printf '%b' "$m") # mountinfo escapes a space as \040, which %b decodes
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || true
  done
}

cmd_down() {
  local n t0
  t0=$(now_ms)
  for n in "${NODES[@]}"; do kill_node_processes "$n"; done
  unmount_under "$BED"
  if awk -v d="$BED/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
    die "mounts remain under $BED; not removing it"
  fi
  for n in "${NODES[@]}"; do
    [ -e "$(node_ns "$n")" ] && ip netns del "$PREFIX-mn$n"
  done
  [ -e "$SWITCH_NS" ] && ip netns del "$PREFIX-sw"
  # Emptied cgroups the node's containers were placed in, deepest first.
  find /sys/fs/cgroup/*/"$PREFIX" -depth -type d -exec rmdir {} + 2>/dev/null || true
  rm -rf --one-file-system "$BED"
  log "down in $(($(now_ms) - t0)) ms"
}

node_rss_kib() {
  local n=$1 pid total=0 kib
  for pid in $(node_pids "$n" | sort -u); do
    kib=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status" 2>/dev/null || true)
    total=$((total + ${kib:-0}))
  done
  echo "$total"
}

cmd_status() {
  local n pid ok=0 m
  printf '%-4s %-15s %-22s %-10s %s\n' NODE ADDRESS DAEMON SWARM "RSS(MiB)"
  for n in "${NODES[@]}"; do
    if pid=$(daemon_pid "$n"); then
      printf '%-4s %-15s %-22s %-10s %s\n' "mn$n" "$(node_addr "$n")" "up (pid $pid)" \
        "$(swarm_state "$n")" "$(($(node_rss_kib "$n") / 1024))"
    else
      printf '%-4s %-15s %-22s %-10s %s\n' "mn$n" "$(node_addr "$n")" down - -
      ok=1
    fi
  done
  if m=$(answering_manager); then
    echo
    dk "$m" node ls --format 'table {{.Hostname}}\t{{.Status}}\t{{.Availability}}\t{{.ManagerStatus}}'
    echo
    echo "leader: $(dk "$m" node ls --format '{{.Hostname}} {{.ManagerStatus}}' | awk '$2 == "Leader" { print $1 }')"
  else
    echo
    echo "no manager answers for the swarm (no quorum, or no swarm)"
    ok=1
  fi
  swarm_healthy || ok=1
  return $ok
}

cmd_kill() {
  local n=$1 pid
  check_node "$n"
  pid=$(daemon_pid "$n") || die "mn$n: dockerd is not running"
  kill -9 "$pid"
  while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done
  log "mn$n: dockerd (pid $pid) killed; its containers keep running"
}

cmd_start() {
  local n=$1 deadline m t0
  check_node "$n"
  t0=$(now_ms)
  [ -e "$(node_ns "$n")" ] || die "mn$n: no namespace; run scripts/multinode.sh up"
  if daemon_pid "$n" >/dev/null; then
    log "mn$n: dockerd already runs"
  else
    start_daemon "$n"
  fi
  wait_daemon "$n" || exit 1
  # Back means: in the swarm again and Ready as the managers see it (needs their quorum).
  deadline=$((SECONDS + 90))
  while [ $SECONDS -lt $deadline ]; do
    if [ "$(swarm_state "$n")" = active ] && m=$(answering_manager) &&
      [ "$(dk "$m" node ls --filter "name=mn$n" --format '{{.Hostname}} {{.Status}}' 2>/dev/null |
        awk -v h="mn$n" '$1 == h { print $2 }')" = Ready ]; then
      sync_images
      log "mn$n: back in $(($(now_ms) - t0)) ms"
      return 0
    fi
    sleep 0.25
  done
  die "mn$n: dockerd runs but the node is not Ready in the swarm after 90 s"
}

cmd_load() {
  local tar=${1:-} name
  [ -f "$tar" ] || die "load: no tarball '$tar'"
  mkdir -p "$BED/images"
  name=$(basename "$tar")
  [[ "$name" == *.tar ]] || name="$name.tar"
  # Kept, so a node started or rebuilt later gets it too (sync_images). The same tarball again
  # changes nothing: its nodes already have it.
  if ! cmp -s "$tar" "$BED/images/$name"; then
    cp -f "$tar" "$BED/images/$name.tmp"
    mv -f "$BED/images/$name.tmp" "$BED/images/$name"
  fi
  sync_images
  log "loaded $name into every running node"
}

# What a client (the test harness) needs to find the bed, one key=value a line.
cmd_info() {
  local n
  echo "dir=$BED"
  echo "switch_ns=$SWITCH_NS"
  echo "switch_addr=$NET.1"
  echo "subnet=$NET.0/24"
  for n in "${NODES[@]}"; do
    echo "node=mn$n $(node_addr "$n") $(node_sock "$n") $([ "$n" -le "$MANAGERS" ] && echo manager || echo worker)"
  done
}

usage() { sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

main() {
  local cmd=${1:-}
  [ $# -gt 0 ] && shift
  case "$cmd" in
    up | down | kill | start | load)
      need_root
      # One changer at a time: test binaries and a person may call `up` at once.
      mkdir -p "$(dirname "$LOCK")"
      exec 9>"$LOCK"
      flock 9
      ;;
  esac
  case "$cmd" in
    up) cmd_up ;;
    up-once) up_once ;;
    down) cmd_down ;;
    status) cmd_status ;;
    kill) cmd_kill "${1:-}" ;;
    start) cmd_start "${1:-}" ;;
    load) cmd_load "${1:-}" ;;
    docker)
      check_node "${1:-}"
      local n=$1
      shift
      exec env DOCKER_HOST="unix://$(node_sock "$n")" docker "$@"
      ;;
    addr)
      check_node "${1:-}"
      node_addr "$1"
      ;;
    ns) echo "$SWITCH_NS" ;;
    info) cmd_info ;;
    *) usage ;;
  esac
}

main "$@"
