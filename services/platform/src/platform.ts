import { isIP } from "node:net";
import { resolve } from "node:path";
import type { DescMethod } from "@bufbuild/protobuf";
import { file_google_rpc_error_details } from "@local-e-grocery/gen/google/rpc/error_details_pb.js";
import { Health as healthService } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "@local-e-grocery/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "@local-e-grocery/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { createAccessInterceptor } from "./auth/access-interceptor.js";
import { createJwksCache, httpJwksSource } from "./auth/jwks.js";
import { createTokenVerifier } from "./auth/verify-token.js";
import { ConfigError, envDuration, envEnum, envInt, envList, envString, envUrl, type Env } from "./config.js";
import type { Principal } from "./context.js";
import { migrate, openDatabase, type Database } from "./db.js";
import { createHealthRegistry, ServingStatus, watchDatabase } from "./health.js";
import { createAdmissionInterceptor, type AdmissionOptions } from "./admission.js";
import { createAvailability, createAvailabilityInterceptor } from "./availability.js";
import { createCallScopeInterceptor } from "./call-scope.js";
import { createCallBoundInterceptor, createErrorInterceptor, createLoggingInterceptor } from "./interceptors.js";
import { createLogger, flushStdoutLogs, type Logger, type LogLevel } from "./logger.js";
import { createIdempotencyKeyInterceptor } from "./idempotency-key.js";
import { createMesh, selfHost } from "./mesh.js";
import { createValidateInterceptor } from "./validate-interceptor.js";
import { reflectionRoutes } from "./reflection.js";
import { createRpcServer, defaultConnectionLimits, type ConnectionLimits, type HttpRoute } from "./server.js";
import { readStaticSiteConfig, staticSiteRoutes } from "./static-site.js";
import type { Clock, ServiceDefinition, ServiceModule } from "./service-module.js";
import { userDataHolders, userDataRoutes } from "./user-data.js";

/**
 * A health name (grpc.health.v1) that is SERVING from listening until shutdown, independent of the database, for
 * liveness probes; "" and each service's name follow the database (readiness).
 */
export const livenessHealthName = "liveness";

/** Standard services every process serves; their protos carry no access option and they are open to all. */
const standardServices = [healthService.typeName, ReflectionV1.typeName, ReflectionV1alpha.typeName];

export interface PlatformConfig {
  port: number;
  host: string;
  databaseUrl: string | undefined;
  dataDir: string;
  corsOrigins: string[];
  maxMessageBytes: number;
  shutdownGraceMs: number;
  logLevel: LogLevel;
  jwtIssuer: string;
  jwtAudience: string;
  /** Where services that do not sign tokens fetch identity's keys. */
  jwksUrl: string | undefined;
  trustForwardedFor: boolean;
  healthProbeMs: number;
  healthProbeTimeoutMs: number;
  limits: ConnectionLimits;
  databasePoolSize: number;
  databaseConnectTimeoutMs: number;
  databaseStatementTimeoutMs: number;
  admission: AdmissionOptions;
}

