import { execFileSync } from "node:child_process";
import { h2loadVersion } from "./h2load.js";
import { machine } from "./proc.js";

/** Exits with how to install it when h2load (Debian's nghttp2-client) is missing. */
export function requireH2load(): void {
  if (h2loadVersion()) return;
  process.stderr.write("h2load is not installed: sudo apt-get install nghttp2-client\n");
  process.exit(69);
}

export interface Pinning {
  /** `taskset -c` list for servers; undefined when not pinned. */
  readonly serverCpus: string | undefined;
  /** `taskset -c` list for load generators; undefined when not pinned. */
  readonly loadCpus: string | undefined;
  /** What the report says about it. */
  readonly description: string;
}

/**
 * Servers on core 0, load generators on core 1, where the machine has two cores and taskset: this process (it
 * drives the Node-client scenarios and seeds data) moves to the load generators' core.
 */
export function pinCores(): Pinning {
  const { nproc } = machine();
  let hasTaskset = true;
  try {
    execFileSync("taskset", ["-V"], { stdio: "ignore" });
  } catch {
    hasTaskset = false;
  }
  if (!hasTaskset || nproc < 2) {
    return { serverCpus: undefined, loadCpus: undefined, description: hasTaskset ? `unpinned: the machine has ${nproc} core` : "unpinned: taskset is not installed" };
  }
  execFileSync("taskset", ["-a", "-p", "-c", "1", String(process.pid)], { stdio: "ignore" });
  return { serverCpus: "0", loadCpus: "1", description: "servers on core 0 (taskset -c 0), h2load and the benchmark's Node client on core 1 (taskset -c 1); PostgreSQL unpinned" };
}
