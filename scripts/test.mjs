#!/usr/bin/env node
// Runs every test file with node's test runner (Node 20 needs the files listed explicitly).
// PGlite suites always run; with TEST_DATABASE_URL set the same suites run against PostgreSQL too, and an
// unreachable server is a failure, never a skip. `npm test -- cart` runs only files whose path contains "cart".
//
// Files share worker processes: each worker imports its files one after another, so tsx, the module graph and
// the platform a worker's tests share (test/shared-platform.ts) are paid once per worker, not once per file.
// A file whose first lines hold `test-runner: own process` (with the reason) gets a process to itself.
import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import postgres from "postgres";

const files = [];
const walk = (dir) => {
  for (const name of readdirSync(dir)) {
    if (name === "node_modules") continue;
    const path = join(dir, name);
    if (statSync(path).isDirectory()) walk(path);
    else if (name.endsWith(".test.ts")) files.push(path);
  }
};
for (const root of ["services", "test", "web", "bench"]) {
  try {
    walk(root);
  } catch (e) {
    if (e.code !== "ENOENT") throw e;
  }
}
const only = process.argv.slice(2);
const selected = (only.length ? files.filter((f) => only.some((o) => f.includes(o))) : files).sort();
if (selected.length === 0) {
  console.error("no test files found");
  process.exit(1);
}

const dbUrl = process.env.TEST_DATABASE_URL;
if (dbUrl) {
  const sql = postgres(dbUrl, { max: 1, connect_timeout: 5, onnotice: () => {} });
  try {
    await sql`select 1`;
  } catch (e) {
    console.error(`TEST_DATABASE_URL is set but PostgreSQL is unreachable: ${e.message}`);
    process.exit(1);
  } finally {
    await sql.end({ timeout: 1 });
  }
  console.log(`backends: pglite, postgres (${new URL(dbUrl).host})`);
} else {
  console.log("backends: pglite (set TEST_DATABASE_URL to also run against PostgreSQL)");
}

// A run's folders (below) are removed when it ends; those of a run that was killed stay behind. Remove the ones
// whose runner is gone, so .cache does not grow with every interrupted run.
const alive = (pid) => {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return e.code === "EPERM";
  }
};
mkdirSync(".cache", { recursive: true });
for (const name of readdirSync(".cache", { withFileTypes: true }).filter((d) => d.isDirectory()).map((d) => d.name)) {
  const pid = /^test-(?:dist|workers)-(\d+)$/.exec(name)?.[1];
  if (pid !== undefined && !alive(Number(pid))) rmSync(join(".cache", name), { recursive: true, force: true });
}

// Process tests start the compiled services (test/service-process.ts reads GROCERY_TEST_DIST).
const compiled = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-for-tests.ts", String(process.pid)], { encoding: "utf8" });
if (compiled.status !== 0) {
  process.stderr.write(compiled.stderr);
  process.exit(compiled.status ?? 1);
}
process.env.GROCERY_TEST_DIST = compiled.stdout.trim();

const concurrency = Number(process.env.TEST_CONCURRENCY ?? 2);
const ownProcess = (file) => /test-runner: own process/.test(readFileSync(file, "utf8").split("\n").slice(0, 12).join("\n"));
const alone = selected.filter(ownProcess);
const shared = selected.filter((f) => !ownProcess(f));
// More workers than cores, so a worker that draws the slow files does not hold up the end of the run alone.
const workerCount = Math.min(shared.length, concurrency * 3);
const workers = Array.from({ length: workerCount }, () => []);
shared.forEach((file, i) => workers[i % workerCount].push(file));
// Per run, like the compiled services: another run in the same checkout keeps its own.
const workerDir = join(".cache", `test-workers-${process.pid}`);
mkdirSync(workerDir, { recursive: true });
const workerFiles = workers.map((files, i) => {
  const path = join(workerDir, `worker-${i + 1}.test.mjs`);
  // A file that fails to load is reported as a failing test of its own and the worker goes on with the next.
  const load = (f) =>
    `try {\n  await import(${JSON.stringify(pathToFileURL(resolve(f)).href)});\n} catch (error) {\n` +
    `  test(${JSON.stringify(`${f} loads`)}, () => {\n    throw error;\n  });\n}\n`;
  writeFileSync(path, `import { test } from "node:test";\n` + files.map(load).join(""));
  return path;
});

const out = mkdtempSync(join(tmpdir(), "grocery-tap-"));
const tap = join(out, "results.tap");
const result = spawnSync(
  process.execPath,
  [
    "--import",
    "tsx",
    "--test",
    `--test-concurrency=${concurrency}`,
    "--test-reporter=spec",
    "--test-reporter-destination=stdout",
    "--test-reporter=tap",
    `--test-reporter-destination=${tap}`,
    ...alone,
    ...workerFiles,
  ],
  { stdio: "inherit", env: process.env },
);
rmSync(workerDir, { recursive: true, force: true });
rmSync(process.env.GROCERY_TEST_DIST, { recursive: true, force: true });
const summary = readFileSync(tap, "utf8");
const count = (key) => Number(new RegExp(`^# ${key} (\\d+)$`, "m").exec(summary)?.[1] ?? 0);
rmSync(out, { recursive: true, force: true });
console.log(`\n${selected.length} test files (${shared.length} in ${workerFiles.length} shared workers, ${alone.length} alone)`);
console.log(`tests: ${count("pass")} passed, ${count("fail") + count("cancelled")} failed, ${count("skipped")} skipped`);
process.exit(result.status ?? 1);
