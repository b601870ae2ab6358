import { createHash, randomBytes } from "node:crypto";
import { create } from "@bufbuild/protobuf";
import { ChangePasswordRequestSchema } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import type { Principal } from "@local-e-grocery/platform/context.js";
import { invalidArgument, unauthenticated } from "@local-e-grocery/platform/errors.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import { createRequestCheck } from "@local-e-grocery/platform/validate-interceptor.js";
import { recordActivity, type ClientInfo } from "./activity.js";
import type { IdentityDeps } from "./identity-deps.js";
import { passwordChangedMail, passwordResetMail } from "./mail-templates.js";
import { createJobQueue } from "./job-queue.js";
import { enqueueMail } from "./outbox.js";
import { confirmPassword } from "./reauthentication.js";
import type { UserRecord } from "./model.js";
import { revokeAllSessions } from "./sessions.js";
import type { IdentityTx } from "./store.js";
import { checkPassword, normaliseEmail } from "./validation.js";

const hashResetToken = (token: string) => createHash("sha256").update(token).digest("base64url");
const badResetToken = () => invalidArgument("reset_token", "is invalid, expired or already used");

/**
 * Marks every unspent reset token of the user spent: a password change or reset voids the ones in flight, and so
 * does an email change (those tokens went to the old address, which may be why it is being replaced).
 */
export async function spendResetTokens(tx: IdentityTx, clock: Clock, userId: string): Promise<void> {
  await tx.spendUserResetTokens(userId, new Date(clock()));
}

export interface PasswordManagementOptions {
  /**
   * Reset requests accepted but not yet processed, at most; more answer RESOURCE_EXHAUSTED (whatever the address)
   * until the backlog shrinks. 1000 unless said.
   */
  maxPendingResets?: number;
}

