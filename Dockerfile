# One image for every role: `rosetta <account|social|messaging|files|bridge NAME|all>`.
# Multi-stage: build the binary (and the gRPC health probe the compose healthchecks run),
# then run it on slim Debian as a non-root user. Keys and settings come from the
# deployment (compose secrets, ROSETTA_* variables), never from the image.

FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --release --locked --bin rosetta \
    && cp target/release/rosetta /usr/local/bin/rosetta

FROM golang:1-bookworm AS probe
RUN CGO_ENABLED=0 go install github.com/grpc-ecosystem/grpc-health-probe@v0.4.39

FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/rosetta rosetta \
    && mkdir -p /var/lib/rosetta && chown rosetta /var/lib/rosetta
COPY --from=build /usr/local/bin/rosetta /usr/local/bin/rosetta
COPY --from=probe /go/bin/grpc-health-probe /usr/local/bin/grpc-health-probe
USER rosetta
WORKDIR /var/lib/rosetta
ENV ROSETTA_DATA_DIR=/var/lib/rosetta
EXPOSE 50051
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s \
    CMD ["grpc-health-probe", "-addr=127.0.0.1:50051"]
ENTRYPOINT ["rosetta"]
CMD ["all", "--grpc-listen", "0.0.0.0:50051"]
