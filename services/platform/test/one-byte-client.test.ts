/**
 * A client that sends one byte of the HTTP/2 preface and stops used to spin the protocol sniffer at 100 % CPU:
 * every other client timed out and SIGTERM went unheard. Proven on a service process, as an operator runs it.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { clientFor } from "../../../test/clients.js";
import { emptyDatabase, type DataHandle } from "../../../test/harness.js";
import { rawPeer, type RawPeer } from "../../../test/hostile-peers.js";
import { startServiceProcess, type ServiceProcess } from "../../../test/service-process.js";

describe("a client that sends one byte", () => {
  let data: DataHandle;
  let service: ServiceProcess;
  before(async () => {
    data = await emptyDatabase("pglite");
    service = await startServiceProcess("services/identity/src/main.ts", { ...data.env, USER_DATA_SERVICES: "none" });
  });
  after(() => data.drop());

  it("does not stop the process: others are served and SIGTERM ends it", async () => {
    const peers: RawPeer[] = [];
    for (const bytes of ["P", "PR", "PRI * HTTP/2.0\r\n"]) peers.push(await rawPeer(service.port, bytes));
    const health = clientFor(Health, service.url);
    for (let i = 0; i < 3; i++) assert.equal((await health.check({}, { timeoutMs: 2000 })).status, Status.SERVING);
    const stopping = Date.now();
    assert.equal(await service.stop(), 0);
    assert.ok(Date.now() - stopping < 5000, `SIGTERM took ${Date.now() - stopping} ms`);
    for (const p of peers) p.socket.destroy();
  });
});
