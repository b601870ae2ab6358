import { invalidArgument } from "@local-e-grocery/platform/errors.js";
import type { ClientInfo } from "./activity.js";
import type { IdentityDeps } from "./identity-deps.js";
import type { UserRecord } from "./model.js";

/**
 * Checks a signed-in user's password before a sensitive change (password, email, account deletion). Wrong
 * passwords count against the user and the client IP like failed logins, so a stolen access token cannot be
 * used to guess the password; a locked counter answers RESOURCE_EXHAUSTED. A wrong password is INVALID_ARGUMENT
 * naming `field`. That a password was sent at all is the request's field rule (for UpdateMe, which needs one
 * only to change the email, its own check); an empty one here is merely wrong.
 */
export async function confirmPassword(deps: Pick<IdentityDeps, "throttle" | "passwords">, user: UserRecord, password: string, client: ClientInfo, field: string): Promise<void> {
  const keys = [deps.throttle.userKey(user.id), ...deps.throttle.ipKeys(client.ip)];
  // A slot is reserved before the check, as for logins, so concurrent guesses cannot outrun the lock.
  const attempt = await deps.throttle.admit(keys);
  let ok: boolean;
  try {
    ok = await deps.passwords.verify(user.passwordHash, password);
  } catch (e) {
    await attempt.release().catch(() => {});
    throw e;
  }
  if (!ok) {
    await attempt.fail();
    throw invalidArgument(field, "is not the current password");
  }
  await attempt.release();
}
