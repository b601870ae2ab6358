/**
 * The production image without Docker (there is no container engine here): the Dockerfile is read and checked
 * against the repository, and the build it runs (`npm run build`, scripts/build.ts) is made into a folder laid
 * out like the image's /app. The compiled identity entry point then runs there as a plain `node` process — no
 * tsx — on PGlite, and answers grpc.health.v1 through the image's HEALTHCHECK script.
 *
 * Cost: the esbuild pass takes about a second; most of the rest is PGlite starting empty (4–8 s on a busy
 * two-core machine).
 */
import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { builtinModules, createRequire } from "node:module";
import { existsSync } from "node:fs";
import { mkdir, mkdtemp, readFile, readdir, rm } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { createInterface } from "node:readline";
import { after, before, describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { buildServices, workspacePackages, type BuildResult } from "../scripts/build.js";
import { buildWeb } from "../web/build.js";
import { dockerfileStages, dockerIgnored, readDockerfile, type DockerStage } from "./deployment-files.js";

const root = fileURLToPath(new URL("..", import.meta.url));
const probeScript = join(root, "scripts", "grpc-health-probe.mjs");

/** The package a bare import specifier names (`@scope/name/sub` → `@scope/name`). */
function packageOf(specifier: string): string {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : (parts[0] ?? specifier);
}

/** Import specifiers of a compiled ES module: static imports and re-exports, and `import("…")` with a literal. */
function importsOf(source: string): string[] {
  const found = [...source.matchAll(/^\s*(?:import|export)\b[^"'`;]*?\bfrom\s*["']([^"']+)["']/gm), ...source.matchAll(/^\s*import\s*["']([^"']+)["']/gm), ...source.matchAll(/\bimport\(\s*["']([^"']+)["']\s*\)/g)];
  return found.map((m) => m[1] ?? "");
}

async function filesUnder(dir: string, out: string[] = []): Promise<string[]> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await filesUnder(path, out);
    else out.push(path);
  }
  return out;
}

