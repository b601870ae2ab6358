/**
 * `npm run build`: the production build.
 *
 * - `dist/`: every TypeScript file of services/ and gen/ (tests and drizzle-kit configs left out) compiled to
 *   JavaScript one file per file with esbuild, in the same layout, plus what the services read at run time
 *   beside their code: each service's `migrations/` folder (found through `new URL("../migrations",
 *   import.meta.url)`, so the layout must match the source tree) and identity's `data/`. Nothing is bundled:
 *   packages stay in node_modules (`npm ci --omit=dev`) and `import.meta.url` keeps pointing where the source
 *   expects. Run with `node dist/services/main.js` (all services) or `node dist/services/<name>/src/main.js`.
 * - The workspace packages (`@local-e-grocery/platform`, …) inside `dist/`: each one's package.json beside its
 *   compiled code and `dist/node_modules/@local-e-grocery/<name>` linking to it. Node looks for a package in the
 *   nearest node_modules first, so compiled code imports compiled code; the root node_modules links the same
 *   names to the TypeScript sources, which only tsx can run.
 * - `web/dist/`: the browser page (web/build.ts), which a process serves at `/` (see WEB_DIR).
 *
 * esbuild only strips types; `npm run typecheck` is what checks them.
 */
import { cp, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from "node:fs/promises";
import { dirname, join, relative } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";
import { buildWeb } from "../web/build.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** Folders next to a service's `src/` that its code reads at run time. */
export const runtimeAssetFolders = ["migrations", "data"] as const;

export interface BuildResult {
  /** The compiled code, `dist/` unless told otherwise. */
  readonly outDir: string;
  /** Compiled files, relative to `outDir`. */
  readonly files: readonly string[];
  /** Asset folders copied, relative to `outDir`. */
  readonly assets: readonly string[];
  /** Workspace packages linked from `outDir/node_modules`. */
  readonly packages: readonly string[];
}

async function walk(dir: string, out: string[] = []): Promise<string[]> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) {
      if (entry.name !== "node_modules" && entry.name !== "test") await walk(path, out);
    } else if (entry.name.endsWith(".ts") && !entry.name.endsWith(".test.ts") && !entry.name.endsWith(".d.ts") && entry.name !== "drizzle.config.ts") {
      out.push(path);
    }
  }
  return out;
}

async function isDirectory(path: string): Promise<boolean> {
  return stat(path).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

/** Compiles services/ and gen/ into `outDir` (emptied first) and copies the run-time assets. */
export async function buildServices(outDir = join(root, "dist")): Promise<BuildResult> {
  await rm(outDir, { recursive: true, force: true });
  const sources = [...(await walk(join(root, "services"))), ...(await walk(join(root, "gen")))].sort();
  await build({
    entryPoints: sources,
    outdir: outDir,
    outbase: root,
    bundle: false,
    format: "esm",
    platform: "node",
    target: "node20",
    logLevel: "warning",
  });
  // The compiled files are ES modules whatever package.json sits above them.
  await writeFile(join(outDir, "package.json"), JSON.stringify({ type: "module" }) + "\n");
  const assets: string[] = [];
  for (const service of await readdir(join(root, "services"))) {
    for (const folder of runtimeAssetFolders) {
      const from = join(root, "services", service, folder);
      if (!(await isDirectory(from))) continue;
      const to = join(outDir, "services", service, folder);
      await mkdir(to, { recursive: true });
      await cp(from, to, { recursive: true });
      assets.push(relative(outDir, to));
    }
  }
  const packages = await linkWorkspaces(outDir);
  return { outDir, files: sources.map((s) => relative(root, s).replace(/\.ts$/, ".js")), assets, packages };
}

/** The root package.json's workspaces: folder (relative to the root) and package name. */
export async function workspacePackages(): Promise<{ readonly folder: string; readonly name: string }[]> {
  const { workspaces } = JSON.parse(await readFile(join(root, "package.json"), "utf8")) as { workspaces: string[] };
  return Promise.all(
    workspaces.map(async (folder) => {
      const { name } = JSON.parse(await readFile(join(root, folder, "package.json"), "utf8")) as { name: string };
      return { folder, name };
    }),
  );
}

async function linkWorkspaces(outDir: string): Promise<string[]> {
  const linked: string[] = [];
  for (const { folder, name } of await workspacePackages()) {
    await cp(join(root, folder, "package.json"), join(outDir, folder, "package.json"));
    const link = join(outDir, "node_modules", name);
    await mkdir(dirname(link), { recursive: true });
    await symlink(relative(dirname(link), join(outDir, folder)), link, "dir");
    linked.push(name);
  }
  return linked;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const started = Date.now();
  const [services, web] = await Promise.all([buildServices(), buildWeb()]);
  console.warn(
    `build: ${services.files.length} files and ${services.assets.join(", ")} in ${relative(root, services.outDir)}/, ` +
      `page in ${relative(root, web)}/ (${Date.now() - started} ms)`,
  );
}
