/**
 * envoy.yaml against Envoy's own schema: parsed strictly into envoy.config.bootstrap.v3.Bootstrap from the v3 API
 * protos that @grpc/grpc-js-xds ships (compiled by buf into a cached descriptor set, see
 * scripts/envoy/descriptors.ts), with the protoc-gen-validate rules evaluated and the load-time cross-references
 * checked (scripts/envoy/validate.ts). Deliberately broken copies prove each check fails, naming the spot.
 */
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { parse } from "yaml";
import { loadEnvoyApi } from "../scripts/envoy/descriptors.js";
import { checkEnvoyJson, checkEnvoyYaml, formatCommandsIn } from "../scripts/envoy/validate.js";

type Obj = Record<string, unknown>;

const api = loadEnvoyApi();
const envoyText = await readFile(fileURLToPath(new URL("../envoy.yaml", import.meta.url)), "utf8");

/** A fresh plain copy of envoy.yaml (anchors resolved) to break. */
function copy(): Obj {
  return JSON.parse(JSON.stringify(parse(envoyText, { merge: true }))) as Obj;
}

function get(obj: unknown, path: readonly (string | number)[]): Obj {
  let v: unknown = obj;
  for (const k of path) v = (v as Record<string | number, unknown>)[k];
  assert.ok(typeof v === "object" && v !== null, `envoy.yaml has ${path.join(".")}`);
  return v as Obj;
}

const hcmPath = ["static_resources", "listeners", 0, "filter_chains", 0, "filters", 0, "typed_config"] as const;
const hcmAt = "static_resources.listeners[0].filter_chains[0].filters[0].typed_config";

function filterIndex(doc: Obj, name: string): number {
  const filters = get(doc, [...hcmPath, "http_filters"]) as unknown as Obj[];
  const i = filters.findIndex((f) => f["name"] === name);
  assert.ok(i >= 0, `envoy.yaml has the ${name} filter`);
  return i;
}

function routeIndex(doc: Obj, has: (route: Obj) => boolean): number {
  const routes = get(doc, [...hcmPath, "route_config", "virtual_hosts", 0, "routes"]) as unknown as Obj[];
  const i = routes.findIndex(has);
  assert.ok(i >= 0, "envoy.yaml has the route the test breaks");
  return i;
}

/** Checks a broken copy: it must fail, and some error must start with the path named. */
function assertFailsAt(doc: Obj, path: string, what: RegExp): void {
  const { errors } = checkEnvoyJson(doc, api);
  assert.ok(errors.length > 0, `the broken copy is rejected (expected an error at ${path})`);
  const hit = errors.find((e) => e.startsWith(`${path}:`) || e.startsWith(`${path} `));
  assert.ok(hit, `an error names ${path}; got:\n${errors.join("\n")}`);
  assert.match(hit, what);
}

describe("Envoy's API as a descriptor set", () => {
  it("has the bootstrap, every filter the edge uses, and the patched StringRules.ignore_empty", () => {
    for (const type of [
      "envoy.config.bootstrap.v3.Bootstrap",
      "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
      "envoy.extensions.filters.http.jwt_authn.v3.JwtAuthentication",
      "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
      "envoy.extensions.filters.http.grpc_web.v3.GrpcWeb",
      "envoy.extensions.filters.http.cors.v3.CorsPolicy",
      "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
    ]) {
      assert.ok(api.registry.getMessage(type), `${type} is in the descriptor set`);
    }
    const ignoreEmpty = api.registry.getMessage("validate.StringRules")?.fields.find((f) => f.name === "ignore_empty");
    assert.equal(ignoreEmpty?.number, 26);
    assert.ok(api.fileCount > 300, `compiled ${api.fileCount} files`);
  });

  it("is built once and then reused from the cache", () => {
    const again = loadEnvoyApi();
    assert.equal(again.built, false, "the second load reads the cached set");
    assert.equal(again.descriptorSet, api.descriptorSet);
  });
});

