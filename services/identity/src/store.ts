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

const groups = [userQueries, sessionQueries, credentialQueries, outboxQueries, activityQueries, throttleQueries] as const;

interface LazyTx {
  readonly db: Db;
  /** Each group's queries over `db`, built the first time one of them is used. */
  readonly built: object[];
}

/**
 * Makes IdentityTx objects whose query groups are built on first use: a transaction (RefreshToken's, say) uses one
 * or two of the six groups, and copying every query of all six into a fresh object per transaction cost more than
 * any single statement it ran. The method names come from the groups built over `db`, once.
 */
function txFactory(db: Db): (tx: Db) => IdentityTx {
  const prototype = {};
  groups.forEach((group, i) => {
    for (const name of Object.keys(group(db))) {
      Object.defineProperty(prototype, name, {
        get(this: LazyTx) {
          const queries = (this.built[i] ??= group(this.db)) as Record<string, unknown>;
          return queries[name];
        },
      });
    }
  });
  return (tx) => Object.assign(Object.create(prototype) as LazyTx, { db: tx, built: [] }) as unknown as IdentityTx;
}

export function createIdentityStore(db: Db): IdentityStore {
  const createTx = txFactory(db);
  return {
    write: (fn) => db.transaction((tx) => fn(createTx(tx))),
    direct: createTx(db),
  };
}
