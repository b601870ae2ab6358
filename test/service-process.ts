/** A service started the way an operator starts it (`npm run start:<service>`): its own process, env and port. */
import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { cheapPasswordHashing } from "./harness.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** One structured log line of the service (see services/platform/src/logger.ts). */
export type ServiceLogEntry = Record<string, unknown> & { level?: string; msg?: string };

export interface ServiceProcess {
  readonly url: string;
  readonly port: number;
  /** The service's log lines at level "error" so far: a crash suite checks that no call hit a true bug. */
  readonly errorLogs: readonly ServiceLogEntry[];
  /** Every log line so far (at the process's LOG_LEVEL). */
  readonly logs: readonly ServiceLogEntry[];
  /** What the process wrote to stderr so far (a crash's stack lands here). */
  stderr(): string;
  /** Sends SIGTERM and resolves with the exit code. */
  stop(): Promise<number | null>;
  /**
   * Sends SIGKILL (`kill -9`: no shutdown code runs, open connections and transactions are cut) and resolves
   * with the signal that ended the process once it has exited, so its port is free for a restart.
   */
  kill(): Promise<NodeJS.Signals | null>;
}

/**
 * How `entry` is run: the compiled entry point with plain `node` when the test runner built the services
 * (scripts/build-for-tests.ts sets GROCERY_TEST_DIST), as production runs them; tsx on the source otherwise (a
 * test file run on its own).
 */
function commandFor(entry: string): string[] {
  const dist = process.env["GROCERY_TEST_DIST"];
  return dist ? [join(dist, entry.replace(/\.ts$/, ".js"))] : ["--import", "tsx", entry];
}

/**
 * Runs `entry` (e.g. services/cart/src/main.ts) and resolves once it logs "ready"; rejects if it exits first,
 * with its stderr and the error lines it logged (start-up failures are logged, not printed to stderr).
 */
export async function startServiceProcess(entry: string, env: Record<string, string>): Promise<ServiceProcess> {
  const child = spawn(process.execPath, commandFor(entry), {
    cwd: root,
    env: { PATH: process.env["PATH"] ?? "", PORT: "0", HOST: "127.0.0.1", LOG_LEVEL: "info", HEALTH_PROBE_MS: "200", ...cheapPasswordHashing, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.once("exit", (code, signal) => resolve({ code, signal })),
  );
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
  const errorLogs: ServiceLogEntry[] = [];
  const logs: ServiceLogEntry[] = [];
  const port = await new Promise<number>((resolve, reject) => {
    createInterface({ input: child.stdout }).on("line", (line) => {
      let log: ServiceLogEntry;
      try {
        log = JSON.parse(line) as ServiceLogEntry;
      } catch {
        return; // Not a log line.
      }
      logs.push(log);
      if (log.level === "error") errorLogs.push(log);
      if (log.msg === "ready" && typeof log["port"] === "number") resolve(log["port"]);
    });
    void exited.then(({ code }) => reject(new Error(`${entry} exited with ${code}: ${stderr}${errorLogs.map((e) => JSON.stringify(e)).join("\n")}`)));
  });
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    errorLogs,
    logs,
    stderr: () => stderr,
    async stop() {
      child.kill("SIGTERM");
      return (await exited).code;
    },
    async kill() {
      child.kill("SIGKILL");
      return (await exited).signal;
    },
  };
}
