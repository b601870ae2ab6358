# One image for every service of the mesh, running compiled JavaScript with production dependencies only.
# The command picks the process:
#   docker run IMAGE                                       all three services in one process (dist/services/main.js)
#   docker run IMAGE dist/services/identity/src/main.js    one service (or cart, address)
# Build: docker build -t local-e-grocery .   (the build stage runs `npm run build`, see scripts/build.ts)

# ---- build: every dependency, TypeScript compiled to dist/, the browser page to web/dist/ ----------------------
FROM node:20-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
# npm ci installs the workspaces' dependencies too, so it needs every workspace's package.json.
COPY gen/package.json ./gen/
COPY services/platform/package.json ./services/platform/
COPY services/identity/package.json ./services/identity/
COPY services/cart/package.json ./services/cart/
COPY services/address/package.json ./services/address/
# The root postinstall repairs postgres.js (scripts/patch-dependencies.mjs); it must be there before `npm ci`.
COPY scripts/patch-dependencies.mjs ./scripts/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json ./
COPY scripts/build.ts ./scripts/
COPY gen ./gen
COPY services ./services
COPY web ./web
RUN npm run build

# ---- runtime: node:20-slim, production dependencies, the build output, a non-root user ---------------------------
FROM node:20-slim AS runtime
ENV NODE_ENV=production \
    PORT=8080 \
    HOST=0.0.0.0
WORKDIR /app
COPY package.json package-lock.json ./
COPY gen/package.json ./gen/
COPY services/platform/package.json ./services/platform/
COPY services/identity/package.json ./services/identity/
COPY services/cart/package.json ./services/cart/
COPY services/address/package.json ./services/address/
COPY scripts/patch-dependencies.mjs scripts/grpc-health-probe.mjs ./scripts/
# --omit=dev leaves out tsx, esbuild, buf and the test tools; postgres stays (the platform's dependency), so the
# postinstall repair applies. The workspace links npm makes here point at folders holding only a package.json:
# the compiled code finds its packages through dist/node_modules (scripts/build.ts), which Docker copies as links.
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
# The page every process serves at / (WEB_DIR defaults to ./web/dist).
COPY --from=build /app/web/dist ./web/dist
# DATA_DIR (./data): the embedded database when DATABASE_URL is unset, and identity's file mail outbox.
RUN mkdir -p /app/data/outbox-mail && chown -R node:node /app/data
USER node
EXPOSE 8080
# grpc.health.v1.Health/Check for the whole process over cleartext HTTP/2, with node alone.
HEALTHCHECK --interval=10s --timeout=5s --start-period=60s --retries=3 \
  CMD ["node", "scripts/grpc-health-probe.mjs"]
ENTRYPOINT ["node"]
CMD ["dist/services/main.js"]
