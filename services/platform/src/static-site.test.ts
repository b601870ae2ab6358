import assert from "node:assert/strict";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { after, before, describe, it } from "node:test";
import { ConfigError } from "./config.js";
import { contentSecurityPolicy, defaultWebDir, readStaticSiteConfig, staticSiteRoutes } from "./static-site.js";
import type { HttpRoute } from "./server.js";

/** Serves `routes` the way the platform does (GET by exact path, anything else 404) on a free port. */
async function serve(routes: Record<string, HttpRoute>): Promise<{ url: string; close(): Promise<void> }> {
  const server = http.createServer((req, res) => {
    const route = req.method === "GET" ? routes[req.url?.split("?")[0] ?? ""] : undefined;
    if (route) void route(req, res);
    else res.writeHead(404).end();
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** GET `path` exactly as written, with no URL normalisation. */
function rawStatus(base: string, path: string): Promise<number | undefined> {
  return new Promise((resolveStatus, reject) => {
    const { hostname, port } = new URL(base);
    http
      .get({ hostname, port, path }, (res) => {
        res.resume();
        resolveStatus(res.statusCode);
      })
      .on("error", reject);
  });
}

describe("static site (the browser page at /)", () => {
  let dir = "";
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), "grocery-site-"));
    await mkdir(join(dir, "assets"));
    await writeFile(join(dir, "index.html"), "<!doctype html><title>t</title>");
    await writeFile(join(dir, "app.js"), "console.log(1)");
    await writeFile(join(dir, "assets", "styles.css"), "body{}");
    await writeFile(join(dir, "notes.md"), "not a page file");
  });
  after(() => rm(dir, { recursive: true, force: true }));

  it("reads WEB_DIR, defaulting to ./web/dist, which may then be absent", async () => {
    assert.deepEqual(readStaticSiteConfig({}), { dir: resolve(defaultWebDir), required: false });
    assert.deepEqual(readStaticSiteConfig({ WEB_DIR: dir }), { dir: resolve(dir), required: true });
    assert.deepEqual(await staticSiteRoutes({ dir: join(dir, "missing"), required: false }), {});
    await assert.rejects(staticSiteRoutes({ dir: join(dir, "missing"), required: true }), (e) => e instanceof ConfigError && /WEB_DIR/.test(e.message));
  });

  it("routes each page file and / by exact path, with the CSP, and nothing else", async () => {
    const routes = await staticSiteRoutes({ dir, required: true });
    assert.deepEqual(Object.keys(routes).sort(), ["/", "/app.js", "/assets/styles.css", "/index.html"]);
    const site = await serve(routes);
    try {
      const page = await fetch(`${site.url}/`);
      assert.equal(page.status, 200);
      assert.equal(page.headers.get("content-type"), "text/html; charset=utf-8");
      assert.equal(page.headers.get("content-security-policy"), contentSecurityPolicy());
      assert.equal(page.headers.get("x-content-type-options"), "nosniff");
      assert.equal(await page.text(), "<!doctype html><title>t</title>");
      assert.equal((await fetch(`${site.url}/assets/styles.css`)).headers.get("content-type"), "text/css; charset=utf-8");
      // Sent as written (fetch would resolve the dot segments first).
      for (const path of ["/notes.md", "/../index.html", "/assets/../index.html", "/assets/%2e%2e/index.html", "/index.html/", "/assets"]) {
        assert.equal(await rawStatus(site.url, path), 404, path);
      }
      const etag = (await fetch(`${site.url}/app.js`)).headers.get("etag");
      assert.ok(etag);
      const again = await fetch(`${site.url}/app.js`, { headers: { "if-none-match": etag } });
      assert.equal(again.status, 304);
    } finally {
      await site.close();
    }
  });

  it("allows calls to the origin config.json names, and refuses a config.json without a URL", async () => {
    const other = await mkdtemp(join(tmpdir(), "grocery-site-"));
    try {
      await writeFile(join(other, "index.html"), "<!doctype html>");
      await writeFile(join(other, "config.json"), JSON.stringify({ apiBaseUrl: "https://api.example.com/base" }));
      const routes = await staticSiteRoutes({ dir: other, required: true });
      const site = await serve(routes);
      try {
        const csp = (await fetch(`${site.url}/`)).headers.get("content-security-policy") ?? "";
        assert.match(csp, /(^|; )connect-src 'self' https:\/\/api\.example\.com(;|$)/);
        assert.match(csp, /(^|; )script-src 'self'(;|$)/);
      } finally {
        await site.close();
      }
      await writeFile(join(other, "config.json"), JSON.stringify({ apiBaseUrl: 42 }));
      await assert.rejects(staticSiteRoutes({ dir: other, required: true }), ConfigError);
    } finally {
      await rm(other, { recursive: true, force: true });
    }
  });
});