/** Reads the shared settings; throws ConfigError naming the variable at fault. */
export function readPlatformConfig(env: Env): PlatformConfig {
  return {
    port: envInt(env, "PORT", 8080, { min: 0, max: 65535 }),
    host: envString(env, "HOST", "0.0.0.0"),
    databaseUrl: envUrl(env, "DATABASE_URL"),
    dataDir: resolve(envString(env, "DATA_DIR", "./data")),
    corsOrigins: envList(env, "CORS_ORIGINS", ["http://localhost:5173", "http://localhost:8080"]),
    maxMessageBytes: envInt(env, "MAX_MESSAGE_BYTES", 1024 * 1024, { min: 1024, max: 64 * 1024 * 1024 }),
    shutdownGraceMs: envDuration(env, "SHUTDOWN_GRACE", 10) * 1000,
    logLevel: envEnum(env, "LOG_LEVEL", ["debug", "info", "warn", "error", "silent"], "info"),
    jwtIssuer: envString(env, "JWT_ISSUER", "https://identity.grocery.local"),
    jwtAudience: envString(env, "JWT_AUDIENCE", "grocery"),
    jwksUrl: envUrl(env, "IDENTITY_JWKS_URL"),
    trustForwardedFor: envEnum(env, "TRUST_FORWARDED_FOR", ["true", "false"], "false") === "true",
    healthProbeMs: envInt(env, "HEALTH_PROBE_MS", 1000, { min: 100 }),
    healthProbeTimeoutMs: ms(env, "HEALTH_PROBE_TIMEOUT", 1),
    limits: {
      firstBytesMs: ms(env, "CONNECTION_FIRST_BYTES_TIMEOUT", defaultConnectionLimits.firstBytesMs / 1000),
      headersMs: ms(env, "HTTP_HEADERS_TIMEOUT", defaultConnectionLimits.headersMs / 1000),
      requestMs: ms(env, "REQUEST_BODY_TIMEOUT", defaultConnectionLimits.requestMs / 1000),
      bodyIdleMs: ms(env, "REQUEST_BODY_IDLE_TIMEOUT", defaultConnectionLimits.bodyIdleMs / 1000),
      keepAliveMs: ms(env, "HTTP_KEEPALIVE_TIMEOUT", defaultConnectionLimits.keepAliveMs / 1000),
      sessionIdleMs: ms(env, "HTTP2_IDLE_TIMEOUT", defaultConnectionLimits.sessionIdleMs / 1000),
      pingTimeoutMs: ms(env, "HTTP2_PING_TIMEOUT", defaultConnectionLimits.pingTimeoutMs / 1000),
      writeStallMs: ms(env, "WRITE_STALL_TIMEOUT", defaultConnectionLimits.writeStallMs / 1000),
      streamsPerConnection: envInt(env, "HTTP2_MAX_CONCURRENT_STREAMS", defaultConnectionLimits.streamsPerConnection, { min: 1, max: 10_000 }),
      callsInFlight: envInt(env, "MAX_CALLS_IN_FLIGHT", defaultConnectionLimits.callsInFlight, { min: 1 }),
    },
    databasePoolSize: envInt(env, "DATABASE_POOL_SIZE", 10, { min: 1, max: 1000 }),
    databaseConnectTimeoutMs: ms(env, "DATABASE_CONNECT_TIMEOUT", 2),
    databaseStatementTimeoutMs: ms(env, "DATABASE_STATEMENT_TIMEOUT", 5),
    admission: {
      concurrency: envInt(env, "EXPENSIVE_CALLS_CONCURRENCY", 4, { min: 1, max: 256 }),
      queueLength: envInt(env, "EXPENSIVE_CALLS_QUEUE", 64, { min: 0, max: 100_000 }),
    },
  };
}

function ms(env: Env, name: string, fallbackSeconds: number): number {
  return Math.round(envDuration(env, name, fallbackSeconds) * 1000);
}

export interface BuildOptions {
  env?: Env;
  clock?: Clock;
  logger?: Logger;
  /** An already opened database (tests pass one; otherwise it is opened from the config). */
  database?: Database;
}

export interface Platform {
  readonly port: number;
  readonly url: string;
  readonly config: PlatformConfig;
  readonly database: Database;
  /** Calls being served right now. */
  readonly inFlight: number;
  /** Graceful stop: NOT_SERVING, refuse new calls, let in-flight ones finish, close the database. */
  close(): Promise<void>;
}

/**
 * Opens the database, applies each service's migrations, builds the services and serves them, with health and
 * reflection, on one port. Listens on `config.port` (0 picks a free one).
 */