/** ChangePassword, RequestPasswordReset and ResetPassword. */
export function createPasswordManagement(deps: IdentityDeps, options: PasswordManagementOptions = {}) {
  const { store, clock, newId, logger, config, hooks } = deps;
  const direct = store.direct;
  const checkRequest = createRequestCheck();
  /**
   * ResetPasswordRequest.new_password carries no field rule, because the interceptor would check it before the
   * token and an unusable token must get its one answer whatever the password. Its length rule is the one of
   * ChangePasswordRequest.new_password (same field name), applied here once the token is known to be good. A
   * reset has no current password: the stand-in only keeps that field's rule out of the check.
   */
  const checkNewPasswordLength = (newPassword: string) =>
    checkRequest(ChangePasswordRequestSchema, create(ChangePasswordRequestSchema, { currentPassword: "(reset)", newPassword }));

  const setPassword = async (
    tx: IdentityTx,
    user: UserRecord,
    passwordHash: string,
    how: "changed" | "reset",
    keepSessionId: string | undefined,
    client: ClientInfo,
    sessionId?: string,
  ): Promise<string[]> => {
    await tx.setPasswordHash(user.id, passwordHash, new Date(clock()));
    const ended = await revokeAllSessions(tx, clock, user.id, how === "reset" ? "password_reset" : "password_changed", keepSessionId);
    await spendResetTokens(tx, clock, user.id);
    await recordActivity(tx, clock, { userId: user.id, kind: how === "reset" ? "password.reset" : "password.changed", client, sessionId });
    await enqueueMail(tx, clock, newId, passwordChangedMail(user, how));
    return ended;
  };

  const createResetToken = async (user: UserRecord, client: ClientInfo): Promise<void> => {
    const now = clock();
    const token = randomBytes(32).toString("base64url");
    const queued = await store.write(async (tx) => {
      // At most one mail per interval, so the form cannot be used to flood someone's mailbox.
      if (await tx.resetTokenCreatedAfter(user.id, new Date(now - config.passwordResetInterval * 1000))) return false;
      await tx.insertResetToken({
        tokenHash: hashResetToken(token),
        userId: user.id,
        createTime: new Date(now),
        expireTime: new Date(now + config.passwordResetTtl * 1000),
      });
      await enqueueMail(tx, clock, newId, passwordResetMail(user, { token, publicUrl: config.mail.publicUrl, ttlSeconds: config.passwordResetTtl }));
      await recordActivity(tx, clock, { userId: user.id, kind: "password.reset_requested", client });
      return true;
    });
    if (queued) hooks.mailQueued();
  };

  // Everything that depends on whether the address is registered, the lookup included, runs here, after the
  // call has answered: the answer costs the same for every address.
  const resetRequests = createJobQueue<{ email: string; client: ClientInfo }>({
    name: "password reset request",
    logger,
    maxPending: options.maxPendingResets ?? 1000,
    concurrency: 4,
    async run({ email, client }) {
      const user = await direct.findUserByLogin(email);
      if (!user || user.disabled || user.email !== email) return;
      await createResetToken(user, client);
    },
  });

  return {
    /**
     * Sets a new password after confirming the current one and ends every other session of the user. The
     * request keeps ChangePasswordRequest's field rules (the new password's length). INVALID_ARGUMENT naming
     * new_password (common, like the username or email, or the current one) or current_password;
     * RESOURCE_EXHAUSTED when wrong current passwords were tried too often.
     */
    async changePassword(principal: Principal, input: { currentPassword: string; newPassword: string }, client: ClientInfo): Promise<void> {
      const user = await direct.findUserById(principal.subject);
      if (!user) throw unauthenticated("account no longer exists");
      checkPassword(input.newPassword, user, "new_password");
      if (input.newPassword === input.currentPassword) throw invalidArgument("new_password", "must differ from the current password");
      await confirmPassword(deps, user, input.currentPassword, client, "current_password");
      const passwordHash = await deps.passwords.hash(input.newPassword);
      const ended = await store.write((tx) => setPassword(tx, user, passwordHash, "changed", principal.sessionId, client, principal.sessionId));
      hooks.sessionsEnded(ended);
      hooks.mailQueued();
    },

    /**
     * Accepts a reset request for a well-formed address and returns before anything depends on the address: the
     * lookup, and for an enabled account the reset token and its mail, follow in the background. Answers the same
     * way, in the same time, for every address. A malformed address is INVALID_ARGUMENT by the field rule on
     * RequestPasswordResetRequest.email, before this runs; RESOURCE_EXHAUSTED while too many requests wait;
     * UNAVAILABLE once the service is closing.
     */
    async requestPasswordReset(email: string, client: ClientInfo): Promise<void> {
      resetRequests.push({ email: normaliseEmail(email), client });
    },

    /**
     * Sets a new password with a reset token: the token is spent, every reset token of the user is voided and
     * every session ends. Unknown, spent and expired tokens (and tokens of disabled accounts) are one and the
     * same INVALID_ARGUMENT on reset_token; a bad new password is INVALID_ARGUMENT on new_password and leaves the
     * token usable.
     */
    async resetPassword(input: { resetToken: string; newPassword: string }, client: ClientInfo): Promise<void> {
      if (input.resetToken === "" || input.resetToken.length > 128) throw badResetToken();
      const tokenHash = hashResetToken(input.resetToken);
      const now = new Date(clock());
      const found = await direct.findLiveResetToken(tokenHash, now);
      const user = found ? await direct.findUserById(found.userId) : undefined;
      if (!user || user.disabled) throw badResetToken();
      checkNewPasswordLength(input.newPassword);
      checkPassword(input.newPassword, user, "new_password");
      const passwordHash = await deps.passwords.hash(input.newPassword);
      const ended = await store.write(async (tx) => {
        // Spending is the guard: of two concurrent uses of one token only one updates the row.
        if (!(await tx.spendResetToken(tokenHash, new Date(clock())))) throw badResetToken();
        return setPassword(tx, user, passwordHash, "reset", undefined, client);
      });
      hooks.sessionsEnded(ended);
      hooks.principalChanged(user.id);
      hooks.mailQueued();
    },

    /** Refuses new reset requests and waits for the accepted ones to be processed (at shutdown). */
    drain(): Promise<void> {
      return resetRequests.close();
    },
  };
}

export type PasswordManagement = ReturnType<typeof createPasswordManagement>;
