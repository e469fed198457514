#!/usr/bin/env bash
# The test command: sets up the local swarm (scripts/setup-swarm.sh) and runs the whole suite,
# unit tests and the integration tests against the real HTTP server and the real swarm.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-swarm.sh
# The rest of the real parts the suite drives: Alertmanager + amtool, Prometheus + promtool,
# and headless Chromium for the status page.
missing=()
command -v prometheus-alertmanager >/dev/null 2>&1 || missing+=(prometheus-alertmanager)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
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
cargo test --locked --all-targets "$@"
