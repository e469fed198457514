#!/usr/bin/env bash
# The main job on a fresh machine: set up a local swarm (scripts/setup-swarm.sh), deploy the demo
# service demo_web (2 replicas, opted in), build swarmpilot and run it in the foreground on
# 127.0.0.1:9095 with the shipped rules. Fire an alert from another terminal:
#   curl -sS -H 'Authorization: Bearer demo-token-change-me' -H 'Content-Type: application/json' \
#        --data @demo/alert-cpu.json http://127.0.0.1:9095/webhook
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/setup-swarm.sh
if ! docker service inspect demo_web >/dev/null 2>&1; then
  echo "demo: deploying demo_web (2 replicas, swarmpilot.enable=true, max 6)" >&2
  docker service create --detach --name demo_web --replicas 2 \
    --label swarmpilot.enable=true --label swarmpilot.max_replicas=6 \
    --stop-grace-period 1s swarmpilot-demo/web:1 >/dev/null
fi
cargo build --release --locked
./target/release/swarmpilot check --config demo/swarmpilot.toml
echo "demo: swarmpilot on http://127.0.0.1:9095 (Ctrl-C to stop)" >&2
exec ./target/release/swarmpilot serve --config demo/swarmpilot.toml
