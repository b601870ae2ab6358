/**
 * The import-boundary rules in eslint.config.js, run through ESLint itself on snippets placed (by file path) in
 * each kind of folder: a crossing must be reported, and the imports a service needs must not be.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ESLint } from "eslint";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const eslint = new ESLint({ cwd: root });
const boundaryRules = new Set(["no-restricted-imports", "no-restricted-syntax"]);

/** The boundary findings for `code` as if it were the file at `filePath` (relative to the repository root). */
async function boundaryFindings(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, filePath) });
  assert.ok(result, filePath);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${filePath} parses`);
  return result.messages.filter((m) => m.ruleId !== null && boundaryRules.has(m.ruleId)).map((m) => m.ruleId ?? "");
}

const importOf = (specifier: string) => `import { x } from "${specifier}";\nexport { x };\n`;

/** [file, specifier]: imports that cross a boundary. */
const crossing: [string, string][] = [
  ["services/cart/src/probe.ts", "../../identity/src/accounts.js"],
  ["services/cart/src/probe.ts", "./../../identity/src/accounts.js"],
  ["services/cart/src/probe.ts", "../../address/src/store.js"],
  ["services/cart/src/probe.ts", "../../../services/identity/src/accounts.js"],
  ["services/cart/src/probe.ts", "../../all-services.js"],
  ["services/cart/src/probe.ts", "../../main.js"],
  ["services/cart/src/probe.ts", "../../../test/harness.js"],
  ["services/cart/src/deep/probe.ts", "../../../identity/src/accounts.js"],
  ["services/cart/test/probe.test.ts", "../../identity/src/service.js"],
  ["services/cart/drizzle.config.ts", "../identity/drizzle.config.js"],
  ["services/identity/src/probe.ts", "../../cart/src/carts.js"],
  ["services/platform/src/probe.ts", "../../cart/src/carts.js"],
  ["services/platform/src/auth/probe.ts", "../../../identity/src/accounts.js"],
  ["services/platform/src/probe.ts", "../../all-services.js"],
  // A service added later is covered without being listed anywhere.
  ["services/catalog/src/probe.ts", "../../cart/src/carts.js"],
];

/** [file, specifier]: imports a service needs. */
const allowed: [string, string][] = [
  ["services/cart/src/probe.ts", "../../platform/src/errors.js"],
  ["services/cart/src/probe.ts", "../../../services/platform/src/errors.js"],
  ["services/cart/src/probe.ts", "../../../gen/grocery/cart/v1/cart_pb.js"],
  ["services/cart/src/probe.ts", "./store.js"],
  ["services/cart/src/probe.ts", "@connectrpc/connect"],
  // services/cart/src/identity/ would be cart's own folder, not the identity service.
  ["services/cart/src/deep/probe.ts", "../identity/x.js"],
  ["services/cart/test/probe.test.ts", "../../../test/harness.js"],
  ["services/cart/test/probe.test.ts", "../src/carts.js"],
  ["services/platform/src/auth/probe.ts", "../errors.js"],
  ["services/platform/src/auth/probe.ts", "../../../../gen/grocery/auth/v1/auth_pb.js"],
  ["services/all-services.ts", "./identity/src/service.js"],
  ["services/main.ts", "./cart/src/service.js"],
];

describe("import boundaries (eslint.config.js)", () => {
  it("reports a service importing another service's folder, or the wiring", async () => {
    const missed: string[] = [];
    for (const [file, specifier] of crossing) {
      const findings = await boundaryFindings(file, importOf(specifier));
      if (findings.join() !== "no-restricted-imports") missed.push(`${file}: ${specifier} -> [${findings.join()}]`);
    }
    assert.deepEqual(missed, []);
  });

  it("allows a service its own folder, platform, gen/ and packages, and the wiring every service", async () => {
    const flagged: string[] = [];
    for (const [file, specifier] of allowed) {
      if ((await boundaryFindings(file, importOf(specifier))).length > 0) flagged.push(`${file}: ${specifier}`);
    }
    assert.deepEqual(flagged, []);
  });

  it("sees type-only imports, re-exports, import() and import types", async () => {
    const file = "services/cart/src/probe.ts";
    const target = "../../identity/src/accounts.js";
    assert.deepEqual(await boundaryFindings(file, `import type { X } from "${target}";\nexport type { X };\n`), ["no-restricted-imports"]);
    assert.deepEqual(await boundaryFindings(file, `export * from "${target}";\n`), ["no-restricted-imports"]);
    assert.deepEqual(await boundaryFindings(file, `export const m = () => import("${target}");\n`), ["no-restricted-syntax"]);
    assert.deepEqual(await boundaryFindings(file, `export type M = typeof import("${target}");\n`), ["no-restricted-syntax"]);
    assert.deepEqual(await boundaryFindings(file, `export const m = () => import("../../platform/src/errors.js");\n`), []);
  });

  it("keeps drizzle, the table definitions and the database handle inside each service's store", async () => {
    const storeOnly = ["drizzle-orm", "drizzle-orm/pg-core", "./schema.js", "../../platform/src/db.js"];
    const missed: string[] = [];
    for (const file of ["services/identity/src/probe.ts", "services/cart/src/probe.ts", "services/catalog/src/probe.ts"]) {
      for (const specifier of storeOnly) {
        const findings = await boundaryFindings(file, importOf(specifier));
        if (findings.join() !== "no-restricted-imports") missed.push(`${file}: ${specifier} -> [${findings.join()}]`);
      }
    }
    for (const specifier of ["../schema.js", "../../../platform/src/db.js"]) {
      if ((await boundaryFindings("services/identity/src/deep/probe.ts", importOf(specifier))).join() !== "no-restricted-imports") missed.push(`deep: ${specifier}`);
    }
    assert.deepEqual(await boundaryFindings("services/identity/src/probe.ts", `export type Q = typeof import("drizzle-orm");\n`), ["no-restricted-syntax"]);
    // The boundary still holds in the same files: the store rule must not replace it.
    assert.deepEqual(await boundaryFindings("services/identity/src/probe.ts", importOf("../../cart/src/carts.js")), ["no-restricted-imports"]);
    assert.deepEqual(missed, []);

    const flagged: string[] = [];
    const storeSide: [string, string][] = [
      ["services/identity/src/store.ts", "drizzle-orm"],
      ["services/identity/src/store.ts", "../../platform/src/db.js"],
      ["services/identity/src/store/users.ts", "../schema.js"],
      ["services/identity/src/store/users.ts", "../../../platform/src/db.js"],
      ["services/cart/src/store.ts", "./schema.js"],
      ["services/cart/src/schema.ts", "drizzle-orm/pg-core"],
      ["services/platform/src/probe.ts", "drizzle-orm"],
      ["services/platform/src/probe.ts", "./db.js"],
    ];
    for (const [file, specifier] of storeSide) {
      if ((await boundaryFindings(file, importOf(specifier))).length > 0) flagged.push(`${file}: ${specifier}`);
    }
    assert.deepEqual(flagged, []);
    // The store rule leaves the store's own boundary in place.
    assert.deepEqual(await boundaryFindings("services/identity/src/store/users.ts", importOf("../../../cart/src/carts.js")), ["no-restricted-imports"]);
  });

  it("covers every file under services/<a>/, however deep", async () => {
    const files: string[] = [];
    const walk = async (dir: string, depth: number) => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path, depth + 1);
        else if (depth > 0 && entry.name.endsWith(".ts")) files.push(relative(root, path));
      }
    };
    await walk(join(root, "services"), 0);
    assert.ok(files.length > 50, `found ${files.length} files`);
    const uncovered: string[] = [];
    for (const file of files) {
      const config = (await eslint.calculateConfigForFile(join(root, file))) as { rules?: Record<string, unknown> } | undefined;
      if (config?.rules?.["no-restricted-imports"] === undefined) uncovered.push(file);
    }
    assert.deepEqual(uncovered, []);
    const tooDeep = `services/cart/src/${"d/".repeat(20)}probe.ts`;
    assert.deepEqual(await boundaryFindings(tooDeep, "export {};\n"), ["no-restricted-syntax"]);
  });
});
