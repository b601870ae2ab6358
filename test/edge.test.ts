/**
 * Static checks of the edge (envoy.yaml) and the deployment (docker-compose.yml) against the
 * contracts: every RPC generated from the protos must reach its service, carry a JWT requirement exactly when
 * its access policy (its own or its service's default, see accessPolicyOf) is not public, and internal services
 * must never be routed. The files are read as YAML and routes are matched the way Envoy matches them (first
 * match wins); nothing here starts Envoy or Docker. envoy.yaml is generated (npm run generate:envoy); its schema
 * is checked in edge-schema.test.ts.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { MethodOptions_IdempotencyLevel } from "@bufbuild/protobuf/wkt";
import { parse } from "yaml";
import { Health } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "@local-e-grocery/gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "@local-e-grocery/gen/grpc/reflection/v1alpha/reflection_pb.js";
import { accessPolicyOf } from "@local-e-grocery/platform/auth/access-interceptor.js";
import { readIdentityConfig } from "@local-e-grocery/identity/config.js";
import { readPlatformConfig } from "@local-e-grocery/platform/platform.js";
import { idempotencyKeyHeader, requestIdField } from "@local-e-grocery/platform/idempotency-key.js";
import { edgeModel, pagePaths, rateLimited, renderEnvoyYaml, strippedRequestHeaders } from "../scripts/envoy/generate.js";
import { generatedServices } from "./generated-services.js";

/** A YAML mapping. */
type Obj = Record<string, unknown>;

const root = fileURLToPath(new URL("..", import.meta.url));
const platformDefaults = readPlatformConfig({});

const filterNames = {
  cors: "envoy.filters.http.cors",
  grpcWeb: "envoy.filters.http.grpc_web",
  rateLimit: "envoy.filters.http.local_ratelimit",
  jwt: "envoy.filters.http.jwt_authn",
  router: "envoy.filters.http.router",
} as const;
const filterTypes: Record<string, string> = {
  [filterNames.cors]: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
  [filterNames.grpcWeb]: "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
  [filterNames.rateLimit]: "type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
  [filterNames.jwt]: "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
  [filterNames.router]: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
};
/** The image tag the edge targets (read by compose, Kubernetes and README). */
const envoyVersion = (await readFile(join(root, "edge/envoy-version.txt"), "utf8")).trim();
/**
 * Identity publishes a new signing key this long before it signs with it (SIGNING_KEY_PUBLISH_AHEAD, its default);
 * Envoy's JWKS cache must be shorter, since Envoy does not refetch on an unknown kid.
 */
const signingKeyPublishAheadSeconds = readIdentityConfig({}).signingKeyPublishAhead;
const httpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** Served only inside the mesh (identity calls it on cart and address): never routed by the edge. */
function isInternal(service: DescService): boolean {
  return service.name === "UserDataService" || service.typeName.startsWith("grocery.userdata.");
}
/** Paths the design names as internal, checked even before their protos exist; reflection stays inside too. */
const knownInternalPaths = ["/grocery.userdata.v1.UserDataService/PurgeUser", "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo"];

// ---- small typed views of parsed YAML -------------------------------------------------------------------------

function map(value: unknown, where: string): Obj {
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `${where} should be a map`);
  return value as Obj;
}
function list(value: unknown, where: string): unknown[] {
  assert.ok(Array.isArray(value), `${where} should be a list`);
  return value;
}
function str(value: unknown, where: string): string {
  assert.equal(typeof value, "string", `${where} should be a string`);
  return value as string;
}
function maps(value: unknown, where: string): Obj[] {
  return list(value, where).map((v, i) => map(v, `${where}[${i}]`));
}

async function readYaml(file: string): Promise<Obj> {
  return map(parse(await readFile(join(root, file), "utf8"), { merge: true }), file);
}

// ---- the contracts ------------------------------------------------------------------------------------------

interface Rpc {
  path: string;
  service: DescService;
  method: DescMethod;
}

function rpcsOf(services: readonly DescService[]): Rpc[] {
  return services.flatMap((service) => service.methods.map((method) => ({ path: `/${service.typeName}/${method.name}`, service, method })));
}

/** `grocery.<name>.v1.X` is served by the `<name>` service, which the edge calls cluster `<name>`. */
function clusterOf(service: DescService): string {
  const [org, name] = service.typeName.split(".");
  assert.equal(org, "grocery", `${service.typeName} is a grocery service`);
  assert.ok(name, `${service.typeName} has a package`);
  return name;
}

const allGrocery = await generatedServices();
const publicServices = allGrocery.filter((s) => !isInternal(s));
const internalServices = allGrocery.filter(isInternal);
const publicRpcs = rpcsOf(publicServices);
const healthRpcs = rpcsOf([Health]);
const internalPaths = [...new Set([...knownInternalPaths, ...rpcsOf([...internalServices, ReflectionV1, ReflectionV1alpha]).map((r) => r.path)])];
/** Every RPC the edge routes: the platform's public services and health. */
const routedRpcs = [...publicRpcs, ...healthRpcs];

// ---- envoy.yaml ---------------------------------------------------------------------------------------------

