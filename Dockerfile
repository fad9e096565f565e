# artdesc on Node 22 LTS (Debian bookworm). Build: docker build -t artdesc .
FROM node:22-bookworm-slim AS build
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
# The image's npm 10 runs every install script (npm 11 runs only those package.json's
# allowScripts approves): onnxruntime-node's would download the CUDA provider from NuGet (it fails
# without internet, and the CPU image does not use it). On a GPU host see the README.
ENV ONNXRUNTIME_NODE_INSTALL=skip
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
# SIGTERM lets the description in progress finish within SHUTDOWN_GRACE_S (120 s): give `docker
# stop` that long (`docker stop -t 180`; docker-compose.yml sets stop_grace_period), or it kills at 10 s.
STOPSIGNAL SIGTERM
CMD ["artdesc", "start"]
