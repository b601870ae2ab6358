/**
 * Envoy's v3 API as a protobuf registry, for checking envoy.yaml against Envoy's own schema.
 *
 * The .proto sources come from `@grpc/grpc-js-xds` (its `deps/`: envoy-api, xds, googleapis,
 * protoc-gen-validate, a snapshot of about Envoy 1.32). Nothing of them is committed here: at first use they are
 * copied into `.cache/envoy-api/<hash>/` (git-ignored), compiled with the project's buf into a
 * FileDescriptorSet, and reused while the inputs are unchanged (the hash covers every source file, the patch
 * and buf's version).
 *
 * Two adjustments, both needed for buf to compile the snapshot:
 * - `validate.proto` lacks `StringRules.ignore_empty` (field 26), which Envoy's core protos set; it is patched in.
 * - Files whose imports are not shipped (the v2 API, OpenCensus, OpenTelemetry, Prometheus) are left out,
 *   with everything that imports them. None of them can appear in a v3 bootstrap.
 */
import { execFileSync } from "node:child_process";
import { createHash } from "node:crypto";
import { existsSync, mkdirSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { createFileRegistry, fromBinary, type FileRegistry } from "@bufbuild/protobuf";
import { FileDescriptorSetSchema } from "@bufbuild/protobuf/wkt";

const repoRoot = fileURLToPath(new URL("../..", import.meta.url));
const depsRoot = join(repoRoot, "node_modules/@grpc/grpc-js-xds/deps");
const cacheRoot = join(repoRoot, ".cache/envoy-api");
const buf = join(repoRoot, "node_modules/.bin/buf");

/** The import roots under deps/, in the order buf's workspace lists them. */
const roots = ["envoy-api", "xds", "googleapis", "protoc-gen-validate"] as const;
const validateProto = "validate/validate.proto";

/** The line the patch goes after, and what it adds (protoc-gen-validate's own definition of field 26). */
const patchAnchor = /^(\s*)optional bool strict\s*=\s*25\s*\[default\s*=\s*true\];\s*$/m;
const patchLines = (indent: string) =>
  `${indent}// Added for Envoy's protos (protoc-gen-validate defines it since 0.6.2): the rules do not apply to "".\n` +
  `${indent}optional bool ignore_empty = 26;\n`;

export interface EnvoyApi {
  /** Every compiled file, with validate.rules kept in the field options (as unknown fields). */
  readonly registry: FileRegistry;
  /** Where the FileDescriptorSet was written. */
  readonly descriptorSet: string;
  /** True when this call ran buf (false when the cached set was reused). */
  readonly built: boolean;
  /** How many .proto files were compiled. */
  readonly fileCount: number;
}

interface Source {
  /** The import path, e.g. `envoy/config/bootstrap/v3/bootstrap.proto`. */
  path: string;
  root: string;
  text: string;
}

function listProtos(dir: string, out: string[] = []): string[] {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) listProtos(path, out);
    else if (entry.name.endsWith(".proto")) out.push(path);
  }
  return out;
}

function readSources(): Source[] {
  if (!existsSync(depsRoot)) {
    throw new Error(`${relative(repoRoot, depsRoot)} is missing: run npm install (@grpc/grpc-js-xds ships Envoy's API protos)`);
  }
  const sources: Source[] = [];
  for (const root of roots) {
    const base = join(depsRoot, root);
    for (const file of listProtos(base).sort()) {
      const path = relative(base, file).split("\\").join("/");
      // protoc-gen-validate's folder also carries its own tests and Java options; only validate.proto is needed.
      if (root === "protoc-gen-validate" && path !== validateProto) continue;
      let text = readFileSync(file, "utf8");
      if (path === validateProto && !/\bignore_empty\s*=\s*26\b/.test(text)) {
        const m = patchAnchor.exec(text);
        if (!m) throw new Error(`cannot patch ${validateProto}: StringRules.strict (field 25) not found`);
        const end = m.index + m[0].length + 1;
        text = text.slice(0, end) + patchLines(m[1] ?? "    ") + text.slice(end);
      }
      sources.push({ path, root, text });
    }
  }
  return sources;
}

const importLine = /^\s*import\s+(?:public\s+|weak\s+)?"([^"]+)"\s*;/gm;

/** The sources whose imports all resolve (transitively) among the sources or buf's well-known types. */
function compilable(sources: readonly Source[]): Source[] {
  const byPath = new Map(sources.map((s) => [s.path, s]));
  const imports = new Map(sources.map((s) => [s.path, [...s.text.matchAll(importLine)].map((m) => m[1] ?? "")]));
  const state = new Map<string, boolean>();
  const ok = (path: string, stack: Set<string>): boolean => {
    if (path.startsWith("google/protobuf/")) return true; // buf provides the well-known types
    const known = state.get(path);
    if (known !== undefined) return known;
    if (!byPath.has(path) || stack.has(path)) return false;
    stack.add(path);
    const result = (imports.get(path) ?? []).every((i) => ok(i, stack));
    stack.delete(path);
    state.set(path, result);
    return result;
  };
  return sources.filter((s) => ok(s.path, new Set()));
}

function bufVersion(): string {
  return execFileSync(buf, ["--version"], { encoding: "utf8" }).trim();
}

/**
 * Loads Envoy's API, building the descriptor set first when the cache has none for the current sources.
 * Throws when the sources are missing, the patch no longer applies, or buf fails (its output in the message).
 */
export function loadEnvoyApi(): EnvoyApi {
  const sources = compilable(readSources());
  const hash = createHash("sha256");
  hash.update(`buf ${bufVersion()}\n`);
  for (const s of sources) hash.update(`${s.root}/${s.path}\n${s.text}\n`);
  const key = hash.digest("hex").slice(0, 16);
  const descriptorSet = join(cacheRoot, `${key}.binpb`);
  let built = false;
  if (!existsSync(descriptorSet)) {
    const work = join(cacheRoot, `src-${key}-${process.pid}`);
    rmSync(work, { recursive: true, force: true });
    for (const s of sources) {
      const file = join(work, s.root, s.path);
      mkdirSync(dirname(file), { recursive: true });
      writeFileSync(file, s.text);
    }
    const usedRoots = roots.filter((r) => sources.some((s) => s.root === r));
    writeFileSync(join(work, "buf.yaml"), `version: v2\nmodules:\n${usedRoots.map((r) => `  - path: ${r}\n`).join("")}`);
    const tmp = `${descriptorSet}.${process.pid}.tmp`;
    try {
      execFileSync(buf, ["build", "--exclude-source-info", "--as-file-descriptor-set", "-o", tmp], { cwd: work, stdio: ["ignore", "pipe", "pipe"] });
    } catch (e) {
      const stderr = (e as { stderr?: Buffer }).stderr?.toString() ?? "";
      throw new Error(`buf could not compile Envoy's API protos:\n${stderr.slice(0, 4000)}`, { cause: e });
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
    // Written under a temporary name and renamed, so a concurrent reader never sees half a file.
    renameSync(tmp, descriptorSet);
    built = true;
  }
  const set = fromBinary(FileDescriptorSetSchema, readFileSync(descriptorSet));
  return { registry: createFileRegistry(set), descriptorSet, built, fileCount: set.file.length };
}
