/**
 * The npm workspaces (root package.json): each package is shaped alike, all of them agree on every dependency's
 * version (a second version of @bufbuild/protobuf or connect would load twice and its registries and errors
 * would stop matching), and the install links the names to the folders.
 */
import assert from "node:assert/strict";
import { existsSync, realpathSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { basename, join } from "node:path";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

interface PackageJson {
  name: string;
  version: string;
  private?: boolean;
  type?: string;
  exports?: Record<string, string>;
  workspaces?: string[];
  dependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
}

const read = async (folder: string) => JSON.parse(await readFile(join(root, folder, "package.json"), "utf8")) as PackageJson;

describe("npm workspaces", async () => {
  const rootPkg = await read(".");
  const folders = rootPkg.workspaces ?? [];
  const packages = await Promise.all(folders.map(async (folder) => ({ folder, pkg: await read(folder) })));

  it("makes gen, the platform and every service a package", () => {
    assert.deepEqual([...folders].sort(), ["gen", "services/address", "services/cart", "services/identity", "services/platform"]);
    for (const { folder, pkg } of packages) {
      assert.equal(pkg.name, `@local-e-grocery/${basename(folder)}`, folder);
      assert.equal(pkg.version, rootPkg.version, `${folder} has the root's version`);
      assert.equal(pkg.private, true, `${folder} is never published`);
      assert.equal(pkg.type, "module", folder);
      // Only src/ is exported (gen has no src/): tests, migrations and drizzle configs stay private.
      assert.deepEqual(pkg.exports, { "./*.js": folder === "gen" ? "./*.js" : "./src/*.js" }, folder);
    }
  });

  it("pins every dependency to one exact version across all packages", () => {
    const seen = new Map<string, Map<string, string[]>>();
    for (const { folder, pkg } of [{ folder: ".", pkg: rootPkg }, ...packages]) {
      for (const [name, spec] of Object.entries({ ...pkg.dependencies, ...pkg.devDependencies })) {
        assert.match(spec, /^\d+\.\d+\.\d+$/, `${folder}: ${name}@${spec} is an exact version`);
        const versions = seen.get(name) ?? new Map<string, string[]>();
        versions.set(spec, [...(versions.get(spec) ?? []), folder]);
        seen.set(name, versions);
      }
    }
    const disagreeing = [...seen].filter(([, versions]) => versions.size > 1).map(([name, versions]) => `${name}: ${JSON.stringify(Object.fromEntries(versions))}`);
    assert.deepEqual(disagreeing, []);
    for (const { pkg } of packages) {
      for (const [name, spec] of Object.entries(pkg.dependencies ?? {})) {
        if (name.startsWith("@local-e-grocery/")) assert.equal(spec, rootPkg.version, `${pkg.name} depends on ${name} at the workspace version`);
      }
    }
    assert.ok((seen.get("@bufbuild/protobuf")?.size ?? 0) === 1);
  });

  it("installs one copy of each dependency, with the package names linked to the workspace folders", () => {
    for (const { folder, pkg } of packages) {
      assert.equal(realpathSync(join(root, "node_modules", pkg.name)), join(root, folder), `${pkg.name} links to ${folder}/`);
      for (const name of Object.keys({ ...pkg.dependencies, ...pkg.devDependencies })) {
        assert.equal(existsSync(join(root, folder, "node_modules", name)), false, `${folder} has its own copy of ${name}`);
      }
    }
  });
});