export async function buildPlatform(config: PlatformConfig, definitions: readonly ServiceDefinition[], options: BuildOptions = {}): Promise<Platform> {
  const env = options.env ?? process.env;
  const clock = options.clock ?? Date.now;
  const logger = options.logger ?? createLogger({ level: config.logLevel });
  const database =
    options.database ??
    (await openDatabase({
      url: config.databaseUrl,
      dataDir: config.dataDir,
      maxConnections: config.databasePoolSize,
      connectTimeoutMs: config.databaseConnectTimeoutMs,
      statementTimeoutMs: config.databaseStatementTimeoutMs,
    }));
  const modules: ServiceModule[] = [];
  let stopProbe: (() => void) | undefined;
  const localServices = definitions.map((d) => d.name);
  const mesh = createMesh({ env, clock, localServices });
  let listening: { close(graceMs: number): Promise<void> } | undefined;
  try {
    for (const def of definitions) {
      const applied = await migrate(database.db, { schema: def.name, folder: def.migrationsFolder });
      if (applied.length > 0) logger.info("migrations applied", { service: def.name, migrations: applied });
    }
    for (const def of definitions) {
      modules.push(await def.build({ db: database.db, env, logger: logger.child({ component: def.name }), clock, mesh, localServices }));
    }
    const signer = modules.find((m) => m.serviceToken);
    mesh.useTokens(signer?.serviceToken?.bind(signer));
    const ownJwks = modules.find((m) => m.jwksSource)?.jwksSource;
    if (!ownJwks && !config.jwksUrl) throw new ConfigError("IDENTITY_JWKS_URL is required when identity does not run in this process");
    const verify = createTokenVerifier({
      // An in-process source (identity's key ring) rate-limits its own database reads, so an unknown kid may
      // ask it at once: a key rotated in this process verifies immediately.
      jwks: createJwksCache({ source: ownJwks ?? httpJwksSource(config.jwksUrl ?? ""), now: clock, ...(ownJwks ? { minRefetchIntervalMs: 0 } : {}) }),
      issuer: config.jwtIssuer,
      audience: config.jwtAudience,
      now: () => Math.floor(clock() / 1000),
    });
    const checkers = modules.flatMap((m) => (m.checkPrincipal ? [m.checkPrincipal.bind(m)] : []));
    const checkPrincipal = async (principal: Principal, method: DescMethod) => {
      for (const check of checkers) await check(principal, method);
    };

    // UserDataService is composed here from every module's purge hook (user-data.ts says why), so it is served,
    // health-checked and reflected once however many modules of this process keep user data.
    const holders = userDataHolders(modules);
    const services = [...modules.flatMap((m) => m.services), ...(holders.length > 0 ? [UserDataService] : [])];
    const health = createHealthRegistry([...services.map((s) => s.typeName), livenessHealthName]);
    const availability = createAvailability();
    // Error details travel as Any: publishing their types lets `buf curl` and grpcurl print them decoded.
    const reflection = reflectionRoutes([...services, healthService], [file_google_rpc_error_details]);
    // The browser page at / (static-site.ts); a module's own routes win over a file of the same path.
    const httpRoutes: Record<string, HttpRoute> = Object.assign(await staticSiteRoutes(readStaticSiteConfig(env)), ...modules.map((m) => m.httpRoutes ?? {}));
    httpRoutes["/healthz"] = (_req, res) => {
      const serving = health.get("") === ServingStatus.SERVING;
      res.statusCode = serving ? 200 : 503;
      res.setHeader("Content-Type", "text/plain");
      res.end(serving ? "SERVING\n" : "NOT_SERVING\n");
    };
    const server = createRpcServer({
      routes: (router) => {
        for (const m of modules) m.routes(router);
        if (holders.length > 0) userDataRoutes(holders)(router);
        health.routes(router);
        reflection(router);
      },
      interceptors: [
        createLoggingInterceptor(logger),
        createCallBoundInterceptor(),
        createCallScopeInterceptor(),
        createAvailabilityInterceptor(availability, standardServices),
        createAccessInterceptor({ verify, checkPrincipal, logger, publicServices: standardServices }),
        // Field rules (buf.validate) after auth, before admission: a malformed call never takes an expensive slot.
        createValidateInterceptor(),
        createIdempotencyKeyInterceptor(),
        createAdmissionInterceptor(config.admission),
        createErrorInterceptor(logger),
      ],
      httpRoutes,
      corsOrigins: config.corsOrigins,
      maxMessageBytes: config.maxMessageBytes,
      trustForwardedFor: config.trustForwardedFor,
      limits: config.limits,
      logger,
    });
    // Health is known before the first client can ask.
    stopProbe = await watchDatabase({
      health,
      names: ["", ...services.map((s) => s.typeName)],
      ping: database.ping,
      intervalMs: config.healthProbeMs,
      timeoutMs: config.healthProbeTimeoutMs,
      onChange: (serving, error) => {
        availability.set(serving);
        if (serving) logger.info("database reachable");
        else logger.error("database unreachable", { error });
      },
    });
    // Modules start once the port is known: their loopback calls (the all-in-one mode) can go out at once.
    const port = await server.listen(config.port, config.host);
    listening = server;
    mesh.listening(port, config.host);
    // Liveness says the process serves, whatever the database does: restarting cannot cure an outage.
    health.set(livenessHealthName, ServingStatus.SERVING);
    for (const m of modules) await m.start?.();

    let closing: Promise<void> | undefined;
    return {
      port,
      url: urlOf(config.host, port),
      config,
      database,
      get inFlight() {
        return server.inFlight;
      },
      close: () =>
        (closing ??= (async () => {
          // Everything, the database included, is closed within SHUTDOWN_GRACE: the calls get the grace less a
          // reserve for closing the rest, and whatever still hangs after its share is cut.
          const deadline = Date.now() + config.shutdownGraceMs;
          const reserve = Math.min(2000, config.shutdownGraceMs / 4);
          stopProbe?.();
          health.setAll(ServingStatus.NOT_SERVING);
          // New calls are refused from here on; running ones, Watch streams included, may finish.
          const draining = server.close(config.shutdownGraceMs - reserve);
          // Let Watch streams carry NOT_SERVING out before they end.
          await new Promise((r) => setTimeout(r, 50));
          health.close();
          await draining;
          for (const m of modules) await within(m.close?.(), deadline - Date.now() - reserve / 2);
          mesh.close();
          if (!options.database) await within(database.close(Math.max(0, deadline - Date.now())), deadline - Date.now());
          logger.info("stopped");
        })()),
    };
  } catch (e) {
    // A failed start (a taken port, say) must not leave timers, mailers or the database behind.
    stopProbe?.();
    await listening?.close(0).catch(() => {});
    for (const m of modules) await m.close?.().catch(() => {});
    mesh.close();
    if (!options.database) await database.close();
    throw e;
  }
}

