/** Runs h2load (Debian `nghttp2-client`) with a request body file and reads its summary and per-request log. */
import { execFileSync, spawn } from "node:child_process";
import { readFile, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { cpuMs } from "./proc.js";
import { h2loadHeaderArgs, type WireRequest } from "./wire.js";

export function h2loadVersion(): string | undefined {
  try {
    return execFileSync("h2load", ["--version"]).toString().trim();
  } catch {
    return undefined;
  }
}

export interface H2loadResult {
  /** Responses that finished inside the measured duration. */
  done: number;
  /** h2load's own failures (connection errors, timeouts, non-2xx… by its counting). */
  failed: number;
  status2xx: number;
  statusOther: number;
  reqPerSec: number;
  seconds: number;
  /** Latencies of the 2xx responses in ms, from --log-file. */
  latenciesMs: number[];
  /** h2load's own CPU ms, last read from /proc (every 100 ms) before it exited. */
  cpuMs: number;
}

export interface H2loadOptions {
  url: string;
  request: WireRequest;
  connections: number;
  streams: number;
  seconds: number;
  warmupSeconds?: number;
  /** CPU list for `taskset -c` (undefined: unpinned). */
  cpus?: string;
  workDir: string;
}

/** One h2load run (`-D seconds`, optional `--warm-up-time`); resolves when it exits. */
export async function runH2load(o: H2loadOptions): Promise<H2loadResult> {
  const tag = Math.random().toString(36).slice(2);
  const bodyFile = join(o.workDir, `body-${tag}`);
  const logFile = join(o.workDir, `log-${tag}`);
  await writeFile(bodyFile, o.request.body);
  const args = [
    "-c",
    String(o.connections),
    "-m",
    String(o.streams),
    "-t",
    "1",
    "-D",
    `${Math.round(o.seconds * 1000)}ms`,
    ...(o.warmupSeconds ? [`--warm-up-time=${Math.round(o.warmupSeconds * 1000)}ms`] : []),
    "-d",
    bodyFile,
    ...h2loadHeaderArgs(o.request),
    `--log-file=${logFile}`,
    o.url + o.request.path,
  ];
  const [cmd, argv] = o.cpus === undefined ? ["h2load", args] : ["taskset", ["-c", o.cpus, "h2load", ...args]];
  let loadCpuMs = 0;
  const output = await new Promise<string>((resolve, reject) => {
    const child = spawn(cmd, argv, { stdio: ["ignore", "pipe", "pipe"] });
    const poll = setInterval(() => (loadCpuMs = (child.pid && cpuMs(child.pid)) || loadCpuMs), 100);
    child.once("exit", () => clearInterval(poll));
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr.on("data", (d: Buffer) => (out += d.toString()));
    child.once("error", reject);
    child.once("exit", (code) => (code === 0 ? resolve(out) : reject(new Error(`h2load exited with ${code}:\n${out}`))));
  });
  const log = await readFile(logFile, "utf8").catch(() => "");
  await rm(bodyFile, { force: true });
  await rm(logFile, { force: true });
  const latenciesMs: number[] = [];
  for (const line of log.split("\n")) {
    const [, status, us] = line.split("\t");
    if (status !== undefined && status.startsWith("2") && us !== undefined) latenciesMs.push(Number(us) / 1000);
  }
  const num = (re: RegExp) => Number(re.exec(output)?.[1] ?? NaN);
  const finished = /finished in ([\d.]+)(m?s), ([\d.]+) req\/s/.exec(output);
  if (!finished) throw new Error(`cannot read h2load's output:\n${output}`);
  const seconds = Number(finished[1]) / (finished[2] === "ms" ? 1000 : 1);
  return {
    done: num(/requests: \d+ total, \d+ started, (\d+) done/),
    failed: num(/(\d+) failed/) + num(/(\d+) errored/) + num(/(\d+) timeout/),
    status2xx: num(/status codes: (\d+) 2xx/),
    statusOther: num(/2xx, (\d+) 3xx/) + num(/3xx, (\d+) 4xx/) + num(/4xx, (\d+) 5xx/),
    reqPerSec: Number(finished[3]),
    seconds,
    latenciesMs,
    cpuMs: loadCpuMs,
  };
}

/** The p-th percentile (0–100) of `values`, nearest rank; NaN when empty. */
export function percentile(values: number[], p: number): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))]!;
}
