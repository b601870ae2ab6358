/** The benchmark's report: per-scenario summary over rounds, the issue's targets met or missed, as Markdown + JSON. */
import { writeFile } from "node:fs/promises";
import { join } from "node:path";

export interface RunRecord {
  scenario: string;
  name: string;
  round: number;
  shape: string;
  driver: string;
  reqPerSec: number;
  /** Calls completed in the measured window (successful or not), the denominator of the CPU figures. */
  calls: number;
  p50: number;
  p95: number;
  p99: number;
  codes: Record<string, number>;
  /** Calls the service logged CANCELED because h2load reset its streams when its duration ended. */
  cancelledAtEnd?: number;
  codesFrom: string;
  serverCpuMsPerCall: number;
  serverCpuByProcess: Record<string, number>;
  /** Server CPU over the window ÷ its length: 1 is one core saturated. */
  serverCoreUse: number;
  /** The load generator's (h2load's or the Node client's) share of its core: near 1, it was the limit. */
  clientCoreUse?: number | undefined;
  /** CPU of each server process's main thread (JavaScript) per call. */
  mainThreadMsPerCall?: Record<string, number>;
  pgCpuMsPerCall: number | undefined;
  peakRssMb: Record<string, number | undefined>;
}

export interface StartupRecord {
  round?: number;
  dataDir: "fresh" | "existing";
  startMs: number;
  rssAfterStartMb: number | undefined;
  peakRssAfterStartMb: number | undefined;
}

export interface BenchResults {
  date: string;
  quick: boolean;
  settings: { seconds: number; warmupSeconds: number; rounds: number; shapes: string[]; pinning: string };
  machine: { nproc: number; cpuModel: string; memoryGiB: number; loadAverage: string; node: string; postgres: string; h2load: string };
  runs: RunRecord[];
  startups: StartupRecord[];
  startupFailures: string[];
  services: {
    rssAfterStartMb: Record<string, number | undefined>;
    peakRssMb: Record<string, number | undefined>;
    errorLogLines: Record<string, number>;
    /** Up to five error lines per process, as logged. */
    errorLogSamples?: Record<string, string[]>;
  };
  totalSeconds: number;
}

const baselineOf: Record<string, string> = {
  "raw-http2": "grpc-js",
  "connect-node": "grpc-js",
  health: "grpc-js",
  getme: "grpc-js",
  getcart: "grpc-js",
  listaddresses: "grpc-js",
  nearby: "grpc-js",
  listcarts: "grpc-js",
  additem: "grpc-js",
  updateqty: "grpc-js",
  createaddress: "grpc-js",
  login: "argon2",
  "getme-grpcweb": "getme",
  "getme-connect": "getme",
};

