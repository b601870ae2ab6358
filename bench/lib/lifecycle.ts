/**
 * The set-up and teardown every benchmark script shares: a work directory, the compiled build the service
 * processes run, and the things to undo (servers, the database) in reverse order, on success, on Ctrl-C and on
 * any failure (a request not answering OK, a server not starting) before the script exits non-zero.
 */
import { mkdtemp, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { buildServices } from "../../scripts/build.js";

export interface BenchLifecycle {
  readonly workDir: string;
  /** The production build (`scripts/build.ts`) in `.cache/bench-dist`. */
  readonly compiledDir: string;
  /** Undone in reverse order by `cleanup`. */
  readonly cleanups: (() => Promise<void>)[];
  cleanup(): Promise<void>;
}

export async function startBenchLifecycle(name: string, root: string, log: (line: string) => void): Promise<BenchLifecycle> {
  const workDir = await mkdtemp(join(tmpdir(), `grocery-${name.replaceAll(":", "-")}-`));
  const compiledDir = (await buildServices(join(root, ".cache", "bench-dist"))).outDir;
  const cleanups: (() => Promise<void>)[] = [];
  const cleanup = async () => {
    for (const c of cleanups.reverse()) await c().catch((e: unknown) => log(`cleanup: ${String(e)}`));
    cleanups.length = 0;
  };
  process.once("SIGINT", () => void cleanup().then(() => process.exit(130)));
  const fail = (e: unknown) => {
    process.stderr.write(`${name} failed: ${e instanceof Error ? (e.stack ?? e.message) : String(e)}\n`);
    void cleanup()
      .then(() => rm(workDir, { recursive: true, force: true }))
      .finally(() => process.exit(1));
  };
  process.once("uncaughtException", fail);
  process.once("unhandledRejection", fail);
  return { workDir, compiledDir, cleanups, cleanup };
}
