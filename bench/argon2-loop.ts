/**
 * Raw argon2id verification, the ceiling for Login: `concurrency` loops each awaiting @node-rs/argon2's verify of
 * one hash made with identity's production cost (services/identity/src/passwords.ts), for `seconds`. Run in its
 * own process (pinned like the servers) so its CPU is measured the same way.
 *
 *   node --import tsx bench/argon2-loop.ts <concurrency> <seconds> [warm-up seconds]
 * Makes the hash and warms up, prints {"ready": true}, then reads "go" on stdin to start and prints
 * {"ok": n, "seconds": s, "latenciesMs": [...]}.
 */
import { hash, verify, type Algorithm } from "@node-rs/argon2";
import { owaspPasswordCost } from "@local-e-grocery/identity/passwords.js";

// Algorithm is a const enum, which isolatedModules cannot read: its Argon2id value.
const argon2id = 2 as Algorithm.Argon2id;
const concurrency = Number(process.argv[2] ?? 64);
const seconds = Number(process.argv[3] ?? 3);
const warmupSeconds = Number(process.argv[4] ?? 0);
const password = "benchmark bananas and mangoes";
const stored = await hash(password, { algorithm: argon2id, memoryCost: owaspPasswordCost.memoryKiB, timeCost: owaspPasswordCost.iterations, parallelism: 1 });

async function loop(secs: number, latenciesMs: number[]): Promise<number> {
  const started = performance.now();
  const deadline = started + secs * 1000;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (performance.now() < deadline) {
        const t = performance.now();
        if (!(await verify(stored, password))) throw new Error("verify failed");
        latenciesMs.push(performance.now() - t);
      }
    }),
  );
  return performance.now() - started;
}

if (warmupSeconds > 0) await loop(warmupSeconds, []);
process.stdout.write(JSON.stringify({ ready: true }) + "\n");
await new Promise<void>((r) => process.stdin.once("data", () => r()));
const latenciesMs: number[] = [];
const elapsedMs = await loop(seconds, latenciesMs);
process.stdout.write(JSON.stringify({ ok: latenciesMs.length, seconds: elapsedMs / 1000, latenciesMs }) + "\n");
process.exit(0);
