#!/usr/bin/env bash
# Prometheus and Alertmanager images without a registry, for this machine's tests: Debian's
# binaries (prometheus, prometheus-alertmanager) put FROM scratch with exactly what they load —
# the libraries ldd lists and the ELF loader — so they can run as Swarm services on an overlay
# (tests/closed_loop.rs). Operators with a registry use prom/prometheus and prom/alertmanager.
#
#   scripts/build-monitoring-images.sh
#     → swarmpilot-test/prometheus:<Debian version>, swarmpilot-test/alertmanager:<Debian version>
#       (the version with characters a tag cannot hold, such as '+', turned into '_'),
#       printed on stdout as "prometheus <image>" and "alertmanager <image>" lines.
#
# Besides, as in the prom/* images, a busybox (the stacks' health checks run its wget) and, in
# Alertmanager's, amtool; and Alertmanager's notification templates. No CA bundle, no
# /etc/passwd (they run as root, which Prometheus needs to read the Docker socket for
# dockerswarm_sd_configs), no web UI assets (Debian keeps them in /usr/share; the HTTP APIs are
# compiled in). The data directories (/prometheus, /alertmanager) exist but are
# empty: mount a volume or a tmpfs there.
#
# Idempotent and fast when built: each image carries a label with the SHA-256 of everything it
# was built from (binary, libraries, loader, Dockerfile); an image whose label matches is kept.
set -euo pipefail

log() { printf 'build-monitoring-images: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

command -v docker >/dev/null 2>&1 || die "docker CLI missing: run scripts/setup-swarm.sh"

# A Docker tag is [A-Za-z0-9_.-]; Debian versions also use '+', '~' and ':'.
tag_of() { dpkg-query -W -f '${Version}' "$1" | tr -c 'A-Za-z0-9_.-' '_'; }

# The files a dynamically linked binary loads: every "=> /path" of ldd and the loader itself.
# vdso is the kernel's, not a file.
libs_of() {
  ldd "$1" | awk '/=> \// { print $3 } $1 ~ /^\/.*\/ld-linux/ { print $1 }' | sort -u
}

build() { # name, Debian package, binary, data dir, port, default args (JSON array items), files…
  local name=$1 package=$2 binary=$3 data=$4 port=$5 args=$6
  local files=("${@:7}")
  command -v "$binary" >/dev/null 2>&1 ||
    die "$binary missing: apt-get install $package (scripts/test.sh installs it)"
  local bin; bin=$(command -v "$binary")
  local image; image="swarmpilot-test/$name:$(tag_of "$package")"
  local dir; dir=$(mktemp -d)
  # shellcheck disable=SC2064 # expand now: dir is local to this call
  trap "rm -rf '$dir'" RETURN

  mkdir -p "$dir/root/bin" "$dir/root$data"
  cp "$bin" "$dir/root/bin/$name"
  local lib
  for lib in $(libs_of "$bin"); do
    # -L: the file a symlink such as /lib64/ld-linux-x86-64.so.2 names, at the path ldd printed.
    mkdir -p "$dir/root$(dirname "$lib")"
    cp -L "$lib" "$dir/root$lib"
  done
  [ -e "$dir/root/lib64/ld-linux-x86-64.so.2" ] || die "no loader among $bin's libraries (ldd $bin)"
  local file
  for file in "${files[@]}"; do
    [ -f "$file" ] || die "$file missing (from $package)"
    mkdir -p "$dir/root$(dirname "$file")"
    cp "$file" "$dir/root$file"
  done

  # The image's own empty directories (the config's and the data's) come with the COPY.
  mkdir -p "$dir/root/etc/$name"
  cat >"$dir/Dockerfile" <<DOCKERFILE
FROM scratch
COPY root/ /
RUN ["/bin/busybox", "--install", "-s", "/bin"]
WORKDIR $data
EXPOSE $port
ENTRYPOINT ["/bin/$name"]
CMD [$args]
DOCKERFILE
  local recipe
  recipe=$(cd "$dir" && find . -type f -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -d' ' -f1)
  if [ "$(docker image inspect --format '{{index .Config.Labels "swarmpilot.recipe"}}' "$image" 2>/dev/null)" = "$recipe" ]; then
    log "$image up to date"
  else
    echo "LABEL swarmpilot.recipe=$recipe" >>"$dir/Dockerfile"
    # Debian's docker.io has no BuildKit; the legacy builder warns about it on stderr.
    DOCKER_BUILDKIT=0 docker build -q -t "$image" "$dir" >"$dir/build.log" 2>&1 ||
      { cat "$dir/build.log" >&2; die "docker build of $image failed"; }
    log "$image built ($(docker image inspect --format '{{.Size}}' "$image" | numfmt --to=iec))"
  fi
  echo "$name $image"
}

# The prom/* images are built on busybox: the shipped stacks' health checks run its wget, and
# operators run amtool inside Alertmanager's. The same here (Debian's busybox-static).
[ -x /bin/busybox ] || die "busybox-static missing: run scripts/setup-swarm.sh"
build prometheus prometheus prometheus /prometheus 9090 \
  '"--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"' \
  /bin/busybox
# Debian's Alertmanager reads its notification templates from /usr/share (upstream compiles them
# in): without default.tmpl it loads no configuration at all.
build alertmanager prometheus-alertmanager prometheus-alertmanager /alertmanager 9093 \
  '"--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"' \
  /usr/share/prometheus/alertmanager/default.tmpl /usr/share/prometheus/alertmanager/email.tmpl \
  /bin/busybox /usr/bin/amtool
