/**
 * `npm run generate:envoy`: writes envoy.yaml from edge/envoy.template.yaml and the contracts in gen/.
 *
 * From the protos: the route table (each gRPC service's prefix to its cluster), the jwt_authn rules (an RPC whose
 * access policy is public passes without a token, every other routed RPC needs one), routes of their own for
 * idempotent RPCs (retried on UNAVAILABLE) and for the rate-limited RPCs (local_ratelimit descriptors), and 404
 * for the internal services. From the platform's defaults (services/platform config): the JWT issuer and
 * audience and the CORS origins, so the edge and the services cannot drift apart. Everything else is the
 * template's.
 *
 * `--check` writes nothing and exits 1 when envoy.yaml differs from what would be written.
 */
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { stringify } from "yaml";
import { accessPolicyOf } from "@local-e-grocery/platform/auth/access-interceptor.js";
import { readPlatformConfig } from "@local-e-grocery/platform/platform.js";
import { idempotencyKeyHeader, requestIdField } from "@local-e-grocery/platform/idempotency-key.js";

const root = fileURLToPath(new URL("../..", import.meta.url));
export const templatePath = join(root, "edge/envoy.template.yaml");
export const versionPath = join(root, "edge/envoy-version.txt");
export const outputPath = join(root, "envoy.yaml");

/** Where identity serves its JWKS over plain HTTP (services/platform serves it on every identity process). */
export const jwksPath = "/.well-known/jwks.json";

/**
 * The browser page's files (web/, built into web/dist and served by every service process at these paths; see
 * services/platform/src/static-site.ts), routed to identity so the page shares the API's origin.
 */
export const pagePaths = ["/", "/index.html", "/app.js", "/app.js.map", "/styles.css"] as const;
/** The compose/Kubernetes host name and port of the identity replicas (the JWKS is fetched from the cluster). */
const identityAuthority = "identity:8080";

/** Services served only inside the mesh: never routed, answered 404 (gRPC: UNIMPLEMENTED) at the edge. */
export function isInternalService(service: DescService): boolean {
  return service.typeName.startsWith("grocery.userdata.") || service.typeName.startsWith("grpc.reflection.");
}

/** Standard services the edge routes to identity: health, so probes and clients can see the edge's backend. */
const healthService = "grpc.health.v1.Health";

/**
 * RPCs limited per Envoy process before they reach identity, which has its own per-account and per-IP limits
 * in PostgreSQL: these only stop a flood from spending every replica's argon2 and mail budget. A bucket holds
 * `burst` tokens and gets `perSecond` back each second.
 */
export const rateLimited: Readonly<Record<string, { burst: number; perSecond: number }>> = {
  "/grocery.identity.v1.AuthService/Login": { burst: 100, perSecond: 50 },
  "/grocery.identity.v1.AuthService/RequestPasswordReset": { burst: 20, perSecond: 5 },
};

/** Request headers clients may not set: they would speak for the caller (or its certificate) upstream. */
export const strippedRequestHeaders = [
  "x-user-id",
  "x-user-roles",
  "x-jwt-payload",
  "x-forwarded-client-cert",
  "x-forwarded-user",
  "x-forwarded-email",
  "x-forwarded-groups",
  "x-auth-request-user",
  "x-auth-request-email",
  "x-remote-user",
  "x-principal",
];

/** A client deadline (grpc-timeout) counts, up to the 5 minutes the services allow a call anyway. */
const grpcTimeoutHeaderMax = "300s";
/**
 * Unary calls that carry no deadline of their own end after this. It is a max_stream_duration, not a route
 * `timeout`: once a route sets max_stream_duration (as grpc_timeout_header_max needs), Envoy ignores `timeout`.
 */
const unaryStreamDuration = "60s";

/** The cluster of a grocery service: `grocery.<name>.v1.X` is served by `<name>`; health goes to identity. */
export function clusterOf(service: DescService): string {
  if (service.typeName === healthService) return "identity";
  const [org, name] = service.typeName.split(".");
  if (org !== "grocery" || !name) throw new Error(`${service.typeName}: no cluster for a service outside grocery.*`);
  return name;
}

/** Idempotent by the proto (`option idempotency_level`), so a retry after UNAVAILABLE cannot act twice. */
export function isIdempotent(method: DescMethod): boolean {
  return method.methodKind === "unary" && method.idempotency !== MethodOptions_IdempotencyLevel.IDEMPOTENCY_UNKNOWN;
}

export const pathOf = (method: DescMethod) => `/${method.parent.typeName}/${method.name}`;

