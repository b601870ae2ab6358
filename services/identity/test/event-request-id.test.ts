/**
 * The request id of the call that caused a user event travels with it: DeleteMe's `x-request-id` is stored with
 * the `user.deleted` event and sent on every PurgeUser the dispatcher makes for it, retries included, so the
 * destination's log lines name the call that deleted the account. "ledger" is a UserDataService on its own
 * socket that records what it receives and refuses its first attempt.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { createRpcServer, type RpcServer } from "@local-e-grocery/platform/server.js";
import { backends } from "../../../test/harness.js";
import { newAccount, startIdentity, type IdentityTestEnv } from "./identity-helpers.js";

async function ledgerServer() {
  const received: { userId: string; requestId: string | null }[] = [];
  const server: RpcServer = createRpcServer({
    interceptors: [],
    routes: (router) =>
      router.service(UserDataService, {
        purgeUser: (req, ctx) => {
          received.push({ userId: req.userId, requestId: ctx.requestHeader.get("x-request-id") });
          if (received.length === 1) throw new ConnectError("ledger is starting", Code.Unavailable);
          return { rowsDeleted: 0n };
        },
      }),
  });
  const port = await server.listen(0, "127.0.0.1");
  return { port, received, close: () => server.close(100) };
}

for (const backend of backends) {
  describe(`request ids of user events (${backend})`, () => {
    let t: IdentityTestEnv;
    let ledger: Awaited<ReturnType<typeof ledgerServer>>;
    before(async () => {
      ledger = await ledgerServer();
      t = await startIdentity(backend, {
        USER_DATA_SERVICES: "ledger",
        LEDGER_SERVICE_ADDR: `127.0.0.1:${ledger.port}`,
        EVENT_DISPATCH_INTERVAL_MS: "50",
        EVENT_RETRY_MAX_DELAY: "200ms",
      });
    });
    after(async () => {
      await t?.close();
      await ledger?.close();
    });

    it("sends DeleteMe's request id on every PurgeUser attempt for that deletion", async () => {
      const account = await newAccount(t);
      await t.users.deleteMe({ password: account.password }, { headers: { authorization: `Bearer ${account.accessToken}`, "x-request-id": "delete-me-4711" } });
      const deadline = Date.now() + 10_000;
      while (ledger.received.filter((r) => r.userId === account.userId).length < 2) {
        if (Date.now() > deadline) assert.fail(`ledger received ${JSON.stringify(ledger.received)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
      const attempts = ledger.received.filter((r) => r.userId === account.userId);
      assert.deepEqual(
        attempts.map((a) => a.requestId),
        attempts.map(() => "delete-me-4711"),
        "the refused attempt and its retry both carry the deleting call's id",
      );
    });
  });
}
