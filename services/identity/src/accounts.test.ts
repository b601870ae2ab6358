/** Register and Login against an in-memory store, with the clock and id generator injected. */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { createLogger } from "@local-e-grocery/platform/logger.js";
import type { AccessTokenClaims } from "./access-tokens.js";
import { createAccounts } from "./accounts.js";
import type { UserRecord } from "./model.js";
import type { IdentityStore, IdentityTx } from "./store.js";

function setup() {
  let ids = 0;
  const users = new Map<string, UserRecord>();
  const written = { mail: [] as string[], sessions: [] as string[], tokens: [] as AccessTokenClaims[] };
  const queries: Pick<IdentityTx, "findUserByLogin" | "insertUser" | "insertMail" | "insertSessionWithToken" | "insertActivity"> = {
    async findUserByLogin(login) {
      return [...users.values()].find((u) => u.username === login || u.email === login);
    },
    async insertUser(user) {
      const record: UserRecord = { ...user, disabled: false, phoneNumber: "", languageCode: "", currencyCode: "", marketingOptIn: false, notificationChannels: [] };
      users.set(record.id, record);
      return record;
    },
    async insertMail(id) {
      written.mail.push(id);
    },
    async insertSessionWithToken(session) {
      written.sessions.push(session.id);
    },
    async insertActivity() {},
  };
  // Only the queries Register and Login run: a call to any other fails the test as a missing method.
  const tx = queries as IdentityTx;
  const store: IdentityStore = { write: (fn) => fn(tx), direct: tx };
  const accounts = createAccounts({
    store,
    clock: () => 1_700_000_000_000,
    newId: () => `00000000-0000-4000-8000-${(++ids).toString().padStart(12, "0")}`,
    logger: createLogger({ level: "silent" }),
    signAccessToken: async (claims) => {
      written.tokens.push(claims);
      return { token: "access", expiresIn: 900 };
    },
    sessionPolicy: { idleTimeoutSeconds: 3600, maxLifetimeSeconds: 86_400 },
    passwords: { hash: async (password) => `hashed:${password}`, verify: async (stored, password) => stored === `hashed:${password}` },
  });
  return { accounts, written };
}

describe("createAccounts", () => {
  it("gives new users, their welcome mail and their sessions ids from the injected generator", async () => {
    const { accounts, written } = setup();
    const user = await accounts.register({ username: "pat_grows", email: "pat@example.com", password: "broad beans in spring", role: Role.CUSTOMER, displayName: "" });
    assert.equal(user.id, "00000000-0000-4000-8000-000000000001");
    assert.deepEqual(written.mail, ["00000000-0000-4000-8000-000000000002"]);

    const { user: signedIn } = await accounts.login({ login: "pat_grows", password: "broad beans in spring", userAgent: "test-agent/1", ip: "" });
    assert.equal(signedIn.id, user.id);
    assert.deepEqual(written.sessions, ["00000000-0000-4000-8000-000000000003"]);
    assert.deepEqual(
      written.tokens.map((t) => [t.subject, t.sessionId]),
      [[user.id, "00000000-0000-4000-8000-000000000003"]],
    );
  });
});
