# metrics-collector: a static binary on scratch. Build from the repo root:
#   docker build -f deploy/docker/metrics-collector.Dockerfile -t monlight/metrics-collector .
# The "artifacts" stage compiles it; CI (no registry for the Rust image here) builds the same
# file with the binary from the host: --build-context artifacts=<dir holding metrics-collector, etc/, data/>
# (see deploy/check-containers.sh). No CA file: this service makes no TLS connection.

FROM docker.io/library/rust:1.91-bookworm AS artifacts
WORKDIR /src
COPY . .
RUN RUSTFLAGS="-C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs" \
      cargo build --release --locked --target x86_64-unknown-linux-gnu --bin metrics-collector \
 && mkdir -p /out/etc /out/data \
 && cp target/x86_64-unknown-linux-gnu/release/metrics-collector /out/metrics-collector \
 && echo 'monlight:x:10001:10001::/data:/sbin/nologin' > /out/etc/passwd \
 && echo 'monlight:x:10001:' > /out/etc/group

FROM scratch
COPY --from=artifacts /out/etc/ /etc/
COPY --from=artifacts --chown=10001:10001 /out/data/ /data/
COPY --from=artifacts /out/metrics-collector /metrics-collector
ENV BIND=0.0.0.0 \
    PORT=8000 \
    DATABASE_PATH=/data/metrics.db
USER 10001:10001
EXPOSE 8000
VOLUME ["/data"]
HEALTHCHECK --interval=30s --timeout=5s --start-period=10s --retries=3 CMD ["/metrics-collector", "--healthcheck"]
ENTRYPOINT ["/metrics-collector"]