const envoy = await readYaml("envoy.yaml");
const staticResources = map(envoy["static_resources"], "static_resources");
const listeners = maps(staticResources["listeners"], "static_resources.listeners");
const clusters = new Map(maps(staticResources["clusters"], "static_resources.clusters").map((c) => [str(c["name"], "cluster name"), c]));
const listener = map(listeners[0], "the listener");
const hcmFilter = maps(map(maps(listener["filter_chains"], "filter_chains")[0], "filter_chains[0]")["filters"], "filters").find(
  (f) => f["name"] === "envoy.filters.network.http_connection_manager",
);
const hcm = map(map(hcmFilter, "http_connection_manager filter")["typed_config"], "http_connection_manager typed_config");
const httpFilters = maps(hcm["http_filters"], "http_filters");
const jwtFilter = map(httpFilters.find((f) => f["name"] === filterNames.jwt), "the jwt_authn filter");
const jwt = map(jwtFilter["typed_config"], "jwt_authn typed_config");
const providers = map(jwt["providers"], "jwt_authn providers");
const jwtRules = maps(jwt["rules"], "jwt_authn rules");
const virtualHosts = maps(map(hcm["route_config"], "route_config")["virtual_hosts"], "virtual_hosts");
const virtualHost = map(virtualHosts[0], "the virtual host");
const routes = maps(virtualHost["routes"], "routes");

// ---- Envoy's route matching, for the matchers this config uses ----------------------------------------------

const simulatedMatchFields = new Set(["prefix", "path", "safe_regex", "case_sensitive", "headers"]);

/** RouteMatch semantics: prefix on the whole :path, path and safe_regex (RE2, full match) without the query. */
function matches(matchValue: unknown, path: string, headers: Readonly<Record<string, string>> = {}): boolean {
  const match = map(matchValue, "match");
  for (const key of Object.keys(match)) assert.ok(simulatedMatchFields.has(key), `this test cannot simulate match field "${key}"`);
  for (const h of match["headers"] === undefined ? [] : maps(match["headers"], "match.headers")) {
    for (const key of Object.keys(h)) assert.ok(key === "name" || key === "present_match", `this test cannot simulate header match field "${key}"`);
    if ((str(h["name"], "header name").toLowerCase() in headers) !== (h["present_match"] === true)) return false;
  }
  const caseSensitive = match["case_sensitive"] !== false;
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase());
  const withoutQuery = path.split("?")[0] ?? "";
  if ("prefix" in match) return fold(path).startsWith(fold(str(match["prefix"], "prefix")));
  if ("path" in match) return fold(withoutQuery) === fold(str(match["path"], "path"));
  if ("safe_regex" in match) return new RegExp(`^(?:${str(map(match["safe_regex"], "safe_regex")["regex"], "safe_regex.regex")})$`).test(withoutQuery);
  assert.fail(`a match needs prefix, path or safe_regex: ${JSON.stringify(match)}`);
}

/** The first entry whose match accepts the path, as Envoy picks routes and jwt_authn rules. */
function firstMatch(entries: readonly Obj[], path: string, headers: Readonly<Record<string, string>> = {}): Obj | undefined {
  return entries.find((e) => matches(e["match"], path, headers));
}

function routeFor(path: string, headers: Readonly<Record<string, string>> = {}): Obj {
  return map(firstMatch(routes, path, headers), `the route for ${path}`);
}

/** The cluster of the service that issues tokens (AuthService's). */
function identityCluster(): string {
  const auth = publicServices.find((s) => s.typeName === "grocery.identity.v1.AuthService");
  assert.ok(auth, "gen/ has grocery.identity.v1.AuthService");
  return clusterOf(auth);
}

function clusterOfRoute(route: Obj): string | undefined {
  const action = route["route"];
  return action === undefined ? undefined : str(map(action, "route action")["cluster"], "route cluster");
}

function isNotFound(route: Obj): boolean {
  return route["direct_response"] !== undefined && map(route["direct_response"], "direct_response")["status"] === 404;
}

/** The JWT requirement applied to a path: undefined when the first matching rule (if any) requires nothing. */
function requirementFor(path: string): Obj | undefined {
  const rule = firstMatch(jwtRules, path);
  if (!rule) return undefined;
  if (rule["requirement_name"] !== undefined) {
    const name = str(rule["requirement_name"], "requirement_name");
    return map(map(jwt["requirement_map"], "requirement_map")[name], `requirement_map.${name}`);
  }
  return rule["requires"] === undefined ? undefined : map(rule["requires"], "requires");
}

/** Providers a requirement insists on; fails for requirements that let a request through without a valid token. */
function requiredProviders(requirement: Obj): string[] {
  assert.ok(!("allow_missing" in requirement) && !("allow_missing_or_failed" in requirement), "a requirement must not allow a missing or failed JWT");
  if (requirement["provider_name"] !== undefined) return [str(requirement["provider_name"], "provider_name")];
  if (requirement["provider_and_audiences"] !== undefined) {
    return [str(map(requirement["provider_and_audiences"], "provider_and_audiences")["provider_name"], "provider_name")];
  }
  const any = requirement["requires_any"] ?? requirement["requires_all"];
  if (any !== undefined) return maps(map(any, "requires_any/all")["requirements"], "requirements").flatMap(requiredProviders);
  assert.fail(`unsupported JWT requirement ${JSON.stringify(requirement)}`);
}

