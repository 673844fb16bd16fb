# syntax=docker/dockerfile:1
# One image for every vaultkeeper job. The first container argument names the job:
#   docker run --rm IMAGE kms-probe --help
# The chart sets `args: [<job>, ...]`; the entrypoint below does the rest.
#
# Build: docker build -t registry.example.com/platform/vaultkeeper:0.1.0 .
# Pin both base images by digest in your registry (FROM image@sha256:...) once you have
# tested them; tags move.

ARG NODE_VERSION=24.9.0

# ---- build: install the workspace, bundle each job into one file ---------------------------
FROM node:${NODE_VERSION}-bookworm-slim AS build
# tini: Node must not be PID 1 (PID 1 gets no default signal handlers, so SIGTERM from the
# kubelet would need the job to handle it before anything else, and zombies would pile up).
# The static build is what runs in the distroless image below, which has no package manager.
RUN apt-get update \
 && apt-get install -y --no-install-recommends tini \
 && rm -rf /var/lib/apt/lists/*
RUN npm install --global --no-audit --no-fund pnpm@10.20.0
WORKDIR /src
# Dependencies from the lockfile alone first, so that a code change reuses this layer.
COPY pnpm-lock.yaml pnpm-workspace.yaml .npmrc ./
RUN pnpm fetch
COPY . .
RUN pnpm install --offline --frozen-lockfile \
 && pnpm exec turbo run build --filter='./jobs/*' \
 && node docker/stage-image.mjs /out

# ---- runtime: Node 24 and the bundles, nothing else (no shell, no npm, no node_modules) -----
FROM gcr.io/distroless/nodejs24-debian12:nonroot
COPY --from=build /usr/bin/tini-static /usr/bin/tini
COPY --from=build /out/ /app/
WORKDIR /app
ENV NODE_ENV=production
# distroless' "nonroot" user; the chart's podSecurityContext runs as the same uid.
USER 65532:65532
ENTRYPOINT ["/usr/bin/tini", "--", "/nodejs/bin/node", "/app/vaultkeeper.mjs"]
