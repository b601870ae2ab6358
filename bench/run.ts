/**
 * Load benchmark: starts the platform in a child process (embedded PGlite, or DATABASE_URL), then drives it over
 * one HTTP/2 connection with many concurrent streams and reports throughput, latency percentiles and the
 * server's memory. Bounded in time; only talks to 127.0.0.1.
 *
 *   npm run bench                      # defaults: 5 s per scenario, 64 streams
 *   BENCH_SECONDS=10 BENCH_STREAMS=128 npm run bench
 */
import { spawn } from "node:child_process";
import { mkdtemp, rm } from "node:fs/promises";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Role } from "../gen/grocery/auth/v1/auth_pb.js";
import { AuthService } from "../gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "../gen/grocery/identity/v1/user_service_pb.js";
import { CartService } from "../gen/grocery/cart/v1/cart_service_pb.js";
import { Health } from "../gen/grpc/health/v1/health_pb.js";
import { bearer, clientFor } from "../test/clients.js";

const seconds = Number(process.env["BENCH_SECONDS"] ?? 5);
const streams = Number(process.env["BENCH_STREAMS"] ?? 64);

async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

async function scenario(name: string, call: () => Promise<unknown>) {
  const latencies: number[] = [];
  let errors = 0;
  const deadline = performance.now() + seconds * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t = performance.now();
      try {
        await call();
        latencies.push(performance.now() - t);
      } catch {
        errors++;
      }
    }
  };
  const started = performance.now();
  await Promise.all(Array.from({ length: streams }, worker));
  const elapsed = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  const pct = (p: number) => (latencies[Math.min(latencies.length - 1, Math.floor(latencies.length * p))] ?? NaN).toFixed(2);
  console.log(
    `${name.padEnd(34)} ${(latencies.length / elapsed).toFixed(0).padStart(7)} req/s   p50 ${pct(0.5)} ms   p99 ${pct(0.99)} ms   errors ${errors}`,
  );
}

async function serverRssMb(pid: number): Promise<string> {
  const { readFile } = await import("node:fs/promises");
  try {
    const status = await readFile(`/proc/${pid}/status`, "utf8");
    const kb = Number(/VmRSS:\s+(\d+)/.exec(status)?.[1] ?? 0);
    return (kb / 1024).toFixed(0);
  } catch {
    return "?";
  }
}

const port = await freePort();
const dataDir = await mkdtemp(join(tmpdir(), "grocery-bench-"));
const child = spawn(process.execPath, ["--import", "tsx", "services/main.ts"], {
  env: { ...process.env, PORT: String(port), HOST: "127.0.0.1", DATA_DIR: dataDir, LOG_LEVEL: "warn" },
  stdio: ["ignore", "pipe", "inherit"],
});
try {
  await new Promise<void>((resolve, reject) => {
    child.stdout.on("data", (b: Buffer) => {
      if (b.toString().includes("is up on")) resolve();
    });
    child.once("exit", (code) => reject(new Error(`server exited with ${code}`)));
  });
  const url = `http://127.0.0.1:${port}`;
  const auth = clientFor(AuthService, url);
  const username = `bench_${Date.now().toString(36)}`;
  await auth.register({ username, email: `${username}@example.com`, password: "benchmark bananas", role: Role.CUSTOMER });
  const { accessToken } = await auth.login({ login: username, password: "benchmark bananas" });
  const carts = clientFor(CartService, url);
  const { cart } = await carts.createCart({ name: "bench" }, bearer(accessToken));

  console.log(`node ${process.version}, ${streams} concurrent streams on one HTTP/2 connection, ${seconds} s each, server pid ${child.pid}`);
  console.log(`server RSS after start: ${await serverRssMb(child.pid!)} MiB`);
  const health = clientFor(Health, url);
  const users = clientFor(UserService, url);
  await scenario("Health/Check (no auth, no db)", () => health.check({ service: "" }));
  await scenario("AuthService/GetJwks (public)", () => auth.getJwks({}));
  await scenario("UserService/GetMe (JWT + db read)", () => users.getMe({}, bearer(accessToken)));
  await scenario("CartService/GetCart (JWT + db read)", () => carts.getCart({ cartId: cart!.id }, bearer(accessToken)));
  console.log(`server RSS after load: ${await serverRssMb(child.pid!)} MiB`);
} finally {
  child.kill("SIGTERM");
  await new Promise((r) => child.once("exit", r));
  await rm(dataDir, { recursive: true, force: true });
}
