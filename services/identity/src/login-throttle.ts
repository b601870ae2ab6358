import { createHash } from "node:crypto";
import { setTimeout as sleep } from "node:timers/promises";
import { Code, ConnectError } from "@connectrpc/connect";
import { detachedFromCall } from "@local-e-grocery/platform/call-scope.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { ThrottleConfig } from "./config.js";
import type { IdentityStore, IdentityTx } from "./store.js";

/** One counter: a hashed key and the failures it tolerates before locking. */
export interface ThrottleKey {
  readonly id: string;
  readonly maxFailures: number;
}

/** An admitted attempt, holding a slot on each of its keys until it is settled. Settle it exactly once. */
export interface ThrottleAttempt {
  /** The password was wrong: one failure per key (locking those that reach their threshold) replaces the slot, atomically. */
  fail(): Promise<void>;
  /** The password was right, or was never checked: frees the slots. `forget` keys also lose their failures and lock. */
  release(forget?: readonly ThrottleKey[]): Promise<void>;
  /**
   * The password was right: `release(forget)` and `work` in one transaction of the call (Login opens its session
   * there). Should that transaction fail or roll back (the call was cancelled), the slots are freed on their own,
   * outside the call, and the error is rethrown.
   */
  succeed<T>(forget: readonly ThrottleKey[], work: (tx: IdentityTx) => Promise<T>): Promise<T>;
}

/**
 * A slot older than this belongs to an attempt whose replica died between admission and settlement: it stops
 * counting, so a crash cannot leave a key short of slots for good. One check is one argon2 hash (well under a
 * second), so no live attempt comes near it.
 */
const RESERVATION_TTL_MS = 60_000;

/**
 * Brute-force defence in the manner of Keycloak's: each failure counts against the account key (the typed
 * login, so unknown accounts behave exactly like known ones) and against the client IP. Once a counter reaches
 * its threshold every further failure locks it for `waitIncrement × (failures − threshold + 1)`, capped at
 * `maxWait`; a counter with no failure for `failureReset` starts again. While any key of an attempt is locked
 * the attempt is refused before the password is looked at, with RESOURCE_EXHAUSTED and a `retry-after`
 * (seconds) in the error metadata. State is in Postgres, so replicas share it.
 *
 * Only failures count, yet concurrent guesses cannot outrun the lock. Checking the counter first and counting
 * after the slow hash would let a burst of guesses all pass the check before any of them counted; counting every
 * attempt as a failure up front (and taking it back on success) refused correct passwords whenever more of them
 * were in flight than the threshold (a shop's shared NAT, an app opened on many devices). So admission reserves
 * a slot instead: in one transaction holding the keys' rows, an attempt is admitted only when, on every key,
 * recorded failures plus slots in flight are under the threshold (past the threshold, once the lock has expired,
 * one slot at a time: a single probe per lock period). A wrong password turns its slot into a failure in one
 * transaction, so failures + slots never drops and at most `threshold` wrong guesses are ever checked before the
 * lock; a right one just frees its slot. An attempt that finds no free slot is not refused — it may be right —
 * nor let through unreserved (a thousand concurrent guesses would then all be checked): it waits for a slot, up
 * to `slotWait`, and is refused with RESOURCE_EXHAUSTED as soon as the key locks. Correct logins beyond the
 * threshold therefore succeed, queued behind at most `threshold` hashes at a time, while wrong ones cannot
 * exceed it.
 */