describe("envoy.yaml against Envoy's schema", () => {
  it("parses strictly, satisfies every validate rule and every cross-reference", () => {
    const result = checkEnvoyYaml(envoyText, api);
    assert.deepEqual(result.errors, []);
    assert.ok(result.bootstrap, "parsed into a Bootstrap");
  });

  it("rejects a misspelt field", () => {
    const doc = copy();
    const cluster = get(doc, ["static_resources", "clusters", 0]);
    cluster["conect_timeout"] = cluster["connect_timeout"];
    delete cluster["connect_timeout"];
    assertFailsAt(doc, "static_resources.clusters[0].conect_timeout", /unknown field of envoy\.config\.cluster\.v3\.Cluster/);
  });

  it("rejects a misspelt field inside a typed_config", () => {
    const doc = copy();
    const i = filterIndex(doc, "envoy.filters.http.jwt_authn");
    get(doc, [...hcmPath, "http_filters", i, "typed_config"])["bypass_cors_prefligth"] = true;
    assertFailsAt(doc, `${hcmAt}.http_filters[${i}].typed_config.bypass_cors_prefligth`, /unknown field/);
  });

  it("rejects an @type that is not a message of Envoy's API", () => {
    const doc = copy();
    const i = filterIndex(doc, "envoy.filters.http.grpc_web");
    get(doc, [...hcmPath, "http_filters", i, "typed_config"])["@type"] = "type.googleapis.com/envoy.extensions.filters.http.grpc_web.v3.GrpcWebb";
    assertFailsAt(doc, `${hcmAt}.http_filters[${i}].typed_config["@type"]`, /not a message of Envoy's API/);
  });

  it("rejects an @type whose message lacks the fields given", () => {
    const doc = copy();
    const i = filterIndex(doc, "envoy.filters.http.jwt_authn");
    get(doc, [...hcmPath, "http_filters", i, "typed_config"])["@type"] = "type.googleapis.com/envoy.extensions.filters.http.cors.v3.Cors";
    assertFailsAt(doc, `${hcmAt}.http_filters[${i}].typed_config.providers`, /unknown field of envoy\.extensions\.filters\.http\.cors\.v3\.Cors/);
  });

  it("rejects an enum value that does not exist, by name or by number", () => {
    const doc = copy();
    get(doc, ["static_resources", "clusters", 1])["lb_policy"] = "ROUND_ROBBIN";
    assertFailsAt(doc, "static_resources.clusters[1].lb_policy", /not a value of envoy\.config\.cluster\.v3\.Cluster\.LbPolicy/);
    const byNumber = copy();
    get(byNumber, ["static_resources", "clusters", 1])["lb_policy"] = 42;
    assertFailsAt(byNumber, "static_resources.clusters[1].lb_policy", /not a value/);
  });

  it("rejects a negative duration where validate.rules asks for one above zero", () => {
    const doc = copy();
    get(doc, ["static_resources", "clusters", 2])["connect_timeout"] = "-1s";
    assertFailsAt(doc, "static_resources.clusters[2].connect_timeout", /must be > 0s.*validate\.rules/);
  });

  it("rejects a duration that is not in proto3 JSON form", () => {
    const doc = copy();
    get(doc, ["static_resources", "clusters", 0])["connect_timeout"] = "2 seconds";
    assertFailsAt(doc, "static_resources.clusters[0].connect_timeout", /not a valid google\.protobuf\.Duration/);
  });

  it("rejects a route to a cluster that does not exist", () => {
    const doc = copy();
    const r = routeIndex(doc, (route) => (route["route"] as Obj | undefined)?.["cluster"] === "cart");
    get(doc, [...hcmPath, "route_config", "virtual_hosts", 0, "routes", r, "route"])["cluster"] = "carts";
    assertFailsAt(doc, `${hcmAt}.route_config.virtual_hosts[0].routes[${r}].route.cluster`, /cluster "carts" does not exist/);
  });

  it("rejects a JWKS fetch from a cluster that does not exist", () => {
    const doc = copy();
    const i = filterIndex(doc, "envoy.filters.http.jwt_authn");
    get(doc, [...hcmPath, "http_filters", i, "typed_config", "providers", "identity", "remote_jwks", "http_uri"])["cluster"] = "identty";
    assertFailsAt(doc, `${hcmAt}.http_filters[${i}].typed_config.providers.identity.remote_jwks.http_uri.cluster`, /does not exist/);
  });

  it("rejects two clusters of one name, and two listeners of one name", () => {
    const doc = copy();
    get(doc, ["static_resources", "clusters", 2])["name"] = "cart";
    assertFailsAt(doc, "static_resources.clusters[2].name", /cluster "cart" is also static_resources\.clusters\[1\]/);
    const listeners = copy();
    const list = get(listeners, ["static_resources"])["listeners"] as Obj[];
    list.push({ ...(JSON.parse(JSON.stringify(list[0])) as Obj), address: { socket_address: { address: "0.0.0.0", port_value: 8081 } } });
    assertFailsAt(listeners, "static_resources.listeners[1].name", /listener "edge" is also/);
  });

  it("rejects a JWT rule that requires a provider that does not exist", () => {
    const doc = copy();
    const i = filterIndex(doc, "envoy.filters.http.jwt_authn");
    const rules = get(doc, [...hcmPath, "http_filters", i, "typed_config"])["rules"] as Obj[];
    const r = rules.findIndex((rule) => rule["requires"] !== undefined);
    assert.ok(r >= 0);
    rules[r] = { ...rules[r], requires: { provider_name: "idp" } };
    assertFailsAt(doc, `${hcmAt}.http_filters[${i}].typed_config.rules[${r}].requires`, /provider "idp", which is not in providers/);
  });

  it("rejects a chain whose router is not the last HTTP filter", () => {
    const doc = copy();
    const filters = get(doc, [...hcmPath])["http_filters"] as Obj[];
    const router = filters.pop();
    assert.ok(router);
    filters.splice(0, 0, router);
    assertFailsAt(doc, `${hcmAt}.http_filters[0]`, /router .* must be the last HTTP filter/);
  });

  it("rejects an access-log format command Envoy does not know", () => {
    const doc = copy();
    const log = get(doc, [...hcmPath, "access_log", 0, "typed_config", "log_format", "json_format"]);
    log["status"] = "%RESPONSE_COD%";
    assertFailsAt(doc, `${hcmAt}.access_log[0].typed_config.log_format.json_format.status`, /unknown format command %RESPONSE_COD%/);
  });

  it("rejects an empty string where validate.rules asks for min_len", () => {
    const doc = copy();
    get(doc, [...hcmPath])["stat_prefix"] = "";
    assertFailsAt(doc, `${hcmAt}.stat_prefix`, /at least 1 characters.*validate\.rules/);
  });

  it("rejects a port out of range, an empty domain list and a route with no action", () => {
    const port = copy();
    get(port, ["static_resources", "listeners", 0, "address", "socket_address"])["port_value"] = 70000;
    assertFailsAt(port, "static_resources.listeners[0].address.socket_address.port_value", /<= 65535/);
    const domains = copy();
    get(domains, [...hcmPath, "route_config", "virtual_hosts", 0])["domains"] = [];
    assertFailsAt(domains, `${hcmAt}.route_config.virtual_hosts[0].domains`, /at least 1 items/);
    const action = copy();
    const r = routeIndex(action, (route) => route["direct_response"] !== undefined);
    delete get(action, [...hcmPath, "route_config", "virtual_hosts", 0, "routes", r])["direct_response"];
    assertFailsAt(action, `${hcmAt}.route_config.virtual_hosts[0].routes[${r}]`, /one of route, redirect, direct_response.* is required/);
  });

  it("rejects a deprecated field", () => {
    const doc = copy();
    const cluster = get(doc, ["static_resources", "clusters", 0]);
    cluster["http2_protocol_options"] = {};
    assertFailsAt(doc, "static_resources.clusters[0].http2_protocol_options", /Cluster\.http2_protocol_options is deprecated/);
  });

  it("rejects a per-route config for a filter the chain lacks", () => {
    const doc = copy();
    const perFilter = get(doc, [...hcmPath, "route_config", "virtual_hosts", 0, "typed_per_filter_config"]);
    perFilter["envoy.filters.http.corss"] = perFilter["envoy.filters.http.cors"];
    assertFailsAt(doc, `${hcmAt}.route_config.virtual_hosts[0].typed_per_filter_config.envoy.filters.http.corss`, /no HTTP filter of that name/);
  });

  it("reads format strings the way Envoy does", () => {
    assert.deepEqual(formatCommandsIn("%REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% 100%% %START_TIME(%s)%"), ["REQ", "START_TIME"]);
    assert.deepEqual(formatCommandsIn("%RESP(grpc-status):10%"), ["RESP"]);
    assert.equal(formatCommandsIn("50% off").length, 1, "an unterminated command is reported");
  });

  it("reports broken YAML instead of throwing", () => {
    const { errors } = checkEnvoyYaml("static_resources: [\n", api);
    assert.equal(errors.length, 1);
    assert.match(errors[0] ?? "", /^\(yaml\):/);
  });
});
