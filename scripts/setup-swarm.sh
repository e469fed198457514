#!/usr/bin/env bash
# Sets up a single-node Docker Swarm on this machine for swarmpilot's demo and tests:
# installs Debian's docker.io and busybox-static when missing, starts dockerd when it is not
# running, initialises the swarm on loopback and builds the small local images (no registry is
# needed: FROM scratch + a static busybox). Safe to run again; it only does what is missing.
set -euo pipefail

log() { printf 'setup-swarm: %s\n' "$*" >&2; }
need_root() {
  if [ "$(id -u)" -ne 0 ]; then
    log "must run as root (it installs packages and starts dockerd)"; exit 1
  fi
}

install_packages() {
  local missing=()
  command -v dockerd >/dev/null 2>&1 || missing+=(docker.io)
  [ -x /bin/busybox ] || missing+=(busybox-static)
  [ ${#missing[@]} -eq 0 ] && return 0
  need_root
  log "installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
}

docker_up() { docker info >/dev/null 2>&1; }

start_dockerd() {
  docker_up && return 0
  need_root
  log "starting dockerd (log: /var/log/swarmpilot-dockerd.log)"
  # A daemon still shutting down holds the pid file: let it finish. A stale pid file from a
  # killed daemon stops a new one from starting: remove it.
  if [ -f /var/run/docker.pid ]; then
    local old; old=$(cat /var/run/docker.pid)
    for _ in $(seq 1 60); do kill -0 "$old" 2>/dev/null || break; sleep 0.5; done
    kill -0 "$old" 2>/dev/null || rm -f /var/run/docker.pid
  fi
  nohup dockerd >>/var/log/swarmpilot-dockerd.log 2>&1 &
  for _ in $(seq 1 120); do
    docker_up && return 0
    sleep 0.5
  done
  log "dockerd did not come up; last lines of its log:"
  tail -n 20 /var/log/swarmpilot-dockerd.log >&2 || true
  exit 1
}

init_swarm() {
  local state
  state=$(docker info --format '{{.Swarm.LocalNodeState}}')
  if [ "$state" = "active" ]; then return 0; fi
  log "initialising the swarm on 127.0.0.1"
  docker swarm init --advertise-addr 127.0.0.1 >/dev/null
}

build_image() { # name:tag, CMD as JSON
  local image=$1 cmd=$2 dir
  docker image inspect "$image" >/dev/null 2>&1 && return 0
  log "building $image"
  dir=$(mktemp -d)
  cp /bin/busybox "$dir/busybox"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
CMD $cmd
DOCKERFILE
  DOCKER_BUILDKIT=0 docker build -q -t "$image" "$dir" >/dev/null 2>&1 ||
    DOCKER_BUILDKIT=0 docker build -t "$image" "$dir"
  rm -rf "$dir"
}

install_packages
start_dockerd
init_swarm
# A long-running task that stops at once on SIGTERM, so scaling and restarts are quick.
IDLE='["/bin/sh", "-c", "trap \"exit 0\" TERM; while true; do sleep 1; done"]'
build_image swarmpilot-test/busybox:1 "$IDLE"
# A second tag of the same image: another task template, for rollback tests.
docker image inspect swarmpilot-test/busybox:2 >/dev/null 2>&1 ||
  docker tag swarmpilot-test/busybox:1 swarmpilot-test/busybox:2
build_image swarmpilot-demo/web:1 "$IDLE"
log "ready: $(docker info --format 'swarm {{.Swarm.LocalNodeState}}, engine {{.ServerVersion}}')"
