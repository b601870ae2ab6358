/**
 * Static checks of the two deployments — docker-compose.yml (one machine) and deploy/k8s/ (Kubernetes) — against
 * what the code reads and what the build produces. Nothing here starts Docker or a cluster (neither exists on
 * these machines).
 *
 * The variables each service reads are found in its source (deployment-files.ts follows the imports from its
 * entry point), not listed here: a deployment that sets a variable no code reads, or lacks one the code needs,
 * fails. The settings are also run through the services' own config readers, so a value they would refuse at
 * start-up fails here first. Kubernetes manifests are validated against the Kubernetes API schema twice: with
 * kubernetes-models' validators (types, enums, required fields) and by the TypeScript compiler against the same
 * package's types, whose excess-property check catches misspelt fields the validators let through.
 */
import assert from "node:assert/strict";
import { livenessHealthName } from "@local-e-grocery/platform/platform.js";
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { parse, parseAllDocuments } from "yaml";
import { Namespace, Service } from "kubernetes-models/v1";
import { Deployment } from "kubernetes-models/apps/v1";
import { PodDisruptionBudget } from "kubernetes-models/policy/v1";
import { HorizontalPodAutoscaler } from "kubernetes-models/autoscaling/v2";
import { NetworkPolicy } from "kubernetes-models/networking.k8s.io/v1";
import { readAddressConfig } from "@local-e-grocery/address/config.js";
import { readCartConfig } from "@local-e-grocery/cart/config.js";
import { readIdentityConfig } from "@local-e-grocery/identity/config.js";
import { readPlatformConfig } from "@local-e-grocery/platform/platform.js";
import { readServiceTarget } from "@local-e-grocery/platform/service-client.js";
import { buildServices } from "../scripts/build.js";
import { compiledEntry, envReadsOf, libraryVariables, reads, serviceEntries, type EnvReads, type ServiceName } from "./deployment-files.js";

type Obj = Record<string, unknown>;
const root = fileURLToPath(new URL("..", import.meta.url));
const k8sDir = join(root, "deploy", "k8s");
const services = Object.keys(serviceEntries) as ServiceName[];

function map(value: unknown, where: string): Obj {
  assert.ok(typeof value === "object" && value !== null && !Array.isArray(value), `${where} should be a map`);
  return value as Obj;
}
function list(value: unknown, where: string): unknown[] {
  assert.ok(Array.isArray(value), `${where} should be a list`);
  return value;
}
function maps(value: unknown, where: string): Obj[] {
  return list(value, where).map((v, i) => map(v, `${where}[${i}]`));
}
/** Every value stored under `key`, at any depth. */
function valuesOf(value: unknown, key: string, out: unknown[] = []): unknown[] {
  if (Array.isArray(value)) for (const v of value) valuesOf(v, key, out);
  else if (typeof value === "object" && value !== null) {
    for (const [k, v] of Object.entries(value)) {
      if (k === key) out.push(v);
      valuesOf(v, key, out);
    }
  }
  return out;
}
function str(value: unknown, where: string): string {
  assert.equal(typeof value, "string", `${where} should be a string`);
  return value as string;
}

/** Variables holding secrets: never a default, never a literal value in a manifest. */
const secretName = /PASSWORD|SECRET|TOKEN|PRIVATE_KEY|API_KEY|CREDENTIAL|^DATABASE_URL$|^SMTP_URL$/;
/** Stand-ins for secret values when the settings are run through the config readers. */
function placeholderFor(name: string): string {
  if (name === "DATABASE_URL") return "postgres://grocery:secret@db.example:5432/grocery";
  if (name === "SMTP_URL") return "smtp://mailer:secret@mail.example:587";
  if (name === "ADMIN_EMAIL") return "admin@example.com";
  if (name === "ADMIN_USERNAME") return "admin";
  return "Placeholder-secret-for-checks-42";
}

/** The source's variables, per service (followed from its entry point). */
const envReads = new Map<ServiceName, EnvReads>();
for (const s of services) envReads.set(s, await envReadsOf(serviceEntries[s]));
function readsOf(service: ServiceName): EnvReads {
  const r = envReads.get(service);
  assert.ok(r);
  return r;
}

/** The service a container runs, from its command: `dist/services/<name>/src/main.js`. */
function serviceRunBy(command: readonly string[]): ServiceName | undefined {
  return services.find((s) => command.includes(compiledEntry(serviceEntries[s])));
}

/** Where a deployment's peers are: the hosts (compose services, Kubernetes Services) running each service, and their port. */
interface Topology {
  hostsOf(service: ServiceName): string[];
  portOf(host: string): number | undefined;
}

/**
 * The environment of one container against the code of the service it runs: every variable is read by that
 * code (or by a library that really reads it), every variable the code requires is there, the config readers
 * accept the values, and the addresses of peers name hosts running those peers.
 */
