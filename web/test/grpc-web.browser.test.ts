/**
 * The browser client in a real Chromium, on the page as `npm start` serves it: built by web/build.ts and served
 * at `/` (WEB_DIR) by `npm start`'s own entry point (services/main.ts, compiled and run with node by the test
 * runner) in a process of its own, on the same origin as the API, under its Content-Security-Policy.
 * Two more origins serve the same files to check CORS: one listed in CORS_ORIGINS, one not.
 *
 * Needs /usr/bin/chromium (Debian's `chromium` package; CHROMIUM_PATH overrides). Without it the suite is
 * skipped on a developer machine and fails when CI is set. Measured 30–45 s on a busy two-core machine (most
 * of it loading modules and starting the platform); the suite timeout leaves room for a machine busier still,
 * and each browser action has its own 10 s limit.
 */
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { mkdtemp, readFile, rm } from "node:fs/promises";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { extname, join, normalize } from "node:path";
import { after, before, describe, test } from "node:test";
import { chromium, type Browser, type Page, type Request } from "playwright-core";
import { callJson, emptyDatabase, uniqueName, type DataHandle } from "../../test/harness.js";
import { startServiceProcess, type ServiceProcess } from "../../test/service-process.js";
import { buildWeb, writeWebConfig } from "../build.js";

const chromiumPath = process.env["CHROMIUM_PATH"] ?? "/usr/bin/chromium";
const haveChromium = existsSync(chromiumPath);
const skip = !haveChromium && !process.env["CI"] ? `no Chromium at ${chromiumPath} (apt-get install -y chromium); with CI set this is a failure, not a skip` : false;

