#!/usr/bin/env bash
# The test command: sets up the local swarm (scripts/setup-swarm.sh) and runs the whole suite,
# unit tests and the integration tests against the real HTTP server and the real swarm.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-swarm.sh
# Services left by an interrupted earlier run (tests name theirs uniquely and remove them).
leftovers=$(docker service ls -q --filter label=swarmpilot.test=true)
if [ -n "$leftovers" ]; then
  echo "test: removing leftover test services" >&2
  docker service rm $leftovers >/dev/null
fi
docker volume prune -f --filter label=swarmpilot.test=true >/dev/null || true
cargo test --locked --all-targets "$@"
