# One image for every service of the mesh. The command picks the service:
#   docker run IMAGE services/identity/src/main.ts     (or cart, address)
#   docker run IMAGE                                   all three in one process (services/main.ts)
# Services run their TypeScript through tsx; gen/ is committed, so there is no build step. tsx is listed under
# devDependencies, so the install keeps them (npm ci --omit=dev would drop it).

FROM node:20-slim AS deps
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund && npm cache clean --force

FROM node:20-slim
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json tsconfig.json ./
COPY gen ./gen
COPY services ./services
# DATA_DIR (./data): embedded database when DATABASE_URL is unset, and identity's file mail outbox.
RUN mkdir -p /app/data/outbox-mail && chown -R node:node /app/data
USER node
EXPOSE 8080
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "-e", "fetch('http://127.0.0.1:8080/healthz').then((r) => process.exit(r.ok ? 0 : 1), () => process.exit(1))"]
ENTRYPOINT ["node", "--import", "tsx"]
CMD ["services/main.ts"]
