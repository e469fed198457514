#!/usr/bin/env bash
# swarmpilot's image without a registry: a statically linked release binary built here, put
# FROM scratch by the final stage of the repository's Dockerfile (the same image `docker build .`
# makes where rust:1-bookworm can be pulled), built on the primary engine and saved for
# `scripts/multinode.sh load`.
#
#   scripts/build-image.sh            → image swarmpilot:local, tarball target/swarmpilot-image.tar
#   SP_PROFILE=dev scripts/build-image.sh   the same image from a static debug build (stripped):
#                                     the test suite's choice — a cold static release build takes
#                                     ≈ 10 min on 2 cores (thin LTO), a debug one a third of that
#
# Incremental: cargo rebuilds only what changed, docker reuses its layer cache, and the tarball is
# written again only when the image changed (the bed loads a tarball only when it is newer).
set -euo pipefail
cd "$(dirname "$0")/.."

IMAGE=${SP_IMAGE:-swarmpilot:local}
TARGET=x86_64-unknown-linux-gnu
PROFILE=${SP_PROFILE:-release}
case "$PROFILE" in
  release) PROFILE_DIR=release ;;
  dev) PROFILE_DIR=debug ;;
  *) echo "build-image: SP_PROFILE must be release or dev, not $PROFILE" >&2; exit 2 ;;
esac
BIN=target/$TARGET/$PROFILE_DIR/swarmpilot
# The path the Dockerfile's final stage copies from (its build stage builds release).
DOCKERFILE_BIN=target/$TARGET/release/swarmpilot
TAR=target/swarmpilot-image.tar
CONTEXT=target/image-context

log() { printf 'build-image: %s\n' "$*" >&2; }
die() { log "$*"; exit 1; }

# Cargo exports these to a test it runs, and a test may run this script (the bed harness does).
# ring's build script records CARGO_MANIFEST_DIR, so a build with them and one without (from a
# shell) would each see the other's as stale and rebuild from scratch: build without them.
for name in $(compgen -e); do
  case "$name" in
    CARGO_MANIFEST_* | CARGO_PKG_* | CARGO_BIN_* | CARGO_CRATE_NAME | CARGO_PRIMARY_PACKAGE | CARGO_TARGET_TMPDIR)
      unset "$name" ;;
  esac
done

t0=$(date +%s)
# The Dockerfile's build stage runs this same command.
RUSTFLAGS="-C target-feature=+crt-static" \
  cargo build --profile "$PROFILE" --locked --target "$TARGET" --bin swarmpilot
log "static binary in $(($(date +%s) - t0)) s"
# FROM scratch has no loader: a dynamic binary would fail there with a bare "no such file".
if readelf -d "$BIN" | grep -q '(NEEDED)'; then
  die "$BIN links shared libraries: $(readelf -d "$BIN" | grep '(NEEDED)' | tr -s ' ')"
fi

# The final stage of the Dockerfile, with the binary from the context instead of the build stage.
rm -rf "$CONTEXT"
mkdir -p "$CONTEXT"
# Debug info is for debuggers, not for an image that every node loads.
strip --strip-debug -o "$CONTEXT/swarmpilot" "$BIN"
awk '/^FROM scratch/ { final = 1 } final' Dockerfile |
  sed "s|^COPY --from=build /src/$DOCKERFILE_BIN |COPY swarmpilot |" >"$CONTEXT/Dockerfile"
grep -q '^COPY swarmpilot ' "$CONTEXT/Dockerfile" && ! grep -q -- '--from=' "$CONTEXT/Dockerfile" ||
  die "the Dockerfile's final stage no longer copies $DOCKERFILE_BIN from the build stage: update this script"

# Debian's docker.io has no BuildKit; the legacy builder warns about it on stderr.
DOCKER_BUILDKIT=0 docker build -q -t "$IMAGE" "$CONTEXT" >"$CONTEXT/build.log" 2>&1 ||
  { cat "$CONTEXT/build.log" >&2; die "docker build failed"; }
id=$(docker image inspect --format '{{.Id}}' "$IMAGE")
if [ -s "$TAR" ] && [ "$(cat "$TAR.id" 2>/dev/null)" = "$id" ]; then
  log "$IMAGE unchanged ($id), $TAR kept"
else
  docker save -o "$TAR.tmp" "$IMAGE"
  mv "$TAR.tmp" "$TAR"
  echo "$id" >"$TAR.id"
  log "$IMAGE $id saved to $TAR ($(du -h "$TAR" | cut -f1))"
fi
log "done in $(($(date +%s) - t0)) s"
