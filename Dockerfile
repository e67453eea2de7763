# Builds the manager image: a static binary on distroless, running as non-root.
# The build context is the repository minus what .dockerignore keeps out (docs, manifests, tests), so a new
# package can never be missed; internal/deploycheck's TestImageBuildsFromItsContext builds exactly this
# context with Go on every `make test`.
FROM golang:1.26 AS builder
ARG TARGETOS=linux
ARG TARGETARCH=amd64
WORKDIR /workspace
# The module files first, so that the dependency layer is cached while only sources change.
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 GOOS=${TARGETOS} GOARCH=${TARGETARCH} go build -trimpath -ldflags "-s -w" -o manager .

FROM gcr.io/distroless/static:nonroot
WORKDIR /
COPY --from=builder /workspace/manager .
USER 65532:65532
ENTRYPOINT ["/manager"]
