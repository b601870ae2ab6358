/**
 * Bundles the browser client into a static folder: `index.html`, `styles.css`, `app.js` (+ source map) and, when an API
 * address is given, `config.json`. `npm run web:build` writes `web/dist/`; set WEB_API_BASE_URL to point the
 * page at a platform on another origin (that origin must list the page's in CORS_ORIGINS).
 */
import { copyFile, mkdir, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { build } from "esbuild";

const webRoot = fileURLToPath(new URL(".", import.meta.url));

export interface BuildWebOptions {
  /** Emptied, then filled. Defaults to `web/dist`. */
  outDir?: string;
  /** Written to `config.json`; without it the page calls its own origin. */
  apiBaseUrl?: string;
}

/** Builds the page into `outDir` and returns that folder. Throws (with esbuild's messages) on a build error. */
export async function buildWeb(options: BuildWebOptions = {}): Promise<string> {
  const outDir = options.outDir ?? join(webRoot, "dist");
  await rm(outDir, { recursive: true, force: true });
  await mkdir(outDir, { recursive: true });
  await build({
    entryPoints: [join(webRoot, "src", "app.ts")],
    outfile: join(outDir, "app.js"),
    bundle: true,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
  });
  // Markup and styles are files of their own: the page's Content-Security-Policy allows no inline script or style.
  for (const file of ["index.html", "styles.css"]) await copyFile(join(webRoot, file), join(outDir, file));
  if (options.apiBaseUrl !== undefined) await writeWebConfig(outDir, options.apiBaseUrl);
  return outDir;
}

/** Writes the `config.json` the page reads at start-up: where it sends its calls. */
export async function writeWebConfig(outDir: string, apiBaseUrl: string): Promise<void> {
  await writeFile(join(outDir, "config.json"), JSON.stringify({ apiBaseUrl }) + "\n");
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const apiBaseUrl = process.env["WEB_API_BASE_URL"];
  const outDir = await buildWeb(apiBaseUrl ? { apiBaseUrl } : {});
  console.warn(`web: built ${outDir}`);
}