/** Waits for `work` at most `ms`; a stop step that hangs must not hold the process past its grace. */
async function within(work: Promise<void> | undefined, ms: number): Promise<void> {
  if (!work) return;
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([work.catch(() => {}), new Promise<void>((r) => (timer = setTimeout(r, Math.max(0, ms))))]);
  clearTimeout(timer);
}

/**
 * Entry point for a process: reads the config from the environment (a bad value prints the message and exits
 * with 78), serves the given services and stops gracefully on SIGTERM/SIGINT.
 */
export async function runMain(definitions: readonly ServiceDefinition[], banner?: (platform: Platform) => string): Promise<void> {
  let config: PlatformConfig;
  try {
    config = readPlatformConfig(process.env);
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`configuration error: ${e.message}\n`);
      process.exit(78);
    }
    throw e;
  }
  const logger = createLogger({ level: config.logLevel });
  let platform: Platform;
  try {
    platform = await buildPlatform(config, definitions, { logger });
  } catch (e) {
    if (e instanceof ConfigError) {
      process.stderr.write(`configuration error: ${e.message}\n`);
      process.exit(78);
    }
    logger.error("start-up failed", { error: e });
    process.exit(1);
  }
  logger.info("ready", {
    port: platform.port,
    services: definitions.map((d) => d.name),
    database: platform.database.kind === "pglite" ? `pglite:${config.dataDir}` : "postgres",
  });
  if (banner) {
    flushStdoutLogs();
    process.stdout.write(banner(platform) + "\n");
  }
  const stop = (signal: string) => {
    logger.info("shutting down", { signal });
    platform.close().then(
      () => process.exit(0),
      (e: unknown) => {
        logger.error("shutdown failed", { error: e });
        process.exit(1);
      },
    );
  };
  process.once("SIGTERM", () => stop("SIGTERM"));
  process.once("SIGINT", () => stop("SIGINT"));
}

/** The URL a client on this machine calls the platform at. */
function urlOf(host: string, port: number): string {
  const self = selfHost(host);
  return `http://${isIP(self) === 6 ? `[${self}]` : self}:${port}`;
}
