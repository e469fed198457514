#!/usr/bin/env bash
# Load on the real swarm (issue 6, point 6, first half): RATE req/s of 10-alert payloads for
# SECONDS s against a release build, open loop (examples/loadgen.rs: latency from each request's
# scheduled send time). Ten opted-in services take the alerts; the first request scales each once
# and every later one meets the cooldown, as a storm of repeat notifications does.
# Passes when there are 0 errors and p99 < P99_MS.
#   bash scripts/load.sh                       # 5000 req/s for 60 s, p99 < 20 ms
#   RATE=2000 SECONDS_OF_LOAD=10 bash scripts/load.sh
set -euo pipefail
cd "$(dirname "$0")/.."
RATE=${RATE:-5000}
DURATION=${SECONDS_OF_LOAD:-60}
P99_MS=${P99_MS:-20}
PORT=${PORT:-19100}
log() { echo "load: $*" >&2; }

bash scripts/setup-swarm.sh >/dev/null
cargo build -q --release --locked --bin swarmpilot --example loadgen

WORK=$(mktemp -d)
SERVICES=()
cleanup() {
  [ -n "${SP:-}" ] && kill "$SP" 2>/dev/null || true
  [ "${#SERVICES[@]}" -gt 0 ] && docker service rm "${SERVICES[@]}" >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

for i in $(seq 0 9); do
  name="sp_load_$$_$i"
  SERVICES+=("$name")
  docker service create -d -q --no-resolve-image --name "$name" --replicas 1 --stop-grace-period 1s \
    --label swarmpilot.enable=true --label swarmpilot.max_replicas=2 --label swarmpilot.test=true \
    swarmpilot-test/busybox:1 >/dev/null
done

python3 - "$$" >"$WORK/payload.json" <<'PY'
import json, sys
pid = sys.argv[1]
alerts = [{
    "status": "firing",
    "labels": {"alertname": "ServiceHighCPU", "service": f"sp_load_{pid}_{i}", "severity": "warning",
               "instance": f"10.0.1.{i}:8080", "job": "cadvisor", "env": "production"},
    "annotations": {"summary": f"ServiceHighCPU on sp_load_{pid}_{i}"},
    "startsAt": "2026-11-30T09:00:00.000Z", "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus:9090/graph", "fingerprint": f"{0x10ad0000 + i:016x}",
} for i in range(10)]
print(json.dumps({"version": "4", "groupKey": "{}:{alertname=\"ServiceHighCPU\"}", "status": "firing",
                  "receiver": "swarmpilot", "groupLabels": {"alertname": "ServiceHighCPU"},
                  "commonLabels": {"alertname": "ServiceHighCPU"}, "commonAnnotations": {},
                  "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0, "alerts": alerts}))
PY

echo "load-token-$$" >"$WORK/token"
cat >"$WORK/swarmpilot.toml" <<TOML
listen = "127.0.0.1:$PORT"
rules_dir = "rules"
data_dir = "$WORK/data"
[auth]
bearer_token_file = "$WORK/token"
[limits]
requests_per_second_per_client = 0
TOML
RUST_LOG=warn ./target/release/swarmpilot serve --config "$WORK/swarmpilot.toml" 2>"$WORK/swarmpilot.log" &
SP=$!
for _ in $(seq 1 100); do curl -sf "http://127.0.0.1:$PORT/-/healthy" >/dev/null && break; sleep 0.1; done

first=$(curl -s -H "Authorization: Bearer load-token-$$" -H 'Content-Type: application/json' \
  --data @"$WORK/payload.json" "http://127.0.0.1:$PORT/webhook?wait=true")
echo "$first" | grep -q '"decision":"executed"' || { log "the first delivery did not act: $first"; exit 1; }

# Let the scaled tasks start first: ten containers starting would measure dockerd, not swarmpilot.
for _ in $(seq 1 120); do
  settled=$(docker service ls --filter "name=sp_load_$$_" --format '{{.Replicas}}' | grep -c '^2/2' || true)
  [ "$settled" -eq 10 ] && break
  sleep 0.5
done
sleep 2
RSS_BEFORE=$(awk '/VmRSS/ {print $2}' "/proc/$SP/status")
log "$RATE req/s of 10-alert payloads for ${DURATION}s"
REPORT=$(./target/release/examples/loadgen --url "http://127.0.0.1:$PORT/webhook" \
  --body "$WORK/payload.json" --token "load-token-$$" --rate "$RATE" --seconds "$DURATION" --warm-connections 64 ${TIMELINE:+--timeline})
RSS_AFTER=$(awk '/VmRSS/ {print $2}' "/proc/$SP/status")
echo "$REPORT"
log "RSS ${RSS_BEFORE} KiB before, ${RSS_AFTER} KiB after"
python3 - "$REPORT" "$P99_MS" <<'PY'
import json, sys
r, limit = json.loads(sys.argv[1]), float(sys.argv[2])
ok = r["errors"] == 0 and r["completed"] == r["sent"] and r["p99_ms"] < limit
print(f"load: {r['completed']}/{r['sent']} answered, {r['errors']} errors, p50 {r['p50_ms']:.2f} ms, "
      f"p99 {r['p99_ms']:.2f} ms, max {r['max_ms']:.2f} ms, {r['achieved_rps']:.0f} req/s: "
      + ("PASS" if ok else f"FAIL (need 0 errors and p99 < {limit} ms)"), file=sys.stderr)
sys.exit(0 if ok else 1)
PY
