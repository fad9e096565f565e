# artdesc on Node 22 LTS (Debian bookworm). Build: docker build -t artdesc .
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY tsconfig.json prisma.config.ts ./
COPY prisma ./prisma
COPY src ./src
COPY bin ./bin
RUN npm run build && npm prune --omit=dev

FROM node:22-bookworm-slim
WORKDIR /app
ENV NODE_ENV=production DATABASE_URL=file:/data/artdesc.db IMAGE_DIR=/data/images MODEL_DIR=/models HOST=0.0.0.0 PORT=4000
COPY --from=build /app /app
RUN ln -s /app/bin/artdesc.js /usr/local/bin/artdesc && mkdir -p /data /models
VOLUME ["/data", "/models"]
EXPOSE 4000
# Long enough for the description in progress to finish on a CPU (see SHUTDOWN_GRACE_S).
STOPSIGNAL SIGTERM
CMD ["artdesc", "start"]
