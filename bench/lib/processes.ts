/** Server processes for the benchmark: spawned (optionally pinned with taskset), their logs in files, stopped by pid. */
import { spawn, type ChildProcess } from "node:child_process";
import { openSync, closeSync, readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";

export interface Server {
  readonly name: string;
  readonly pid: number;
  readonly port: number;
  readonly url: string;
  /** Milliseconds from spawn until it said it was ready. */
  readonly startMs: number;
  readonly logFile: string;
  stop(): Promise<void>;
}

export async function freePort(): Promise<number> {
  return new Promise((resolve) => {
    const s = createServer().listen(0, "127.0.0.1", () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

function stopper(child: ChildProcess): () => Promise<void> {
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  return async () => {
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    const timer = setTimeout(() => child.kill("SIGKILL"), 15_000);
    await exited;
    clearTimeout(timer);
  };
}

export interface SpawnOptions {
  name: string;
  /** Script and its arguments, run as `node --import tsx <args>`, or `node <args>` when `compiled`. */
  args: string[];
  /** The script is compiled JavaScript (the production build): no tsx. */
  compiled?: boolean;
  env: Record<string, string>;
  cwd: string;
  /** CPU list for `taskset -c`; undefined runs unpinned. */
  cpus: string | undefined;
  workDir: string;
  /** Reads the port from a stdout line; the process is ready once it returns a number. */
  ready: (line: string) => number | undefined;
  timeoutMs?: number;
}

/**
 * Spawns a Node server with stdout and stderr written to a file (so the benchmark never spends its own CPU
 * reading a service's log lines) and waits until a line of it says it is ready.
 */
export async function spawnServer(o: SpawnOptions): Promise<Server> {
  const logFile = join(o.workDir, `${o.name}-${Date.now()}.log`);
  const fd = openSync(logFile, "a");
  const node = o.compiled ? [process.execPath, ...o.args] : [process.execPath, "--import", "tsx", ...o.args];
  const [cmd, ...argv] = o.cpus === undefined ? node : ["taskset", "-c", o.cpus, ...node];
  const started = performance.now();
  const child = spawn(cmd!, argv, { cwd: o.cwd, env: o.env, stdio: ["ignore", fd, fd] });
  closeSync(fd);
  const stop = stopper(child);
  const deadline = Date.now() + (o.timeoutMs ?? 60_000);
  let port: number | undefined;
  let seen = 0;
  for (;;) {
    if (child.exitCode !== null || child.signalCode !== null) {
      throw new Error(`${o.name} exited (${child.exitCode ?? child.signalCode}) before it was ready:\n${readFileSync(logFile, "utf8").slice(-4000)}`);
    }
    const text = readFileSync(logFile, "utf8");
    const lines = text.slice(seen).split("\n");
    // Keep a partial last line for the next pass.
    const complete = text.endsWith("\n") ? lines : lines.slice(0, -1);
    for (const line of complete) {
      port ??= o.ready(line);
      seen += line.length + 1;
    }
    if (port !== undefined) break;
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`${o.name} was not ready after ${(o.timeoutMs ?? 60_000) / 1000} s:\n${text.slice(-4000)}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
  return { name: o.name, pid: child.pid!, port, url: `http://127.0.0.1:${port}`, startMs: performance.now() - started, logFile, stop };
}

/** The platform's "ready" log line (services/platform/src/platform.ts) carries the port. */
export function platformReady(line: string): number | undefined {
  if (!line.startsWith("{")) return undefined;
  try {
    const log = JSON.parse(line) as { msg?: string; port?: unknown };
    return log.msg === "ready" && typeof log.port === "number" ? log.port : undefined;
  } catch {
    return undefined;
  }
}

/** Lines of a service log at level "error" (a true bug on some call). */
export function errorLines(logFile: string): string[] {
  try {
    return readFileSync(logFile, "utf8")
      .split("\n")
      .filter((l) => l.includes('"level":"error"') || l.includes('"level":50'));
  } catch {
    return [];
  }
}
