import { invalidArgument } from "../../platform/src/errors.js";
import type { ClientInfo } from "./activity.js";
import type { IdentityDeps } from "./identity-deps.js";
import { verifyPassword } from "./passwords.js";
import type { UserRow } from "./users.js";

/**
 * Checks a signed-in user's password before a sensitive change (password, email, account deletion). Wrong
 * passwords count against the user and the client IP like failed logins, so a stolen access token cannot be
 * used to guess the password; a locked counter answers RESOURCE_EXHAUSTED. A wrong or missing password is
 * INVALID_ARGUMENT naming `field`.
 */
export async function confirmPassword(deps: Pick<IdentityDeps, "throttle">, user: UserRow, password: string, client: ClientInfo, field: string): Promise<void> {
  if (password === "") throw invalidArgument(field, "is required");
  const keys = [deps.throttle.userKey(user.id), ...deps.throttle.ipKeys(client.ip)];
  // Counted before the check, as logins are, so concurrent guesses cannot outrun the lock.
  await deps.throttle.admit(keys);
  if (!(await verifyPassword(user.passwordHash, password))) throw invalidArgument(field, "is not the current password");
  await deps.throttle.release(keys);
}