/** Every service in gen/ (walked, so a new proto is covered without being listed). */
export async function loadServices(): Promise<DescService[]> {
  const genRoot = join(root, "gen");
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith("_pb.ts")) files.push(path);
    }
  };
  await walk(genRoot);
  const services: DescService[] = [];
  for (const file of files.sort()) {
    const url = pathToFileURL(join(genRoot, relative(genRoot, file).replace(/\.ts$/, ".js"))).href;
    const mod = (await import(url)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "service") services.push(value as DescService);
    }
  }
  return services;
}

type Yaml = Record<string, unknown>;

const retryPolicy = (retryOn: string): Yaml => ({
  retry_on: retryOn,
  num_retries: 2,
  retry_back_off: { base_interval: "0.05s", max_interval: "0.5s" },
  retry_host_predicate: [
    {
      name: "envoy.retry_host_predicates.previous_hosts",
      typed_config: { "@type": "type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate" },
    },
  ],
  host_selection_retry_max_attempts: 3,
});

function routeAction(service: DescService, streaming: boolean, extra: Yaml = {}): Yaml {
  return {
    cluster: clusterOf(service),
    // A stream (health Watch) must not be cut by a fixed or an idle timeout; the client's deadline alone bounds it.
    ...(streaming ? { timeout: "0s", idle_timeout: "0s" } : {}),
    max_stream_duration: streaming
      ? { grpc_timeout_header_max: "0s" }
      : { max_stream_duration: unaryStreamDuration, grpc_timeout_header_max: grpcTimeoutHeaderMax },
    ...extra,
  };
}

function rateLimitRoute(method: DescMethod, limit: { burst: number; perSecond: number }): Yaml {
  const path = pathOf(method);
  const descriptor = path.slice(1);
  return {
    name: `rate-limited ${descriptor}`,
    match: { path },
    route: routeAction(method.parent, false, {
      rate_limits: [{ actions: [{ generic_key: { descriptor_key: "rpc", descriptor_value: descriptor } }] }],
    }),
    typed_per_filter_config: {
      "envoy.filters.http.local_ratelimit": {
        "@type": "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        stat_prefix: `edge_${method.name}`,
        // The route's own bucket, used by a request no descriptor matches (none here): generous.
        token_bucket: { max_tokens: 10000, tokens_per_fill: 10000, fill_interval: "1s" },
        descriptors: [
          {
            entries: [{ key: "rpc", value: descriptor }],
            token_bucket: { max_tokens: limit.burst, tokens_per_fill: limit.perSecond, fill_interval: "1s" },
          },
        ],
        filter_enabled: { runtime_key: `edge.rate_limit.${method.name}.enabled`, default_value: { numerator: 100, denominator: "HUNDRED" } },
        filter_enforced: { runtime_key: `edge.rate_limit.${method.name}.enforced`, default_value: { numerator: 100, denominator: "HUNDRED" } },
        // gRPC clients see RESOURCE_EXHAUSTED (not UNAVAILABLE, which they might retry).
        rate_limited_as_resource_exhausted: true,
      },
    },
  };
}

export interface EdgeModel {
  routes: Yaml[];
  jwtRules: Yaml[];
  routed: DescService[];
  internal: DescService[];
}

/**
 * The generated parts of envoy.yaml for a set of services. Throws when a routed RPC declares no access policy
 * (the services deny it, so the edge would be guessing) or a rate-limited RPC is missing or not public.
 */
