#!/usr/bin/env bash
# Cluster mode's figures on the multi-node bed (scripts/multinode.sh), with the release image:
# what cluster mode adds to an admitted action against local mode, and the failover figures
# (a storm through the Alertmanager pair, a replica killed mid-storm, the leader's engine
# killed). Writes them to bench/cluster-results.md. The /webhook refusal hot path in cluster
# mode is in bench/run.sh (HTTP) and `cargo bench --bench matching` (criterion).
#
#   bash bench/cluster.sh                   # ≈ 10 min cold (the static release build), then ≈ 6 min
#   SP_BENCH_ROUNDS=61 bash bench/cluster.sh    # more admissions per mode (default 31, first one warm-up)
#
# The figures come from tests/cluster.rs: the failover tests print theirs, the admission
# measurement is an #[ignore]d test there (it asserts no speed, it measures). Traffic stays in
# the bed's namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=bench/cluster-results.md
LOG=$(mktemp)
trap 'rm -f "$LOG"' EXIT

bash scripts/setup-swarm.sh
export SP_PROFILE=release
bash scripts/build-image.sh
bed_was_up=1
bash scripts/multinode.sh status >/dev/null 2>&1 || bed_was_up=0
bash scripts/multinode.sh up
[ "$bed_was_up" = 1 ] || trap 'rm -f "$LOG"; bash scripts/multinode.sh down' EXIT
bash scripts/multinode.sh load target/swarmpilot-image.tar

cargo test --locked --test cluster -- --include-ignored --nocapture --test-threads 1 \
  storm replica_killed leaders_engine admission_cost 2>&1 | tee "$LOG" >&2

{
  echo "## Cluster mode on the bed — $(date -u +%Y-%m-%d), $(nproc) cores, 3 managers + 1 worker as dockerds on this machine, release image"
  echo
  echo "| figure | measured |"
  echo "|---|---|"
  sed -n 's/^.*FIGURE \([^:]*\): \(.*\)$/| \1 | \2 |/p' "$LOG"
} | tee "$OUT"
grep -q 'FIGURE admission cluster' "$LOG" || { echo "cluster: the admission figures are missing" >&2; exit 1; }
