import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { enqueueEvent } from "./outbox.js";
import type { UserRecord } from "./model.js";
import type { IdentityTx } from "./store.js";

/**
 * The events identity owes the services that keep user data (USER_DATA_SERVICES), written in the transaction of
 * the change. `user.deleted` becomes UserDataService/PurgeUser at each; the standing events become
 * SetUserStanding with the user's whole standing after the change, ordered by the outbox sequence. Each is
 * written after the user row was updated under its row lock, so two changes of one user get sequences in
 * commit order.
 */
export const userEventTopics = ["user.deleted", "user.disabled", "user.enabled", "user.roles_changed"] as const;
export type UserEventTopic = (typeof userEventTopics)[number];

export async function recordUserDeleted(tx: IdentityTx, clock: Clock, newId: () => string, destinations: readonly string[], userId: string, by: "self" | "admin"): Promise<void> {
  await enqueueEvent(tx, clock, newId, destinations, "user.deleted", { user_id: userId, deleted_by: by, delete_time: new Date(clock()).toISOString() });
}

/** What receivers need of a user's standing after `topic` happened to them. */
export async function recordStanding(tx: IdentityTx, clock: Clock, newId: () => string, destinations: readonly string[], topic: Exclude<UserEventTopic, "user.deleted">, user: UserRecord): Promise<void> {
  await enqueueEvent(tx, clock, newId, destinations, topic, { user_id: user.id, enabled: !user.disabled, shop_owner: user.roles.includes("shop_owner") });
}