export function createLoginThrottle(options: { store: IdentityStore; clock: Clock; newId: () => string; config: ThrottleConfig }) {
  const { store, clock, newId, config } = options;
  const hashed = (raw: string) => createHash("sha256").update(raw).digest("base64url");
  // One order for every transaction that locks counter rows, so two attempts sharing keys cannot deadlock.
  const sortedIds = (keys: readonly ThrottleKey[]) => [...new Set(keys.map((k) => k.id))].sort();

  /** One admission try: the attempt, "full" when a key has no free slot; RESOURCE_EXHAUSTED when one is locked. */
  const tryAdmit = async (keys: readonly ThrottleKey[]): Promise<string | "full"> => {
    const now = clock();
    const resetBefore = now - config.failureReset * 1000;
    const byId = new Map(keys.map((k) => [k.id, k]));
    const ids = sortedIds(keys);
    return store.write(async (tx) => {
      let until = 0;
      let full = false;
      const rows = await tx.lockThrottleKeys(ids, new Date(now));
      // Slots are only ever added by a transaction holding the key's row, so the count cannot grow behind our back.
      const inFlight = await tx.countReservations(ids, new Date(now));
      for (const id of ids) {
        const row = rows.get(id);
        const lockedUntil = row?.lockedUntil ? row.lockedUntil.getTime() : 0;
        until = Math.max(until, lockedUntil);
        const failures = row && row.lastFailureTime.getTime() >= resetBefore ? row.failures : 0;
        const max = byId.get(id)?.maxFailures ?? 1;
        const slots = failures < max ? max - failures : 1;
        if ((inFlight.get(id) ?? 0) >= slots) full = true;
      }
      if (until > now) throw throttled(Math.ceil((until - now) / 1000));
      if (full) return "full";
      const attemptId = newId();
      const expireTime = new Date(now + RESERVATION_TTL_MS);
      await tx.insertReservations(attemptId, ids, expireTime);
      return attemptId;
    });
  };

  const attemptOf = (keys: readonly ThrottleKey[], attemptId: string): ThrottleAttempt => {
    let settled = false;
    const once = () => {
      if (settled) throw new Error("throttle attempt settled twice");
      settled = true;
    };
    // Settling runs outside the call: transactions of a cancelled call roll back, and a guess whose caller hung
    // up once the hash was done must still count (and free its slot), or cancelling would be a way around the lock.
    // Freeing slots needs no row lock: it only ever makes room.
    const release = (forget: readonly ThrottleKey[]) => detachedFromCall(() => store.direct.releaseReservations(attemptId, sortedIds(forget)));
    return {
      async fail() {
        once();
        await detachedFromCall(() =>
          store.write(async (tx) => {
            await countFailures(tx, keys);
            await tx.releaseReservations(attemptId, []);
          }),
        );
      },
      async release(forget = []) {
        once();
        await release(forget);
      },
      async succeed(forget, work) {
        once();
        try {
          return await store.write(async (tx) => {
            await tx.releaseReservations(attemptId, sortedIds(forget));
            return work(tx);
          });
        } catch (e) {
          await release(forget).catch(() => {});
          throw e;
        }
      },
    };
  };

  /** Counts one failure against each key, locking those past their threshold. */
  const countFailures = async (tx: IdentityTx, keys: readonly ThrottleKey[]): Promise<void> => {
    const now = clock();
    const resetBefore = new Date(now - config.failureReset * 1000);
    const byId = new Map(keys.map((k) => [k.id, k]));
    for (const id of sortedIds(keys)) {
      const max = byId.get(id)?.maxFailures ?? 1;
      const failures = await tx.countFailure(id, new Date(now), resetBefore);
      if (failures >= max) {
        const waitSeconds = Math.min(config.maxWait, config.waitIncrement * (failures - max + 1));
        await tx.setThrottleLock(id, new Date(now + waitSeconds * 1000));
      }
    }
  };

  return {
    /** The counter of a typed login (username or email, compared ignoring case and surrounding space). */
    accountKey(login: string): ThrottleKey {
      return { id: hashed(`login:${login.trim().toLowerCase()}`), maxFailures: config.accountMaxFailures };
    },
    /** The counter of re-authentication (current password checks) by a signed-in user. */
    userKey(userId: string): ThrottleKey {
      return { id: hashed(`user:${userId}`), maxFailures: config.accountMaxFailures };
    },
    /** The counter of a client address; none when the address is unknown. */
    ipKeys(ip: string): ThrottleKey[] {
      return ip === "" ? [] : [{ id: hashed(`ip:${ip}`), maxFailures: config.ipMaxFailures }];
    },

    /**
     * Admits one attempt on `keys` before its password is checked, holding a slot on each until the attempt is
     * settled with `fail` or `release` (see above). RESOURCE_EXHAUSTED with a retry delay when a key is locked,
     * also while waiting for a slot, and when none frees up within `slotWait`; `signal` ends the wait with its
     * reason (the call was cancelled or ran out of time).
     */
    async admit(keys: readonly ThrottleKey[], options: { signal?: AbortSignal | undefined } = {}): Promise<ThrottleAttempt> {
      if (keys.length === 0) return { fail: async () => {}, release: async () => {}, succeed: (_forget, work) => store.write(work) };
      const giveUpAt = performance.now() + config.slotWait * 1000;
      for (let round = 0; ; round++) {
        if (options.signal?.aborted) throw ConnectError.from(options.signal.reason);
        const admitted = await tryAdmit(keys);
        if (admitted !== "full") return attemptOf(keys, admitted);
        if (performance.now() >= giveUpAt) throw throttled(1, "too many login attempts in progress");
        // Slots free up at hash speed; back off from 10 ms to 200 ms, with jitter so waiters do not poll in step.
        const delay = Math.min(200, 10 * 2 ** round) * (0.5 + Math.random() / 2);
        await sleep(delay, undefined, { signal: options.signal }).catch(() => {});
      }
    },

    /** Deletes counters that have been quiet for longer than the reset time and are not locked, and expired slots. */
    async prune(): Promise<void> {
      const now = clock();
      await store.direct.deleteQuietThrottleKeys(new Date(now - config.failureReset * 1000), new Date(now));
      await store.direct.deleteReservationsExpiredBefore(new Date(now));
    },
  };
}

export type LoginThrottle = ReturnType<typeof createLoginThrottle>;

/** RESOURCE_EXHAUSTED with the delay in the message and, for clients, in `retry-after` (seconds) metadata. */
export function throttled(retryAfterSeconds: number, reason = "too many failed attempts"): ConnectError {
  const seconds = Math.max(1, retryAfterSeconds);
  return new ConnectError(`${reason}; retry in ${seconds} s`, Code.ResourceExhausted, { "retry-after": String(seconds) });
}