async function checkServiceEnv(service: ServiceName, env: Record<string, string>, where: string, topology: Topology): Promise<void> {
  const source = readsOf(service);
  for (const name of Object.keys(env)) {
    if (name in libraryVariables) {
      const file = libraryVariables[name] ?? "";
      if (file) assert.ok((await readFile(join(root, file), "utf8")).includes(name), `${where}: ${name} is read by ${file}`);
      continue;
    }
    assert.ok(reads(source, name), `${where}: ${name} is set but ${service}'s code never reads it`);
  }
  for (const name of source.required) assert.ok(env[name] !== undefined, `${where}: ${service} requires ${name}`);
  // The readers a process runs at start-up (platform, then the service's own): a value they refuse fails here.
  assert.doesNotThrow(() => readPlatformConfig(env), `${where}: platform settings`);
  const identity = service === "identity" ? readIdentityConfig(env) : undefined;
  if (service === "cart") assert.doesNotThrow(() => readCartConfig(env), `${where}: cart settings`);
  if (service === "address") assert.doesNotThrow(() => readAddressConfig(env), `${where}: address settings`);
  assert.equal(env["TRUST_FORWARDED_FOR"], "true", `${where}: behind Envoy, X-Forwarded-For is trusted`);
  assert.equal(env["PORT"], "8080", `${where}: listens where Envoy and the probes connect`);

  // Conditional requirements (platform.ts, mesh.ts): identity's keys when identity is not in the process, and an
  // address for every service identity delivers user events to.
  if (service !== "identity") {
    const jwks = new URL(env["IDENTITY_JWKS_URL"] ?? "missing:");
    assert.ok(topology.hostsOf("identity").includes(jwks.hostname), `${where}: IDENTITY_JWKS_URL ${jwks.href} names a host running identity`);
    assert.equal(Number(jwks.port || 80), topology.portOf(jwks.hostname), `${where}: IDENTITY_JWKS_URL port`);
    assert.equal(jwks.pathname, "/.well-known/jwks.json");
  }
  const peers = identity ? identity.events.destinations : [];
  if (identity) assert.ok(peers.length > 0, `${where}: identity delivers user events somewhere`);
  for (const peer of peers) {
    const variable = `${peer.toUpperCase()}_SERVICE_ADDR`;
    const target = readServiceTarget(env, variable);
    assert.ok(target, `${where}: ${variable} is required (${peer} runs in other processes)`);
    const m = /^dns:\/\/\/([^:]+):(\d+)$/.exec(target.uri);
    assert.ok(m, `${where}: ${variable} is dns:/// so every replica is found, got ${target.uri}`);
    assert.ok(topology.hostsOf(peer as ServiceName).includes(m[1] ?? ""), `${where}: ${variable} names a host running ${peer}`);
    assert.equal(Number(m[2]), topology.portOf(m[1] ?? ""), `${where}: ${variable} port`);
  }
}

// ---- envoy.yaml, read only: the clusters both deployments must provide -----------------------------------------

const envoy = map(parse(await readFile(join(root, "envoy.yaml"), "utf8")), "envoy.yaml");
const clusters = maps(map(envoy["static_resources"], "static_resources")["clusters"], "clusters");
/** Each cluster's endpoints: the host names Envoy resolves and their ports. */
const clusterEndpoints = new Map(
  clusters.map((c) => [
    str(c["name"], "cluster name"),
    maps(map(c["load_assignment"], "load_assignment")["endpoints"], "endpoints").flatMap((e) =>
      maps(e["lb_endpoints"], "lb_endpoints").map((l) => {
        const socket = map(map(map(l["endpoint"], "endpoint")["address"], "address")["socket_address"], "socket_address");
        return { host: str(socket["address"], "address"), port: Number(socket["port_value"]) };
      }),
    ),
  ]),
);
const maxHeapBytes = Number(
  maps(map(envoy["overload_manager"], "overload_manager")["resource_monitors"], "resource_monitors")
    .map((m) => map(m["typed_config"], "typed_config")["max_heap_size_bytes"])
    .find((v) => v !== undefined) ?? 0,
);
const pinnedEnvoy = existsSync(join(root, "edge", "envoy-version.txt")) ? (await readFile(join(root, "edge", "envoy-version.txt"), "utf8")).trim() : undefined;

function checkEnvoyImage(image: string, where: string): void {
  assert.match(image, /^envoyproxy\/envoy:v\d+\.\d+\.\d+$/, `${where}: Envoy pinned to an exact release`);
  if (pinnedEnvoy) assert.equal(image, `envoyproxy/envoy:${pinnedEnvoy}`, `${where}: the version envoy.yaml targets (edge/envoy-version.txt)`);
}

// The build output the deployments' commands must name.
let buildDir: string | undefined;
before(async () => {
  await mkdir(join(root, ".cache"), { recursive: true });
  buildDir = await mkdtemp(join(root, ".cache", "deploy-"));
  await buildServices(join(buildDir, "dist"));
});
after(async () => {
  if (buildDir) await rm(buildDir, { recursive: true, force: true });
});
function assertBuilt(entry: string, where: string): void {
  assert.ok(buildDir);
  assert.ok(entry.startsWith("dist/") && existsSync(join(buildDir, entry)), `${where}: ${entry} is in the build output`);
}

// ---- compose ------------------------------------------------------------------------------------------------

const compose = map(parse(await readFile(join(root, "docker-compose.yml"), "utf8"), { merge: true }), "docker-compose.yml");
const composeServices = map(compose["services"], "services");
const interpolation = /\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:?[-?+])([^}]*))?\}/g;

