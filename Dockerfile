# One image for every process: the command picks the API, a worker, migrations or the DLQ script.
FROM node:20-bookworm-slim

ENV NODE_ENV=production
WORKDIR /app

COPY package.json package-lock.json ./
RUN npm ci --omit=dev && npm cache clean --force

COPY tsconfig.json ./
COPY cmd ./cmd
COPY internal ./internal
COPY migrations ./migrations

USER node
EXPOSE 8080
# Node runs as PID 1 and handles SIGTERM itself (graceful drain); no npm in between to swallow it.
CMD ["node", "--import", "tsx", "cmd/api.ts"]