/** The per-filter config of a filter for a route: the route's own, else the virtual host's (Envoy's precedence). */
function perFilterConfig(route: Obj, filter: string): Obj | undefined {
  for (const holder of [route, virtualHost]) {
    const configs = holder["typed_per_filter_config"];
    if (configs !== undefined && map(configs, "typed_per_filter_config")[filter] !== undefined) {
      return map(map(configs, "typed_per_filter_config")[filter], `typed_per_filter_config.${filter}`);
    }
  }
  return undefined;
}

function endpointAddresses(cluster: Obj): { address: string; port: number }[] {
  const assignment = map(cluster["load_assignment"], "load_assignment");
  return maps(assignment["endpoints"], "endpoints").flatMap((e) =>
    maps(e["lb_endpoints"], "lb_endpoints").map((lb) => {
      const socket = map(map(map(lb["endpoint"], "endpoint")["address"], "address")["socket_address"], "socket_address");
      return { address: str(socket["address"], "address"), port: Number(socket["port_value"]) };
    }),
  );
}

const jwksProvider = map(providers["identity"] ?? Object.values(providers)[0], "the JWT provider");
const jwksHttpUri = map(map(jwksProvider["remote_jwks"], "remote_jwks")["http_uri"], "remote_jwks.http_uri");
const jwksCluster = str(jwksHttpUri["cluster"], "remote_jwks.http_uri.cluster");

/** Every cluster that a route or the JWKS fetch sends requests to. */
const usedClusters = [...new Set([...routes.flatMap((r) => clusterOfRoute(r) ?? []), jwksCluster])].sort();

// ---- compose ------------------------------------------------------------------------------------------------

const compose = await readYaml("docker-compose.yml");
const composeServices = map(compose["services"], "services");

function composeService(name: string): Obj {
  return map(composeServices[name], `compose service ${name}`);
}

function environmentOf(service: Obj): Record<string, string> {
  const env = service["environment"];
  if (env === undefined) return {};
  if (Array.isArray(env)) {
    return Object.fromEntries(env.map((e) => str(e, "environment entry")).map((e) => [e.split("=")[0] ?? "", e.slice(e.indexOf("=") + 1)]));
  }
  return Object.fromEntries(Object.entries(map(env, "environment")).map(([k, v]) => [k, String(v)]));
}

const interpolation = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}/g;

/** The value compose would use with no variables set, where it can tell; `<NAME>` for required variables. */
function interpolate(value: string): string {
  return value.replace(interpolation, (_all, name: string, op: string | undefined, arg: string | undefined) =>
    op?.endsWith("?") ? `<${name}>` : op?.endsWith("-") ? (arg ?? "") : "",
  );
}

function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (typeof value === "object" && value !== null) for (const v of Object.values(value)) strings(v, out);
  return out;
}

/** The compose services that run the process behind an Envoy cluster. */
function composeServicesOf(cluster: string): string[] {
  return [...new Set(endpointAddresses(map(clusters.get(cluster), `cluster ${cluster}`)).map((e) => e.address))];
}

// ---- tests --------------------------------------------------------------------------------------------------

/** The route action of the route a path reaches (fails for a path answered directly). */
function actionFor(path: string, headers: Readonly<Record<string, string>> = {}): Obj {
  return map(routeFor(path, headers)["route"], `route action for ${path}`);
}

/** The retry conditions in force for a path: its route's retry_policy, else the virtual host's. */
function retryOnFor(path: string, headers: Readonly<Record<string, string>> = {}): string[] {
  const policy = actionFor(path, headers)["retry_policy"] ?? virtualHost["retry_policy"];
  if (policy === undefined) return [];
  return str(map(policy, "retry_policy")["retry_on"], "retry_on").split(",").map((s) => s.trim());
}

/** Seconds of a proto3 JSON duration such as "60s" or "0.25s". */
function seconds(value: unknown, where: string): number {
  const m = /^(\d+(?:\.\d+)?)s$/.exec(str(value, where));
  assert.ok(m, `${where} is a duration`);
  return Number(m[1]);
}

const isIdempotent = (m: DescMethod) => m.idempotency === MethodOptions_IdempotencyLevel.NO_SIDE_EFFECTS || m.idempotency === MethodOptions_IdempotencyLevel.IDEMPOTENT;
/** Retry conditions that are safe for any RPC: the request never reached a replica's handler. */
const safeRetryOn = new Set(["connect-failure", "refused-stream", "reset-before-request", "retriable-status-codes"]);

