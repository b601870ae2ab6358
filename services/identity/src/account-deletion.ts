import { notFound } from "@local-e-grocery/platform/errors.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { keepAnAdmin } from "./admin-guard.js";
import type { IdentityStore } from "./store.js";
import { recordUserDeleted } from "./user-events.js";

/**
 * Deletes a user with everything identity holds about them (sessions, tokens, history cascade) and records a
 * `user.deleted` event in the outbox in the same transaction, owed to each service in `destinations`.
 * NOT_FOUND when there is no such user; FAILED_PRECONDITION for the last enabled administrator.
 */
export async function deleteAccount(store: IdentityStore, clock: Clock, newId: () => string, destinations: readonly string[], userId: string, by: "self" | "admin"): Promise<void> {
  await store.write(async (tx) => {
    const user = await tx.lockUser(userId);
    if (!user) throw notFound("user");
    await keepAnAdmin(tx, user, "delete");
    await tx.deleteUser(userId);
    await recordUserDeleted(tx, clock, newId, destinations, userId, by);
  });
}
