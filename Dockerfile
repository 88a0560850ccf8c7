# syntax=docker/dockerfile:1
# The milvus-lb image for those who build with Docker (BuildKit). scripts/image.sh builds
# the same image without a daemon; test/e2e (TestImage) checks that this file says what
# that image is (user, entrypoint, path, labels). From the repository root:
#
#   docker buildx build --platform linux/amd64,linux/arm64 \
#     --build-arg VERSION=$(cat internal/version/VERSION) \
#     --build-arg COMMIT=$(git rev-parse HEAD) \
#     --build-arg CREATED=$(date -u -d @$(git log -1 --format=%ct) +%Y-%m-%dT%H:%M:%SZ) \
#     -t registry.example.com/milvus-lb:$(cat internal/version/VERSION) --push .

# The binary: scripts/release.sh, as for the release binaries, for the target platform
# (cross-compiled on the build machine's own).
FROM --platform=$BUILDPLATFORM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
ARG TARGETOS TARGETARCH COMMIT MODIFIED=false
RUN COMMIT="$COMMIT" MODIFIED="$MODIFIED" scripts/release.sh --out /out --platform "$TARGETOS/$TARGETARCH" && \
    cp /out/milvus-lb-*-"$TARGETOS-$TARGETARCH" /milvus-lb

# The image: the static binary alone, no shell, run as the unprivileged 65532.
FROM scratch
COPY --from=build /milvus-lb /usr/bin/milvus-lb
USER 65532:65532
ENTRYPOINT ["/usr/bin/milvus-lb"]
ARG VERSION COMMIT CREATED
LABEL org.opencontainers.image.title="milvus-lb" \
      org.opencontainers.image.source="https://github.com/milvus-lb/milvus-lb" \
      org.opencontainers.image.revision="$COMMIT" \
      org.opencontainers.image.version="$VERSION" \
      org.opencontainers.image.created="$CREATED"
