/**
 * What each proof suite did, for the table `npm run test:proof` prints: cases tried, faults injected, writes
 * acknowledged and found afterwards, and the peak resident memory seen. A suite calls `record` as it goes; the
 * runner points PROOF_REPORT_DIR at a folder and reads one JSON file per suite when they are done.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";

export interface ProofCounts {
  cases: number;
  faults: number;
  acknowledged: number;
  found: number;
  peakRssMiB: number;
  violations: number;
}

export interface ProofReport {
  /** Adds to the suite's counts; `peakRssMiB` keeps the largest value seen. */
  add(counts: Partial<ProofCounts>): void;
  /** Samples this process's RSS into the peak. */
  sampleRss(): void;
}

const reports = new Map<string, ProofCounts>();

export function proofReport(suite: string): ProofReport {
  const counts = reports.get(suite) ?? { cases: 0, faults: 0, acknowledged: 0, found: 0, peakRssMiB: 0, violations: 0 };
  reports.set(suite, counts);
  const flush = () => {
    const dir = process.env["PROOF_REPORT_DIR"];
    if (dir) writeFileSync(join(dir, `${suite.replace(/[^a-z0-9-]/gi, "_")}.json`), JSON.stringify({ suite, ...counts }));
  };
  return {
    add(more) {
      for (const key of ["cases", "faults", "acknowledged", "found", "violations"] as const) counts[key] += more[key] ?? 0;
      if (more.peakRssMiB !== undefined) counts.peakRssMiB = Math.max(counts.peakRssMiB, more.peakRssMiB);
      flush();
    },
    sampleRss() {
      counts.peakRssMiB = Math.max(counts.peakRssMiB, Math.round(process.memoryUsage().rss / 2 ** 20));
      flush();
    },
  };
}