export function edgeModel(services: readonly DescService[]): EdgeModel {
  const internal = services.filter(isInternalService);
  const routed = services.filter((s) => !isInternalService(s) && (s.typeName.startsWith("grocery.") || s.typeName === healthService));
  const grocery = routed.filter((s) => s.typeName.startsWith("grocery."));
  const methods = grocery.flatMap((s) => s.methods);
  for (const m of methods) if (!accessPolicyOf(m)) throw new Error(`${pathOf(m)} declares no (grocery.auth.v1.access) policy`);
  for (const path of Object.keys(rateLimited)) {
    const m = methods.find((x) => pathOf(x) === path);
    if (!m) throw new Error(`rate-limited ${path} is not an RPC of a routed service`);
    if (!accessPolicyOf(m)?.public) throw new Error(`rate-limited ${path} is not public`);
  }

  const routes: Yaml[] = [];
  for (const s of internal) {
    routes.push({ name: `internal ${s.typeName}`, match: { prefix: `/${s.typeName}/` }, direct_response: { status: 404 } });
  }
  routes.push({ name: "jwks", match: { path: jwksPath }, route: { cluster: "identity", timeout: "5s" } });
  for (const m of methods) {
    const limit = rateLimited[pathOf(m)];
    if (limit) routes.push(rateLimitRoute(m, limit));
  }
  for (const s of routed) {
    for (const m of s.methods.filter((x) => isIdempotent(x) && !rateLimited[pathOf(x)])) {
      routes.push({
        name: `idempotent ${pathOf(m).slice(1)}`,
        match: { path: pathOf(m) },
        route: routeAction(s, false, { retry_policy: retryPolicy("connect-failure,refused-stream,unavailable") }),
      });
    }
    // A write carrying its request id in the Idempotency-Key header (the service holds the header to the body's
    // request_id) is as safe to repeat as a read; without the header the edge cannot know, and does not retry.
    for (const m of s.methods.filter((x) => requestIdField(x) && !isIdempotent(x) && !rateLimited[pathOf(x)])) {
      routes.push({
        name: `keyed ${pathOf(m).slice(1)}`,
        match: { path: pathOf(m), headers: [{ name: idempotencyKeyHeader, present_match: true }] },
        route: routeAction(s, false, { retry_policy: retryPolicy("connect-failure,refused-stream,unavailable") }),
      });
    }
    for (const m of s.methods.filter((x) => x.methodKind !== "unary")) {
      routes.push({ name: `stream ${pathOf(m).slice(1)}`, match: { path: pathOf(m) }, route: routeAction(s, true) });
    }
  }
  for (const s of routed) {
    const streamsOnly = s.methods.every((m) => m.methodKind !== "unary");
    routes.push({ name: s.typeName, match: { prefix: `/${s.typeName}/` }, route: routeAction(s, streamsOnly) });
  }
  for (const path of pagePaths) routes.push({ name: `page ${path}`, match: { path }, route: { cluster: "identity", timeout: "5s" } });
  routes.push({ name: "not found", match: { prefix: "/" }, direct_response: { status: 404 } });

  const jwtRules: Yaml[] = [];
  for (const m of methods) if (accessPolicyOf(m)?.public) jwtRules.push({ match: { path: pathOf(m) } });
  for (const s of grocery) jwtRules.push({ match: { prefix: `/${s.typeName}/` }, requires: { provider_name: "identity" } });
  return { routes, jwtRules, routed, internal };
}

/** The text of a YAML value placed after `key:` at `indent` (block style for lists and maps). */
function block(value: unknown, indent: string): string {
  if (value === null || typeof value !== "object") return ` ${stringify(value).trim()}`;
  const text = stringify(value, { lineWidth: 0, indent: 2, flowCollectionPadding: true }).trimEnd();
  return "\n" + text.split("\n").map((l) => `${indent}  ${l}`).join("\n");
}

/** envoy.yaml's text: the template with every `!generated <name>` filled. */
export async function renderEnvoyYaml(services?: readonly DescService[]): Promise<string> {
  const [template, version] = await Promise.all([readFile(templatePath, "utf8"), readFile(versionPath, "utf8")]);
  const model = edgeModel(services ?? (await loadServices()));
  const defaults = readPlatformConfig({});
  const values: Record<string, unknown> = {
    jwt_issuer: defaults.jwtIssuer,
    jwt_audiences: [defaults.jwtAudience],
    jwks_uri: `http://${identityAuthority}${jwksPath}`,
    jwt_rules: model.jwtRules,
    routes: model.routes,
    cors_origins: defaults.corsOrigins.map((exact) => ({ exact })),
    stripped_request_headers: strippedRequestHeaders,
  };
  const used = new Set<string>();
  const body = template.replace(/^(\s*)((?:- )?[A-Za-z_]+): !generated ([a-z_]+)$/gm, (_all, indent: string, key: string, name: string) => {
    if (!(name in values)) throw new Error(`${relative(root, templatePath)}: unknown !generated ${name}`);
    used.add(name);
    return `${indent}${key}:${block(values[name], indent)}`;
  });
  const unused = Object.keys(values).filter((k) => !used.has(k));
  if (unused.length > 0) throw new Error(`${relative(root, templatePath)} does not place ${unused.join(", ")}`);
  const header = [
    "# GENERATED by `npm run generate:envoy` from edge/envoy.template.yaml and the protos (gen/). Do not edit:",
    "# change the template or the protos and regenerate; CI fails when this file is stale.",
    `# Targets Envoy ${version.trim()} (image envoyproxy/envoy:${version.trim()}, edge/envoy-version.txt).`,
    "#",
    `# Routed: ${model.routed.map((s) => s.typeName).join(", ")}.`,
    `# Never routed (404): ${model.internal.map((s) => s.typeName).join(", ")}.`,
    "#",
  ].join("\n");
  return `${header}\n${body}`;
}

async function main(): Promise<void> {
  const text = await renderEnvoyYaml();
  if (process.argv.includes("--check")) {
    const current = await readFile(outputPath, "utf8").catch(() => "");
    if (current !== text) {
      console.error("envoy.yaml is stale: run `npm run generate:envoy` and commit the result");
      process.exit(1);
    }
    return;
  }
  await writeFile(outputPath, text);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await main();