describe("envoy.yaml is generated", () => {
  it("is exactly what npm run generate:envoy writes from the template and the protos", async () => {
    const current = await readFile(join(root, "envoy.yaml"), "utf8");
    assert.ok(current === (await renderEnvoyYaml()), "envoy.yaml is stale: run npm run generate:envoy");
    assert.match(current, new RegExp(`envoyproxy/envoy:${envoyVersion.replace(/\./g, "\\.")}`), "envoy.yaml names the Envoy it targets");
    assert.match(envoyVersion, /^v\d+\.\d+\.\d+$/, "an exact Envoy version, not a floating tag");
    const readme = await readFile(join(root, "README.md"), "utf8");
    assert.ok(readme.includes(`envoyproxy/envoy:${envoyVersion}`), "README names the exact Envoy version");
  });

  it("refuses a rate-limited RPC that is not public, or missing", () => {
    const withoutAuth = allGrocery.filter((s) => s.typeName !== "grocery.identity.v1.AuthService");
    assert.throws(() => edgeModel(withoutAuth), /rate-limited \/grocery\.identity\.v1\.AuthService\/Login is not an RPC/);
  });
});

describe("edge routes (envoy.yaml) against the protos", () => {
  it("finds the contracts it checks", () => {
    const clustersFound = new Set(publicServices.map(clusterOf));
    for (const name of ["identity", "cart", "address"]) assert.ok(clustersFound.has(name), `gen/ has a grocery.${name}.v1 service`);
    assert.ok(publicRpcs.length > 20, `found ${publicRpcs.length} RPCs`);
    assert.ok(publicRpcs.some((r) => accessPolicyOf(r.method)?.public), "some RPCs are public");
    assert.ok(internalServices.length > 0, "gen/ has an internal service");
  });

  it("sends every RPC of every grocery service to its own service's cluster", () => {
    const wrong: string[] = [];
    for (const rpc of publicRpcs) {
      const route = firstMatch(routes, rpc.path);
      const cluster = route && clusterOfRoute(route);
      if (cluster !== clusterOf(rpc.service)) wrong.push(`${rpc.path} -> ${cluster ?? "no cluster"}, want ${clusterOf(rpc.service)}`);
    }
    assert.deepEqual(wrong, []);
  });

  it("has one prefix route per routed gRPC service, in front of the 404 for everything else", () => {
    for (const service of [...publicServices, Health]) {
      const prefixRoute = routes.find((r) => map(r["match"], "match")["prefix"] === `/${service.typeName}/`);
      assert.ok(prefixRoute && clusterOfRoute(prefixRoute), `a prefix route for ${service.typeName}`);
    }
    const last = routes.at(-1);
    assert.ok(last && isNotFound(last) && map(last["match"], "match")["prefix"] === "/", "the last route answers 404 for anything");
  });

  it("requires a JWT on every non-public RPC and on none of the public ones, which are listed by exact path", () => {
    const wrong: string[] = [];
    for (const rpc of publicRpcs) {
      const policy = accessPolicyOf(rpc.method);
      assert.ok(policy, `${rpc.path} declares an access policy`);
      const requirement = requirementFor(rpc.path);
      if (policy.public) {
        if (requirement !== undefined) wrong.push(`${rpc.path} is public but needs a JWT`);
        const rule = firstMatch(jwtRules, rpc.path);
        if (rule?.["match"] === undefined || map(rule["match"], "match")["path"] !== rpc.path) wrong.push(`${rpc.path} is public but not listed by its exact path`);
      } else if (requirement === undefined) {
        wrong.push(`${rpc.path} (roles ${policy.roles.join(",")}) needs no JWT`);
      } else {
        for (const provider of requiredProviders(requirement)) {
          if (providers[provider] === undefined) wrong.push(`${rpc.path} requires unknown provider ${provider}`);
        }
      }
      // A per-route jwt_authn config would override the rules above.
      if (perFilterConfig(routeFor(rpc.path), filterNames.jwt) !== undefined) wrong.push(`${rpc.path}'s route overrides the JWT rules`);
    }
    assert.deepEqual(wrong, []);
  });

  it("never routes internal services (UserDataService, reflection): their paths reach only a 404", () => {
    assert.ok(internalPaths.length >= 3);
    for (const path of internalPaths) {
      assert.ok(isNotFound(routeFor(path)), `${path} is answered 404 by its first route`);
      const routed = routes.filter((r) => clusterOfRoute(r) !== undefined && matches(r["match"], path));
      assert.deepEqual(routed.map(clusterOfRoute), [], `no route sends ${path} upstream`);
    }
  });

  it("answers 404 for anything that is not an API path", () => {
    for (const path of ["/healthz", "/admin", "/index.php", "/app.js/x", "/grocery.orders.v1.OrderService/GetOrder", "/grpc.health.v2.Health/Check", "/GROCERY.CART.V1.CartService/GetCart"]) {
      assert.ok(isNotFound(routeFor(path)), `${path} is answered 404`);
    }
  });

  it("routes the browser page's files to identity without a JWT, so the page shares the API's origin", () => {
    for (const path of pagePaths) {
      assert.equal(clusterOfRoute(routeFor(path)), identityCluster(), `${path} goes to identity`);
      assert.equal(requirementFor(path), undefined, `${path} needs no token`);
    }
  });

  it("routes the JWKS document and health to identity without a JWT", () => {
    const identity = identityCluster();
    for (const path of ["/.well-known/jwks.json", ...healthRpcs.map((r) => r.path)]) {
      assert.equal(clusterOfRoute(routeFor(path)), identity, `${path} goes to ${identity}`);
      assert.equal(requirementFor(path), undefined, `${path} needs no JWT`);
    }
  });

  it("lets client deadlines count on every RPC and streams run: no route timeout on streams, no idle timeout on Watch", () => {
    assert.ok([undefined, "0s"].includes(hcm["request_timeout"] as string | undefined), "no request_timeout on the connection manager");
    for (const rpc of routedRpcs) {
      const action = actionFor(rpc.path);
      const maxStream = map(action["max_stream_duration"], `max_stream_duration of ${rpc.path}`);
      assert.ok(maxStream["grpc_timeout_header_max"] !== undefined, `${rpc.path}: grpc-timeout is honoured`);
      if (rpc.method.methodKind !== "unary") {
        assert.equal(action["timeout"], "0s", `${rpc.path} (${rpc.method.methodKind}) has its route timeout disabled`);
        assert.equal(maxStream["grpc_timeout_header_max"], "0s", `${rpc.path}: the client's deadline alone bounds the stream`);
      } else {
        // With max_stream_duration on the route Envoy ignores the route `timeout`, so the bound must be there.
        assert.equal(action["timeout"], undefined, `${rpc.path}: no route timeout, which Envoy would ignore`);
        assert.ok(seconds(maxStream["max_stream_duration"], `max_stream_duration of ${rpc.path}`) > 0, `${rpc.path} is bounded when the client sets no deadline`);
      }
    }
    assert.equal(actionFor(`/${Health.typeName}/Watch`)["idle_timeout"], "0s", "Health/Watch streams may stay quiet");
  });

  it("retries UNAVAILABLE only for RPCs the proto marks idempotent; every other retry never reached a replica", () => {
    const idempotent = routedRpcs.filter((r) => isIdempotent(r.method));
    assert.ok(idempotent.length > 0, "some routed RPC is idempotent by its proto");
    const wrong: string[] = [];
    for (const rpc of routedRpcs) {
      const on = retryOnFor(rpc.path);
      const unsafe = on.filter((c) => !safeRetryOn.has(c));
      if (isIdempotent(rpc.method)) {
        if (!on.includes("unavailable")) wrong.push(`${rpc.path} is idempotent but not retried on UNAVAILABLE`);
        if (unsafe.some((c) => c !== "unavailable")) wrong.push(`${rpc.path} retries on ${unsafe.join(",")}`);
      } else if (unsafe.length > 0) {
        wrong.push(`${rpc.path} is not idempotent but retries on ${unsafe.join(",")}`);
      }
    }
    assert.deepEqual(wrong, []);
  });

  it("retries UNAVAILABLE for a write with a request_id only when the call carries it in the Idempotency-Key header", () => {
    const keyed = routedRpcs.filter((r) => requestIdField(r.method) !== undefined && !isIdempotent(r.method));
    assert.deepEqual(keyed.map((r) => r.path), ["/grocery.cart.v1.CartService/AddItem"], "the writes a request id makes safe to repeat");
    for (const rpc of keyed) {
      assert.ok(retryOnFor(rpc.path, { [idempotencyKeyHeader]: "x" }).includes("unavailable"), `${rpc.path} with the header is retried`);
      assert.ok(!retryOnFor(rpc.path).includes("unavailable"), `${rpc.path} without it is not: the edge cannot read the body`);
      assert.equal(clusterOfRoute(routeFor(rpc.path, { [idempotencyKeyHeader]: "x" })), clusterOfRoute(routeFor(rpc.path)), "both go to the same cluster");
      assert.deepEqual(map(routeFor(rpc.path, { [idempotencyKeyHeader]: "x" })["route"], "route")["max_stream_duration"], actionFor(rpc.path)["max_stream_duration"], "with the same bounds");
    }
    // Any other RPC is routed the same with or without the header.
    for (const rpc of routedRpcs.filter((r) => !keyed.includes(r))) {
      assert.deepEqual(routeFor(rpc.path, { [idempotencyKeyHeader]: "x" }), routeFor(rpc.path), `${rpc.path} ignores the header`);
    }
  });

  it("rate-limits Login and RequestPasswordReset by local_ratelimit descriptors on their own routes, answering RESOURCE_EXHAUSTED", () => {
    assert.deepEqual(Object.keys(rateLimited).sort(), ["/grocery.identity.v1.AuthService/Login", "/grocery.identity.v1.AuthService/RequestPasswordReset"]);
    for (const path of Object.keys(rateLimited)) {
      const route = routeFor(path);
      assert.equal(map(route["match"], "match")["path"], path, `${path} has a route of its own`);
      assert.equal(clusterOfRoute(route), identityCluster());
      const config = map(perFilterConfig(route, filterNames.rateLimit), `local_ratelimit on ${path}`);
      assert.ok(map(map(route, "route")["route"], "action"), "the route still forwards");
      const actions = maps(map(maps(actionFor(path)["rate_limits"], "rate_limits")[0], "rate_limits[0]")["actions"], "actions");
      const generic = map(map(actions[0], "action")["generic_key"], "generic_key");
      const descriptors = maps(config["descriptors"], "descriptors");
      const entries = maps(map(descriptors[0], "descriptor")["entries"], "entries");
      assert.deepEqual(entries.map((e) => [e["key"], e["value"]]), [[generic["descriptor_key"], generic["descriptor_value"]]], `the descriptor matches what ${path}'s route produces`);
      const bucket = map(map(descriptors[0], "descriptor")["token_bucket"], "token_bucket");
      assert.ok(Number(bucket["max_tokens"]) > 0 && Number(bucket["max_tokens"]) <= 1000, `${path} has a real limit`);
      for (const key of ["filter_enabled", "filter_enforced"]) {
        assert.equal(map(map(config[key], key)["default_value"], "default_value")["numerator"], 100, `${key} for ${path}`);
      }
      assert.equal(config["rate_limited_as_resource_exhausted"], true, "gRPC clients see RESOURCE_EXHAUSTED, not UNAVAILABLE");
    }
  });
});

