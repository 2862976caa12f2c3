# test: build-arg=VERSION=1.2 build-arg=HTTP_PROXY=http://proxy:3128
ARG GO=1.22
ARG VERSION=0.0
FROM golang:${GO} AS build
ARG VERSION
ENV CGO_ENABLED=0
WORKDIR src
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/root/.cache/go-build,id=gobuild,sharing=locked \
    --mount=type=bind,source=cmd,target=cmd \
    go build -ldflags "-X main.v=${VERSION}" -o /out/app ./cmd

FROM busybox AS unused
RUN echo never

FROM scratch AS final
COPY --from=build /out/app /usr/bin/app
COPY --from=busybox /bin/busybox /bin/
USER 1000:1000
ENTRYPOINT ["/usr/bin/app"]
EXPOSE 8080 9000-9001/udp
LABEL org.opencontainers.image.version=$VERSION
