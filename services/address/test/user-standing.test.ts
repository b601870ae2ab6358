/**
 * UserDataService/SetUserStanding over the real stack (identity, cart and address in one process, over gRPC): a
 * SERVICE token reports an owner's standing, and FindNearbyShops lists that owner's shops only while the latest
 * standing (highest sequence) is enabled and shop owner; an older report never overrides a newer one, however
 * they arrive; no other role may call it; a purged owner's shops never come back; owner ids are never public.
 */
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, type Client } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { UserDataService } from "@local-e-grocery/gen/grocery/userdata/v1/userdata_service_pb.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { bearer, clientFor, codeOf } from "../../../test/clients.js";
import {
  backends,
  concurrencySkip,
  createTestClock,
  openTestDatabase,
  registerAndLogin,
  servicesNamed,
  startTestPlatform,
  type TestClock,
  type TestPlatform,
  type TestUser,
} from "../../../test/harness.js";
import { addressClient, destination, home, shop, type AddressClient } from "./support.js";

const admin = { username: "standing_admin", email: "standing-admin@grocery.example", password: "parsnips on the porch" };
const tombstoneTtlMs = 60_000;

interface Owner {
  user: TestUser;
  client: AddressClient;
  /** Ids of the owner's SHOP addresses. */
  shops: string[];
}

