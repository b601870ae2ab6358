/**
 * Static checks of the edge (envoy.yaml) and the deployment (docker-compose.yml, Dockerfile) against the
 * contracts: every RPC generated from the protos must reach its service, carry a JWT requirement exactly when
 * its access policy (its own or its service's default, see accessPolicyOf) is not public, and internal services
 * must never be routed. The files are read as YAML and routes are matched the way Envoy matches them (first
 * match wins); nothing here starts Envoy or Docker.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import type { DescMethod, DescService } from "@bufbuild/protobuf";
import { parse } from "yaml";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { ServerReflection as ReflectionV1 } from "../gen/grpc/reflection/v1/reflection_pb.js";
import { ServerReflection as ReflectionV1alpha } from "../gen/grpc/reflection/v1alpha/reflection_pb.js";
import { accessPolicyOf } from "../services/platform/src/auth/access-interceptor.js";
import { readPlatformConfig } from "../services/platform/src/platform.js";
import { generatedServices } from "./generated-services.js";

/** A YAML mapping. */
type Obj = Record<string, unknown>;

const root = fileURLToPath(new URL("..", import.meta.url));
const platformDefaults = readPlatformConfig({});

const filterNames = {
  cors: "envoy.filters.http.cors",
  grpcWeb: "envoy.filters.http.grpc_web",
  jwt: "envoy.filters.http.jwt_authn",
  router: "envoy.filters.http.router",
} as const;
const filterTypes: Record<string, string> = {
  [filterNames.cors]: "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors",
  [filterNames.grpcWeb]: "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
  [filterNames.jwt]: "type.googleapis.com/envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
  [filterNames.router]: "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router",
};
const httpProtocolOptions = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions";

/** Served only inside the mesh (identity calls it on cart and address): never routed by the edge. */
function isInternal(service: DescService): boolean {
  return service.name === "UserDataService" || service.typeName.startsWith("grocery.userdata.");
}
/** Paths the design names as internal, checked even before their protos exist. */
const knownInternalPaths = ["/grocery.userdata.v1.UserDataService/PurgeUser"];

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
const standardRpcs = rpcsOf([Health, ReflectionV1, ReflectionV1alpha]);
const internalPaths = [...new Set([...knownInternalPaths, ...rpcsOf(internalServices).map((r) => r.path)])];

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

const simulatedMatchFields = new Set(["prefix", "path", "safe_regex", "case_sensitive"]);

/** RouteMatch semantics: prefix on the whole :path, path and safe_regex (RE2, full match) without the query. */
function matches(matchValue: unknown, path: string): boolean {
  const match = map(matchValue, "match");
  for (const key of Object.keys(match)) assert.ok(simulatedMatchFields.has(key), `this test cannot simulate match field "${key}"`);
  const caseSensitive = match["case_sensitive"] !== false;
  const fold = (s: string) => (caseSensitive ? s : s.toLowerCase());
  const withoutQuery = path.split("?")[0] ?? "";
  if ("prefix" in match) return fold(path).startsWith(fold(str(match["prefix"], "prefix")));
  if ("path" in match) return fold(withoutQuery) === fold(str(match["path"], "path"));
  if ("safe_regex" in match) return new RegExp(`^(?:${str(map(match["safe_regex"], "safe_regex")["regex"], "safe_regex.regex")})$`).test(withoutQuery);
  assert.fail(`a match needs prefix, path or safe_regex: ${JSON.stringify(match)}`);
}

/** The first entry whose match accepts the path, as Envoy picks routes and jwt_authn rules. */
function firstMatch(entries: readonly Obj[], path: string): Obj | undefined {
  return entries.find((e) => matches(e["match"], path));
}

