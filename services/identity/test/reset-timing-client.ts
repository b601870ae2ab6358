/**
 * A worker thread that calls RequestPasswordReset over gRPC and times each answer, for reset-timing.test.ts. The
 * platform under test runs on the test's main thread, so a client there could not read an answer that was already
 * on the wire while the server worked on: from its own thread the client sees what a remote caller sees.
 */
import { parentPort, workerData } from "node:worker_threads";
import { createClient } from "@connectrpc/connect";
import { createGrpcTransport } from "@connectrpc/connect-node";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";

export interface TimedResetCalls {
  url: string;
  /** Called one after the other, in this order. */
  emails: string[];
  /** Pause after each answer, ms. */
  gapMs: number;
}

const { url, emails, gapMs } = workerData as TimedResetCalls;
const auth = createClient(AuthService, createGrpcTransport({ baseUrl: url, idleConnectionTimeoutMs: 500 }));
const durations: number[] = [];
for (const email of emails) {
  const started = performance.now();
  await auth.requestPasswordReset({ email });
  durations.push(performance.now() - started);
  await new Promise((r) => setTimeout(r, gapMs));
}
parentPort?.postMessage(durations);
