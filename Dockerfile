# syntax=docker/dockerfile:1
#
# edgegate's container images, built by compose.yaml:
#   target edgegate (the default): the edgegate binary, static, on a minimal
#     non-root base; the compose stack's edge, origin, app1 and app2;
#   target pebble: Let's Encrypt's test CA at the version go.mod pins, for
#     the demo only.

ARG GO_VERSION=1.26.8

FROM golang:${GO_VERSION}-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
# Static binaries: no libc in the runtime image.
ENV CGO_ENABLED=0
RUN --mount=type=cache,target=/go/pkg/mod --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/edgegate ./cmd/edgegate && \
    go build -trimpath -ldflags="-s -w" -o /out/pebble github.com/letsencrypt/pebble/v2/cmd/pebble
# Directories the non-root user writes, created here because the runtime
# image has no shell: a named volume mounted on them takes their owner.
RUN mkdir -p /out/root/var/log/edgegate /out/root/var/log/edgegate-origin /out/root/var/lib/edgegate /out/root/etc/edgegate

FROM gcr.io/distroless/static-debian12:nonroot AS pebble
COPY --from=build /out/pebble /usr/local/bin/pebble
# edgegate health is the health check: the image has no curl.
COPY --from=build /out/edgegate /usr/local/bin/edgegate
USER nonroot:nonroot
EXPOSE 14000 15000
ENTRYPOINT ["/usr/local/bin/pebble"]
CMD ["-config", "/etc/pebble/pebble-config.json"]
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/edgegate", "health", "-cacert", "/etc/pebble/certs/pebble-api-ca.pem", "https://localhost:14000/dir"]

FROM gcr.io/distroless/static-debian12:nonroot AS edgegate
COPY --from=build --chown=nonroot:nonroot /out/root/ /
COPY --from=build /out/edgegate /usr/local/bin/edgegate
USER nonroot:nonroot
# 80 and 443 as non-root need net.ipv4.ip_unprivileged_port_start=0, which
# Docker sets by default since 20.10 and compose.yaml sets explicitly.
EXPOSE 80 443 443/udp
ENTRYPOINT ["/usr/local/bin/edgegate"]
CMD ["edge", "-config", "/etc/edgegate/edge.yaml"]
# Healthy once the edge holds a certificate for every alias (its admin
# listener's /readyz); the origin tier (9902) and the apps override it in
# compose.yaml.
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=3 \
    CMD ["/usr/local/bin/edgegate", "health", "http://127.0.0.1:9901/readyz"]
