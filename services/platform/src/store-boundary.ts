import { throwIfCallCancelled } from "./call-scope.js";
import type { Db } from "./db.js";

/** The transaction boundary every service's store offers its domain code, over the store's own query set `Tx`. */
export interface TransactionBoundary<Tx> {
  /**
   * Runs `fn` in a read-write transaction, READ COMMITTED: the services' locks (row locks, the owner lock) rely
   * on each statement seeing what the previous lock holder committed. Not left to the server's default: db.ts
   * sets `default_transaction_isolation` on every PostgreSQL connection it opens (PGlite's is READ COMMITTED
   * and nobody else configures it), which saves each write a SET TRANSACTION round trip.
   */
  write<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /** Runs `fn` in a read-only REPEATABLE READ transaction, so what it reads in several statements agrees. */
  read<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
  /**
   * Runs `fn`, which makes one statement, outside any transaction: a single statement reads one snapshot by
   * itself, and BEGIN, SET TRANSACTION and COMMIT around it would add three round trips. As with a transaction, a
   * call already cancelled never starts it.
   */
  readOne<T>(fn: (tx: Tx) => Promise<T>): Promise<T>;
}

/** The boundary over `db`, with `queries` building the store's query set over a transaction or over `db` itself. */
export function transactionBoundary<Tx>(db: Db, queries: (handle: Db) => Tx): TransactionBoundary<Tx> {
  const single = queries(db);
  return {
    write: (fn) => db.transaction((tx) => fn(queries(tx))),
    read: (fn) => db.transaction((tx) => fn(queries(tx)), { isolationLevel: "repeatable read", accessMode: "read only" }),
    readOne: async (fn) => {
      throwIfCallCancelled();
      return fn(single);
    },
  };
}
