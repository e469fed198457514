#!/usr/bin/env bash
# The test command: sets up the local swarm (scripts/setup-swarm.sh) and the multi-node bed
# (scripts/multinode.sh) and runs the whole suite, unit tests and the integration tests against
# the real HTTP server, the real swarm and the bed.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-swarm.sh
# The rest of the real parts the suite drives: Alertmanager + amtool, Prometheus + promtool,
# and headless Chromium for the status page.
missing=()
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
# tests/deploy.rs creates the secrets as the README does.
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "test: installing ${missing[*]}" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# Services left by an interrupted earlier run (tests name theirs uniquely and remove them).
leftovers=$(docker service ls -q --filter label=swarmpilot.test=true)
if [ -n "$leftovers" ]; then
  echo "test: removing leftover test services" >&2
  docker service rm $leftovers >/dev/null
fi
docker volume prune -f --filter label=swarmpilot.test=true >/dev/null || true
# Cluster-mode tests leave budget registers (services) and kept templates (configs) named
# after their test services when interrupted.
registers=$(docker service ls --filter label=swarmpilot.register=true --format '{{.Name}}' | grep '^sptest_' || true)
if [ -n "$registers" ]; then docker service rm $registers >/dev/null; fi
templates=$(docker config ls --filter label=swarmpilot.template.service --format '{{.ID}} {{.Labels}}' |
  awk '/swarmpilot.template.service=sptest_/ {print $1}')
if [ -n "$templates" ]; then docker config rm $templates >/dev/null || true; fi

# The multi-node test bed for tests/cluster.rs (scripts/multinode.sh) and swarmpilot's image for
# it (scripts/build-image.sh from a static debug build: a release one would take ≈ 10 min cold). For the whole suite
# both are made up front, so a failure shows before the tests and the time of each is printed;
# with arguments (a subset) the tests make them only if they need them. A bed this run brought
# up is taken down at the end, pass or fail (SP_KEEP_BED=1 keeps it); a bed that was already up
# (someone's, or left by an interrupted run) is used as it is and left alone.
step() { # what, command…
  local t0=$SECONDS
  "${@:2}"
  echo "test: $1 in $((SECONDS - t0)) s" >&2
}
if ! bash scripts/multinode.sh status >/dev/null 2>&1 && [ "${SP_KEEP_BED:-0}" != 1 ]; then
  trap 'bash scripts/multinode.sh down' EXIT
fi
if [ $# -eq 0 ]; then
  step "image (static debug build, docker build, save)" env SP_PROFILE=dev bash scripts/build-image.sh
  step "multi-node bed up" bash scripts/multinode.sh up
  step "image loaded on the bed" bash scripts/multinode.sh load target/swarmpilot-image.tar
fi
cargo test --locked --all-targets "$@"