const median = (xs: number[]) => {
  const s = xs.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (s.length === 0) return NaN;
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
const fmt = (x: number | undefined, digits = 2) => (x === undefined || !Number.isFinite(x) ? "–" : x >= 100 ? x.toFixed(0) : x.toFixed(digits));
const range = (xs: number[], digits = 2) => {
  const f = xs.filter((x) => Number.isFinite(x));
  if (f.length === 0) return "–";
  const lo = Math.min(...f);
  const hi = Math.max(...f);
  return fmt(lo, digits) === fmt(hi, digits) ? fmt(lo, digits) : `${fmt(lo, digits)}–${fmt(hi, digits)}`;
};

export interface Summary {
  scenario: string;
  name: string;
  shape: string;
  baseline: string | undefined;
  reqPerSec: number[];
  ratio: number[];
  p50: number;
  p95: number;
  p99: number;
  p99Max: number;
  serverCpu: number[];
  serverCoreUse: number[];
  clientCoreUse: number[];
  mainThread: Record<string, number[]>;
  pgCpu: number[];
  errors: Record<string, number>;
  calls: number;
  peakRssMb: Record<string, number>;
}

export function summarise(runs: RunRecord[]): Summary[] {
  const out: Summary[] = [];
  const keys = [...new Set(runs.map((r) => `${r.scenario}\u0000${r.shape}`))];
  for (const key of keys) {
    const [scenario, shape] = key.split("\u0000") as [string, string];
    const rs = runs.filter((r) => r.scenario === scenario && r.shape === shape);
    const baseline = baselineOf[scenario];
    const ratio = baseline
      ? rs.flatMap((r) => {
          const b = runs.find((x) => x.scenario === baseline && x.shape === shape && x.round === r.round);
          return b ? [r.reqPerSec / b.reqPerSec] : [];
        })
      : [];
    const errors: Record<string, number> = {};
    for (const r of rs) for (const [c, n] of Object.entries(r.codes)) if (c !== "OK") errors[c] = (errors[c] ?? 0) + n;
    const mainThread: Record<string, number[]> = {};
    for (const r of rs) for (const [p, v] of Object.entries(r.mainThreadMsPerCall ?? {})) (mainThread[p] ??= []).push(v);
    const peakRssMb: Record<string, number> = {};
    for (const r of rs) for (const [p, v] of Object.entries(r.peakRssMb)) if (v !== undefined) peakRssMb[p] = Math.max(peakRssMb[p] ?? 0, v);
    out.push({
      scenario,
      name: rs[0]!.name,
      shape,
      baseline,
      reqPerSec: rs.map((r) => r.reqPerSec),
      ratio,
      p50: median(rs.map((r) => r.p50)),
      p95: median(rs.map((r) => r.p95)),
      p99: median(rs.map((r) => r.p99)),
      p99Max: Math.max(...rs.map((r) => r.p99)),
      serverCpu: rs.map((r) => r.serverCpuMsPerCall),
      serverCoreUse: rs.map((r) => r.serverCoreUse),
      clientCoreUse: rs.flatMap((r) => (r.clientCoreUse === undefined ? [] : [r.clientCoreUse])),
      mainThread,
      pgCpu: rs.flatMap((r) => (r.pgCpuMsPerCall === undefined ? [] : [r.pgCpuMsPerCall])),
      errors,
      calls: rs.reduce((a, r) => a + r.calls, 0),
      peakRssMb,
    });
  }
  return out;
}

interface TargetRow {
  what: string;
  target: string;
  measured: string;
  verdict: string;
}

/** The issue's targets, each judged on the median over rounds in the worse load shape. */
function targets(results: BenchResults, sums: Summary[]): TargetRow[] {
  const rows: TargetRow[] = [];
  const of = (scenario: string) => sums.filter((s) => s.scenario === scenario);
  const verdict = (value: number, goal: number, higherIsBetter: boolean, unit = "") => {
    if (!Number.isFinite(value)) return "not measured";
    const met = higherIsBetter ? value >= goal : value <= goal;
    if (met) return "met";
    const by = higherIsBetter ? goal / value : value / goal;
    return `missed by ${by.toFixed(2)}× (${fmt(Math.abs(goal - value))}${unit} ${higherIsBetter ? "short" : "over"})`;
  };
  const ratioTarget = (scenario: string, goal: number, label: string, extra?: (s: Summary[]) => { text: string; ok: boolean } | undefined) => {
    const ss = of(scenario);
    if (ss.length === 0) {
      rows.push({ what: label, target: `≥ ${goal} × ${baselineOf[scenario]}`, measured: "not run", verdict: "not measured" });
      return;
    }
    const worst = Math.min(...ss.map((s) => median(s.ratio)));
    const measured = ss.map((s) => `${s.shape}: ${range(s.ratio)}`).join("; ");
    let v = verdict(worst, goal, true);
    const e = extra?.(ss);
    if (e && !e.ok && v === "met") v = "missed";
    rows.push({ what: label, target: `≥ ${goal} × ${ss[0]!.baseline}`, measured: measured + (e ? `; ${e.text}` : ""), verdict: v + (e && !e.ok ? ` (${e.text})` : "") });
  };
  ratioTarget("health", 0.8, "platform serving path (Health/Check, default logging)");
  ratioTarget("getme", 0.5, "GetMe on PostgreSQL", (ss) => {
    const s = ss.find((x) => x.shape === "1x64");
    return s ? { text: `p99 at 1×64 ${fmt(s.p99)} ms (target ≤ 25)`, ok: s.p99 <= 25 } : undefined;
  });
  ratioTarget("getcart", 0.3, "GetCart (5 lines)");
  ratioTarget("listaddresses", 0.3, "ListAddresses");
  ratioTarget("nearby", 0.3, "FindNearbyShops (200 shops)");
  const noErrors = (ss: Summary[]) => {
    const n = ss.reduce((a, s) => a + Object.values(s.errors).reduce((x, y) => x + y, 0), 0);
    return { text: n === 0 ? "no errors" : `${n} errors`, ok: n === 0 };
  };
  ratioTarget("additem", 0.15, "AddItem (spread over 19 carts)", noErrors);
  ratioTarget("createaddress", 0.15, "CreateAddress (spread over owners)", noErrors);
  ratioTarget("getme-grpcweb", 0.8, "gRPC-web GetMe");
  ratioTarget("getme-connect", 0.8, "Connect JSON GetMe");
  ratioTarget("login", 0.9, "Login vs raw argon2id", (ss) => {
    const main = Math.max(...ss.map((s) => median(s.mainThread["identity"] ?? [])));
    return { text: `identity main thread ${fmt(main)} ms per login (target ≤ 2)`, ok: main <= 2 };
  });
  const rate = (scenario: string, goal: number, label: string) => {
    const ss = of(scenario);
    const worst = ss.length ? Math.min(...ss.map((s) => median(s.reqPerSec))) : NaN;
    rows.push({ what: label, target: `≥ ${goal} / s`, measured: ss.length ? ss.map((s) => `${s.shape}: ${range(s.reqPerSec, 0)} /s`).join("; ") : "not run", verdict: verdict(worst, goal, true, " /s") });
  };
  rate("refresh", 1000, "RefreshToken");
  rate("servicetoken", 2000, "IssueServiceToken");
  const peaks = results.services.peakRssMb;
  for (const [name, mb] of Object.entries(peaks)) {
    rows.push({ what: `${name} process on PostgreSQL, peak RSS`, target: "≤ 150 MB", measured: `${fmt(mb, 0)} MB`, verdict: verdict(mb ?? NaN, 150, false, " MB") });
  }
  const existing = results.startups.filter((s) => s.dataDir === "existing");
  const fresh = results.startups.filter((s) => s.dataDir === "fresh");
  const rssExisting = median(existing.map((s) => s.rssAfterStartMb ?? NaN));
  rows.push({ what: "`npm start` on PGlite, RSS after start (existing data dir)", target: "≤ 300 MB", measured: `${range(existing.map((s) => s.rssAfterStartMb ?? NaN), 0)} MB`, verdict: verdict(rssExisting, 300, false, " MB") });
  rows.push({ what: "`npm start` ready (existing data dir)", target: "≤ 1.5 s", measured: `${range(existing.map((s) => s.startMs / 1000))} s`, verdict: verdict(median(existing.map((s) => s.startMs / 1000)), 1.5, false, " s") });
  rows.push({ what: "`npm start` ready (fresh data dir)", target: "≤ 5 s", measured: `${range(fresh.map((s) => s.startMs / 1000))} s`, verdict: verdict(median(fresh.map((s) => s.startMs / 1000)), 5, false, " s") });
  return rows;
}

function markdown(results: BenchResults, sums: Summary[]): string {
  const m = results.machine;
  const s = results.settings;
  const lines: string[] = [];
  lines.push(`# Benchmark ${results.date.slice(0, 10)}${results.quick ? " (quick smoke run: not a measurement to compare)" : ""}`);
  lines.push("");
  lines.push("`npm run bench" + (results.quick ? " -- --quick" : "") + "` (bench/run.ts). Every number below was measured in this one run.");
  lines.push("");
  lines.push("## Machine");
  lines.push("");
  lines.push(`- ${m.nproc} cores, ${m.cpuModel}, ${m.memoryGiB.toFixed(1)} GiB memory; load average at start ${m.loadAverage}`);
  lines.push(`- Node ${m.node}; ${m.postgres.split(" on ")[0]}; ${m.h2load}`);
  lines.push(`- ${s.pinning}`);
  lines.push(`- ${s.rounds} interleaved round(s); per scenario and shape ${s.warmupSeconds} s warm-up then ${s.seconds} s measured; shapes ${s.shapes.map((x) => x.replace("x", " connection(s) × ") + " streams").join(", ")}`);
  lines.push(`- whole run ${results.totalSeconds.toFixed(0)} s`);
  lines.push("");
  lines.push("## Targets (issue 12)");
  lines.push("");
  lines.push("Ratios are scenario ÷ baseline in the same round and shape; a target is judged on the median over rounds in the worse shape.");
  lines.push("");
  lines.push("| what | target | measured (min–max over rounds) | verdict |");
  lines.push("|---|---|---|---|");
  for (const t of targets(results, sums)) lines.push(`| ${t.what} | ${t.target} | ${t.measured} | ${t.verdict} |`);
  lines.push("");
  lines.push("## Scenarios");
  lines.push("");
  lines.push("req/s, ratio, server and PostgreSQL CPU: min–max over rounds; latency: median over rounds. Server CPU is utime+stime of the server process(es) from /proc over the measured window ÷ calls completed in it (all three services for platform scenarios except Health/Check, Login, RefreshToken and IssueServiceToken, which count identity alone); PostgreSQL CPU is the same over the backends connected to the bench database.");
  lines.push("");
  lines.push("| scenario | shape | req/s | ÷ baseline | p50 / p95 / p99 ms | server CPU ms/call | server core use | PostgreSQL CPU ms/call | errors by code | VmHWM after run MB |");
  lines.push("|---|---|---|---|---|---|---|---|---|---|");
  for (const x of sums) {
    const errs = Object.entries(x.errors)
      .map(([c, n]) => `${c} ${n}`)
      .join(", ");
    const main = x.mainThread["identity"];
    const cpu = range(x.serverCpu) + (x.scenario === "login" && main ? ` (identity main thread ${range(main)})` : "");
    const rss = Object.entries(x.peakRssMb)
      .map(([p, v]) => `${p} ${v.toFixed(0)}`)
      .join(", ");
    lines.push(
      `| ${x.name} | ${x.shape.replace("x", "×")} | ${range(x.reqPerSec, 0)} | ${x.baseline ? `${range(x.ratio)} (${x.baseline})` : "–"} | ${fmt(x.p50)} / ${fmt(x.p95)} / ${fmt(x.p99)} | ${cpu} | ${range(x.serverCoreUse)}${x.clientCoreUse.length ? ` (load ${range(x.clientCoreUse)})` : ""} | ${range(x.pgCpu)} | ${errs || "none"} | ${rss} |`,
    );
  }
  lines.push("");
  lines.push("Server core use is server CPU over the window ÷ its length (1 = one core busy); the load generator's own share of its core (h2load, or this process for Node-client scenarios) follows in parentheses: near 1, the load generator was the limit, not the server.");
  lines.push("");
  lines.push(
    "Errors by code: h2load counts HTTP 200 as success, so for platform scenarios driven by h2load the codes are the service's own `rpc` log lines over the window (every call; req/s is h2load's completed calls times the share the service answered OK, and CPU per call divides by the calls it logged), and the streams h2load resets when its duration ends (logged CANCELED, at most two runs' worth) are left out; for the baselines, grpc-status of calls sampled one at a time every 100 ms during the run; for Node-client scenarios, every call as the client saw it.",
  );
  lines.push("");
  lines.push("## Memory and start-up");
  lines.push("");
  lines.push("| process | RSS after start MB | peak RSS (VmHWM) over the run MB | error log lines |");
  lines.push("|---|---|---|---|");
  for (const [name, peak] of Object.entries(results.services.peakRssMb)) {
    lines.push(`| ${name} on PostgreSQL | ${fmt(results.services.rssAfterStartMb[name], 0)} | ${fmt(peak, 0)} | ${results.services.errorLogLines[name] ?? 0} |`);
  }
  const samples = Object.entries(results.services.errorLogSamples ?? {}).filter(([, l]) => l.length > 0);
  if (samples.length > 0) {
    lines.push("");
    lines.push("Error log lines (up to five per process):");
    lines.push("");
    for (const [name, l] of samples) for (const line of l) lines.push(`- ${name}: \`${line.replaceAll("`", "'")}\``);
  }
  lines.push("");
  lines.push("`npm start`'s server (`node dist/services/main.js`, all three services, PGlite; the build step before it is not timed), from spawn to its `ready` log line:");
  lines.push("");
  lines.push("| data dir | ready s | RSS after start MB | VmHWM at ready MB |");
  lines.push("|---|---|---|---|");
  for (const kind of ["fresh", "existing"] as const) {
    const ss = results.startups.filter((x) => x.dataDir === kind);
    if (ss.length === 0) continue;
    lines.push(`| ${kind} | ${range(ss.map((x) => x.startMs / 1000))} | ${range(ss.map((x) => x.rssAfterStartMb ?? NaN), 0)} | ${range(ss.map((x) => x.peakRssAfterStartMb ?? NaN), 0)} |`);
  }
  lines.push("");
  for (const f of results.startupFailures) lines.push(`Start-up failed in ${f.split("\n")[0]}`, "");
  return lines.join("\n");
}

export async function writeReport(results: BenchResults, dir: string): Promise<{ md: string; json: string }> {
  const sums = summarise(results.runs);
  const base = results.quick ? `quick-${results.date.replace(/[:.]/g, "-")}` : results.date.slice(0, 10);
  const md = join(dir, `${base}.md`);
  const json = join(dir, `${base}.json`);
  await writeFile(md, markdown(results, sums));
  await writeFile(json, JSON.stringify({ ...results, summary: sums, targets: targets(results, sums) }, null, 2) + "\n");
  return { md, json };
}
