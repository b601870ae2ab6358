/**
 * Compiles the services for the process tests (`npm test`, `npm run test:proof`), which then start service
 * processes with plain `node` on the compiled entry points, as the production image does, instead of paying for
 * tsx's on-the-fly compilation in every spawned process. Written to `.cache/test-dist-<runner pid>` (git-ignored, inside the
 * repository so the compiled code finds node_modules), rebuilt on every run so it never lags the source.
 */
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildServices } from "./build.js";

// One folder per run (the runner's pid), so two runs in one checkout do not rebuild each other's code mid-run.
const outDir = join(fileURLToPath(new URL("..", import.meta.url)), ".cache", `test-dist-${process.argv[2] ?? process.ppid}`);
await buildServices(outDir);
process.stdout.write(outDir);
