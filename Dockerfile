# swarmpilot's image: built with the Rust toolchain, run on a slim Debian with nothing but the
# binary and CA certificates (for Grafana over HTTPS).
#   docker build -t swarmpilot:latest .
FROM rust:1-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
COPY src ./src
RUN cargo build --release --locked --bin swarmpilot

FROM debian:bookworm-slim
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates \
 && rm -rf /var/lib/apt/lists/*
COPY --from=build /src/target/release/swarmpilot /usr/local/bin/swarmpilot
COPY rules /etc/swarmpilot/rules
# Reads the Docker socket, so it runs as root inside the container; deploy it on a manager only.
EXPOSE 9095
ENTRYPOINT ["swarmpilot"]
CMD ["serve", "--config", "/etc/swarmpilot/swarmpilot.toml"]