/** The value compose would use with none of the variables set; a required one stands for a secret placeholder. */
function interpolate(value: string): string {
  return value.replace(interpolation, (_all, name: string, op: string | undefined, arg: string | undefined) =>
    op?.endsWith("?") ? placeholderFor(name) : op?.endsWith("-") ? (arg ?? "") : "",
  );
}
function strings(value: unknown, out: string[] = []): string[] {
  if (typeof value === "string") out.push(value);
  else if (Array.isArray(value)) for (const v of value) strings(v, out);
  else if (typeof value === "object" && value !== null) for (const v of Object.values(value)) strings(v, out);
  return out;
}
function composeEnv(service: Obj): Record<string, string> {
  const env = service["environment"];
  if (env === undefined) return {};
  if (Array.isArray(env)) return Object.fromEntries(env.map((e) => str(e, "environment entry")).map((e) => [e.split("=")[0] ?? "", e.slice(e.indexOf("=") + 1)]));
  return Object.fromEntries(Object.entries(map(env, "environment")).map(([k, v]) => [k, String(v)]));
}
const composeRunners = Object.entries(composeServices).flatMap(([name, s]) => {
  const runs = serviceRunBy(strings(map(s, name)["command"]));
  return runs ? [{ name, runs, spec: map(s, name) }] : [];
});
const composeTopology: Topology = {
  hostsOf: (service) => composeRunners.filter((r) => r.runs === service).map((r) => r.name),
  portOf: (host) => {
    const s = composeServices[host];
    return s === undefined ? undefined : Number(interpolate(composeEnv(map(s, host))["PORT"] ?? "8080"));
  },
};

describe("docker-compose.yml", () => {
  it("runs two replicas of each service from the image's compiled entry points", () => {
    assert.deepEqual([...new Set(composeRunners.map((r) => r.runs))].sort(), [...services].sort());
    for (const r of composeRunners) {
      assert.equal(map(r.spec["deploy"], `${r.name}.deploy`)["replicas"], 2, `${r.name} has two replicas`);
      const command = strings(r.spec["command"]);
      assert.equal(command.length, 1, `${r.name}: the command is one entry point, run by the image's ENTRYPOINT node`);
      assertBuilt(command[0] ?? "", r.name);
      assert.ok(r.spec["build"] !== undefined, `${r.name} is built from the Dockerfile`);
    }
  });

  it("sets every variable each service needs, only variables its code reads, with values its config readers accept", async () => {
    for (const r of composeRunners) {
      const raw = composeEnv(r.spec);
      const env = Object.fromEntries(Object.entries(raw).map(([k, v]) => [k, interpolate(v)]));
      await checkServiceEnv(r.runs, env, `compose ${r.name}`, composeTopology);
    }
  });

  it("names only defined services in depends_on, and starts each service after PostgreSQL (and the others after identity) is healthy", () => {
    for (const [name, s] of Object.entries(composeServices)) {
      const deps = map(s, name)["depends_on"];
      if (deps === undefined) continue;
      for (const dep of Array.isArray(deps) ? deps.map((d) => str(d, "depends_on")) : Object.keys(map(deps, "depends_on"))) {
        assert.ok(dep in composeServices, `${name} depends on ${dep}, which is not a service`);
        assert.notEqual(dep, name);
      }
    }
    for (const r of composeRunners) {
      const deps = map(r.spec["depends_on"], `${r.name}.depends_on`);
      const db = new URL(interpolate(composeEnv(r.spec)["DATABASE_URL"] ?? "missing:"));
      assert.equal(map(deps[db.hostname], `${r.name} depends on ${db.hostname}`)["condition"], "service_healthy");
      if (r.runs !== "identity") {
        for (const host of composeTopology.hostsOf("identity")) assert.equal(map(deps[host], `${r.name} depends on ${host}`)["condition"], "service_healthy");
      }
    }
  });

  it("keeps PostgreSQL in a volume with a health check, and gives every service its own schema of it", () => {
    for (const r of composeRunners) {
      const db = new URL(interpolate(composeEnv(r.spec)["DATABASE_URL"] ?? "missing:"));
      assert.match(db.protocol, /^postgres(ql)?:$/);
      const pg = map(composeServices[db.hostname], `compose service ${db.hostname}`);
      assert.match(str(pg["image"], "postgres image"), /^postgres:1[5-9]/);
      assert.ok(strings(map(pg["healthcheck"], "postgres healthcheck")["test"]).join(" ").includes("pg_isready"));
      const volume = strings(pg["volumes"]).find((v) => v.endsWith(":/var/lib/postgresql/data"));
      assert.ok(volume && map(compose["volumes"], "volumes")[volume.split(":")[0] ?? ""] !== undefined, "a named volume holds the data");
      // The schema is the service's name (platform.ts migrates def.name); nothing in the URL may pin another.
      assert.equal(db.searchParams.get("search_path") ?? db.searchParams.get("options"), null, `${r.name}: no search_path override`);
    }
  });

  it("health-checks each service over grpc.health.v1 with the image's probe", () => {
    for (const r of composeRunners) {
      const test = strings(map(r.spec["healthcheck"], `${r.name}.healthcheck`)["test"]);
      assert.deepEqual(test, ["CMD", "node", "scripts/grpc-health-probe.mjs"], `${r.name} healthcheck`);
    }
  });

  it("publishes a port for Envoy alone, which mounts ./envoy.yaml and finds every cluster's hosts among the services", () => {
    for (const [name, s] of Object.entries(composeServices)) if (name !== "envoy") assert.equal(map(s, name)["ports"], undefined, `${name} publishes no port`);
    const edge = map(composeServices["envoy"], "compose service envoy");
    checkEnvoyImage(str(edge["image"], "envoy image"), "compose envoy");
    assert.ok(strings(edge["ports"]).some((p) => interpolate(p).endsWith(":8080")), "envoy publishes 8080");
    assert.ok(strings(edge["volumes"]).some((v) => /^\.\/envoy\.yaml:\/etc\/envoy\/envoy\.yaml(:ro)?$/.test(v)), "envoy mounts ./envoy.yaml");
    assert.deepEqual(strings(edge["command"]).slice(0, 3), ["envoy", "-c", "/etc/envoy/envoy.yaml"]);
    for (const [cluster, endpoints] of clusterEndpoints) {
      for (const e of endpoints) {
        assert.ok(composeTopology.hostsOf(cluster as ServiceName).includes(e.host), `cluster ${cluster}: ${e.host} is a compose service running ${cluster}`);
        assert.equal(composeTopology.portOf(e.host), e.port, `cluster ${cluster}: port`);
        assert.equal(map(map(edge["depends_on"], "envoy.depends_on")[e.host], `envoy depends on ${e.host}`)["condition"], "service_healthy");
      }
    }
  });

  it("gives no secret a default value", () => {
    const problems: string[] = [];
    for (const value of strings(compose)) {
      for (const m of value.matchAll(interpolation)) {
        const [, name, op] = m;
        if (name && secretName.test(name) && !op?.endsWith("?")) problems.push(`\${${name}} can be empty or defaulted: ${m[0]}`);
      }
    }
    for (const [name, s] of Object.entries(composeServices)) {
      for (const [key, value] of Object.entries(composeEnv(map(s, name)))) {
        if (key !== "DATABASE_URL" && secretName.test(key) && !/^\$\{[A-Za-z_][A-Za-z0-9_]*:?\?[^}]*\}$/.test(value)) problems.push(`${name}.${key} is not a required variable`);
        if (key === "DATABASE_URL" && new URL(interpolate(value)).password !== "") problems.push(`${name}.DATABASE_URL carries a password`);
      }
    }
    assert.deepEqual(problems, []);
  });
});

