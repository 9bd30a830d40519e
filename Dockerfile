# Build the one `rosetta` binary, run it as a non-root user on slim Debian.
FROM rust:1-bookworm AS build
WORKDIR /src
COPY . .
RUN cargo build --release --locked --bin rosetta

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --home-dir /var/lib/rosetta rosetta \
    && mkdir -p /var/lib/rosetta && chown rosetta /var/lib/rosetta
COPY --from=build /src/target/release/rosetta /usr/local/bin/rosetta
USER rosetta
ENV ROSETTA_DATA_DIR=/var/lib/rosetta
ENTRYPOINT ["rosetta"]
CMD ["all", "--grpc-listen", "0.0.0.0:50051"]
