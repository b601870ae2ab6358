/**
 * The import-boundary rules in eslint.config.js (grocery/package-boundaries and the store rule), run through
 * ESLint itself on snippets placed (by file path) in each kind of folder: a crossing must be reported, and the
 * imports a package needs must not be.
 */
import assert from "node:assert/strict";
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, it } from "node:test";
import { ESLint } from "eslint";

const root = fileURLToPath(new URL("../../..", import.meta.url));
const eslint = new ESLint({ cwd: root });
const boundaryRules = new Set(["grocery/package-boundaries", "no-restricted-imports", "no-restricted-syntax"]);

/** The boundary findings for `code` as if it were the file at `filePath` (relative to the repository root). */
async function findings(filePath: string, code: string): Promise<{ rule: string; message: string }[]> {
  const [result] = await eslint.lintText(code, { filePath: join(root, filePath) });
  assert.ok(result, filePath);
  const fatal = result.messages.filter((m) => m.fatal);
  assert.deepEqual(fatal, [], `${filePath} parses`);
  return result.messages.filter((m) => m.ruleId !== null && boundaryRules.has(m.ruleId)).map((m) => ({ rule: m.ruleId ?? "", message: m.message }));
}
const rulesOf = async (filePath: string, code: string) => (await findings(filePath, code)).map((f) => f.rule);

const importOf = (specifier: string) => `import { x } from "${specifier}";\nexport { x };\n`;

