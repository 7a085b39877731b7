# libmp: mp-broker, mp-worker, mp-client and the example task library in a
# small Debian 12 image (docs/CLUSTER.md section 6).
#
#   docker build -t libmp .     (or podman build --format docker -t libmp:latest .)
#   docker compose run --rm make-keys          (docker-compose.yml: CURVE keys)
#   docker compose up -d --scale worker=4
#
# The build stage runs the same two scripts as CI's test command
# (scripts/deps.sh, scripts/build.sh); tests/integration/test_compose.sh
# checks that it runs nothing else.

FROM debian:12 AS build
WORKDIR /src
COPY scripts/deps.sh scripts/deps.sh
RUN scripts/deps.sh
COPY . .
RUN MP_BUILD_TYPE=Release MP_BUILD_TESTS=OFF MP_DESTDIR=/out scripts/build.sh /src/build-docker

FROM debian:12-slim AS runtime
COPY scripts/deps.sh /tmp/deps.sh
RUN /tmp/deps.sh --runtime && apt-get clean && rm -rf /var/lib/apt/lists/* /tmp/deps.sh
COPY --from=build /out/usr/local/ /usr/local/
RUN ldconfig && useradd --system --no-create-home --shell /usr/sbin/nologin libmp
USER libmp
ENV MP_TASKS=/usr/local/lib/libmp/tasks/libexample_tasks.so \
    MP_LOG_LEVEL=info
EXPOSE 5555
# serving? mp-client status against the broker (this container's, or
# MP_BROKER's for a worker), with the keys in the environment; the compose
# file gives each service its own check
HEALTHCHECK --interval=10s --timeout=4s --start-period=5s \
    CMD ["sh", "-c", "mp-client --broker \"${MP_BROKER:-tcp://127.0.0.1:5555}\" --timeout 2000 status >/dev/null"]
# mp-broker by default; the compose file runs mp-worker and the job from the same image
# a broker other hosts can reach needs CURVE keys (MP_CURVE_KEY,
# MP_CURVE_ALLOW_DIR) or MP_INSECURE=1: docs/CLUSTER.md, Security
CMD ["mp-broker", "--bind", "tcp://*:5555"]
