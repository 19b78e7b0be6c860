# syntax=docker/dockerfile:1
# liftoff's own image: a static binary on an empty base. It talks to the
# Docker engine through the socket mounted at /var/run/docker.sock.
# TestShippedImageDeploys (cmd/liftoff/image_e2e_test.go) builds the binary
# as the build stage does and assembles the final stage in liftoffImage,
# without docker build (no base image can be pulled where the tests run),
# then deploys through it: change that function with this file.
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
COPY --from=build /out/data /data
WORKDIR /data
EXPOSE 8080
ENTRYPOINT ["/liftoff"]
CMD ["serve", "--config", "/etc/liftoff/liftoff.yaml"]
