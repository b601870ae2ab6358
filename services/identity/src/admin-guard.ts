import { and, arrayContains, eq, ne, sql } from "drizzle-orm";
import type { Db } from "../../platform/src/db.js";
import { failedPrecondition } from "../../platform/src/errors.js";
import { users } from "./schema.js";
import type { UserRow } from "./users.js";

/**
 * The platform always keeps at least one enabled administrator: a change that would take away the last one
 * (removing the role, disabling, deleting — the admin itself included) answers FAILED_PRECONDITION. Call inside
 * the transaction making the change; the advisory lock serialises such changes, so two administrators demoting
 * each other at once cannot both succeed.
 */
export async function keepAnAdmin(tx: Db, user: UserRow, action: string): Promise<void> {
  if (!user.roles.includes("admin") || user.disabled) return;
  await tx.execute(sql`select pg_advisory_xact_lock(hashtext('grocery.identity.admins'))`);
  const [other] = await tx
    .select({ id: users.id })
    .from(users)
    .where(and(arrayContains(users.roles, ["admin"]), eq(users.disabled, false), ne(users.id, user.id)))
    .limit(1);
  if (!other) throw failedPrecondition(`cannot ${action} the last enabled administrator`);
}
