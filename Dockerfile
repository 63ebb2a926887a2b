# syntax=docker/dockerfile:1
# The app and the worker, from one image: `node dist/src/main.js` (the default command) serves
# the API; `node dist/src/cli/worker.js` runs the job engine alone. Build steps are the ones CI
# runs (npm ci, then the TypeScript build).

FROM node:20-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
COPY migrations ./migrations
RUN npm run build

# Production dependencies only, installed apart so no build tool reaches the final image.
FROM node:20-bookworm-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force

FROM node:20-bookworm-slim
ENV NODE_ENV=production
WORKDIR /app
COPY --from=deps --chown=root:root /app/node_modules ./node_modules
COPY --from=build --chown=root:root /app/dist ./dist
COPY package.json ./
COPY catalog ./catalog
# The files belong to root and the process runs as the image's unprivileged user: it cannot
# change its own code.
USER node
EXPOSE 4000
CMD ["node", "dist/src/main.js"]
