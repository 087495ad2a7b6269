# The meshmedic sidecar/injector image: built in a full Node stage, shipped as distroless Node 20 with
# production dependencies and dist/ only, running as UID 65532 (a read-only root filesystem works: nothing is written).
# Build: docker build -t meshmedic/meshmedic:0.1.0 .   (see docs/kubernetes.md, "Image")

ARG NODE_VERSION=20.18.1

# 1. Compile TypeScript with the dev dependencies.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json ./
COPY src ./src
RUN npx tsc -p tsconfig.json

# 2. Production dependencies only (no install scripts: none is needed, see package.json allowScripts).
FROM node:${NODE_VERSION}-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force

# 3. Runtime: no shell, no package manager.
FROM gcr.io/distroless/nodejs20-debian12:nonroot
WORKDIR /app
ENV NODE_ENV=production
COPY --from=deps --chown=65532:65532 /app/node_modules ./node_modules
COPY --from=build --chown=65532:65532 /src/dist ./dist
COPY --chown=65532:65532 package.json ./
COPY --chown=65532:65532 bin ./bin
COPY --chown=65532:65532 proto ./proto
COPY --chown=65532:65532 mesh-config ./mesh-config
USER 65532:65532
EXPOSE 17000 17001 17946 17946/udp
ENTRYPOINT ["/nodejs/bin/node", "/app/bin/meshmedic.js"]
CMD ["--help"]
