#!/usr/bin/env bash
# Coverage-guided fuzzing of the two parsers that read untrusted text: the webhook payload and the
# rule files. Needs the nightly toolchain and cargo-fuzz (installed here if missing).
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 60)
# A crash leaves its input in fuzz/artifacts/<target>/ and makes this script exit non-zero.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-60}"

if ! rustup toolchain list | grep -q nightly; then
    echo "fuzz: the nightly toolchain is required (rustup toolchain install nightly)" >&2
    exit 1
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

for target in payload rules; do
    mkdir -p "fuzz/corpus/$target"
    cp -n fuzz/seeds/"$target"/* "fuzz/corpus/$target/"
    echo "fuzz: $target for ${seconds}s"
    log="/tmp/swarmpilot-fuzz-$target.log"
    status=0
    cargo +nightly fuzz run "$target" "fuzz/corpus/$target" -- \
        -max_total_time="$seconds" -max_len=262144 -rss_limit_mb=2048 -timeout=10 \
        >"$log" 2>&1 || status=$?
    grep -E "^(#[0-9]+ *DONE|Done [0-9]+ runs|SUMMARY)" "$log" || true
    if [ "$status" -ne 0 ]; then
        echo "fuzz: $target found a crash; see fuzz/artifacts/$target/ and $log" >&2
        exit 1
    fi
done
echo "fuzz: no crash"
