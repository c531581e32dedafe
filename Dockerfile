# Build a static binary, then ship it alone on a distroless base as a
# non-root user. Data lives in the /data volume.
FROM golang:1.26 AS build
WORKDIR /src
COPY go.mod go.sum ./
RUN go mod download
COPY . .
RUN CGO_ENABLED=0 go build -trimpath -ldflags="-s -w" -o /out/risk . && mkdir -p /out/data

FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/risk /risk
# An empty /data owned by the runtime user: a new volume mounted there
# takes this ownership, so the non-root server can write to it.
COPY --from=build --chown=65532:65532 /out/data /data
USER nonroot:nonroot
ENV RISK_ADDR=:8080 RISK_DATA_DIR=/data
VOLUME ["/data"]
EXPOSE 8080
ENTRYPOINT ["/risk"]