/** [file, specifier, what the message says]: imports that cross a boundary. */
const crossing: [string, string, RegExp][] = [
  // Another service, by path or by name.
  ["services/cart/src/probe.ts", "../../identity/src/accounts.js", /may not import @local-e-grocery\/identity/],
  ["services/cart/src/probe.ts", "./../../identity/src/accounts.js", /may not import @local-e-grocery\/identity/],
  ["services/cart/src/probe.ts", "../../../services/address/src/store.js", /may not import @local-e-grocery\/address/],
  ["services/cart/src/probe.ts", "@local-e-grocery/identity/accounts.js", /calls another service through its generated client/],
  ["services/cart/src/deep/probe.ts", "../../../identity/src/accounts.js", /may not import/],
  ["services/cart/test/probe.test.ts", "@local-e-grocery/identity/service.js", /may not import/],
  ["services/cart/drizzle.config.ts", "../identity/drizzle.config.js", /may not import/],
  ["services/identity/src/probe.ts", "@local-e-grocery/cart/carts.js", /may not import/],
  // The platform and gen sit below every service: they may not reach up.
  ["services/platform/src/probe.ts", "@local-e-grocery/cart/carts.js", /depends only on @local-e-grocery\/gen/],
  ["services/platform/src/auth/probe.ts", "../../../identity/src/accounts.js", /may not import/],
  // The wiring and the root's files, from a package: out of reach.
  ["services/cart/src/probe.ts", "../../all-services.js", /leaves @local-e-grocery\/cart/],
  ["services/cart/src/probe.ts", "../../main.js", /leaves/],
  ["services/platform/src/probe.ts", "../../all-services.js", /leaves/],
  ["services/cart/src/probe.ts", "../../../scripts/build.js", /leaves/],
  // Production code does not use test helpers.
  ["services/cart/src/probe.ts", "../../../test/harness.js", /leaves/],
  // A workspace package is imported by name, even where the dependency is allowed.
  ["services/cart/src/probe.ts", "../../platform/src/errors.js", /by name \("@local-e-grocery\/platform\/…"\)/],
  ["services/cart/src/probe.ts", "../../../gen/grocery/cart/v1/cart_pb.js", /by name/],
  ["services/main.ts", "./cart/src/service.js", /by name/],
  ["test/probe.test.ts", "../services/identity/src/accounts.js", /by name/],
  // Itself by name.
  ["services/cart/src/probe.ts", "@local-e-grocery/cart/carts.js", /imports itself by name/],
  // Undeclared third-party packages: argon2 is identity's, connect-node only a devDependency of cart.
  ["services/cart/src/probe.ts", "@node-rs/argon2", /not among @local-e-grocery\/cart's dependencies/],
  ["services/cart/src/probe.ts", "@connectrpc/connect-node", /not among/],
  ["services/address/src/probe.ts", "nodemailer", /not among/],
];

/** [file, specifier]: imports a package needs. */
const allowed: [string, string][] = [
  ["services/cart/src/probe.ts", "@local-e-grocery/platform/errors.js"],
  ["services/cart/src/probe.ts", "@local-e-grocery/gen/grocery/cart/v1/cart_pb.js"],
  ["services/cart/src/probe.ts", "./store.js"],
  ["services/cart/src/probe.ts", "@connectrpc/connect"],
  ["services/cart/src/probe.ts", "node:crypto"],
  // services/cart/src/identity/ would be cart's own folder, not the identity service.
  ["services/cart/src/deep/probe.ts", "../identity/x.js"],
  ["services/cart/test/probe.test.ts", "../../../test/harness.js"],
  ["services/cart/test/probe.test.ts", "../src/carts.js"],
  ["services/cart/test/probe.test.ts", "@connectrpc/connect-node"],
  ["services/cart/test/probe.test.ts", "fast-check"],
  ["services/identity/src/probe.ts", "@node-rs/argon2"],
  ["services/platform/src/auth/probe.ts", "../errors.js"],
  ["services/platform/src/auth/probe.ts", "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js"],
  ["services/all-services.ts", "@local-e-grocery/identity/service.js"],
  ["services/main.ts", "@local-e-grocery/cart/service.js"],
  ["test/probe.test.ts", "@local-e-grocery/identity/accounts.js"],
  ["test/probe.test.ts", "../services/address/test/support.js"],
  ["test/probe.test.ts", "./harness.js"],
];

describe("import boundaries (eslint.config.js)", () => {
  it("reports every crossing, saying what is wrong", async () => {
    const missed: string[] = [];
    for (const [file, specifier, says] of crossing) {
      const found = await findings(file, importOf(specifier));
      if (found.length !== 1 || found[0]?.rule !== "grocery/package-boundaries" || !says.test(found[0].message)) {
        missed.push(`${file}: ${specifier} -> ${JSON.stringify(found)}`);
      }
    }
    assert.deepEqual(missed, []);
  });

  it("allows a package its own files, its declared dependencies and, in tests, the shared test helpers", async () => {
    const flagged: string[] = [];
    for (const [file, specifier] of allowed) {
      const found = await findings(file, importOf(specifier));
      if (found.length > 0) flagged.push(`${file}: ${specifier} -> ${JSON.stringify(found)}`);
    }
    assert.deepEqual(flagged, []);
  });

  it("sees type-only imports, re-exports, import() and import types", async () => {
    const file = "services/cart/src/probe.ts";
    const target = "@local-e-grocery/identity/accounts.js";
    const rule = ["grocery/package-boundaries"];
    assert.deepEqual(await rulesOf(file, `import type { X } from "${target}";\nexport type { X };\n`), rule);
    assert.deepEqual(await rulesOf(file, `export * from "${target}";\n`), rule);
    assert.deepEqual(await rulesOf(file, `export { x } from "${target}";\n`), rule);
    assert.deepEqual(await rulesOf(file, `export const m = () => import("${target}");\n`), rule);
    assert.deepEqual(await rulesOf(file, `export type M = typeof import("${target}");\n`), rule);
    assert.deepEqual(await rulesOf(file, `export const m = () => import("@local-e-grocery/platform/errors.js");\n`), []);
  });

  it("keeps drizzle, the table definitions and the database handle inside each service's store", async () => {
    const storeOnly = ["drizzle-orm", "drizzle-orm/pg-core", "./schema.js", "@local-e-grocery/platform/db.js"];
    const missed: string[] = [];
    for (const file of ["services/identity/src/probe.ts", "services/cart/src/probe.ts", "services/address/src/deep/probe.ts"]) {
      for (const specifier of storeOnly) {
        const found = await rulesOf(file, importOf(specifier));
        if (found.join() !== "no-restricted-imports") missed.push(`${file}: ${specifier} -> [${found.join()}]`);
      }
    }
    assert.deepEqual(await rulesOf("services/identity/src/deep/probe.ts", importOf("../schema.js")), ["no-restricted-imports"]);
    assert.deepEqual(await rulesOf("services/identity/src/probe.ts", `export type Q = typeof import("drizzle-orm");\n`), ["no-restricted-syntax"]);
    // The package boundary still holds in the same files: the store rule must not replace it.
    assert.deepEqual(await rulesOf("services/identity/src/probe.ts", importOf("@local-e-grocery/cart/carts.js")), ["grocery/package-boundaries"]);
    assert.deepEqual(missed, []);

    const flagged: string[] = [];
    const storeSide: [string, string][] = [
      ["services/identity/src/store.ts", "drizzle-orm"],
      ["services/identity/src/store.ts", "@local-e-grocery/platform/db.js"],
      ["services/identity/src/store/users.ts", "../schema.js"],
      ["services/cart/src/store.ts", "./schema.js"],
      ["services/cart/src/schema.ts", "drizzle-orm/pg-core"],
      ["services/platform/src/probe.ts", "drizzle-orm"],
      ["services/platform/src/probe.ts", "./db.js"],
    ];
    for (const [file, specifier] of storeSide) {
      if ((await findings(file, importOf(specifier))).length > 0) flagged.push(`${file}: ${specifier}`);
    }
    assert.deepEqual(flagged, []);
    // The store's own boundary stays in place.
    assert.deepEqual(await rulesOf("services/identity/src/store/users.ts", importOf("../../../cart/src/carts.js")), ["grocery/package-boundaries"]);
  });

  it("reports a folder under services/ that is not a workspace package, so a new service starts inside the rules", async () => {
    const found = await findings("services/catalog/src/probe.ts", "export const x = 1;\n");
    assert.equal(found.length, 1, JSON.stringify(found));
    assert.match(found[0]?.message ?? "", /services\/catalog\/ is not a workspace package/);
  });

  it("covers every TypeScript file of the repository", async () => {
    const files: string[] = [];
    const walk = async (dir: string) => {
      for (const entry of await readdir(dir, { withFileTypes: true })) {
        if (["node_modules", ".cache", ".git", "dist", "data", "gen"].includes(entry.name)) continue;
        const path = join(dir, entry.name);
        if (entry.isDirectory()) await walk(path);
        else if (entry.name.endsWith(".ts")) files.push(relative(root, path));
      }
    };
    await walk(root);
    assert.ok(files.length > 150, `found ${files.length} files`);
    const uncovered: string[] = [];
    for (const file of files) {
      const config = (await eslint.calculateConfigForFile(join(root, file))) as { rules?: Record<string, unknown> } | undefined;
      if (config?.rules?.["grocery/package-boundaries"] === undefined) uncovered.push(file);
    }
    assert.deepEqual(uncovered, []);
  });
});
