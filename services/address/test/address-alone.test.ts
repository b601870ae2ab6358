/**
 * The address service alone (`npm run start:address`): its own process and database, verifying tokens through
 * identity's published keys, and keeping its data across a restart.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { codeOf } from "../../../test/clients.js";
import { backends, identityAndEmptyDatabase, registerAndLogin } from "../../../test/harness.js";
import { startServiceProcess } from "../../../test/service-process.js";
import { addressClient, home, shop } from "./support.js";

for (const backend of backends) {
  describe(`the address service alone on ${backend}`, () => {
    let alone: Awaited<ReturnType<typeof identityAndEmptyDatabase>>;
    before(async () => {
      alone = await identityAndEmptyDatabase(backend);
    });
    after(() => alone?.close());

    it("verifies identity's tokens through its JWKS and keeps addresses across a process restart", async () => {
      const { identity, env } = alone;
      const customer = await registerAndLogin(identity.url);
      const owner = await registerAndLogin(identity.url, { role: Role.SHOP_OWNER });
      const at = { latitude: 12.9784, longitude: 77.6408 };
      let proc = await startServiceProcess("services/address/src/main.ts", env);
      let mine;
      let theirs;
      try {
        mine = (await addressClient(proc.url, customer.accessToken).createAddress({ address: home() })).address!;
        theirs = (await addressClient(proc.url, owner.accessToken).createAddress({ address: shop("Ravi Fresh", at) })).address!;
        assert.equal(await codeOf(addressClient(proc.url, "forged.token.value").getAddress({ addressId: mine.id })), Code.Unauthenticated);
      } finally {
        assert.equal(await proc.stop(), 0, "graceful stop exits 0");
      }
      proc = await startServiceProcess("services/address/src/main.ts", env);
      try {
        const client = addressClient(proc.url, customer.accessToken, "connect");
        assert.deepEqual((await client.getAddress({ addressId: mine.id })).address, mine);
        const nearby = await client.findNearbyShops({ location: home().location, radiusKm: 10 });
        assert.deepEqual(nearby.shops.map((s) => s.addressId), [theirs.id]);
        assert.equal(await codeOf(client.getAddress({ addressId: theirs.id })), Code.NotFound);
      } finally {
        assert.equal(await proc.stop(), 0);
      }
    });

    it("refuses to start on a bad limit, naming the variable (exit 78)", async () => {
      const env = { ...alone.env, IDENTITY_JWKS_URL: "http://127.0.0.1:1/jwks", ADDRESS_MAX_PER_OWNER: "lots" };
      await assert.rejects(startServiceProcess("services/address/src/main.ts", env), /exited with 78.*ADDRESS_MAX_PER_OWNER/s);
    });
  });
}