for (const backend of backends) {
  describe(`UserDataService/SetUserStanding on ${backend}`, () => {
    let tp: TestPlatform;
    let clock: TestClock;
    let serviceToken: string;
    let adminToken: string;
    let userData: Client<typeof UserDataService>;
    let customer: AddressClient;
    let spot = 0;

    /** A shop owner with two shops and a home, around a point of its own so tests do not see each other's shops. */
    const newOwner = async (): Promise<Owner & { centre: { latitude: number; longitude: number } }> => {
      const centre = { latitude: -40 + spot * 3, longitude: 20 + spot * 3 };
      spot++;
      const user = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
      const client = addressClient(tp.url, user.accessToken);
      await client.createAddress({ address: home({ location: centre }) });
      const shops: string[] = [];
      for (const km of [1, 2]) shops.push((await client.createAddress({ address: shop(`Shop ${km}`, destination(centre, km, 90)) })).address!.id);
      return { user, client, shops, centre };
    };

    /** The ids FindNearbyShops lists around `centre`; every shop's owner_id must be empty. */
    const listed = async (centre: { latitude: number; longitude: number }) => {
      const res = await customer.findNearbyShops({ location: centre, radiusKm: 10 });
      assert.deepEqual(
        res.shops.map((s) => s.ownerId),
        res.shops.map(() => ""),
        "owner ids are not public",
      );
      return res.shops.map((s) => s.addressId).sort();
    };

    const report = async (userId: string, standing: { enabled: boolean; shopOwner: boolean; sequence: bigint }, token = serviceToken) =>
      (await userData.setUserStanding({ userId, ...standing }, bearer(token))).applied;

    before(async () => {
      clock = createTestClock();
      tp = await startTestPlatform({
        backend,
        clock,
        env: { ADMIN_USERNAME: admin.username, ADMIN_EMAIL: admin.email, ADMIN_PASSWORD: admin.password, PURGE_TOMBSTONE_TTL: `${tombstoneTtlMs}ms` },
      });
      const auth = clientFor(AuthService, tp.url);
      adminToken = (await auth.login({ login: admin.username, password: admin.password })).accessToken;
      const created = await clientFor(UserService, tp.url).createServiceAccount({ name: "standing-test-service" }, bearer(adminToken));
      serviceToken = (await auth.issueServiceToken({ clientId: created.serviceAccount?.clientId ?? "", clientSecret: created.clientSecret })).accessToken;
      userData = clientFor(UserDataService, tp.url);
      customer = addressClient(tp.url, (await registerAndLogin(tp.url)).accessToken);
    });
    after(() => tp?.close());

    it("answers UNAUTHENTICATED without a token and PERMISSION_DENIED to customers, shop owners and admins, recording nothing", async () => {
      const owner = await newOwner();
      const customerUser = await registerAndLogin(tp.url);
      const hide = { userId: owner.user.userId, enabled: false, shopOwner: false, sequence: 1000n };
      assert.equal(await codeOf(userData.setUserStanding(hide)), Code.Unauthenticated);
      for (const token of [customerUser.accessToken, owner.user.accessToken, adminToken]) {
        assert.equal(await codeOf(userData.setUserStanding(hide, bearer(token))), Code.PermissionDenied);
      }
      assert.deepEqual(await listed(owner.centre), [...owner.shops].sort());
      // Had a refused call recorded sequence 1000, this first real report would be stale.
      assert.equal(await report(owner.user.userId, { enabled: true, shopOwner: true, sequence: 1n }), true);
    });

    it("hides a disabled or demoted owner's shops and lists them again when both are back; other owners stay listed", async () => {
      const [owner, other] = [await newOwner(), await newOwner()];
      const id = owner.user.userId;
      const mine = [...owner.shops].sort();
      // No standing recorded: listed as registered.
      assert.deepEqual(await listed(owner.centre), mine);

      assert.equal(await report(id, { enabled: false, shopOwner: true, sequence: 1n }), true);
      assert.deepEqual(await listed(owner.centre), []);
      assert.deepEqual(await listed(other.centre), [...other.shops].sort());
      // The owner still has the addresses; only the public listing follows the standing.
      assert.equal((await owner.client.listAddresses({})).totalSize, 3);

      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 2n }), true);
      assert.deepEqual(await listed(owner.centre), mine);

      // The user id is a UUID in any case.
      assert.equal(await report(id.toUpperCase(), { enabled: true, shopOwner: false, sequence: 3n }), true);
      assert.deepEqual(await listed(owner.centre), []);

      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 4n }), true);
      assert.deepEqual(await listed(owner.centre), mine);
    });

    it("ignores a standing whose sequence is not greater than the recorded one (applied=false)", async () => {
      const owner = await newOwner();
      const id = owner.user.userId;
      assert.equal(await report(id, { enabled: false, shopOwner: true, sequence: 10n }), true);
      // An older report arriving late, and a redelivery of the same sequence, change nothing.
      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 9n }), false);
      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 10n }), false);
      assert.deepEqual(await listed(owner.centre), []);
      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 11n }), true);
      assert.deepEqual(await listed(owner.centre), [...owner.shops].sort());
      // Schema rule: the sequence is positive.
      assert.equal(await codeOf(userData.setUserStanding({ userId: id, enabled: true, shopOwner: true, sequence: 0n }, bearer(serviceToken))), Code.InvalidArgument);
    });

    it("keeps a purged owner's shops unlisted for good, even after the tombstone expires", async () => {
      const owner = await newOwner();
      const id = owner.user.userId;
      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 5n }), true);
      assert.equal(Number((await userData.purgeUser({ userId: id }, bearer(serviceToken))).rowsDeleted), 3);
      // A report delivered after the purge records nothing for the deleted user.
      assert.equal(await report(id, { enabled: true, shopOwner: true, sequence: 6n }), false);
      // Past the tombstone, the deleted owner's still-valid token (15 minutes) creates a shop: it is not listed.
      clock.advance(tombstoneTtlMs + 5_000);
      const again = (await owner.client.createAddress({ address: shop("Back again", destination(owner.centre, 1, 0)) })).address!;
      assert.equal((await owner.client.getAddress({ addressId: again.id })).address?.shopName, "Back again");
      assert.deepEqual(await listed(owner.centre), []);
    });

    it("settles on the highest sequence when reports arrive concurrently in reverse order", { skip: concurrencySkip(backend) }, async () => {
      const owner = await newOwner();
      const id = owner.user.userId;
      const stored = async () => {
        const db = await openTestDatabase(tp);
        try {
          const rows = rowsOf<{ sequence: string; enabled: boolean; shop_owner: boolean }>(
            await db.db.execute(sql`select sequence::text as sequence, enabled, shop_owner from address.user_standings where user_id = ${id}`),
          );
          return rows.map((r) => ({ sequence: BigInt(r.sequence), enabled: r.enabled, shopOwner: r.shop_owner }));
        } finally {
          await db.close();
        }
      };
      const burst = 30;
      for (let round = 0; round < 4; round++) {
        // Sequences round*burst+1 … (round+1)*burst, all sent at once, newest first. Each alternates the
        // standing, and the newest of a round hides the shops on even rounds and lists them on odd ones, so
        // any older report that won would show.
        const top = BigInt((round + 1) * burst);
        const sequences = Array.from({ length: burst }, (_, i) => top - BigInt(i));
        const standingOf = (s: bigint) => ({ enabled: ((top - s) % 2n === 0n) === (round % 2 === 1), shopOwner: true, sequence: s });
        const applied = await Promise.all(sequences.map((s) => report(id, standingOf(s))));
        assert.equal(applied[0], true, "the newest report of the round applies");
        assert.deepEqual(await stored(), [standingOf(top)]);
        assert.deepEqual(await listed(owner.centre), round % 2 === 0 ? [] : [...owner.shops].sort());
      }
    });

    it("is answered applied=false by a cart-only process, which keeps nothing public", async () => {
      const cartOnly = await startTestPlatform({ backend, services: servicesNamed("cart"), env: { IDENTITY_JWKS_URL: `${tp.url}/.well-known/jwks.json` } });
      try {
        const user = await registerAndLogin(tp.url, { role: Role.SHOP_OWNER });
        const res = await clientFor(UserDataService, cartOnly.url).setUserStanding(
          { userId: user.userId, enabled: false, shopOwner: false, sequence: 1n },
          bearer(serviceToken),
        );
        assert.equal(res.applied, false);
      } finally {
        await cartOnly.close();
      }
    });
  });
}
