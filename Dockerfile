# syntax=docker/dockerfile:1
# One image for every role: `serve` (default), `api`, `project`, `migrate`, tools.

FROM rust:1-bookworm AS build
WORKDIR /src
# Only what the build needs (keeps target/ and local files out of the context).
COPY Cargo.toml Cargo.lock ./
COPY domain domain
COPY commands commands
COPY projections projections
COPY gateways gateways
COPY api api
# Embedded into the binary by sqlx::migrate! at compile time.
COPY migrations migrations
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    cargo build --release --locked -p chargeledger-api

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --no-create-home chargeledger
COPY --from=build /src/target/release/chargeledger /usr/local/bin/chargeledger
USER chargeledger
# The default listen address is loopback; in a container listen on all interfaces.
ENV CHARGELEDGER_HTTP_ADDR=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["chargeledger"]
CMD ["serve"]
