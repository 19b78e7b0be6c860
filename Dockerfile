# syntax=docker/dockerfile:1
# liftoff's own image: a static binary on an empty base, run as an
# unprivileged user (65532). It talks to the Docker engine through
# DOCKER_HOST: a socket proxy (see docker-compose.yml), or the socket
# mounted at /var/run/docker.sock with the socket's group added
# (docker run --group-add "$(stat -c %g /var/run/docker.sock)").
# It listens on 0.0.0.0:8080 (LIFTOFF_LISTEN), since loopback inside a
# container cannot be reached through a published port; publish it on the
# host's loopback (-p 127.0.0.1:8080:8080).
# TestShippedImageDeploys (internal/daemon/image_e2e_test.go) builds the
# binary as the build stage does and assembles the final stage in
# liftoffImage, without docker build (no base image can be pulled where the
# tests run), then deploys through it: change that function with this file.
FROM golang:1.26-bookworm AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG VERSION=dev
RUN CGO_ENABLED=0 go build -trimpath -ldflags "-s -w -X main.version=${VERSION}" -o /out/liftoff ./cmd/liftoff \
 && mkdir -p /out/data

FROM scratch
COPY --from=build /etc/ssl/certs/ca-certificates.crt /etc/ssl/certs/
COPY --from=build /out/liftoff /liftoff
COPY --from=build --chown=65532:65532 --chmod=0700 /out/data /data
WORKDIR /data
USER 65532:65532
ENV LIFTOFF_LISTEN=0.0.0.0:8080
EXPOSE 8080
ENTRYPOINT ["/liftoff"]
CMD ["serve", "--config", "/etc/liftoff/liftoff.yaml"]
