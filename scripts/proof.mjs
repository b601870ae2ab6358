#!/usr/bin/env node
// Runs the proof suites (test/proof/*.proof.ts: hostile transport, fuzzing, database faults, crash) one file at a
// time and prints what they did: cases per suite, faults injected, writes acknowledged vs found, peak RSS. Exits
// non-zero when any suite fails or reports a violation. `npm run test:proof -- crash` runs only matching files.
import { spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const dir = "test/proof";
const only = process.argv.slice(2);
const files = readdirSync(dir)
  .filter((f) => f.endsWith(".proof.ts") && (only.length === 0 || only.some((o) => f.includes(o))))
  .sort()
  .map((f) => join(dir, f));
if (files.length === 0) {
  console.error("no proof suites found");
  process.exit(1);
}
const reportDir = mkdtempSync(join(tmpdir(), "grocery-proof-"));
// Process tests start the compiled services (test/service-process.ts reads GROCERY_TEST_DIST).
const compiled = spawnSync(process.execPath, ["--import", "tsx", "scripts/build-for-tests.ts", String(process.pid)], { encoding: "utf8" });
if (compiled.status !== 0) {
  process.stderr.write(compiled.stderr);
  process.exit(compiled.status ?? 1);
}
process.env.GROCERY_TEST_DIST = compiled.stdout.trim();

// --expose-gc: the hostile transport suite collects garbage before it measures what memory stays held.
const result = spawnSync(process.execPath, ["--expose-gc", "--import", "tsx", "--test", "--test-concurrency=1", "--test-reporter=spec", ...files], {
  stdio: "inherit",
  // Durability and fault claims are proven on PostgreSQL; the suites use this server unless told otherwise.
  env: { TEST_DATABASE_URL: "postgres://postgres@127.0.0.1:5432/postgres", ...process.env, PROOF_REPORT_DIR: reportDir },
});
const rows = readdirSync(reportDir).map((f) => JSON.parse(readFileSync(join(reportDir, f), "utf8")));
rmSync(reportDir, { recursive: true, force: true });
rmSync(process.env.GROCERY_TEST_DIST, { recursive: true, force: true });
const header = ["suite", "cases", "faults injected", "writes acknowledged", "writes found", "peak RSS MiB", "violations"];
const table = [header, ...rows.sort((a, b) => a.suite.localeCompare(b.suite)).map((r) => [r.suite, r.cases, r.faults, r.acknowledged, r.found, r.peakRssMiB, r.violations].map(String))];
const widths = header.map((_, i) => Math.max(...table.map((r) => r[i].length)));
console.log("\n" + table.map((r, n) => "| " + r.map((c, i) => c.padEnd(widths[i])).join(" | ") + " |" + (n === 0 ? "\n|" + widths.map((w) => "-".repeat(w + 2)).join("|") + "|" : "")).join("\n"));
const violations = rows.reduce((n, r) => n + r.violations + Math.max(0, r.acknowledged - r.found), 0);
if (violations > 0) console.error(`\n${violations} violation(s) reported`);
process.exit(result.status !== 0 || violations > 0 ? 1 : 0);