describe("edge filters, JWT provider, CORS and listener", () => {
  it("runs cors and grpc_web before local_ratelimit and jwt_authn, and the router last", () => {
    const names = httpFilters.map((f) => str(f["name"], "filter name"));
    const at = (name: string) => names.indexOf(name);
    for (const name of Object.values(filterNames)) assert.ok(at(name) >= 0, `${name} is in the chain`);
    // Envoy's own replies (a rejected token, a rate limit) pass back through the filters before the one that
    // sent them: only so do they get CORS headers and the gRPC-web encoding.
    assert.ok(at(filterNames.cors) < at(filterNames.grpcWeb), `cors before grpc_web: ${names.join(", ")}`);
    assert.ok(at(filterNames.grpcWeb) < at(filterNames.rateLimit), `grpc_web before local_ratelimit: ${names.join(", ")}`);
    assert.ok(at(filterNames.rateLimit) < at(filterNames.jwt), `local_ratelimit before jwt_authn: ${names.join(", ")}`);
    assert.equal(names.at(-1), filterNames.router, "router is the last filter");
    for (const filter of httpFilters) {
      const type = filterTypes[str(filter["name"], "filter name")];
      if (type) assert.equal(map(filter["typed_config"], "typed_config")["@type"], type, `${String(filter["name"])} has its v3 type`);
    }
  });

  it("verifies tokens from identity's JWKS with the platform's issuer and audience, fetched ahead and cached for less than the key publish-ahead time", () => {
    assert.equal(jwksProvider["issuer"], platformDefaults.jwtIssuer);
    assert.deepEqual(jwksProvider["audiences"], [platformDefaults.jwtAudience]);
    assert.equal(jwksProvider["forward"], true, "the services verify the token again");
    assert.equal(jwksProvider["forward_payload_header"], undefined, "no claims header is made for upstreams");
    const headers = maps(jwksProvider["from_headers"], "from_headers");
    assert.deepEqual(
      headers.map((h) => [str(h["name"], "name").toLowerCase(), h["value_prefix"]]),
      [["authorization", "Bearer "]],
    );
    const remote = map(jwksProvider["remote_jwks"], "remote_jwks");
    const uri = new URL(str(jwksHttpUri["uri"], "http_uri.uri"));
    assert.equal(uri.pathname, "/.well-known/jwks.json");
    const identity = identityCluster();
    assert.equal(jwksCluster, identity, "keys come from the identity cluster");
    assert.ok(
      endpointAddresses(map(clusters.get(jwksCluster), "JWKS cluster")).some((e) => e.address === uri.hostname && e.port === Number(uri.port || 80)),
      "the JWKS URI names the JWKS cluster's endpoint",
    );
    const cache = seconds(remote["cache_duration"], "cache_duration");
    assert.ok(cache > 0 && cache < signingKeyPublishAheadSeconds, `cache_duration ${cache}s is shorter than the ${signingKeyPublishAheadSeconds}s publish-ahead`);
    const asyncFetch = map(remote["async_fetch"], "async_fetch");
    assert.ok(seconds(asyncFetch["failed_refetch_duration"] ?? "1s", "failed_refetch_duration") < cache, "a failed fetch is retried well before the cache would expire");
    const retry = map(remote["retry_policy"], "retry_policy");
    assert.ok(Number(retry["num_retries"] ?? 1) >= 1, "a failed JWKS fetch is retried");
  });

  it("answers a rejected token with a status a gRPC-web client can read", () => {
    const mappers = maps(map(hcm["local_reply_config"], "local_reply_config")["mappers"], "mappers");
    const unauthenticated = mappers.find((m) => {
      const comparison = map(map(map(m["filter"], "filter")["status_code_filter"] ?? {}, "status_code_filter")["comparison"] ?? {}, "comparison");
      return map(comparison["value"] ?? {}, "value")["default_value"] === 401;
    });
    assert.ok(unauthenticated, "a mapper for jwt_authn's 401");
    // 401 is what makes the gRPC(-web) local reply grpc-status 16; the body becomes grpc-message.
    assert.equal(unauthenticated["status_code"], undefined, "the mapper keeps the 401");
    const format = map(map(unauthenticated["body_format_override"], "body_format_override")["text_format_source"], "text_format_source");
    const body = str(format["inline_string"], "inline_string");
    assert.match(body, /%LOCAL_REPLY_BODY%/, "the reason (Jwt is missing, Jwt is expired…) stays in the message");
  });

  it("strips identity-bearing headers a client sends, and keeps Authorization", () => {
    const removed = list(map(hcm["route_config"], "route_config")["request_headers_to_remove"], "request_headers_to_remove").map((h) => str(h, "header").toLowerCase());
    for (const h of ["x-user-id", "x-jwt-payload", "x-forwarded-client-cert"]) assert.ok(removed.includes(h), `${h} is removed`);
    assert.deepEqual([...removed].sort(), [...strippedRequestHeaders].sort());
    assert.ok(!removed.includes("authorization"), "the services read the caller from the token");
    assert.ok([undefined, "SANITIZE"].includes(hcm["forward_client_cert_details"] as string | undefined), "XFCC from clients is sanitised");
  });

  it("allows the platform's browser origins and the gRPC-web and Connect headers", () => {
    const wantAllow = ["authorization", "content-type", "x-grpc-web", "x-user-agent", "connect-protocol-version", "connect-timeout-ms", "grpc-timeout", idempotencyKeyHeader];
    const wantExpose = ["grpc-status", "grpc-message", "grpc-status-details-bin"];
    const split = (v: unknown) => str(v, "header list").split(",").map((s) => s.trim().toLowerCase());
    for (const [rpc, headers] of routedRpcs.flatMap((r) => [[r, {}], [r, { [idempotencyKeyHeader]: "x" }]] as const)) {
      const policy = map(perFilterConfig(routeFor(rpc.path, headers), filterNames.cors), `CORS policy for ${rpc.path}`);
      assert.equal(policy["@type"], "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
      const origins = maps(policy["allow_origin_string_match"], "allow_origin_string_match").map((m) => str(m["exact"], "exact origin"));
      assert.deepEqual(origins.sort(), [...platformDefaults.corsOrigins].sort(), `origins for ${rpc.path}`);
      for (const h of wantAllow) assert.ok(split(policy["allow_headers"]).includes(h), `${h} allowed for ${rpc.path}`);
      for (const h of wantExpose) assert.ok(split(policy["expose_headers"]).includes(h), `${h} exposed for ${rpc.path}`);
    }
  });

  it("listens once on 8080 for HTTP/1.1 and h2c, appends X-Forwarded-For as the only trusted hop, and keeps admin on loopback", () => {
    assert.equal(listeners.length, 1);
    assert.equal(map(map(listener["address"], "listener address")["socket_address"], "socket_address")["port_value"], 8080);
    assert.ok([undefined, "AUTO"].includes(hcm["codec_type"] as string | undefined), "codec AUTO");
    assert.ok(hcm["http2_protocol_options"] !== undefined, "HTTP/2 settings for h2c clients");
    assert.equal(hcm["use_remote_address"], true);
    assert.ok([undefined, 0].includes(hcm["xff_num_trusted_hops"] as number | undefined), "no trusted hops in front of Envoy");
    assert.notEqual(hcm["skip_xff_append"], true, "Envoy appends the peer, which the services take as the client");
    const admin = map(map(map(envoy["admin"], "admin")["address"], "admin address")["socket_address"], "admin socket_address");
    assert.equal(admin["address"], "127.0.0.1");
  });
});

describe("edge clusters", () => {
  it("has every cluster a route or the JWKS fetch names", () => {
    assert.ok(usedClusters.length >= 3, `clusters used: ${usedClusters.join(", ")}`);
    for (const name of usedClusters) assert.ok(clusters.has(name), `cluster ${name} exists`);
  });

  it("talks HTTP/2 to DNS-discovered replicas, round robin, with gRPC health checks, outlier detection and circuit breakers", () => {
    for (const name of usedClusters) {
      const cluster = map(clusters.get(name), `cluster ${name}`);
      assert.equal(cluster["type"], "STRICT_DNS", `${name} is STRICT_DNS`);
      assert.equal(cluster["lb_policy"], "ROUND_ROBIN", `${name} is ROUND_ROBIN`);
      const options = map(map(cluster["typed_extension_protocol_options"], "typed_extension_protocol_options")[httpProtocolOptions], httpProtocolOptions);
      assert.equal(options["@type"], `type.googleapis.com/${httpProtocolOptions}`);
      map(map(options["explicit_http_config"], `${name} explicit_http_config`)["http2_protocol_options"], `${name} http2_protocol_options`);
      const checks = maps(cluster["health_checks"], `${name} health_checks`);
      assert.ok(checks.some((c) => c["grpc_health_check"] !== undefined), `${name} has a gRPC health check`);
      const outliers = map(cluster["outlier_detection"], `${name} outlier_detection`);
      assert.ok(Number(outliers["consecutive_gateway_failure"]) > 0, `${name} ejects replicas that keep failing`);
      assert.ok(Number(outliers["max_ejection_percent"]) < 100, `${name} never ejects every replica`);
      const thresholds = maps(map(cluster["circuit_breakers"], `${name} circuit_breakers`)["thresholds"], "thresholds");
      for (const key of ["max_connections", "max_pending_requests", "max_requests"]) assert.ok(Number(thresholds[0]?.[key]) > 0, `${name} bounds ${key}`);
      assert.ok(endpointAddresses(cluster).length > 0, `${name} has endpoints`);
      for (const e of endpointAddresses(cluster)) assert.equal(e.port, 8080, `${name} endpoint ${e.address} on the services' port`);
    }
  });
});

// The image itself (Dockerfile) is checked by image-build.test.ts.
describe("deployment (docker-compose.yml)", () => {
  const clusterServices = usedClusters.flatMap((c) => composeServicesOf(c).map((service) => ({ cluster: c, service })));

  it("runs two replicas of the service behind every cluster, each running that service", () => {
    for (const { cluster, service } of clusterServices) {
      const s = composeService(service);
      assert.equal(map(s["deploy"], `${service}.deploy`)["replicas"], 2, `${service} has two replicas`);
      assert.ok(strings(s["command"]).join(" ").includes(`dist/services/${cluster}/src/main.js`), `${service} runs the ${cluster} service`);
      assert.equal(interpolate(environmentOf(s)["PORT"] ?? "8080"), "8080", `${service} listens where Envoy connects`);
    }
  });

  it("publishes ports only for envoy, which mounts envoy.yaml and publishes 8080", () => {
    for (const [name, service] of Object.entries(composeServices)) {
      if (name !== "envoy") assert.equal(map(service, name)["ports"], undefined, `${name} publishes no port`);
    }
    const edge = composeService("envoy");
    assert.equal(str(edge["image"], "envoy image"), `envoyproxy/envoy:${envoyVersion}`, "compose runs the Envoy edge/envoy-version.txt pins");
    assert.ok(strings(edge["ports"]).some((p) => interpolate(p).endsWith(":8080")), "envoy publishes 8080");
    assert.ok(strings(edge["volumes"]).some((v) => v.startsWith("./envoy.yaml:")), "envoy mounts envoy.yaml");
    for (const { service } of clusterServices) {
      assert.equal(map(map(edge["depends_on"], "envoy.depends_on")[service], `envoy depends on ${service}`)["condition"], "service_healthy");
    }
  });

  it("gives no secret a default value", () => {
    const secretName = /PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL/i;
    const problems: string[] = [];
    for (const value of strings(compose)) {
      for (const m of value.matchAll(interpolation)) {
        const [, name, op] = m;
        if (name && secretName.test(name) && !op?.endsWith("?")) problems.push(`\${${name}} can be empty or defaulted: ${m[0]}`);
      }
    }
    for (const [name, service] of Object.entries(composeServices)) {
      for (const [key, value] of Object.entries(environmentOf(map(service, name)))) {
        if (secretName.test(key) && !/^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$/.test(value)) problems.push(`${name}.${key} is not a required variable`);
      }
    }
    assert.deepEqual(problems, []);
  });

  it("connects every service to PostgreSQL, behind Envoy, with a health check and ordered start-up", () => {
    for (const { service } of clusterServices) {
      const s = composeService(service);
      const env = environmentOf(s);
      const db = new URL(interpolate(env["DATABASE_URL"] ?? "missing:"));
      assert.match(db.protocol, /^postgres(ql)?:$/, `${service} DATABASE_URL is a postgres URL`);
      const postgres = composeService(db.hostname);
      assert.match(str(postgres["image"], "postgres image"), /^postgres:1[5-9]/);
      assert.ok(strings(map(postgres["healthcheck"], "postgres healthcheck")["test"]).join(" ").includes("pg_isready"), "postgres is checked with pg_isready");
      assert.ok(strings(postgres["volumes"]).some((v) => v.endsWith(":/var/lib/postgresql/data")), "postgres keeps its data in a volume");
      assert.equal(map(map(s["depends_on"], `${service}.depends_on`)[db.hostname], `${service} depends on ${db.hostname}`)["condition"], "service_healthy");
      assert.equal(env["TRUST_FORWARDED_FOR"], "true", `${service} trusts Envoy's X-Forwarded-For`);
      const check = strings(map(s["healthcheck"], `${service}.healthcheck`)["test"]).join(" ");
      assert.match(check, /grpc-health-probe/, `${service} is checked over grpc.health.v1`);
    }
  });

  it("points every service but identity at identity's JWKS", () => {
    const identityServices = composeServicesOf(jwksCluster);
    const uri = new URL(str(jwksHttpUri["uri"], "http_uri.uri"));
    for (const { cluster, service } of clusterServices.filter((c) => c.cluster !== jwksCluster)) {
      const jwks = environmentOf(composeService(service))["IDENTITY_JWKS_URL"];
      assert.ok(jwks, `${service} (${cluster}) has IDENTITY_JWKS_URL`);
      const url = new URL(interpolate(jwks));
      assert.ok(identityServices.includes(url.hostname), `${service} fetches keys from ${url.hostname}, one of ${identityServices.join(", ")}`);
      assert.equal(url.pathname, uri.pathname);
    }
  });
});