function runProbe(target: string, service?: string): Promise<{ code: number | null; stderr: string }> {
  return new Promise((resolvePromise) => {
    const child = spawn(process.execPath, [probeScript, target, ...(service === undefined ? [] : [service])], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    child.once("exit", (code) => resolvePromise({ code, stderr }));
  });
}

describe("production image (Dockerfile, npm run build)", { timeout: 60_000 }, () => {
  let app: string | undefined;
  let built: BuildResult | undefined;
  let stages: DockerStage[] = [];
  let runtime: DockerStage | undefined;

  before(async () => {
    stages = dockerfileStages(await readDockerfile());
    runtime = stages.at(-1);
    // Inside the repository, so the compiled code finds node_modules the way /app/dist finds /app/node_modules.
    await mkdir(join(root, ".cache"), { recursive: true });
    app = await mkdtemp(join(root, ".cache", "image-"));
    const [services] = await Promise.all([buildServices(join(app, "dist")), buildWeb({ outDir: join(app, "web", "dist") })]);
    built = services;
  });

  after(async () => {
    if (app) await rm(app, { recursive: true, force: true });
  });

  it("builds in one stage and runs on node:20-slim as a non-root user in the last, with production dependencies only", () => {
    assert.ok(stages.length >= 2, `multi-stage: ${stages.map((s) => s.from).join(", ")}`);
    for (const s of stages) assert.equal(s.from, "node:20-slim", `stage ${s.name ?? "?"} is node:20-slim`);
    assert.ok(runtime);
    const build = stages.find((s) => s.instructions.some((i) => i.keyword === "RUN" && /\bnpm run build\b/.test(i.args)));
    assert.ok(build && build !== runtime, "a stage before the last runs npm run build");
    const installs = runtime.instructions.filter((i) => i.keyword === "RUN" && /\bnpm (ci|install|i)\b/.test(i.args));
    assert.deepEqual(
      installs.map((i) => /\bnpm ci\b.*--omit=dev\b/.test(i.args)),
      [true],
      "the runtime stage installs once, with npm ci --omit=dev",
    );
    const user = runtime.instructions.filter((i) => i.keyword === "USER").at(-1);
    assert.ok(user && !["root", "0"].includes(user.args.split(":")[0] ?? ""), `runs as ${user?.args ?? "root"}`);
    // What the runtime stage takes from the build stage is its output, never node_modules with dev tools.
    for (const copy of runtime.instructions.filter((i) => i.keyword === "COPY" && i.args.startsWith("--from="))) {
      assert.doesNotMatch(copy.args, /node_modules/, `COPY ${copy.args}`);
    }
  });

  it("copies the postinstall repair into every stage before its npm ci, and the repair needs nothing but node", async () => {
    const pkg = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { scripts: Record<string, string>; dependencies: Record<string, string> };
    const script = /^node (\S+)$/.exec(pkg.scripts["postinstall"] ?? "")?.[1];
    assert.ok(script, `postinstall runs one node script: ${pkg.scripts["postinstall"]}`);
    for (const stage of stages) {
      const at = stage.instructions.findIndex((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args));
      if (at < 0) continue;
      const copied = stage.instructions.slice(0, at).some((i) => i.keyword === "COPY" && !i.args.startsWith("--from=") && i.args.split(/\s+/).slice(0, -1).includes(script));
      assert.ok(copied, `stage ${stage.name ?? stage.from} copies ${script} before npm ci`);
    }
    // With --omit=dev the repair must still find its target and run: postgres is a production dependency (of the
    // platform, which the root depends on) and the script imports only node's own modules.
    const platform = JSON.parse(await readFile(join(root, "services", "platform", "package.json"), "utf8")) as { name: string; dependencies: Record<string, string> };
    assert.ok(pkg.dependencies[platform.name], `the root depends on ${platform.name}`);
    assert.ok(platform.dependencies["postgres"], "postgres is a production dependency");
    const imports = importsOf(await readFile(join(root, script), "utf8"));
    assert.ok(imports.length > 0);
    assert.deepEqual(imports.filter((s) => !s.startsWith("node:")), [], `${script} imports only node: modules`);
  });

  it("gives every npm ci every workspace's package.json, so the workspaces' dependencies are installed", async () => {
    const workspaces = await workspacePackages();
    assert.ok(workspaces.length >= 5, workspaces.map((w) => w.name).join(", "));
    for (const stage of stages) {
      const at = stage.instructions.findIndex((i) => i.keyword === "RUN" && /\bnpm ci\b/.test(i.args));
      if (at < 0) continue;
      const copied = new Set(
        stage.instructions
          .slice(0, at)
          .filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from="))
          .flatMap((i) => {
            const parts = i.args.split(/\s+/);
            const to = parts.at(-1) ?? "";
            return parts.slice(0, -1).map((from) => ({ from, to }));
          })
          .filter(({ from }) => from.endsWith("package.json"))
          .map(({ from, to }) => (to.endsWith("/") ? join(to, from.split("/").at(-1) ?? "") : to).replace(/^\.\//, "") + `<-${from}`),
      );
      for (const { folder } of workspaces) {
        const file = `${folder}/package.json`;
        assert.ok(copied.has(`${file}<-${file}`), `stage ${stage.name ?? stage.from} copies ${file} to its place before npm ci`);
      }
    }
  });

  it("sends into the build only what .dockerignore lets through", async () => {
    const ignore = await readFile(join(root, ".dockerignore"), "utf8");
    for (const stage of stages) {
      for (const copy of stage.instructions.filter((i) => i.keyword === "COPY" && !i.args.startsWith("--from="))) {
        for (const source of copy.args.split(/\s+/).slice(0, -1)) {
          assert.ok(existsSync(join(root, source)), `COPY ${source}: exists`);
          assert.equal(dockerIgnored(ignore, source), false, `COPY ${source}: not excluded by .dockerignore`);
        }
      }
    }
    for (const kept of ["node_modules", "dist", "web/dist", "data", ".git", ".env"]) assert.equal(dockerIgnored(ignore, kept), true, `${kept} stays out of the build context`);
  });

  it("compiles every source file, with the migrations and data the services read beside their code", async () => {
    assert.ok(app && built);
    const outFiles = new Set((await filesUnder(built.outDir)).map((f) => relative(built?.outDir ?? "", f)));
    for (const file of built.files) assert.ok(outFiles.has(file), `${file} was written`);
    for (const service of ["identity", "cart", "address"]) {
      assert.ok(outFiles.has(`services/${service}/src/main.js`), `${service} has a compiled entry point`);
      assert.ok(outFiles.has(`services/${service}/migrations/meta/_journal.json`), `${service} migrations are in the build`);
      const sql = (await readdir(join(root, "services", service, "migrations"))).filter((f) => f.endsWith(".sql"));
      for (const f of sql) assert.ok(outFiles.has(`services/${service}/migrations/${f}`), `${service}/migrations/${f}`);
    }
    assert.ok(outFiles.has("services/identity/data/common-passwords.txt"));
    assert.ok(![...outFiles].some((f) => f.endsWith(".ts") || /\.test\.js$/.test(f) || f.includes("/test/")), "no TypeScript and no tests in the build");
  });

  it("imports only node's modules, its own package's production dependencies and files that are in the build", async () => {
    assert.ok(built);
    const outDir = built.outDir;
    const dependenciesOf = async (folder: string) => (JSON.parse(await readFile(join(root, folder, "package.json"), "utf8")) as { dependencies: Record<string, string> }).dependencies;
    // The deepest workspace folder holding a file is its package; services/main.js and the wiring are the root's.
    const packages = [...(await Promise.all((await workspacePackages()).map(async (w) => ({ ...w, dependencies: await dependenciesOf(w.folder) })))), { folder: "", name: "(root)", dependencies: await dependenciesOf(".") }];
    const packageOfFile = (file: string) => packages.find((p) => p.folder === "" || relative(outDir, file).startsWith(`${p.folder}/`)) ?? packages[packages.length - 1];
    const builtins = new Set(builtinModules);
    const problems: string[] = [];
    let count = 0;
    let workspaceImports = 0;
    for (const file of (await filesUnder(outDir)).filter((f) => f.endsWith(".js"))) {
      const owner = packageOfFile(file);
      assert.ok(owner);
      for (const specifier of importsOf(await readFile(file, "utf8"))) {
        count++;
        const where = `${relative(outDir, file)}: ${specifier}`;
        if (specifier.startsWith(".")) {
          const target = resolve(dirname(file), specifier);
          if (!target.startsWith(outDir + "/")) problems.push(`${where} leaves the build`);
          else if (!existsSync(target)) problems.push(`${where} is missing`);
          else if (packageOfFile(target) !== owner) problems.push(`${where} reaches into another package by path`);
        } else if (!specifier.startsWith("node:") && !builtins.has(specifier)) {
          const name = packageOf(specifier);
          if (owner.dependencies[name] === undefined) problems.push(`${where} is not a production dependency of ${owner.name}`);
          if (packages.some((p) => p.name === name)) {
            // Node's own resolution from the compiled file must land on compiled code inside the build.
            workspaceImports++;
            const target = createRequire(file).resolve(specifier);
            if (!target.startsWith(outDir + "/") || !target.endsWith(".js")) problems.push(`${where} resolves to ${relative(root, target)}, outside the build`);
          }
        }
      }
    }
    assert.ok(count > 200, `${count} imports checked`);
    assert.ok(workspaceImports > 100, `${workspaceImports} imports of workspace packages checked`);
    assert.deepEqual(problems, []);
  });

  it("names entry points and a health check script that exist in the image", async () => {
    assert.ok(runtime && built);
    const entrypoint = runtime.instructions.filter((i) => i.keyword === "ENTRYPOINT").at(-1);
    const cmd = runtime.instructions.filter((i) => i.keyword === "CMD").at(-1);
    assert.deepEqual(entrypoint && JSON.parse(entrypoint.args), ["node"], "ENTRYPOINT is plain node (no tsx, no loader)");
    const main = cmd ? (JSON.parse(cmd.args) as string[])[0] : undefined;
    assert.ok(main !== undefined && main.startsWith("dist/"), `CMD ${cmd?.args ?? "missing"}`);
    assert.ok(existsSync(join(built.outDir, main.slice("dist/".length))), `${main} is in the build output`);
    const health = runtime.instructions.find((i) => i.keyword === "HEALTHCHECK");
    assert.ok(health, "the image has a HEALTHCHECK");
    const probe = /CMD\s+(\[.*\])\s*$/.exec(health.args)?.[1];
    assert.deepEqual(probe && JSON.parse(probe), ["node", "scripts/grpc-health-probe.mjs"]);
    assert.ok(runtime.instructions.some((i) => i.keyword === "COPY" && i.args.split(/\s+/).includes("scripts/grpc-health-probe.mjs")), "the probe script is copied into the runtime stage");
  });

  describe("the compiled identity entry point, run with node in the image's layout", () => {
    let child: ChildProcess | undefined;
    let port = 0;
    let data: string | undefined;
    let stderr = "";

    before(async () => {
      assert.ok(app);
      data = await mkdtemp(join(app, "data-"));
      // Identity delivers user events to cart and address; none happen here, so they need not listen.
      const peers = { CART_SERVICE_ADDR: "127.0.0.1:9", ADDRESS_SERVICE_ADDR: "127.0.0.1:9" };
      // The image's ENV and WORKDIR: PORT, HOST, NODE_ENV=production, cwd /app; no NODE_OPTIONS, so no loader.
      child = spawn(process.execPath, ["dist/services/identity/src/main.js"], {
        cwd: app,
        env: { PATH: process.env["PATH"] ?? "", NODE_ENV: "production", PORT: "0", HOST: "127.0.0.1", DATA_DIR: data, HEALTH_PROBE_MS: "200", ...peers },
        stdio: ["ignore", "pipe", "pipe"],
      });
      child.stderr?.on("data", (d: Buffer) => (stderr += d.toString()));
      const proc = child;
      port = await new Promise<number>((resolvePort, reject) => {
        createInterface({ input: proc.stdout ?? process.stdin }).on("line", (line) => {
          if (!line.startsWith("{")) return;
          const log = JSON.parse(line) as { msg?: string; port?: unknown };
          if (log.msg === "ready" && typeof log.port === "number") resolvePort(log.port);
        });
        proc.once("exit", (code) => reject(new Error(`identity exited with ${code}: ${stderr}`)));
      });
    });

    after(async () => {
      if (child && child.exitCode === null) {
        const exited = new Promise((r) => child?.once("exit", r));
        child.kill("SIGTERM");
        await exited;
      }
    });

    it("answers the image's HEALTHCHECK SERVING, for the process and for its services, and fails it for an unknown one", async () => {
      assert.deepEqual(await runProbe(`127.0.0.1:${port}`), { code: 0, stderr: "" });
      assert.equal((await runProbe(`127.0.0.1:${port}`, "grocery.identity.v1.AuthService")).code, 0);
      const unknown = await runProbe(`127.0.0.1:${port}`, "grocery.nothing.v1.NoService");
      assert.equal(unknown.code, 1);
      assert.match(unknown.stderr, /grpc-status 5/, "NOT_FOUND for a service the process does not serve");
    });

    it("serves the page at / from ./web/dist, with a CSP that allows no inline script", async () => {
      const res = await fetch(`http://127.0.0.1:${port}/`);
      assert.equal(res.status, 200);
      assert.match(res.headers.get("content-type") ?? "", /^text\/html/);
      assert.match(res.headers.get("content-security-policy") ?? "", /(^|; )script-src 'self'(;|$)/);
      assert.match(await res.text(), /<script type="module" src="\.\/app\.js"><\/script>/);
    });

    it("stops on SIGTERM with exit code 0", async () => {
      assert.ok(child);
      const exited = new Promise<number | null>((r) => child?.once("exit", (code) => r(code)));
      child.kill("SIGTERM");
      assert.equal(await exited, 0);
      assert.equal((await runProbe(`127.0.0.1:${port}`)).code, 1, "the probe fails once the process is gone");
    });
  });
});
