#!/usr/bin/env bash
# swarmpilot's benchmarks, side by side with the floor (actix-web that only parses) and the Python
# peer (FastAPI), all measured in this one run on this machine; prints a markdown table of the
# figures and ratios and writes it to bench/results.md.
#
#   bash bench/run.sh                 # full run (about 6 minutes)
#   SECONDS_PER_RUN=3 bash bench/run.sh   # shorter runs
#
# Needs the kit in ../shared/bench (KIT=... to point elsewhere) and a local swarm
# (scripts/setup-swarm.sh). Installs wrk (Debian) and the Python peer's packages (PyPI, in
# bench/.venv) when missing. Traffic stays on 127.0.0.1.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
KIT=${KIT:-$ROOT/../shared/bench}
DUR=${SECONDS_PER_RUN:-10}
TOKEN=bench-token
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for pid in "${PIDS[@]}"; do kill "$pid" 2>/dev/null || true; done
  docker service rm bench_react bench_register >/dev/null 2>&1 || true
  rm -rf "$WORK"
}
trap cleanup EXIT
log() { printf 'bench: %s\n' "$*" >&2; }

# --- tools -------------------------------------------------------------------------------------
bash scripts/setup-swarm.sh
command -v wrk >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null; }
if [ ! -x bench/.venv/bin/uvicorn ]; then
  log "installing the Python peer (fastapi, uvicorn, cachetools) into bench/.venv"
  python3 -m venv bench/.venv
  bench/.venv/bin/pip install -q fastapi uvicorn cachetools
fi
log "building swarmpilot, loadgen and the floor (release)"
cargo build -q --release --locked --bin swarmpilot --example loadgen
cargo build -q --release --manifest-path "$KIT/floor/Cargo.toml" --target-dir target/floor

wait_port() { for _ in $(seq 1 100); do (echo >/dev/tcp/127.0.0.1/"$1") 2>/dev/null && return 0; sleep 0.1; done; log "port $1 never opened"; exit 1; }
rss_kb() { awk '/VmRSS/ {print $2}' "/proc/$1/status"; }

# --- swarmpilot with every storm service in cooldown (restored from a journal) -----------------
mkdir -p "$WORK/data" "$WORK/data-dup"
echo "$TOKEN" >"$WORK/token"
# data: every storm service scaled by an earlier alert (storm10 is on the cooldown path);
# data-dup: by storm10's very alerts (storm10 is a repeat notification: the duplicate path).
python3 - "$WORK" "$KIT/payloads/storm10.json" <<'PY'
import json, sys, time
work, payload = sys.argv[1], json.load(open(sys.argv[2]))
now = int(time.time() * 1000)
same = {a["labels"]["service"]: a for a in payload["alerts"]}
for data, duplicate in (("data", False), ("data-dup", True)):
    with open(f"{work}/{data}/journal.jsonl", "w") as f:
        for i in range(200):
            service = f"bench_svc{i}"
            alert = same.get(service) if duplicate else None
            change = {"kind": "replicas", "from": 1, "to": 3}
            f.write(json.dumps({"type": "intent", "id": f"warm-{i}", "time_ms": now, "rule": "scale-up-on-cpu",
                "alert": "ServiceHighCPU", "fingerprint": alert["fingerprint"] if alert else "earlier",
                "starts_at": alert["startsAt"] if alert else "2026-11-30T08:00:00Z",
                "status": "firing", "service": service, "action": {"kind": "scale_up", "step": 2,
                "max_replicas": 10}, "cooldown_ms": 86400000, "change": change}) + "\n")
            f.write(json.dumps({"type": "outcome", "id": f"warm-{i}", "time_ms": now, "outcome": "succeeded",
                "reason": "", "change": change}) + "\n")
PY
config() { # port data_dir [extra TOML]
cat <<TOML
listen = "127.0.0.1:$1"
rules_dir = "$ROOT/bench/rules"
data_dir = "$2"
[auth]
bearer_token_file = "$WORK/token"
[limits]
max_body_bytes = 1048576
requests_per_second_per_client = 0
actions_per_minute = 0
actions_per_service_per_hour = 0
${3:-}
TOML
}
config 19000 "$WORK/data" >"$WORK/swarmpilot.toml"
config 19003 "$WORK/data-dup" >"$WORK/swarmpilot-dup.toml"
# The cooldown path again in cluster mode (the same journal: cluster mode refuses from the same
# memory, and reads the swarm only for what it may admit).
cp -r "$WORK/data" "$WORK/data-cluster"
config 19004 "$WORK/data-cluster" "$(printf '[cluster]\nenabled = true\nregister_service = "bench_register"')" \
  >"$WORK/swarmpilot-cluster.toml"
