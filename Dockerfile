# One image for every process: the command picks the API, a worker, migrations or the DLQ script.
# Node's current LTS line, the version CI also tests on (.ci/run): raise both together.
ARG NODE_VERSION=24.22.3

# Compiles the TypeScript with the dev dependencies (tsc, types), none of which reach the image.
# tsc is plain JavaScript: the install scripts of the test tools (native addons a slim image has
# no compiler for) need not run, nor the postinstall that patches dependencies the compiler never runs.
FROM node:${NODE_VERSION}-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY cmd ./cmd
COPY internal ./internal
COPY migrations ./migrations
# dist/ holds the compiled processes with what they read at run time (migrations, HTML pages).
RUN npm run build

FROM node:${NODE_VERSION}-bookworm-slim
ENV NODE_ENV=production
# Stack traces in the logs name the TypeScript files and lines, through the maps beside the .js.
ENV NODE_OPTIONS=--enable-source-maps
WORKDIR /app

COPY package.json package-lock.json ./
# The patches the install's postinstall applies to dependencies (patch-package, see README).
COPY patches ./patches
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist

USER node
EXPOSE 8080
# Node runs as PID 1 and handles SIGTERM itself (graceful drain); no npm in between to swallow it.
CMD ["node", "dist/cmd/api.js"]