function routeFor(path: string): Obj {
  return map(firstMatch(routes, path), `the route for ${path}`);
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

describe("edge routes (envoy.yaml) against the protos", () => {
  it("finds the contracts it checks", () => {
    const clustersFound = new Set(publicServices.map(clusterOf));
    for (const name of ["identity", "cart", "address"]) assert.ok(clustersFound.has(name), `gen/ has a grocery.${name}.v1 service`);
    assert.ok(publicRpcs.length > 20, `found ${publicRpcs.length} RPCs`);
    assert.ok(publicRpcs.some((r) => accessPolicyOf(r.method)?.public), "some RPCs are public");
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

  it("never routes internal services: their paths reach only a 404", () => {
    assert.ok(internalPaths.length > 0);
    for (const path of internalPaths) {
      assert.ok(isNotFound(routeFor(path)), `${path} is answered 404 by its first route`);
      const routed = routes.filter((r) => clusterOfRoute(r) !== undefined && matches(r["match"], path));
      assert.deepEqual(routed.map(clusterOfRoute), [], `no route sends ${path} upstream`);
    }
  });

  it("answers 404 for anything that is not an API path", () => {
    for (const path of ["/", "/healthz", "/admin", "/index.html", "/grocery.orders.v1.OrderService/GetOrder", "/grpc.health.v2.Health/Check", "/GROCERY.CART.V1.CartService/GetCart"]) {
      assert.ok(isNotFound(routeFor(path)), `${path} is answered 404`);
    }
  });

  it("routes the JWKS document, health and reflection to identity without a JWT", () => {
    const identity = identityCluster();
    for (const path of ["/.well-known/jwks.json", ...standardRpcs.map((r) => r.path)]) {
      assert.equal(clusterOfRoute(routeFor(path)), identity, `${path} goes to ${identity}`);
      assert.equal(requirementFor(path), undefined, `${path} needs no JWT`);
    }
  });

  it("lets streaming RPCs run: no route timeout on their routes, no idle timeout on health Watch", () => {
    assert.ok([undefined, "0s"].includes(hcm["request_timeout"] as string | undefined), "no request_timeout on the connection manager");
    for (const rpc of [...publicRpcs, ...standardRpcs].filter((r) => r.method.methodKind !== "unary")) {
      const action = map(routeFor(rpc.path)["route"], `route of ${rpc.path}`);
      assert.equal(action["timeout"], "0s", `${rpc.path} (${rpc.method.methodKind}) has its route timeout disabled`);
    }
    const watch = map(routeFor(`/${Health.typeName}/Watch`)["route"], "route of Health/Watch");
    assert.equal(watch["idle_timeout"], "0s", "Health/Watch streams may stay quiet");
  });
});

describe("edge filters, JWT provider, CORS and listener", () => {
  it("runs cors, grpc_web, jwt_authn in that order, and the router last", () => {
    const names = httpFilters.map((f) => str(f["name"], "filter name"));
    const at = (name: string) => names.indexOf(name);
    assert.ok(at(filterNames.cors) >= 0 && at(filterNames.cors) < at(filterNames.grpcWeb), `cors before grpc_web: ${names.join(", ")}`);
    assert.ok(at(filterNames.grpcWeb) < at(filterNames.jwt), `grpc_web before jwt_authn: ${names.join(", ")}`);
    assert.equal(names.at(-1), filterNames.router, "router is the last filter");
    for (const filter of httpFilters) {
      const type = filterTypes[str(filter["name"], "filter name")];
      if (type) assert.equal(map(filter["typed_config"], "typed_config")["@type"], type, `${String(filter["name"])} has its v3 type`);
    }
  });

  it("verifies tokens from identity's JWKS with the platform's issuer and audience, and forwards them", () => {
    assert.equal(jwksProvider["issuer"], platformDefaults.jwtIssuer);
    assert.deepEqual(jwksProvider["audiences"], [platformDefaults.jwtAudience]);
    assert.equal(jwksProvider["forward"], true, "the services verify the token again");
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
    assert.ok(remote["cache_duration"] !== undefined, "the JWKS is cached");
    assert.ok(remote["async_fetch"] !== undefined, "the JWKS is fetched in the background");
    assert.ok(remote["retry_policy"] !== undefined, "a failed JWKS fetch is retried");
  });

  it("allows the platform's browser origins and the gRPC-web and Connect headers", () => {
    const wantAllow = ["authorization", "content-type", "x-grpc-web", "x-user-agent", "connect-protocol-version", "connect-timeout-ms", "grpc-timeout"];
    const wantExpose = ["grpc-status", "grpc-message", "grpc-status-details-bin"];
    const split = (v: unknown) => str(v, "header list").split(",").map((s) => s.trim().toLowerCase());
    for (const rpc of [...publicRpcs, ...standardRpcs]) {
      const policy = map(perFilterConfig(routeFor(rpc.path), filterNames.cors), `CORS policy for ${rpc.path}`);
      assert.equal(policy["@type"], "type.googleapis.com/envoy.extensions.filters.http.cors.v3.CorsPolicy");
      const origins = maps(policy["allow_origin_string_match"], "allow_origin_string_match").map((m) => str(m["exact"], "exact origin"));
      assert.deepEqual(origins.sort(), [...platformDefaults.corsOrigins].sort(), `origins for ${rpc.path}`);
      for (const h of wantAllow) assert.ok(split(policy["allow_headers"]).includes(h), `${h} allowed for ${rpc.path}`);
      for (const h of wantExpose) assert.ok(split(policy["expose_headers"]).includes(h), `${h} exposed for ${rpc.path}`);
    }
  });

  it("listens once on 8080 for HTTP/1.1 and h2c, sets X-Forwarded-For itself, and keeps admin on loopback", () => {
    assert.equal(listeners.length, 1);
    assert.equal(map(map(listener["address"], "listener address")["socket_address"], "socket_address")["port_value"], 8080);
    assert.ok([undefined, "AUTO"].includes(hcm["codec_type"] as string | undefined), "codec AUTO");
    assert.equal(hcm["use_remote_address"], true);
    assert.ok([undefined, 0].includes(hcm["xff_num_trusted_hops"] as number | undefined), "no trusted hops in front of Envoy");
    const admin = map(map(map(envoy["admin"], "admin")["address"], "admin address")["socket_address"], "admin socket_address");
    assert.equal(admin["address"], "127.0.0.1");
  });
});

describe("edge clusters", () => {
  it("has every cluster a route or the JWKS fetch names", () => {
    assert.ok(usedClusters.length >= 3, `clusters used: ${usedClusters.join(", ")}`);
    for (const name of usedClusters) assert.ok(clusters.has(name), `cluster ${name} exists`);
  });

  it("talks HTTP/2 to DNS-discovered replicas, round robin, with gRPC health checks", () => {
    for (const name of usedClusters) {
      const cluster = map(clusters.get(name), `cluster ${name}`);
      assert.equal(cluster["type"], "STRICT_DNS", `${name} is STRICT_DNS`);
      assert.equal(cluster["lb_policy"], "ROUND_ROBIN", `${name} is ROUND_ROBIN`);
      const options = map(map(cluster["typed_extension_protocol_options"], "typed_extension_protocol_options")[httpProtocolOptions], httpProtocolOptions);
      assert.equal(options["@type"], `type.googleapis.com/${httpProtocolOptions}`);
      map(map(options["explicit_http_config"], `${name} explicit_http_config`)["http2_protocol_options"], `${name} http2_protocol_options`);
      const checks = maps(cluster["health_checks"], `${name} health_checks`);
      assert.ok(checks.some((c) => c["grpc_health_check"] !== undefined), `${name} has a gRPC health check`);
      assert.ok(endpointAddresses(cluster).length > 0, `${name} has endpoints`);
      for (const e of endpointAddresses(cluster)) assert.equal(e.port, 8080, `${name} endpoint ${e.address} on the services' port`);
    }
  });
});

describe("deployment (docker-compose.yml, Dockerfile)", () => {
  const clusterServices = usedClusters.flatMap((c) => composeServicesOf(c).map((service) => ({ cluster: c, service })));

  it("runs two replicas of the service behind every cluster, each running that service", () => {
    for (const { cluster, service } of clusterServices) {
      const s = composeService(service);
      assert.equal(map(s["deploy"], `${service}.deploy`)["replicas"], 2, `${service} has two replicas`);
      assert.ok(strings(s["command"]).join(" ").includes(`services/${cluster}/src/main.ts`), `${service} runs the ${cluster} service`);
      assert.equal(interpolate(environmentOf(s)["PORT"] ?? "8080"), "8080", `${service} listens where Envoy connects`);
    }
  });

  it("publishes ports only for envoy, which mounts envoy.yaml and publishes 8080", () => {
    for (const [name, service] of Object.entries(composeServices)) {
      if (name !== "envoy") assert.equal(map(service, name)["ports"], undefined, `${name} publishes no port`);
    }
    const edge = composeService("envoy");
    assert.match(str(edge["image"], "envoy image"), /^envoyproxy\/envoy:v1\.(3[1-9]|[4-9]\d)/);
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
      assert.match(check, /fetch\(.*\/healthz/, `${service} is checked through /healthz`);
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

  it("builds one node:20-slim image with npm ci", async () => {
    const dockerfile = await readFile(join(root, "Dockerfile"), "utf8");
    const froms = [...dockerfile.matchAll(/^FROM\s+(\S+)/gm)].map((m) => m[1]);
    assert.ok(froms.length > 0 && froms.every((f) => f === "node:20-slim"), `base images: ${froms.join(", ")}`);
    assert.match(dockerfile, /^RUN npm ci\b/m);
    assert.match(dockerfile, /^ENTRYPOINT \["node", "--import", "tsx"\]/m);
    assert.match(dockerfile, /^USER node$/m);
  });
});