RUST_LOG=${BENCH_LOG:-info} ./target/release/swarmpilot serve --config "$WORK/swarmpilot.toml" 2>"$WORK/swarmpilot.log" &
SP=$!; PIDS+=("$SP")
RUST_LOG=${BENCH_LOG:-info} ./target/release/swarmpilot serve --config "$WORK/swarmpilot-dup.toml" 2>"$WORK/swarmpilot-dup.log" &
PIDS+=($!)
RUST_LOG=${BENCH_LOG:-info} ./target/release/swarmpilot serve --config "$WORK/swarmpilot-cluster.toml" 2>"$WORK/swarmpilot-cluster.log" &
PIDS+=($!)
./target/floor/release/floor 127.0.0.1:19001 & PIDS+=($!)
bench/.venv/bin/uvicorn app:app --port 19002 --workers 2 --app-dir "$KIT/baseline_py" --log-level warning & PIDS+=($!)
wait_port 19000; wait_port 19001; wait_port 19002; wait_port 19003; wait_port 19004
sleep 1
RSS_IDLE=$(rss_kb "$SP")

answer=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data @"$KIT/payloads/storm10.json" http://127.0.0.1:19000/webhook)
echo "$answer" | grep -q '"decision":"cooldown"' || { log "swarmpilot is not on the cooldown path: $answer"; exit 1; }
answer=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data @"$KIT/payloads/storm10.json" http://127.0.0.1:19003/webhook)
echo "$answer" | grep -q '"decision":"duplicate"' || { log "swarmpilot is not on the duplicate path: $answer"; exit 1; }
answer=$(curl -s -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
  --data @"$KIT/payloads/storm10.json" http://127.0.0.1:19004/webhook)
echo "$answer" | grep -q '"decision":"cooldown"' || { log "swarmpilot in cluster mode is not on the cooldown path: $answer"; exit 1; }

wrk_run() { # url -> "rps p99_ms"
  BODY="$KIT/payloads/storm10.json" TOKEN=$TOKEN wrk -t1 -c32 -d"${DUR}s" -s "$KIT/post.lua" --latency "$1" >"$WORK/wrk.out"
  local rps p99
  rps=$(awk '/Requests\/sec/ {print $2}' "$WORK/wrk.out")
  p99=$(awk '$1=="99%" {v=$2; if (v ~ /us$/) {sub(/us/,"",v); v=v/1000} else if (v ~ /ms$/) {sub(/ms/,"",v)} else if (v ~ /s$/) {sub(/s/,"",v); v=v*1000}; print v}' "$WORK/wrk.out")
  local errors; errors=$(awk '/Non-2xx|Socket errors/ {print}' "$WORK/wrk.out")
  [ -z "$errors" ] || log "wrk reported: $errors"
  echo "$rps $p99"
}

ROUNDS=${ROUNDS:-3}
log "(1) throughput, storm10.json, wrk -t1 -c32 -d${DUR}s, floor and swarmpilot interleaved x$ROUNDS"
( peak=0; while kill -0 "$SP" 2>/dev/null; do r=$(rss_kb "$SP"); [ "$r" -gt "$peak" ] && peak=$r && echo "$peak" >"$WORK/peak"; sleep 0.2; done ) & SAMPLER=$!
: >"$WORK/floor.runs"; : >"$WORK/sp.runs"; : >"$WORK/dup.runs"; : >"$WORK/cluster.runs"
for _ in $(seq 1 "$ROUNDS"); do
  wrk_run http://127.0.0.1:19001/webhook >>"$WORK/floor.runs"
  wrk_run http://127.0.0.1:19000/webhook >>"$WORK/sp.runs"
  wrk_run http://127.0.0.1:19003/webhook >>"$WORK/dup.runs"
  wrk_run http://127.0.0.1:19004/webhook >>"$WORK/cluster.runs"
done
median() { sort -n -k1,1 "$1" | awk '{a[NR]=$0} END {print a[int((NR+1)/2)]}'; }
read -r FLOOR_RPS FLOOR_P99 < <(median "$WORK/floor.runs")
read -r SP_RPS SP_P99 < <(median "$WORK/sp.runs")
read -r DUP_RPS DUP_P99 < <(median "$WORK/dup.runs")
read -r CLUSTER_RPS CLUSTER_P99 < <(median "$WORK/cluster.runs")
CLUSTER_VS_LOCAL=$(paste "$WORK/cluster.runs" "$WORK/sp.runs" | awk '{printf "%.2f ", $1/$3}')
RATIOS=$(paste "$WORK/sp.runs" "$WORK/floor.runs" | awk '{printf "%.2f ", $1/$3}')
DUP_RATIOS=$(paste "$WORK/dup.runs" "$WORK/floor.runs" | awk '{printf "%.2f ", $1/$3}')
read -r PY_RPS PY_P99 < <(wrk_run http://127.0.0.1:19002/webhook)

log "(1) fixed rate 5000 req/s for ${DUR}s (open loop)"
FIXED=$(./target/release/examples/loadgen --url http://127.0.0.1:19000/webhook \
  --body "$KIT/payloads/storm10.json" --token "$TOKEN" --rate 5000 --seconds "$DUR")
kill "$SAMPLER" 2>/dev/null || true
RSS_LOAD=$(cat "$WORK/peak" 2>/dev/null || echo 0)
FIXED_P99=$(echo "$FIXED" | python3 -c 'import json,sys; print(json.load(sys.stdin)["p99_ms"])')
FIXED_ERR=$(echo "$FIXED" | python3 -c 'import json,sys; d=json.load(sys.stdin); print(d["errors"])')

log "(2) reaction time on the real swarm"
docker service rm bench_react >/dev/null 2>&1 || true
docker service create -q --detach=false --name bench_react --replicas 2 --label swarmpilot.enable=true \
  --label swarmpilot.test=true --stop-grace-period 1s swarmpilot-test/busybox:1 >/dev/null
fire() { # alertname fingerprint -> seconds for the answer (?wait=true: outcome known)
  local body; body=$(python3 -c "import json,sys; print(json.dumps({'version':'4','status':'firing','receiver':'swarmpilot','alerts':[{'status':'firing','labels':{'alertname':sys.argv[1],'service':'bench_react'},'startsAt':'2026-11-30T09:00:00Z','fingerprint':sys.argv[2]}]}))" "$1" "$2")
  curl -s -o "$WORK/fire.out" -w '%{time_total}\n' -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' \
    --data "$body" 'http://127.0.0.1:19000/webhook?wait=true'
  grep -q '"decision":"executed"' "$WORK/fire.out" || { log "not executed: $(cat "$WORK/fire.out")"; exit 1; }
}
: >"$WORK/react"
for i in $(seq 1 15); do fire BenchReactUp "up$i" >>"$WORK/react"; fire BenchReactDown "down$i" >>"$WORK/react"; done
REACT=$(python3 - "$WORK/react" <<'PY'
import sys
v = sorted(float(x) * 1000 for x in open(sys.argv[1]) if x.strip())
p = lambda q: v[min(len(v) - 1, round((len(v) - 1) * q))]
print(f"{p(0.5):.1f} {p(0.99):.1f} {len(v)}")
PY
)
read -r REACT_P50 REACT_P99 REACT_N <<<"$REACT"
running() { docker service ps bench_react --filter desired-state=running --format '{{.CurrentState}}' | grep -c '^Running' || true; }
since_ms() { python3 -c 'import sys, time; print(round((time.time() - float(sys.argv[1])) * 1000))' "$1"; }
body=$(python3 -c "import json; print(json.dumps({'version':'4','status':'firing','receiver':'swarmpilot','alerts':[{'status':'firing','labels':{'alertname':'ServiceHighCPU','severity':'warning','service':'bench_react'},'startsAt':'2026-11-30T09:00:00Z','fingerprint':'react-e2e'}]}))")
docker service update -q --detach --label-add swarmpilot.max_replicas=4 bench_react >/dev/null
until [ "$(running)" -eq 2 ]; do sleep 0.1; done
t0=$(date +%s.%N)
curl -s -o /dev/null -H "Authorization: Bearer $TOKEN" -H 'Content-Type: application/json' --data "$body" http://127.0.0.1:19000/webhook
until [ "$(running)" -eq 4 ]; do sleep 0.05; done
ALERT_TO_RUNNING=$(since_ms "$t0")
docker service scale -d bench_react=2 >/dev/null
until [ "$(running)" -eq 2 ]; do sleep 0.1; done
t0=$(date +%s.%N)
docker service scale -d bench_react=4 >/dev/null
until [ "$(running)" -eq 4 ]; do sleep 0.05; done
HAND_TO_RUNNING=$(since_ms "$t0")

log "(4) cost curve (criterion)"
cargo bench -q --bench matching -- --quiet >"$WORK/criterion.out" 2>&1 || { cat "$WORK/criterion.out"; exit 1; }
est() { python3 -c "import json,sys; print(round(json.load(open(sys.argv[1]))['mean']['point_estimate']/1000, 3))" "target/criterion/$1/new/estimates.json"; }

ratio() { python3 -c "print(f'{$1/$2:.2f}')"; }
{
echo "## Benchmarks — $(date -u +%Y-%m-%d), $(nproc) cores, one run, same machine"
echo
echo "| measure | swarmpilot | floor | Python peer | ratio | target |"
echo "|---|---|---|---|---|---|"
echo "| /webhook req/s, storm10, all in cooldown (wrk -c32, ${DUR}s; median of $ROUNDS interleaved runs) | ${SP_RPS} | ${FLOOR_RPS} | ${PY_RPS} | $(ratio "$SP_RPS" "$FLOOR_RPS")× floor (per round: ${RATIOS% }), $(ratio "$SP_RPS" "$PY_RPS")× Python | ≥ 0.9× floor, ≥ 30× Python |"
echo "| /webhook req/s, storm10 repeated: every alert a duplicate (same run) | ${DUP_RPS} | ${FLOOR_RPS} | | $(ratio "$DUP_RPS" "$FLOOR_RPS")× floor (per round: ${DUP_RATIOS% }) | ≥ 0.9× floor |"
echo "| … all in cooldown, in cluster mode ([cluster] enabled; same run) | ${CLUSTER_RPS} | ${FLOOR_RPS} | | $(ratio "$CLUSTER_RPS" "$SP_RPS")× local mode (per round: ${CLUSTER_VS_LOCAL% }) | ≥ 0.9× local mode |"
echo "| p99 at max throughput (wrk) | ${SP_P99} ms (duplicates: ${DUP_P99} ms) | ${FLOOR_P99} ms | ${PY_P99} ms | | |"
echo "| p99 at a fixed 5,000 req/s, open loop (${DUR}s) | ${FIXED_P99} ms ($FIXED_ERR errors) | | | | < 10 ms |"
echo "| webhook receipt → Docker update returned (client round trip, ?wait=true, n=$REACT_N) | p50 ${REACT_P50} ms, p99 ${REACT_P99} ms | | | | p99 < 50 ms |"
echo "| alert → 4 tasks running (2→4) | ${ALERT_TO_RUNNING} ms | \`docker service scale\` by hand: ${HAND_TO_RUNNING} ms | | | |"
echo "| RSS idle / peak under the load above | $((RSS_IDLE / 1024)) MB / $((RSS_LOAD / 1024)) MB | | | | < 30 MB under load |"
echo
echo "| matching, per alert (criterion mean) | 1 rule | 100 rules | 1,000 rules | 10,000 rules |"
echo "|---|---|---|---|---|"
echo "| indexed by alertname | $(est match_one_alert/1) µs | $(est match_one_alert/100) µs | $(est match_one_alert/1000) µs | $(est match_one_alert/10000) µs |"
echo "| full scan (what the index avoids) | | $(est match_one_alert_full_scan/100) µs | | $(est match_one_alert_full_scan/10000) µs |"
echo
echo "| 200-alert notification | parse | match vs 100 rules | whole pipeline, 10 alerts in cooldown | … 10 duplicates |"
echo "|---|---|---|---|---|"
echo "| criterion mean | $(est notification_200_alerts/parse) µs | $(est notification_200_alerts/match_100_rules) µs | $(est hot_path_10_alerts_in_cooldown) µs | $(est hot_path_10_alerts_duplicate) µs |"
echo "| … in cluster mode ([cluster] enabled) | | | $(est hot_path_10_alerts_in_cooldown_cluster_mode) µs | $(est hot_path_10_alerts_duplicate_cluster_mode) µs |"
} | tee bench/results.md
