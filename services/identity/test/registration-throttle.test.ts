import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { backends, concurrencySkip, uniqueName } from "../../../test/harness.js";
import { startIdentity, type IdentityTestEnv } from "./identity-helpers.js";

const HOUR = 3_600_000;

for (const backend of backends) {
  describe(`registration throttle (${backend})`, () => {
    let t: IdentityTestEnv;
    let ipCounter = 0;
    // Behind the edge the client address comes from X-Forwarded-For: each test gets addresses of its own.
    const newIp = () => `198.51.100.${++ipCounter}`;

    before(async () => {
      t = await startIdentity(backend, { TRUST_FORWARDED_FOR: "true", REGISTER_IP_MAX_ATTEMPTS: "3", REGISTER_IP_WINDOW: "1h" });
    });
    after(() => t.close());

    /** The outcome of a registration as "ok", "<code>" or "<code> retry <seconds>". */
    const register = async (ip: string, username = uniqueName(), email = `${username}@example.com`): Promise<string> => {
      try {
        await t.auth.register({ username, email, password: `cabbage patch ${username}` }, { headers: { "x-forwarded-for": ip } });
        return "ok";
      } catch (e) {
        const err = ConnectError.from(e);
        const retry = err.metadata.get("retry-after");
        return retry === null ? Code[err.code] : `${Code[err.code]} retry ${retry}`;
      }
    };

    it("limits registrations per client address, counting taken names too, until the window is over", async () => {
      const ip = newIp();
      const taken = uniqueName();
      assert.equal(await register(ip, taken), "ok");
      // Probing whether an address has an account costs an attempt, like creating one.
      assert.equal(await register(ip, uniqueName(), `${taken}@example.com`), "AlreadyExists");
      assert.equal(await register(ip), "ok");
      // Refused until the window that began with the first attempt is over (an hour, less the time taken here).
      const refused = /^ResourceExhausted retry 3(600|5\d\d)$/;
      assert.match(await register(ip), refused);
      // Refused before the lookup: a taken email gets the same answer as a free one.
      assert.match(await register(ip, uniqueName(), `${taken}@example.com`), refused);
      // Only that address is limited.
      assert.equal(await register(newIp()), "ok");
      t.clock.advance(HOUR + 1000);
      assert.equal(await register(ip), "ok", "a new window");
    });

    it("does not count malformed requests", async () => {
      const ip = newIp();
      for (let i = 0; i < 5; i++) assert.equal(await register(ip, "x"), "InvalidArgument");
      for (let i = 0; i < 3; i++) assert.equal(await register(ip), "ok");
      assert.match(await register(ip), /^ResourceExhausted retry \d+$/);
    });

    it("lets no more registrations through than the limit when they arrive all at once", { skip: concurrencySkip(backend) }, async () => {
      const ip = newIp();
      const outcomes = await Promise.all(Array.from({ length: 10 }, () => register(ip)));
      assert.equal(outcomes.filter((o) => o === "ok").length, 3, outcomes.join(", "));
      assert.ok(outcomes.every((o) => o === "ok" || o.startsWith("ResourceExhausted")), outcomes.join(", "));
    });
  });
}
