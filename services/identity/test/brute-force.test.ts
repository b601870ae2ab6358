import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { Code, ConnectError } from "@connectrpc/connect";
import { sql } from "drizzle-orm";
import { backends, concurrencySkip, openTestDatabase, uniqueName } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { newAccount, restartIdentity, startIdentity, type IdentityTestEnv } from "./identity-helpers.js";

const SECOND = 1000;

for (const backend of backends) {
  describe(`brute-force defence (${backend})`, () => {
    let t: IdentityTestEnv;
    let ipCounter = 0;
    // Behind the edge the client address comes from X-Forwarded-For: each test gets addresses of its own.
    const newIp = () => `203.0.113.${++ipCounter}`;
    const from = (ip: string) => ({ headers: { "x-forwarded-for": ip } });

    before(async () => {
      t = await startIdentity(backend, {
        TRUST_FORWARDED_FOR: "true",
        LOGIN_MAX_FAILURES: "3",
        LOGIN_IP_MAX_FAILURES: "8",
        LOGIN_WAIT_INCREMENT: "60s",
        LOGIN_MAX_WAIT: "150s",
        // Production's hashing cost: these tests race calls against the password check, which must take time.
        PASSWORD_HASH_MEMORY_KIB: "19456",
        PASSWORD_HASH_ITERATIONS: "2",
      });
    });
    after(() => t.close());

    /** The outcome of a login as "ok", "<code>" or "<code> retry <seconds>". */
    const attempt = async (login: string, password: string, ip: string): Promise<string> => {
      try {
        await t.auth.login({ login, password }, from(ip));
        return "ok";
      } catch (e) {
        const err = ConnectError.from(e);
        const retry = err.metadata.get("retry-after");
        if (err.code === Code.ResourceExhausted) assert.match(err.rawMessage, new RegExp(`retry in ${retry} s`));
        return retry === null ? Code[err.code] : `${Code[err.code]} retry ${retry}`;
      }
    };

    it("locks an account after repeated failures, the same way whether or not it exists, and lifts the lock", async () => {
      const a = await newAccount(t);
      const ip = newIp();
      const known: string[] = [];
      const unknown: string[] = [];
      const ghost = uniqueName();
      for (let i = 0; i < 3; i++) {
        known.push(await attempt(a.username, "wrong password", ip));
        unknown.push(await attempt(ghost, "wrong password", ip));
      }
      // Locked now: even the right password is refused, before it is looked at.
      known.push(await attempt(a.username, a.password, ip));
      unknown.push(await attempt(ghost, "any password", ip));
      assert.deepEqual(known, ["Unauthenticated", "Unauthenticated", "Unauthenticated", "ResourceExhausted retry 60"]);
      assert.deepEqual(unknown, known);
      // Another address does not help: the lock is on the account.
      assert.equal(await attempt(a.username, a.password, newIp()), "ResourceExhausted retry 60");

      t.clock.advance(61 * SECOND);
      assert.equal(await attempt(a.username, a.password, ip), "ok");
      // Success cleared the account's counter: three fresh failures are needed to lock it again.
      assert.equal(await attempt(a.username, "wrong password", ip), "Unauthenticated");
      assert.equal(await attempt(a.username, a.password, ip), "ok");
    });

    it("lets no more guesses through than the threshold when they arrive all at once", { skip: concurrencySkip(backend) }, async () => {
      const a = await newAccount(t);
      // Twelve concurrent guesses from twelve addresses: they all arrive before the first hash is done.
      const outcomes = await Promise.all(Array.from({ length: 12 }, () => attempt(a.username, "wrong password", newIp())));
      assert.equal(outcomes.filter((o) => o === "Unauthenticated").length, 3, outcomes.join(", "));
      assert.ok(outcomes.every((o) => o === "Unauthenticated" || o.startsWith("ResourceExhausted")), outcomes.join(", "));
      assert.match(await attempt(a.username, a.password, newIp()), /^ResourceExhausted/);
      // The same for current-password checks made with a stolen access token.
      const b = await newAccount(t);
      const codes = await Promise.all(
        Array.from({ length: 12 }, (_, i) =>
          t.auth
            .changePassword({ currentPassword: `guess ${i}`, newPassword: "a brand new passphrase" }, { headers: { authorization: `Bearer ${b.accessToken}`, "x-forwarded-for": newIp() } })
            .then(() => Code.Unknown, (e: unknown) => ConnectError.from(e).code),
        ),
      );
      assert.equal(codes.filter((c) => c === Code.InvalidArgument).length, 3, codes.map((c) => Code[c]).join(", "));
    });

    it("admits more concurrent correct logins of one account from one address than either threshold", { skip: concurrencySkip(backend) }, async () => {
      // Twenty at once against thresholds of three (account) and eight (address): every password is right, so
      // none may be refused, however many are being checked at the same moment.
      const a = await newAccount(t);
      const ip = newIp();
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => attempt(a.username, a.password, ip)));
      assert.deepEqual(outcomes, Array.from({ length: 20 }, () => "ok"));
      // Nothing was counted: the account still tolerates two wrong passwords before a right one.
      assert.equal(await attempt(a.username, "wrong password", ip), "Unauthenticated");
      assert.equal(await attempt(a.username, "wrong password", ip), "Unauthenticated");
      assert.equal(await attempt(a.username, a.password, ip), "ok");
    });

    it("lets no more guesses from one address through than its threshold when they arrive all at once", { skip: concurrencySkip(backend) }, async () => {
      const ip = newIp();
      const outcomes = await Promise.all(Array.from({ length: 20 }, () => attempt(uniqueName(), "guess", ip)));
      assert.equal(outcomes.filter((o) => o === "Unauthenticated").length, 8, outcomes.join(", "));
      assert.ok(outcomes.every((o) => o === "Unauthenticated" || o.startsWith("ResourceExhausted")), outcomes.join(", "));
    });

    it("counts a guess whose caller gives up during the check, and frees its slot", { skip: backend === "pglite" && "PGlite cannot be read while it serves" }, async () => {
      const database = await openTestDatabase(t.tp);
      const inFlight = async () => Number(rowsOf<{ n: number }>(await database.db.execute(sql`select count(*)::int as n from identity.login_throttle_reservations`))[0]?.n);
      const waitFor = async (want: (n: number) => boolean) => {
        for (let i = 0; i < 1000 && !want(await inFlight()); i++) await new Promise((r) => setTimeout(r, 2));
        assert.ok(want(await inFlight()), `slots in flight: ${await inFlight()}`);
      };
      try {
        const ghost = uniqueName();
        const ip = newIp();
        const abort = new AbortController();
        const call = t.auth.login({ login: ghost, password: "wrong password" }, { ...from(ip), signal: abort.signal }).catch((e: unknown) => ConnectError.from(e).code);
        // Admitted, so the hash is running now: hang up before it is done.
        await waitFor((n) => n > 0);
        abort.abort();
        assert.equal(await call, Code.Canceled);
        await waitFor((n) => n === 0);
        // It counted: two more failures reach the threshold of three.
        assert.equal(await attempt(ghost, "wrong password", ip), "Unauthenticated");
        assert.equal(await attempt(ghost, "wrong password", ip), "Unauthenticated");
        assert.match(await attempt(ghost, "wrong password", ip), /^ResourceExhausted/);
      } finally {
        await database.close();
      }
    });

    it("frees the slot of a correct login whose caller gives up during the check, and opens no session for it", { skip: backend === "pglite" && "PGlite cannot be read while it serves" }, async () => {
      const database = await openTestDatabase(t.tp);
      const count = async (query: ReturnType<typeof sql>) => Number(rowsOf<{ n: number }>(await database.db.execute(query))[0]?.n);
      const inFlight = () => count(sql`select count(*)::int as n from identity.login_throttle_reservations`);
      const waitFor = async (want: (n: number) => boolean) => {
        for (let i = 0; i < 1000 && !want(await inFlight()); i++) await new Promise((r) => setTimeout(r, 2));
        assert.ok(want(await inFlight()), `slots in flight: ${await inFlight()}`);
      };
      try {
        const a = await newAccount(t);
        const ip = newIp();
        const userId = (await t.auth.login({ login: a.username, password: a.password }, from(ip))).user?.id ?? "";
        const sessions = () => count(sql`select count(*)::int as n from identity.sessions where user_id = ${userId}`);
        const before = await sessions();
        const abort = new AbortController();
        const call = t.auth.login({ login: a.username, password: a.password }, { ...from(ip), signal: abort.signal }).catch((e: unknown) => ConnectError.from(e).code);
        await waitFor((n) => n > 0);
        abort.abort();
        assert.equal(await call, Code.Canceled);
        // The session, its activity and the slot's release are one transaction of the call: the release happens
        // on its own once that transaction cannot.
        await waitFor((n) => n === 0);
        assert.equal(await sessions(), before, "no session for a login nobody received");
        assert.equal(await attempt(a.username, a.password, ip), "ok");
        assert.equal(await sessions(), before + 1);
      } finally {
        await database.close();
      }
    });

    it("does not count successful logins against the client address", async () => {
      const a = await newAccount(t);
      const ip = newIp();
      for (let i = 0; i < 10; i++) assert.equal(await attempt(a.username, a.password, ip), "ok");
      for (let i = 0; i < 7; i++) assert.equal(await attempt(uniqueName(), "guess", ip), "Unauthenticated");
      assert.equal(await attempt(a.username, a.password, ip), "ok", "seven failures and ten successes stay below the address threshold of eight");
    });

    it("grows the wait with each further failure up to the maximum", async () => {
      const ghost = uniqueName();
      const waits: string[] = [];
      for (let i = 0; i < 3; i++) await attempt(ghost, "wrong password", newIp());
      for (let i = 0; i < 3; i++) {
        waits.push(await attempt(ghost, "x", newIp()));
        t.clock.advance(151 * SECOND);
        assert.equal(await attempt(ghost, "wrong again", newIp()), "Unauthenticated");
      }
      waits.push(await attempt(ghost, "x", newIp()));
      assert.deepEqual(waits, ["ResourceExhausted retry 60", "ResourceExhausted retry 120", "ResourceExhausted retry 150", "ResourceExhausted retry 150"]);
    });

    it("locks a client address that fails against many accounts, for every account, and only that address", async () => {
      const victim = await newAccount(t);
      const ip = newIp();
      for (let i = 0; i < 8; i++) assert.equal(await attempt(uniqueName(), "guess", ip), "Unauthenticated");
      assert.equal(await attempt(victim.username, victim.password, ip), "ResourceExhausted retry 60");
      assert.equal(await attempt(victim.username, victim.password, newIp()), "ok");
      t.clock.advance(61 * SECOND);
      assert.equal(await attempt(victim.username, victim.password, ip), "ok", "the address lock lifts");
    });

    it("throttles current-password checks too, so a stolen access token cannot guess the password", async () => {
      const a = await newAccount(t);
      const codes: Code[] = [];
      for (let i = 0; i < 4; i++) {
        codes.push(
          await t.auth
            .changePassword({ currentPassword: `guess ${i}`, newPassword: "a brand new passphrase" }, { headers: { authorization: `Bearer ${a.accessToken}`, "x-forwarded-for": newIp() } })
            .then(() => Code.Unknown, (e: unknown) => ConnectError.from(e).code),
        );
      }
      assert.deepEqual(codes, [Code.InvalidArgument, Code.InvalidArgument, Code.InvalidArgument, Code.ResourceExhausted]);
    });

    it("keeps its state in the database, so a restarted replica still refuses", async () => {
      const ghost = uniqueName();
      for (let i = 0; i < 3; i++) await attempt(ghost, "wrong password", newIp());
      await restartIdentity(t);
      assert.match(await attempt(ghost, "any", newIp()), /^ResourceExhausted retry \d+$/);
    });

    it("takes about as long for an unknown login as for a wrong password", async (ctx) => {
      const a = await newAccount(t);
      const time = async (login: string) => {
        const started = performance.now();
        await attempt(login, "wrong password", newIp());
        return performance.now() - started;
      };
      const known: number[] = [];
      const unknown: number[] = [];
      for (let i = 0; i < 12; i++) {
        // Fresh unknown names and a counter reset keep both sides below the lock threshold.
        unknown.push(await time(uniqueName()));
        known.push(await time(a.username));
        if (i % 2 === 1) t.clock.advance(13 * 3600 * SECOND);
      }
      const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)] ?? 0;
      const [k, u] = [median(known), median(unknown)];
      ctx.diagnostic(`median login failure: known account ${k.toFixed(1)} ms, unknown ${u.toFixed(1)} ms`);
      // Skipping the hash for unknown logins would make them 10x faster or more; a factor of two leaves room for
      // a busy machine without letting that through.
      assert.ok(u > k / 2 && k > u / 2, `known ${k} ms vs unknown ${u} ms`);
    });
  });
}
