/**
 * Readers shared by the deployment checks (image-build, deployment tests): the Dockerfile's stages, the
 * .dockerignore rules, and the environment variables each service's process reads, found in its source.
 */
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));

// ---- Dockerfile -------------------------------------------------------------------------------------------------

export interface DockerInstruction {
  readonly keyword: string;
  readonly args: string;
}
export interface DockerStage {
  readonly from: string;
  readonly name: string | undefined;
  readonly instructions: DockerInstruction[];
}

export function readDockerfile(): Promise<string> {
  return readFile(join(root, "Dockerfile"), "utf8");
}

/** The Dockerfile's stages in order, each with its instructions (continuation lines joined, comments dropped). */
export function dockerfileStages(text: string): DockerStage[] {
  const logical: string[] = [];
  let current = "";
  for (const raw of text.split("\n")) {
    if (current === "" && /^\s*#/.test(raw)) continue;
    if (/^\s*#/.test(raw)) continue; // a comment inside a continued instruction
    const line = raw.replace(/\s+$/, "");
    if (line.endsWith("\\")) {
      current += line.slice(0, -1) + " ";
      continue;
    }
    current += line;
    if (current.trim() !== "") logical.push(current.trim());
    current = "";
  }
  const stages: DockerStage[] = [];
  for (const line of logical) {
    const m = /^(\w+)\s+(.*)$/s.exec(line);
    if (!m) continue;
    const keyword = (m[1] ?? "").toUpperCase();
    const args = (m[2] ?? "").replace(/\s+/g, " ").trim();
    if (keyword === "FROM") {
      const [from = "", as, name] = args.split(" ");
      stages.push({ from, name: as?.toUpperCase() === "AS" ? name : undefined, instructions: [] });
    } else {
      const stage = stages.at(-1);
      if (!stage) throw new Error(`Dockerfile: ${keyword} before FROM`);
      stage.instructions.push({ keyword, args });
    }
  }
  return stages;
}

/**
 * Whether `.dockerignore` keeps `path` (relative to the context) out of the build context: Docker's rules as far
 * as this repository uses them — `*`, `**`, `?`, `!` exceptions, last match wins, and a path goes with its folder.
 */
export function dockerIgnored(ignoreFile: string, path: string): boolean {
  const rules = ignoreFile
    .split("\n")
    .map((l) => l.trim())
    .filter((l) => l !== "" && !l.startsWith("#"))
    .map((l) => ({ negate: l.startsWith("!"), pattern: l.replace(/^!/, "").replace(/^\/+/, "").replace(/\/+$/, "") }));
  const toRegex = (pattern: string) =>
    new RegExp(
      "^" +
        pattern
          .split("**/")
          .map((part) => part.split("**").map((p) => p.replace(/[.+^${}()|[\]\\]/g, "\\$&").replace(/\*/g, "[^/]*").replace(/\?/g, "[^/]")).join(".*"))
          .join("(?:.*/)?") +
        "$",
    );
  const parts = path.replace(/^\.\//, "").replace(/\/+$/, "").split("/");
  // A path is out when it or any folder above it is out.
  for (let n = 1; n <= parts.length; n++) {
    const prefix = parts.slice(0, n).join("/");
    let ignored = false;
    for (const rule of rules) if (toRegex(rule.pattern).test(prefix)) ignored = !rule.negate;
    if (ignored) return true;
  }
  return false;
}

// ---- environment variables read by the source -------------------------------------------------------------------

/** What the source of one process reads from its environment. */
export interface EnvReads {
  /** Every variable named literally, with the file that reads it. */
  readonly names: ReadonlyMap<string, string>;
  /** Variables read with no fallback (`envString(env, "X")`): a process without them does not start. */
  readonly required: ReadonlySet<string>;
  /** Suffixes of names built at run time (`${name.toUpperCase()}_SERVICE_ADDR` → `_SERVICE_ADDR`). */
  readonly templateSuffixes: ReadonlySet<string>;
  /** The source files followed from the entry point. */
  readonly files: readonly string[];
}

const name = "([A-Z][A-Z0-9]*(?:_[A-Z0-9]+)*)";
/** `envInt(env, "PORT", …)`, `ms(env, "X", …)`: any call whose first argument is the environment. */
const readCall = new RegExp(`\\b(\\w+)\\(\\s*(?:[\\w.]*\\.)?env\\s*,\\s*["']${name}["']\\s*(\\))?`, "g");
/** `env["X"]`, `process.env["X"]`, `process.env.X`. */
const indexRead = new RegExp(`\\benv(?:\\[\\s*["']${name}["']\\s*\\]|\\.${name}\\b)`, "g");
/** A list of names handed to a reader one by one: `const names = ["ADMIN_USERNAME", …] as const`. */
const nameList = new RegExp(`\\[((?:\\s*["']${name}["']\\s*,?)+)\\]\\s*(?:as const)?\\s*;[^\\n]*\\n[^\\n]*env`, "g");
const template = /`\$\{[^}]+\}(_[A-Z][A-Z0-9_]*)`/g;

/** Each workspace package's name, folder and `"./*.js"` export target, read once. */
let workspaceExports: Map<string, { folder: string; target: string }> | undefined;
function workspaceExportsOf(): Map<string, { folder: string; target: string }> {
  if (workspaceExports) return workspaceExports;
  const { workspaces } = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as { workspaces: string[] };
  workspaceExports = new Map();
  for (const folder of workspaces) {
    const pkg = JSON.parse(readFileSync(join(root, folder, "package.json"), "utf8")) as { name: string; exports: Record<string, string> };
    const target = pkg.exports["./*.js"];
    assert.ok(target, `${pkg.name} exports "./*.js"`);
    workspaceExports.set(pkg.name, { folder, target });
  }
  return workspaceExports;
}

/** The source file a workspace import names, through its package.json's `"./*.js"` export. */
function workspaceFile(specifier: string): string {
  const [scope, name, ...rest] = specifier.split("/");
  const found = workspaceExportsOf().get(`${scope}/${name}`);
  if (!found) assert.fail(`${specifier}: no workspace package of that name`);
  return join(root, found.folder, found.target.replace("*.js", rest.join("/")));
}

/**
 * Follows the relative imports (static and `import("…")`) from `entry` (a .ts file under the repository) through
 * services/ — gen/ holds no configuration — and collects the environment variables those files read.
 */
export async function envReadsOf(entry: string): Promise<EnvReads> {
  const names = new Map<string, string>();
  const required = new Set<string>();
  const templateSuffixes = new Set<string>();
  const seen = new Set<string>();
  const queue = [resolve(root, entry)];
  while (queue.length > 0) {
    const file = queue.pop() ?? "";
    if (seen.has(file)) continue;
    seen.add(file);
    const source = await readFile(file, "utf8");
    const where = relative(root, file);
    for (const m of source.matchAll(readCall)) {
      const variable = m[2] ?? "";
      if (!names.has(variable)) names.set(variable, where);
      // envString without a fallback throws when the variable is missing.
      if (m[1] === "envString" && m[3] === ")") required.add(variable);
    }
    for (const m of source.matchAll(indexRead)) {
      const variable = m[1] ?? m[2] ?? "";
      if (!names.has(variable)) names.set(variable, where);
    }
    for (const m of source.matchAll(nameList)) {
      for (const v of (m[1] ?? "").matchAll(/["']([A-Z][A-Z0-9_]*)["']/g)) if (!names.has(v[1] ?? "")) names.set(v[1] ?? "", where);
    }
    for (const m of source.matchAll(template)) templateSuffixes.add(m[1] ?? "");
    for (const m of source.matchAll(/(?:\bfrom\s*|\bimport\s*\(\s*|^import\s*)["']((?:\.|@local-e-grocery\/)[^"']+)["']/gm)) {
      const specifier = m[1] ?? "";
      const target = (specifier.startsWith(".") ? resolve(dirname(file), specifier) : workspaceFile(specifier)).replace(/\.js$/, ".ts");
      if (target.startsWith(join(root, "services") + "/") && existsSync(target)) queue.push(target);
    }
  }
  return { names, required, templateSuffixes, files: [...seen].map((f) => relative(root, f)).sort() };
}

/** Whether the process reads `variable`, literally or as a name it builds (`CART_SERVICE_ADDR`). */
export function reads(env: EnvReads, variable: string): boolean {
  return env.names.has(variable) || [...env.templateSuffixes].some((s) => variable.endsWith(s) && /^[A-Z][A-Z0-9]*$/.test(variable.slice(0, -s.length)));
}

/**
 * Variables read by a library rather than by our source, each with the file of the library that reads it; the
 * checks confirm the library really does.
 */
export const libraryVariables: Readonly<Record<string, string>> = {
  // postgres.js takes the password from PGPASSWORD when DATABASE_URL carries none.
  PGPASSWORD: "node_modules/postgres/src/index.js",
  // npm and node themselves: production mode.
  NODE_ENV: "",
};

/** The entry point of each service alone, as the image runs it. */
export const serviceEntries = {
  identity: "services/identity/src/main.ts",
  cart: "services/cart/src/main.ts",
  address: "services/address/src/main.ts",
} as const;
export type ServiceName = keyof typeof serviceEntries;

/** `services/cart/src/main.ts` → `dist/services/cart/src/main.js`: where the build puts an entry point. */
export function compiledEntry(source: string): string {
  return `dist/${source.replace(/\.ts$/, ".js")}`;
}
