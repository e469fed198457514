# swarmpilot's image: one statically linked binary FROM scratch. No shell, no libc, no package
# manager: `swarmpilot healthcheck` is the health check, and HTTPS to Grafana uses the Mozilla
# roots compiled into the binary (reqwest's rustls-tls), so no CA bundle is needed either.
#
#   With a registry (pulls rust:1-bookworm):  docker build -t swarmpilot:0.1.0 .
#   Without one:                              scripts/build-image.sh   (swarmpilot:local)
# scripts/build-image.sh builds the binary on the host with the same cargo command, then builds
# the final stage below from this file, so both images are the same.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
# Cargo reads every target the manifest declares (the benchmark, the example) even to build one
# binary, so they must be in the context.
COPY benches ./benches
COPY examples ./examples
# crt-static: glibc linked in, so the binary runs FROM scratch. --target keeps the flag off build
# scripts and proc macros, which must stay dynamic.
RUN RUSTFLAGS="-C target-feature=+crt-static" \
    cargo build --release --locked --target x86_64-unknown-linux-gnu --bin swarmpilot

FROM scratch
COPY --from=build /src/target/x86_64-unknown-linux-gnu/release/swarmpilot /usr/local/bin/swarmpilot
# serve and healthcheck both read ./swarmpilot.toml when no --config is given: mount the config
# (and rules/, the default rules_dir) here and both agree on the listen address without flags.
WORKDIR /etc/swarmpilot
# Root: it reads and writes the Docker socket. Deploy it on managers only.
EXPOSE 9095
HEALTHCHECK --interval=10s --timeout=5s --start-period=15s --retries=3 \
    CMD ["/usr/local/bin/swarmpilot", "healthcheck", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/swarmpilot"]
CMD ["serve"]
