/**
 * The browser page (web/, built into web/dist by `npm run build` or at `npm start`) served by the platform at
 * `/`, on the same origin as the API. The folder is read once at start-up into memory — a few small files — so
 * serving it touches no disk and no request can name a path outside it: only the files found are routes.
 */
import { createHash } from "node:crypto";
import { readdir, readFile, stat } from "node:fs/promises";
import { join, relative, resolve, sep } from "node:path";
import { ConfigError, envOptional, type Env } from "./config.js";
import type { HttpRoute } from "./server.js";

/** Where the page is looked for when WEB_DIR is unset, relative to the working directory (like DATA_DIR). */
export const defaultWebDir = "./web/dist";

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".ico": "image/x-icon",
  ".txt": "text/plain; charset=utf-8",
};

/** The page is a handful of files; a folder much larger than this is a mistake (the wrong WEB_DIR). */
const maxSiteBytes = 16 * 1024 * 1024;

export interface StaticSiteConfig {
  /** Absolute folder holding index.html. */
  readonly dir: string;
  /** WEB_DIR was set: a folder without index.html is a configuration error rather than "no page". */
  readonly required: boolean;
}

/** Reads WEB_DIR (default ./web/dist). */
export function readStaticSiteConfig(env: Env): StaticSiteConfig {
  const explicit = envOptional(env, "WEB_DIR");
  return { dir: resolve(explicit ?? defaultWebDir), required: explicit !== undefined };
}

/**
 * The Content-Security-Policy of every file: scripts and styles from this origin only (no inline script or
 * style, no eval), calls to this origin and to `apiOrigins` (from config.json), no framing, no plugins.
 */
export function contentSecurityPolicy(apiOrigins: readonly string[] = []): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    `connect-src ${["'self'", ...apiOrigins].join(" ")}`,
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
  ].join("; ");
}

async function listFiles(dir: string, out: string[] = []): Promise<string[]> {
  for (const entry of await readdir(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) await listFiles(path, out);
    else if (entry.isFile()) out.push(path);
  }
  return out;
}

/** The origin config.json sends the page's calls to, when it names another origin. */
function apiOriginsOf(files: ReadonlyMap<string, Buffer>): string[] {
  const config = files.get("/config.json");
  if (!config) return [];
  let apiBaseUrl: unknown;
  try {
    apiBaseUrl = (JSON.parse(config.toString("utf8")) as { apiBaseUrl?: unknown }).apiBaseUrl;
    if (typeof apiBaseUrl !== "string") throw new Error("apiBaseUrl is not a string");
    return [new URL(apiBaseUrl).origin];
  } catch (e) {
    throw new ConfigError(`WEB_DIR config.json must hold {"apiBaseUrl": "<URL>"}: ${(e as Error).message}`);
  }
}

/**
 * GET routes for every file of the page (`/` is index.html), or none when the folder has no index.html and WEB_DIR
 * was not set. Throws ConfigError when WEB_DIR names a folder without index.html or with a bad config.json.
 * Answers carry the CSP above, nosniff, no referrer, `Cache-Control: no-cache` and an ETag (If-None-Match → 304).
 */
export async function staticSiteRoutes(config: StaticSiteConfig): Promise<Record<string, HttpRoute>> {
  const index = await stat(join(config.dir, "index.html")).catch(() => undefined);
  if (!index?.isFile()) {
    if (config.required) throw new ConfigError(`WEB_DIR: ${config.dir} has no index.html (run npm run build)`);
    return {};
  }
  const files = new Map<string, Buffer>();
  let total = 0;
  for (const path of await listFiles(config.dir)) {
    const name = relative(config.dir, path).split(sep).join("/");
    if (!(extensionOf(name) in contentTypes)) continue;
    const body = await readFile(path);
    total += body.length;
    if (total > maxSiteBytes) throw new ConfigError(`WEB_DIR: ${config.dir} holds more than ${maxSiteBytes} bytes of page files`);
    files.set(`/${name}`, body);
  }
  const headers = {
    "Content-Security-Policy": contentSecurityPolicy(apiOriginsOf(files)),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-cache",
  };
  const routes: Record<string, HttpRoute> = {};
  for (const [path, body] of files) {
    const etag = `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"`;
    const type = contentTypes[extensionOf(path)] ?? "application/octet-stream";
    const route: HttpRoute = (req, res) => {
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      res.setHeader("ETag", etag);
      if (req.headers["if-none-match"] === etag) {
        res.statusCode = 304;
        res.end();
        return;
      }
      res.statusCode = 200;
      res.setHeader("Content-Type", type);
      res.setHeader("Content-Length", body.length);
      res.end(body);
    };
    routes[path] = route;
    if (path === "/index.html") routes["/"] = route;
  }
  return routes;
}

function extensionOf(name: string): string {
  const dot = name.lastIndexOf(".");
  return dot > name.lastIndexOf("/") ? name.slice(dot) : "";
}
