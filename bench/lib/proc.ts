/** Linux /proc readings: CPU time of processes (and of their main thread), peak and current RSS. */
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";

let tick: number | undefined;
/** Milliseconds per clock tick (sysconf CLK_TCK, usually 100 per second). */
function msPerTick(): number {
  if (tick === undefined) {
    let hz = 100;
    try {
      hz = Number(execFileSync("getconf", ["CLK_TCK"]).toString().trim()) || 100;
    } catch {
      // getconf missing: Linux's default.
    }
    tick = 1000 / hz;
  }
  return tick;
}

/** utime + stime of /proc/<path>/stat in ms; undefined when the process is gone. */
function statCpuMs(path: string): number | undefined {
  try {
    const stat = readFileSync(`/proc/${path}/stat`, "utf8");
    // The command name (field 2) may hold spaces: fields are counted after its closing parenthesis.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) * msPerTick();
  } catch {
    return undefined;
  }
}

/** CPU ms a process has used so far (all its threads). */
export function cpuMs(pid: number): number | undefined {
  return statCpuMs(String(pid));
}

/** CPU ms of a process's main thread alone (its JavaScript, for Node), not its worker or pool threads. */
export function mainThreadCpuMs(pid: number): number | undefined {
  return statCpuMs(`${pid}/task/${pid}`);
}

/** Sum of CPU ms over `pids`, as a map so a later reading can be subtracted per pid. */
export function cpuSnapshot(pids: readonly number[]): Map<number, number> {
  const m = new Map<number, number>();
  for (const pid of pids) {
    const v = cpuMs(pid);
    if (v !== undefined) m.set(pid, v);
  }
  return m;
}

/** CPU ms used between two snapshots, over the pids present in both (a pid that came later counts from 0). */
export function cpuDelta(before: Map<number, number>, after: Map<number, number>): number {
  let total = 0;
  for (const [pid, v] of after) total += v - (before.get(pid) ?? 0);
  return total;
}

function statusKiB(pid: number, field: "VmHWM" | "VmRSS"): number | undefined {
  try {
    const m = new RegExp(`${field}:\\s+(\\d+)`).exec(readFileSync(`/proc/${pid}/status`, "utf8"));
    return m ? Number(m[1]) : undefined;
  } catch {
    return undefined;
  }
}

/** Peak resident set (VmHWM) of a process since it started, in MB (10^6 bytes, the unit of the targets). */
export function peakRssMb(pid: number): number | undefined {
  const kib = statusKiB(pid, "VmHWM");
  return kib === undefined ? undefined : (kib * 1024) / 1e6;
}

/** Current resident set (VmRSS) in MB. */
export function rssMb(pid: number): number | undefined {
  const kib = statusKiB(pid, "VmRSS");
  return kib === undefined ? undefined : (kib * 1024) / 1e6;
}

/** The machine: cores, CPU model, memory, load average. */
export function machine(): { nproc: number; cpuModel: string; memoryGiB: number; loadAverage: string } {
  const cpuinfo = readFileSync("/proc/cpuinfo", "utf8");
  const meminfo = readFileSync("/proc/meminfo", "utf8");
  let nproc = 0;
  try {
    nproc = Number(execFileSync("nproc").toString().trim());
  } catch {
    nproc = (cpuinfo.match(/^processor\s*:/gm) ?? []).length;
  }
  return {
    nproc,
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? "unknown",
    memoryGiB: Number(/MemTotal:\s+(\d+)/.exec(meminfo)?.[1] ?? 0) / 1024 / 1024,
    loadAverage: readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" "),
  };
}
