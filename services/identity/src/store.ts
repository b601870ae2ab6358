import type { Db } from "@local-e-grocery/platform/db.js";
import { activityQueries, type ActivityQueries } from "./store/activity.js";
import { credentialQueries, type CredentialQueries } from "./store/credentials.js";
import { outboxQueries, type OutboxQueries } from "./store/outbox.js";
import { sessionQueries, type SessionQueries } from "./store/sessions.js";
import { throttleQueries, type ThrottleQueries } from "./store/throttles.js";
import { userQueries, type UserQueries } from "./store/users.js";

export type { NewUser } from "./store/users.js";

/**
 * Identity's queries, each returning model types (model.ts); the files under store/ implement them with
 * drizzle, one group of tables each. Methods that lock say so; locks last until the transaction ends.
 */
export interface IdentityTx extends UserQueries, SessionQueries, CredentialQueries, OutboxQueries, ActivityQueries, ThrottleQueries {}

export interface IdentityStore {
  /** Runs `fn` in a read-write transaction at the server's default isolation (READ COMMITTED). */
  write<T>(fn: (tx: IdentityTx) => Promise<T>): Promise<T>;
  /** The same queries outside any transaction: each is a statement of its own. */
  direct: IdentityTx;
}

function createTx(db: Db): IdentityTx {
  return {
    ...userQueries(db),
    ...sessionQueries(db),
    ...credentialQueries(db),
    ...outboxQueries(db),
    ...activityQueries(db),
    ...throttleQueries(db),
  };
}

export function createIdentityStore(db: Db): IdentityStore {
  return {
    write: (fn) => db.transaction((tx) => fn(createTx(tx))),
    direct: createTx(db),
  };
}