// The skip goes on each test (not the suite) so the runner's summary counts them as skipped.
describe("browser client over gRPC-web", { timeout: 120_000 }, () => {
  let dir: string | undefined;
  let allowed: StaticServer | undefined;
  let blocked: StaticServer | undefined;
  let data: DataHandle | undefined;
  let tp: ServiceProcess | undefined;
  let browser: Browser | undefined;

  before(async () => {
    if (skip) return;
    assert.ok(haveChromium, `CI is set but there is no Chromium at ${chromiumPath} (apt-get install -y chromium)`);
    // Two static servers for the same files: one origin is in CORS_ORIGINS, the other is not.
    dir = await mkdtemp(join(tmpdir(), "grocery-web-"));
    [allowed, blocked] = await Promise.all([serveStatic(dir), serveStatic(dir)]);
    // The platform reads the page when it starts, as `npm start` does after building it; config.json, written
    // below for the other origins, comes later, so the platform's own copy of the page calls its own origin.
    const web = buildWeb({ outDir: dir });
    // Started side by side; allSettled so that `after` can close whatever did start when one part fails.
    const started = await Promise.allSettled([
      // `npm start`'s entry point in a process of its own (compiled, run with node, when the test runner built it),
      // on an embedded database of its own.
      Promise.all([web, emptyDatabase("pglite")])
        .then(([, d]) => startServiceProcess("services/main.ts", { ...(data = d).env, CORS_ORIGINS: allowed?.origin ?? "", WEB_DIR: dir ?? "" }))
        .then((p) => (tp = p)),
      chromium
        .launch({
          executablePath: chromiumPath,
          args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        })
        .then((b) => (browser = b)),
    ]);
    for (const s of started) if (s.status === "rejected") throw s.reason;
    assert.ok(tp);
    await writeWebConfig(dir, tp.url);
  });

  after(async () => {
    await browser?.close();
    await tp?.stop();
    await data?.drop();
    await allowed?.close();
    await blocked?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** Opens the page at `url` and waits until it has read its config. */
  async function openPage(url: string): Promise<Page> {
    assert.ok(browser);
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    await page.goto(url);
    await page.locator('#status[data-state="idle"]', { hasText: "Ready." }).waitFor();
    return page;
  }

  /** Fills and submits a form, waits for the call to finish, and returns the status line. */
  async function submit(page: Page, form: string, values: Record<string, string>): Promise<{ state: string | null; code: string | null; text: string }> {
    for (const [name, value] of Object.entries(values)) await page.fill(`${form} [name="${name}"]`, value);
    await page.click(`${form} button[type="submit"]`);
    const status = page.locator('#status:not([data-state="busy"])');
    await status.waitFor();
    return { state: await status.getAttribute("data-state"), code: await status.getAttribute("data-code"), text: (await status.textContent()) ?? "" };
  }

  test("registers, logs in, reads GetMe, creates a cart and lists it, on the page the platform serves at /", { skip }, async () => {
    assert.ok(tp);
    const page = await openPage(`${tp.url}/`);
    const calls: Request[] = [];
    page.on("request", (r) => {
      if (r.url().startsWith(`${tp?.url}/`) && r.method() === "POST") calls.push(r);
    });
    const username = uniqueName("web");
    const email = `${username}@example.com`;
    const password = "correct horse battery staple";

    const registered = await submit(page, "#register-form", { username, email, password });
    assert.deepEqual({ state: registered.state, text: registered.text }, { state: "ok", text: `Registered ${username}. Log in to continue.` });

    const loggedIn = await submit(page, "#login-form", { login: username, password });
    assert.equal(loggedIn.text, `Logged in as ${username}.`);
    assert.equal(await page.isVisible("#signed-in"), true);
    assert.equal(await page.textContent("#me-username"), username);
    assert.equal(await page.textContent("#me-email"), email);
    assert.equal(await page.textContent("#me-roles"), "CUSTOMER");
    assert.deepEqual(await page.locator("#cart-list li").allTextContents(), ["No carts yet."]);

    const cartName = `Weekly shop ${username}`;
    const created = await submit(page, "#cart-form", { name: cartName });
    assert.deepEqual({ state: created.state, text: created.text }, { state: "ok", text: `Created cart “${cartName}”.` });
    assert.deepEqual(await page.locator("#cart-list li").allTextContents(), [`${cartName} (0 items)`]);
    assert.match((await page.getAttribute("#cart-list li", "data-cart-id")) ?? "", /^[0-9a-f-]{36}$/);

    // Every call went to the page's own origin, as gRPC-web with the binary codec.
    assert.deepEqual(
      calls.map((r) => new URL(r.url()).pathname),
      [
        "/grocery.identity.v1.AuthService/Register",
        "/grocery.identity.v1.AuthService/Login",
        "/grocery.identity.v1.UserService/GetMe",
        "/grocery.cart.v1.CartService/ListCarts",
        "/grocery.cart.v1.CartService/CreateCart",
        "/grocery.cart.v1.CartService/ListCarts",
      ],
    );
    for (const r of calls) {
      const headers = await r.allHeaders();
      assert.equal(headers["content-type"], "application/grpc-web+proto");
      assert.equal(headers["origin"], tp.url);
    }
    await page.close();
  });

  test("the page's Content-Security-Policy runs its own script and refuses an inline one", { skip }, async () => {
    assert.ok(tp && browser);
    const page = await browser.newPage();
    page.setDefaultTimeout(10_000);
    const response = await page.goto(`${tp.url}/`);
    const csp = (await response?.allHeaders())?.["content-security-policy"] ?? "";
    const directives = new Map(csp.split(/\s*;\s*/).map((d) => [d.split(" ")[0], d.split(" ").slice(1).join(" ")]));
    assert.equal(directives.get("script-src"), "'self'", csp);
    assert.equal(directives.get("style-src"), "'self'", csp);
    await page.locator('#status[data-state="idle"]', { hasText: "Ready." }).waitFor();
    // The stylesheet loaded (the h1 is not the browser's default serif).
    assert.match(await page.evaluate(() => getComputedStyle(document.body).fontFamily), /system-ui/);
    // An injected inline script is blocked and reported; page.evaluate itself is the browser's debugger, not the page.
    // Sent as source text: the test's own compiled functions would carry the loader's helpers into the page.
    const outcome = await page.evaluate<{ ran: boolean; directive: string }>(`new Promise((resolve) => {
      const ran = () => window.inlineRan === true;
      document.addEventListener("securitypolicyviolation", (e) => resolve({ ran: ran(), directive: e.effectiveDirective }), { once: true });
      const script = document.createElement("script");
      script.textContent = "window.inlineRan = true";
      document.body.append(script);
      setTimeout(() => resolve({ ran: ran(), directive: "" }), 2000);
    })`);
    assert.equal(outcome.ran, false, "the inline script did not run");
    assert.match(outcome.directive, /^script-src/);
    await page.close();
  });

  test("a wrong password shows UNAUTHENTICATED, read from the grpc-status the server sends, also from another allowed origin", { skip }, async () => {
    assert.ok(tp && allowed);
    const username = uniqueName("web");
    const password = "correct horse battery staple";
    await callJson(tp.url, "grocery.identity.v1.AuthService/Register", { username, email: `${username}@example.com`, password });
    // The same files on an origin in CORS_ORIGINS, pointed at the platform by config.json: calls go cross-origin.
    const page = await openPage(`${allowed.origin}/index.html`);
    const response = page.waitForResponse((r) => r.url() === `${tp?.url}/grocery.identity.v1.AuthService/Login`);
    const status = await submit(page, "#login-form", { login: username, password: `${password}!` });
    const login = await response;

    assert.deepEqual({ state: status.state, code: status.code }, { state: "error", code: "UNAUTHENTICATED" });
    assert.match(status.text, /^UNAUTHENTICATED: /);
    assert.equal(await page.isVisible("#signed-in"), false);
    // connect-node sends the status in the body's trailer frame; a trailers-only answer (Envoy's own errors)
    // carries it in headers, which the page can read only because the server exposes them.
    assert.equal(grpcWebTrailer(await login.body()).get("grpc-status"), "16");
    const headers = await login.allHeaders();
    assert.equal(headers["access-control-allow-origin"], allowed.origin);
    const exposed = (headers["access-control-expose-headers"] ?? "").toLowerCase().split(/\s*,\s*/);
    for (const h of ["grpc-status", "grpc-message", "grpc-status-details-bin"]) assert.ok(exposed.includes(h), `${h} is not exposed: ${exposed.join(", ")}`);
    await page.close();
  });

  test("a page from an origin not in CORS_ORIGINS cannot call the platform", { skip }, async () => {
    assert.ok(tp && blocked);
    const page = await openPage(`${blocked.origin}/index.html`);
    const failed: string[] = [];
    page.on("requestfailed", (r) => {
      if (r.url().startsWith(`${tp?.url}/`)) failed.push(r.failure()?.errorText ?? "");
    });
    const username = uniqueName("web");
    const status = await submit(page, "#register-form", { username, email: `${username}@example.com`, password: "correct horse battery staple" });

    // fetch() rejects without a status: connect-web can only call it UNKNOWN; the browser blocked the call.
    assert.equal(status.state, "error");
    assert.equal(status.code, "UNKNOWN");
    assert.ok(failed.length > 0, "no failed request to the platform was seen");

    // The preflight was refused, so the Register request itself never reached the server.
    const preflight = await fetch(`${tp.url}/grocery.identity.v1.AuthService/Register`, {
      method: "OPTIONS",
      headers: { origin: blocked.origin, "access-control-request-method": "POST", "access-control-request-headers": "content-type,x-grpc-web" },
    });
    assert.equal(preflight.headers.get("access-control-allow-origin"), null);
    await assert.rejects(callJson(tp.url, "grocery.identity.v1.AuthService/Login", { login: username, password: "correct horse battery staple" }), { code: "unauthenticated" });
    await page.close();
  });
});

/** The trailer frame (flag 0x80) of a gRPC-web response body, as lower-cased header lines. */
function grpcWebTrailer(body: Buffer): Map<string, string> {
  for (let at = 0; at + 5 <= body.length; ) {
    const flags = body.readUInt8(at);
    const length = body.readUInt32BE(at + 1);
    const data = body.subarray(at + 5, at + 5 + length);
    at += 5 + length;
    if ((flags & 0x80) === 0) continue;
    const lines = data.toString("utf8").split("\r\n").filter(Boolean);
    return new Map(lines.map((l) => [l.slice(0, l.indexOf(":")).trim().toLowerCase(), l.slice(l.indexOf(":") + 1).trim()]));
  }
  assert.fail("the response has no gRPC-web trailer frame");
}

interface StaticServer {
  readonly origin: string;
  close(): Promise<void>;
}

const contentTypes: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".json": "application/json",
  ".map": "application/json",
};

/** Serves the files of `dir` (GET only, no listing) on 127.0.0.1 and a free port. */
async function serveStatic(dir: string): Promise<StaticServer> {
  const server = http.createServer((req, res) => {
    const path = normalize(decodeURIComponent(new URL(req.url ?? "/", "http://x").pathname));
    const type = contentTypes[extname(path)];
    if (req.method !== "GET" || path.includes("..") || type === undefined) {
      res.writeHead(404).end();
      return;
    }
    readFile(join(dir, path)).then(
      (body) => res.writeHead(200, { "content-type": type, "cache-control": "no-store" }).end(body),
      () => res.writeHead(404).end(),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    origin: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve, reject) => {
        server.closeAllConnections();
        server.close((e) => (e ? reject(e) : resolve()));
      }),
  };
}