// ---- Kubernetes ---------------------------------------------------------------------------------------------

interface Manifest {
  readonly file: string;
  readonly doc: Obj;
  readonly kind: string;
  readonly name: string;
}

const kustomization = map(parse(await readFile(join(k8sDir, "kustomization.yaml"), "utf8")), "kustomization.yaml");
const resourceFiles = list(kustomization["resources"], "resources").map((r) => str(r, "resource"));
const manifests: Manifest[] = [];
for (const file of resourceFiles) {
  for (const d of parseAllDocuments(await readFile(join(k8sDir, file), "utf8"))) {
    assert.deepEqual(d.errors, [], `${file} parses`);
    const doc = map(d.toJS(), file);
    manifests.push({ file, doc, kind: str(doc["kind"], `${file} kind`), name: str(map(doc["metadata"], `${file} metadata`)["name"], `${file} name`) });
  }
}
const ofKind = (kind: string) => manifests.filter((m) => m.kind === kind);
const deployments = ofKind("Deployment");

function podSpec(d: Manifest): Obj {
  return map(map(map(d.doc["spec"], "spec")["template"], "template")["spec"], `${d.name} pod spec`);
}
function containersOf(d: Manifest): Obj[] {
  return maps(podSpec(d)["containers"], `${d.name} containers`);
}
function podLabels(d: Manifest): Obj {
  return map(map(map(map(d.doc["spec"], "spec")["template"], "template")["metadata"], "metadata")["labels"], `${d.name} pod labels`);
}
function selects(selector: Obj, labels: Obj): boolean {
  return Object.entries(selector).every(([k, v]) => labels[k] === v);
}
/** Which service a Deployment's container runs (from its args), if any. */
function runsOf(d: Manifest): ServiceName | undefined {
  const c = containersOf(d)[0];
  return c ? serviceRunBy(strings(c["args"])) : undefined;
}
/** A container's environment; secret references become placeholders (they are checked for being references apart). */
function k8sEnv(container: Obj): Record<string, string> {
  const env: Record<string, string> = {};
  for (const e of maps(container["env"] ?? [], "env")) {
    const name = str(e["name"], "env name");
    env[name] = e["value"] !== undefined ? String(e["value"]) : placeholderFor(name);
  }
  return env;
}
const k8sServices = ofKind("Service");
const k8sTopology: Topology = {
  hostsOf: (service) =>
    k8sServices
      .filter((s) => {
        const selector = map(map(s.doc["spec"], "spec")["selector"], `${s.name} selector`);
        return deployments.some((d) => runsOf(d) === service && selects(selector, podLabels(d)));
      })
      .map((s) => s.name),
  portOf: (host) => {
    const s = k8sServices.find((m) => m.name === host);
    return s ? Number(maps(map(s.doc["spec"], "spec")["ports"], "ports")[0]?.["port"]) : undefined;
  },
};

