import { failedPrecondition } from "@local-e-grocery/platform/errors.js";
import type { UserRecord } from "./model.js";
import type { IdentityTx } from "./store.js";

/**
 * The platform always keeps at least one enabled administrator: a change that would take away the last one
 * (removing the role, disabling, deleting — the admin itself included) answers FAILED_PRECONDITION. Call inside
 * the transaction making the change; the advisory lock serialises such changes, so two administrators demoting
 * each other at once cannot both succeed.
 */
export async function keepAnAdmin(tx: IdentityTx, user: UserRecord, action: string): Promise<void> {
  if (!user.roles.includes("admin") || user.disabled) return;
  await tx.lockAdmins();
  if (!(await tx.enabledAdminExists(user.id))) throw failedPrecondition(`cannot ${action} the last enabled administrator`);
}
