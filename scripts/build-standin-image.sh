#!/usr/bin/env bash
# A stand-in for the images no registry here can give (grafana, loki, promtail, cadvisor,
# node-exporter, postgres, the application): FROM scratch with a static busybox, it serves HTTP
# on every port those images serve (an empty /metrics, /healthz, /ready, /api/health) and answers
# the commands the shipped stacks' health checks run (`wget`, `pg_isready`, `bash -c 'exec
# 3<>/dev/tcp/…'`), whatever command line the stack gives it. tests/deploy.rs deploys the shipped
# stacks with it, so what is tested is the stacks themselves: networks, configs, secrets, health
# checks, limits, update and rollback settings, convergence — not Grafana.
#
#   scripts/build-standin-image.sh   → swarmpilot-test/standin:1 (rebuilt only when this changes)
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=swarmpilot-test/standin:1
log() { printf 'build-standin-image: %s\n' "$*" >&2; }

[ -x /bin/busybox ] || { log "busybox-static missing: run scripts/setup-swarm.sh"; exit 1; }
dir=$(mktemp -d)
trap 'rm -rf "$dir"' EXIT
mkdir -p "$dir/root/bin" "$dir/root/usr/local/bin" "$dir/root/www/api" "$dir/root/tmp"
cp /bin/busybox "$dir/root/bin/busybox"
for path in /metrics /healthz /ready /-/healthy /-/ready /api/health /index.html; do
  mkdir -p "$dir/root/www$(dirname "$path")"
  : >"$dir/root/www$path"
done
# The ports of the images it stands in for: application 80, grafana 3000, loki 3100,
# cadvisor 8080, promtail 9080, node-exporter 9100, postgres 5432 (HTTP there: pg_isready below
# only asks whether something listens).
cat >"$dir/root/standin" <<'SH'
#!/bin/sh
for port in 80 3000 3100 5432 8080 9080 9100; do
  /bin/httpd -p "$port" -h /www
done
exec /bin/sleep 2147483647
SH
cat >"$dir/root/usr/local/bin/pg_isready" <<'SH'
#!/bin/sh
exec /bin/wget -q -O /dev/null http://127.0.0.1:5432/
SH
# promtail's check is bash's /dev/tcp: find the port in the command and ask it over HTTP.
cat >"$dir/root/bin/bash" <<'SH'
#!/bin/sh
port=$(echo "$*" | sed -n 's|.*/dev/tcp/[^/]*/\([0-9]*\).*|\1|p')
[ -n "$port" ] || exit 2
exec /bin/wget -q -O /dev/null "http://127.0.0.1:$port/"
SH
chmod +x "$dir/root/standin" "$dir/root/usr/local/bin/pg_isready" "$dir/root/bin/bash"
cat >"$dir/Dockerfile" <<'DOCKERFILE'
FROM scratch
COPY root/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
ENV PATH=/usr/local/bin:/bin
ENTRYPOINT ["/standin"]
DOCKERFILE
# busybox --install leaves files that exist alone: /bin/bash stays the stand-in above.
recipe=$( (cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum) | sha256sum | cut -d' ' -f1)
if [ "$(docker image inspect --format '{{index .Config.Labels "swarmpilot.recipe"}}' "$IMAGE" 2>/dev/null)" = "$recipe" ]; then
  log "$IMAGE up to date"
  exit 0
fi
echo "LABEL swarmpilot.recipe=$recipe" >>"$dir/Dockerfile"
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$dir" >/dev/null
log "built $IMAGE"