const modelOf: Record<string, { validate(doc: Obj): void; type: string; module: string }> = Object.fromEntries(
  (
    [
      ["Namespace", (d: Obj) => new Namespace(d as never).validate(), "INamespace", "kubernetes-models/v1/Namespace"],
      ["Service", (d: Obj) => new Service(d as never).validate(), "IService", "kubernetes-models/v1/Service"],
      ["Deployment", (d: Obj) => new Deployment(d as never).validate(), "IDeployment", "kubernetes-models/apps/v1/Deployment"],
      ["PodDisruptionBudget", (d: Obj) => new PodDisruptionBudget(d as never).validate(), "IPodDisruptionBudget", "kubernetes-models/policy/v1/PodDisruptionBudget"],
      ["HorizontalPodAutoscaler", (d: Obj) => new HorizontalPodAutoscaler(d as never).validate(), "IHorizontalPodAutoscaler", "kubernetes-models/autoscaling/v2/HorizontalPodAutoscaler"],
      ["NetworkPolicy", (d: Obj) => new NetworkPolicy(d as never).validate(), "INetworkPolicy", "kubernetes-models/networking.k8s.io/v1/NetworkPolicy"],
    ] as const
  ).map(([kind, validate, type, module]) => [kind, { validate, type, module }]),
);

/**
 * Type-checks documents against kubernetes-models' interfaces: one `const` per document, so each misspelt or
 * misplaced field is an excess-property error naming the document. Returns "file kind/name: message" lines.
 */
function typeCheck(docs: readonly Manifest[]): string[] {
  const file = join(root, ".cache", "k8s-manifests.check.ts");
  const imports = [...new Set(docs.map((d) => modelOf[d.kind]))].map((m) => `import type { ${m?.type} } from "${m?.module}";`);
  const consts = docs.map((d, i) => `export const m${i}: ${modelOf[d.kind]?.type} = ${JSON.stringify(d.doc)};`);
  const source = [...imports, ...consts].join("\n");
  const options: ts.CompilerOptions = {
    strict: true,
    noEmit: true,
    target: ts.ScriptTarget.ES2022,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    skipLibCheck: true,
    types: [],
  };
  const host = ts.createCompilerHost(options);
  const read = host.getSourceFile.bind(host);
  host.getSourceFile = (name, language, ...rest) => (name === file ? ts.createSourceFile(name, source, language) : read(name, language, ...rest));
  host.fileExists = ((exists) => (name: string) => name === file || exists(name))(host.fileExists.bind(host));
  const program = ts.createProgram([file], options, host);
  const sourceFile = program.getSourceFile(file);
  return ts.getPreEmitDiagnostics(program).map((diag) => {
    const line = sourceFile && diag.file === sourceFile && diag.start !== undefined ? sourceFile.getLineAndCharacterOfPosition(diag.start).line : -1;
    const d = docs[line - imports.length];
    return `${d ? `${d.file} ${d.kind}/${d.name}` : "?"}: ${ts.flattenDiagnosticMessageText(diag.messageText, " ")}`;
  });
}

