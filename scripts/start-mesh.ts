/**
 * `npm run start:mesh`: the compose topology without Envoy and containers. Identity, cart and address run as
 * separate processes, two replicas each on ports MESH_BASE_PORT+1…+6 (default 8081–8086), on PostgreSQL
 * (DATABASE_URL, default the local server), wired to each other through <NAME>_SERVICE_ADDR lists and
 * IDENTITY_JWKS_URL. Prints each process's address; Ctrl-C (or SIGTERM) stops them all; if one of them exits
 * on its own, the others are stopped too and the exit code says so.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { mkdirSync } from "node:fs";
import { join, resolve } from "node:path";
import { createInterface } from "node:readline";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const env = process.env;
const databaseUrl = env["DATABASE_URL"] || "postgres://postgres@127.0.0.1:5432/postgres";
const basePort = Number(env["MESH_BASE_PORT"] || 8080);
const host = "127.0.0.1";
if (!Number.isInteger(basePort) || basePort < 1 || basePort > 65_529) {
  process.stderr.write(`MESH_BASE_PORT must be a port number below 65530, got ${JSON.stringify(env["MESH_BASE_PORT"])}\n`);
  process.exit(78);
}

interface Member {
  name: string;
  service: "identity" | "cart" | "address";
  port: number;
  child?: ChildProcess;
  exited?: Promise<number | null>;
}

const services = ["identity", "cart", "address"] as const;
const members: Member[] = services.flatMap((service, s) => [1, 2].map((replica) => ({ name: `${service}-${replica}`, service, port: basePort + s * 2 + replica })));
const list = (service: string) => members.filter((m) => m.service === service).map((m) => `${host}:${m.port}`).join(",");
const identityPort = members[0]!.port;
const dataDir = resolve(env["DATA_DIR"] || join(root, "data", "mesh"));

function envFor(m: Member): NodeJS.ProcessEnv {
  const own: Record<string, string> = {
    PORT: String(m.port),
    HOST: host,
    DATABASE_URL: databaseUrl,
    // Mail files and anything else a replica writes locally stay apart.
    DATA_DIR: join(dataDir, m.name),
  };
  if (m.service === "identity") {
    own["CART_SERVICE_ADDR"] = list("cart");
    own["ADDRESS_SERVICE_ADDR"] = list("address");
  } else {
    own["IDENTITY_JWKS_URL"] = `http://${host}:${identityPort}/.well-known/jwks.json`;
    own["IDENTITY_SERVICE_ADDR"] = list("identity");
  }
  return { ...env, ...own };
}

/**
 * Starts one member and resolves once its /healthz answers SERVING (whatever LOG_LEVEL says); its output is
 * passed through, each line prefixed. Gives up after 60 s.
 */
function start(m: Member): Promise<void> {
  mkdirSync(join(dataDir, m.name), { recursive: true });
  const child = spawn(process.execPath, ["--import", "tsx", `services/${m.service}/src/main.ts`], { cwd: root, env: envFor(m), stdio: ["ignore", "pipe", "pipe"] });
  m.child = child;
  m.exited = new Promise((r) => child.once("exit", (code, signal) => r(code ?? (signal ? 128 : 1))));
  const prefix = `[${m.name}] `;
  createInterface({ input: child.stderr! }).on("line", (line) => process.stderr.write(prefix + line + "\n"));
  createInterface({ input: child.stdout! }).on("line", (line) => process.stdout.write(prefix + line + "\n"));
  let gone = false;
  void m.exited.then(() => (gone = true));
  return (async () => {
    const deadline = Date.now() + 60_000;
    for (;;) {
      if (gone) throw new Error(`${m.name} exited with ${await m.exited} before it was ready`);
      if (Date.now() > deadline) throw new Error(`${m.name} was not serving after 60 s`);
      const serving = await fetch(`http://${host}:${m.port}/healthz`, { signal: AbortSignal.timeout(1000) }).then(
        (r) => r.ok,
        () => false,
      );
      if (serving) return;
      await new Promise((r) => setTimeout(r, 100));
    }
  })();
}

let stopping: Promise<void> | undefined;
function stopAll(code: number): Promise<void> {
  return (stopping ??= (async () => {
    // Reverse order: callers of identity go first, identity (which delivers events to them) last.
    const running = members.filter((m) => m.child && m.child.exitCode === null && m.child.signalCode === null);
    for (const m of [...running].reverse()) m.child!.kill("SIGTERM");
    // Each process stops within its SHUTDOWN_GRACE (10 s by default); one that does not is killed.
    const killer = setTimeout(() => running.forEach((m) => m.child!.kill("SIGKILL")), 20_000);
    await Promise.all(members.map((m) => m.exited));
    clearTimeout(killer);
    process.exit(code);
  })());
}

process.once("SIGINT", () => void stopAll(0));
process.once("SIGTERM", () => void stopAll(0));

try {
  // Identity first, alone: it migrates its schema and creates the signing key the others verify with.
  await start(members[0]!);
  await Promise.all(members.slice(1).map(start));
} catch (e) {
  process.stderr.write(`start:mesh: ${e instanceof Error ? e.message : String(e)}\n`);
  await stopAll(1);
}
for (const m of members) {
  void m.exited!.then((code) => {
    if (stopping) return;
    process.stderr.write(`start:mesh: ${m.name} exited with ${code}; stopping the others\n`);
    void stopAll(1);
  });
}
process.stdout.write(
  [
    `Local E-Grocery mesh is up on PostgreSQL (${databaseUrl.replace(/\/\/[^@]*@/, "//")}):`,
    ...members.map((m) => `  ${m.name.padEnd(10)} http://${host}:${m.port}`),
    `Try: npx buf curl --http2-prior-knowledge --protocol grpc --list-methods http://${host}:${identityPort}`,
    "Ctrl-C stops every process.",
    "",
  ].join("\n"),
);