describe("deploy/k8s", () => {
  it("lists every manifest of the folder in kustomization.yaml, and holds no Secret", async () => {
    const files = (await readdir(k8sDir)).filter((f) => f.endsWith(".yaml") && f !== "kustomization.yaml" && f !== "envoy.yaml").sort();
    assert.deepEqual([...resourceFiles].sort(), files);
    assert.deepEqual(ofKind("Secret"), [], "Secrets are created apart, never committed");
    assert.equal(kustomization["secretGenerator"], undefined);
    const names = manifests.map((m) => `${m.kind}/${m.name}`);
    assert.equal(new Set(names).size, names.length, "no kind/name twice");
  });

  it("validates every manifest against the Kubernetes schema", () => {
    const failures: string[] = [];
    for (const m of manifests) {
      const model = modelOf[m.kind];
      if (!model) {
        failures.push(`${m.file} ${m.kind}/${m.name}: no schema known for this kind`);
        continue;
      }
      try {
        model.validate(m.doc);
      } catch (e) {
        failures.push(`${m.file} ${m.kind}/${m.name}: ${(e as Error).message}`);
      }
    }
    failures.push(...typeCheck(manifests));
    assert.deepEqual(failures, []);
  });

  it("catches a misspelt field, a wrong type and a missing one", () => {
    const deployment = deployments[0];
    assert.ok(deployment);
    const broken = (edit: (doc: Obj) => void): Manifest => {
      const doc = structuredClone(deployment.doc);
      edit(doc);
      return { ...deployment, doc };
    };
    const misspelt = broken((d) => (map(map(map(map(d["spec"], "spec")["template"], "t")["spec"], "s")["securityContext"], "sc")["runAsNonroot"] = true));
    assert.match(typeCheck([misspelt]).join("\n"), /runAsNonroot/);
    const wrongType = broken((d) => (map(containersOf({ ...deployment, doc: d })[0]?.["readinessProbe"], "probe")["grpc"] = { port: "grpc" }));
    assert.throws(() => modelOf["Deployment"]?.validate(wrongType.doc), /grpc\/port must be integer/);
    const missing = broken((d) => delete map(d["spec"], "spec")["selector"]);
    assert.throws(() => modelOf["Deployment"]?.validate(missing.doc), /selector/);

    const policy = ofKind("NetworkPolicy")[0];
    assert.ok(policy);
    const brokenPolicy = (edit: (spec: Obj) => void): Manifest => {
      const doc = structuredClone(policy.doc);
      edit(map(doc["spec"], "spec"));
      return { ...policy, doc };
    };
    assert.match(typeCheck([brokenPolicy((spec) => (spec["podSelecter"] = spec["podSelector"]))]).join("\n"), /podSelecter/);
    assert.throws(() => modelOf["NetworkPolicy"]?.validate(brokenPolicy((spec) => (spec["policyTypes"] = ["Inbound"])).doc), /policyTypes/);
    assert.throws(() => modelOf["NetworkPolicy"]?.validate(brokenPolicy((spec) => delete spec["podSelector"]).doc), /podSelector/);
  });

  it("runs each service from the image's compiled entry points, with native gRPC probes on the port it listens on", () => {
    const backends = deployments.filter((d) => runsOf(d) !== undefined);
    assert.deepEqual(backends.map(runsOf).sort(), [...services].sort());
    for (const d of backends) {
      const [c, ...more] = containersOf(d);
      assert.ok(c && more.length === 0, `${d.name}: one container`);
      const args = strings(c["args"]);
      assert.equal(args.length, 1);
      assertBuilt(args[0] ?? "", `${d.name}`);
      assert.equal(c["command"], undefined, `${d.name}: the image's ENTRYPOINT (node) runs it`);
      assert.equal(str(c["image"], "image").split(":")[0], "local-e-grocery");
      const port = Number(k8sEnv(c)["PORT"]);
      const containerPort = maps(c["ports"], "ports").find((p) => p["name"] === "grpc");
      assert.equal(containerPort?.["containerPort"], port, `${d.name}: containerPort grpc is PORT`);
      for (const probe of ["startupProbe", "readinessProbe"]) {
        assert.deepEqual(map(c[probe], `${d.name} ${probe}`)["grpc"], { port }, `${d.name} ${probe} is grpc on ${port}`);
      }
      // Liveness asks for the health name that ignores the database: an outage must not restart pods.
      assert.deepEqual(map(c["livenessProbe"], `${d.name} livenessProbe`)["grpc"], { port, service: livenessHealthName }, `${d.name} livenessProbe is grpc on ${port} for ${livenessHealthName}`);
    }
    const images = maps(kustomization["images"], "images");
    assert.ok(images.some((i) => i["name"] === "local-e-grocery" && typeof i["newTag"] === "string"), "kustomization pins the image's tag");
  });

  it("sets every variable each service needs, only variables its code reads, secrets by reference only", async () => {
    for (const d of deployments.filter((m) => runsOf(m) !== undefined)) {
      const c = containersOf(d)[0];
      assert.ok(c);
      for (const e of maps(c["env"] ?? [], "env")) {
        const name = str(e["name"], "env name");
        if (secretName.test(name)) {
          assert.equal(e["value"], undefined, `${d.name}: ${name} is not inlined`);
          assert.ok(map(map(e["valueFrom"], `${d.name} ${name} valueFrom`)["secretKeyRef"], `${d.name}: ${name} comes from a Secret`));
        }
      }
      assert.equal(c["envFrom"], undefined, `${d.name}: every variable is named (envFrom would hide them from these checks)`);
      assert.equal(podSpec(d)["enableServiceLinks"], false, `${d.name}: no injected <SERVICE>_SERVICE_* variables`);
      await checkServiceEnv(runsOf(d) ?? "identity", k8sEnv(c), `k8s ${d.name}`, k8sTopology);
    }
  });

  it("runs every pod non-root on a read-only root filesystem with no privilege, /tmp on an emptyDir, with requests and limits", () => {
    for (const d of deployments) {
      const pod = podSpec(d);
      const podSecurity = map(pod["securityContext"], `${d.name} pod securityContext`);
      assert.equal(podSecurity["runAsNonRoot"], true, `${d.name} runAsNonRoot`);
      assert.ok(Number(podSecurity["runAsUser"]) > 0, `${d.name}: a numeric non-root user (the images' USER is a name or root)`);
      assert.equal(map(podSecurity["seccompProfile"], "seccompProfile")["type"], "RuntimeDefault");
      assert.equal(pod["automountServiceAccountToken"], false, `${d.name}: no API token in the pod`);
      const volumes = new Map(maps(pod["volumes"], `${d.name} volumes`).map((v) => [str(v["name"], "volume name"), v]));
      for (const c of containersOf(d)) {
        const sc = map(c["securityContext"], `${d.name} container securityContext`);
        assert.equal(sc["readOnlyRootFilesystem"], true, `${d.name} readOnlyRootFilesystem`);
        assert.equal(sc["allowPrivilegeEscalation"], false, `${d.name} allowPrivilegeEscalation`);
        assert.deepEqual(map(sc["capabilities"], "capabilities")["drop"], ["ALL"]);
        assert.equal(sc["privileged"] ?? false, false);
        const mounts = maps(c["volumeMounts"], `${d.name} volumeMounts`);
        const tmp = mounts.find((m) => m["mountPath"] === "/tmp");
        assert.ok(tmp && volumes.get(str(tmp["name"], "mount name"))?.["emptyDir"] !== undefined, `${d.name}: /tmp is an emptyDir`);
        for (const m of mounts) assert.ok(volumes.has(str(m["name"], "mount name")), `${d.name}: volume ${String(m["name"])} exists`);
        const resources = map(c["resources"], `${d.name} resources`);
        for (const kind of ["requests", "limits"]) for (const r of ["cpu", "memory"]) assert.ok(map(resources[kind], `${d.name} ${kind}`)[r] !== undefined, `${d.name} ${kind}.${r}`);
      }
    }
  });

  it("gives every backend a headless Service whose name and port are what Envoy's clusters and the services' addresses use", () => {
    for (const d of deployments.filter((m) => runsOf(m) !== undefined)) {
      const service = runsOf(d) ?? "identity";
      const hosts = k8sTopology.hostsOf(service);
      assert.deepEqual(hosts, [service], `${service} has one Service, named after it`);
      const s = k8sServices.find((m) => m.name === service);
      assert.ok(s);
      const spec = map(s.doc["spec"], "spec");
      assert.equal(spec["clusterIP"], "None", `${service} Service is headless, so DNS lists every pod`);
      const ports = maps(spec["ports"], "ports");
      const containerPorts = maps(containersOf(d)[0]?.["ports"], "ports");
      for (const p of ports) {
        const target = p["targetPort"];
        assert.ok(containerPorts.some((c) => c["name"] === target || c["containerPort"] === target), `${service} Service targets a container port`);
      }
      for (const e of clusterEndpoints.get(service) ?? []) {
        assert.equal(e.host, service, `envoy cluster ${service} resolves the Service`);
        assert.equal(k8sTopology.portOf(e.host), e.port);
      }
      assert.ok(clusterEndpoints.has(service), `envoy.yaml has a ${service} cluster`);
    }
  });

  it("has a PodDisruptionBudget and a HorizontalPodAutoscaler for every Deployment, which the autoscaler alone sizes", () => {
    for (const d of deployments) {
      const labels = podLabels(d);
      const selector = map(map(map(d.doc["spec"], "spec")["selector"], "selector")["matchLabels"], "matchLabels");
      assert.ok(selects(selector, labels), `${d.name}: its selector matches its pods`);
      assert.equal(map(d.doc["spec"], "spec")["replicas"], undefined, `${d.name}: no replicas, the HPA sets them`);
      const hpas = ofKind("HorizontalPodAutoscaler").filter((h) => {
        const ref = map(map(h.doc["spec"], "spec")["scaleTargetRef"], "scaleTargetRef");
        return ref["kind"] === "Deployment" && ref["name"] === d.name && ref["apiVersion"] === "apps/v1";
      });
      assert.equal(hpas.length, 1, `${d.name}: one HorizontalPodAutoscaler`);
      const hpa = map(hpas[0]?.doc["spec"], "hpa spec");
      const min = Number(hpa["minReplicas"]);
      assert.ok(min >= 2 && Number(hpa["maxReplicas"]) >= min, `${d.name}: at least two replicas`);
      const pdbs = ofKind("PodDisruptionBudget").filter((p) => selects(map(map(map(p.doc["spec"], "spec")["selector"], "selector")["matchLabels"], "matchLabels"), labels));
      assert.equal(pdbs.length, 1, `${d.name}: one PodDisruptionBudget`);
      const minAvailable = map(pdbs[0]?.doc["spec"], "pdb spec")["minAvailable"];
      assert.ok(typeof minAvailable === "number" && minAvailable >= 1 && minAvailable < min, `${d.name}: a voluntary disruption may take one pod, never all`);
    }
  });

  it("gives every backend a NetworkPolicy admitting its port only from the edge and the other backends, and from every pod that calls it", () => {
    const policies = ofKind("NetworkPolicy");
    const edge = deployments.filter((d) => runsOf(d) === undefined);
    const backends = deployments.filter((d) => runsOf(d) !== undefined);
    const selectorOf = (p: Manifest) => {
      const selector = map(map(p.doc["spec"], "spec")["podSelector"], `${p.name} podSelector`);
      assert.equal(selector["matchExpressions"], undefined, `${p.name}: matchLabels only, so these checks read the selector whole`);
      return map(selector["matchLabels"], `${p.name} podSelector.matchLabels`);
    };
    /** The services a backend's environment names a host of (`dns:///cart:8080`, `http://identity:8080/…`). */
    const callees = (d: Manifest) =>
      Object.values(k8sEnv(containersOf(d)[0] ?? {})).flatMap((v) =>
        [...v.matchAll(/\/\/\/?([a-z0-9.-]+):\d+/g)].flatMap((m) => services.filter((s) => k8sTopology.hostsOf(s).includes(m[1] ?? ""))),
      );
    for (const e of edge) assert.deepEqual(policies.filter((p) => selects(selectorOf(p), podLabels(e))).map((p) => p.name), [], `${e.name}: the public door is left open`);

    for (const d of backends) {
      const service = runsOf(d) ?? "identity";
      const own = policies.filter((p) => selects(selectorOf(p), podLabels(d)));
      assert.equal(own.length, 1, `${service}: one NetworkPolicy selects its pods`);
      const spec = map(own[0]?.doc["spec"], "spec");
      assert.deepEqual(spec["policyTypes"], ["Ingress"], `${service}: ingress is restricted`);
      const port = maps(containersOf(d)[0]?.["ports"], "ports").find((p) => p["name"] === "grpc");
      const admitted = new Set<string>();
      for (const [i, rule] of maps(spec["ingress"], `${service} ingress`).entries()) {
        const where = `${service} ingress[${i}]`;
        // A rule without ports admits every port, one without peers every source.
        const ports = maps(rule["ports"], `${where} ports`);
        assert.ok(ports.length > 0, `${where}: names its ports`);
        for (const p of ports) {
          assert.ok(p["port"] === port?.["containerPort"] || p["port"] === port?.["name"], `${where}: only the gRPC port ${String(port?.["containerPort"])}`);
          assert.equal(p["protocol"] ?? "TCP", "TCP");
          assert.equal(p["endPort"], undefined, `${where}: one port, not a range`);
        }
        const peers = maps(rule["from"], `${where} from`);
        assert.ok(peers.length > 0, `${where}: names its sources`);
        for (const peer of peers) {
          assert.deepEqual(Object.keys(peer), ["podSelector"], `${where}: pods of this namespace only (no namespaceSelector, no ipBlock)`);
          const selector = map(peer["podSelector"], `${where} podSelector`);
          assert.equal(selector["matchExpressions"], undefined, `${where}: matchLabels only`);
          const labels = map(selector["matchLabels"] ?? {}, `${where} matchLabels`);
          assert.ok(Object.keys(labels).length > 0, `${where}: an empty selector admits every pod of the namespace`);
          for (const m of deployments) if (selects(labels, podLabels(m))) admitted.add(m.name);
        }
      }
      const allowed = new Set([...edge, ...backends].filter((m) => m !== d).map((m) => m.name));
      for (const name of admitted) assert.ok(allowed.has(name), `${service} admits ${name}, which is neither the edge nor another backend`);
      for (const e of edge) assert.ok(admitted.has(e.name), `${service} admits the edge (${e.name}), which routes to it`);
      for (const caller of backends.filter((b) => b !== d && callees(b).includes(service))) {
        assert.ok(admitted.has(caller.name), `${service} admits ${caller.name}, whose environment names it`);
      }
    }
  });

  it("runs Envoy with envoy.yaml from a ConfigMap generated from the same file, probed over gRPC, with room for its heap", async () => {
    const generators = maps(kustomization["configMapGenerator"], "configMapGenerator");
    const generator = generators.find((g) => g["name"] === "envoy-config");
    assert.ok(generator, "a configMapGenerator named envoy-config");
    assert.deepEqual(generator["files"], ["envoy.yaml"]);
    const [copy, source] = await Promise.all([readFile(join(k8sDir, "envoy.yaml")), readFile(join(root, "envoy.yaml"))]);
    assert.ok(copy.equals(source), "deploy/k8s/envoy.yaml differs from envoy.yaml: run npm run generate:k8s");

    const edges = deployments.filter((d) => containersOf(d).some((c) => str(c["image"], "image").startsWith("envoyproxy/envoy:")));
    assert.equal(edges.length, 1, "one Envoy Deployment");
    const edge = edges[0];
    assert.ok(edge);
    const c = containersOf(edge)[0];
    assert.ok(c);
    checkEnvoyImage(str(c["image"], "image"), "k8s edge");
    const args = strings(c["args"]);
    const config = args[args.indexOf("-c") + 1] ?? "";
    const mount = maps(c["volumeMounts"], "volumeMounts").find((m) => config.startsWith(`${String(m["mountPath"])}/`));
    assert.ok(mount, `${config} is on a mounted volume`);
    const volume = maps(podSpec(edge)["volumes"], "volumes").find((v) => v["name"] === mount["name"]);
    assert.equal(map(volume?.["configMap"], "config volume")["name"], "envoy-config", "the volume is the generated ConfigMap");
    assert.equal(config, `${String(mount["mountPath"])}/envoy.yaml`);

    const listener = maps(map(envoy["static_resources"], "static_resources")["listeners"], "listeners")[0];
    const port = Number(map(map(listener?.["address"], "address")["socket_address"], "socket_address")["port_value"]);
    assert.equal(maps(c["ports"], "ports")[0]?.["containerPort"], port, "containerPort is envoy.yaml's listener");
    assert.deepEqual(map(c["readinessProbe"], "readinessProbe")["grpc"], { port }, "ready when health answers through the edge");
    assert.ok(map(c["livenessProbe"], "livenessProbe")["tcpSocket"] !== undefined || map(c["livenessProbe"], "livenessProbe")["grpc"] !== undefined);
    const memory = str(map(map(c["resources"], "resources")["limits"], "limits")["memory"], "memory limit");
    const mi = /^(\d+)Mi$/.exec(memory);
    assert.ok(mi, `memory limit in Mi: ${memory}`);
    assert.ok(Number(mi[1]) * 1024 * 1024 > maxHeapBytes && maxHeapBytes > 0, `memory limit ${memory} above envoy.yaml's heap bound ${maxHeapBytes}`);

    const service = k8sServices.find((s) => selects(map(map(s.doc["spec"], "spec")["selector"], "selector"), podLabels(edge)));
    assert.ok(service, "the edge has a Service");
    assert.notEqual(map(service.doc["spec"], "spec")["clusterIP"], "None");
    const published = k8sServices.filter((s) => ["LoadBalancer", "NodePort"].includes(String(map(s.doc["spec"], "spec")["type"])));
    assert.deepEqual(published.map((s) => s.name), [service.name], "only the edge is reachable from outside the cluster");
    // The services trust the one X-Forwarded-For hop Envoy appends, the peer it sees: with the Service's
    // default (Cluster) that peer is a node, and identity's per-IP throttles would count nodes, not clients.
    assert.equal(map(service.doc["spec"], "spec")["externalTrafficPolicy"], "Local", "the edge Service keeps client source addresses");
    assert.ok(valuesOf(envoy, "use_remote_address").every((v) => v === true) && valuesOf(envoy, "use_remote_address").length > 0, "Envoy appends the peer address it sees");
    assert.ok(valuesOf(envoy, "xff_num_trusted_hops").every((v) => v === 0), "Envoy trusts no X-Forwarded-For a client sends");
  });
});
