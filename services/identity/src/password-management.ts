import { createHash, randomBytes } from "node:crypto";
import { and, desc, eq, gt, isNull } from "drizzle-orm";
import type { Principal } from "../../platform/src/context.js";
import { invalidArgument, unauthenticated } from "../../platform/src/errors.js";
import type { Db } from "../../platform/src/db.js";
import type { Clock } from "../../platform/src/service-module.js";
import { recordActivity, type ClientInfo } from "./activity.js";
import type { IdentityDeps } from "./identity-deps.js";
import { passwordChangedMail, passwordResetMail } from "./mail-templates.js";
import { enqueueMail } from "./outbox.js";
import { hashPassword } from "./passwords.js";
import { confirmPassword } from "./reauthentication.js";
import { passwordResetTokens, users } from "./schema.js";
import { revokeAllSessions } from "./sessions.js";
import { findUserById, findUserByLogin, type UserRow } from "./users.js";
import { checkPassword, normaliseEmail } from "./validation.js";

const hashResetToken = (token: string) => createHash("sha256").update(token).digest("base64url");
const badResetToken = () => invalidArgument("reset_token", "is invalid, expired or already used");

/**
 * Marks every unspent reset token of the user spent: a password change or reset voids the ones in flight, and so
 * does an email change (those tokens went to the old address, which may be why it is being replaced).
 */
export async function spendResetTokens(tx: Db, clock: Clock, userId: string): Promise<void> {
  await tx
    .update(passwordResetTokens)
    .set({ spendTime: new Date(clock()) })
    .where(and(eq(passwordResetTokens.userId, userId), isNull(passwordResetTokens.spendTime)));
}

/** ChangePassword, RequestPasswordReset and ResetPassword. */
export function createPasswordManagement(deps: IdentityDeps) {
  const { db, clock, logger, config, hooks } = deps;
  const background = new Set<Promise<void>>();

  const setPassword = async (
    tx: Db,
    user: UserRow,
    passwordHash: string,
    how: "changed" | "reset",
    keepSessionId: string | undefined,
    client: ClientInfo,
    sessionId?: string,
  ): Promise<string[]> => {
    await tx.update(users).set({ passwordHash, updateTime: new Date(clock()) }).where(eq(users.id, user.id));
    const ended = await revokeAllSessions(tx, clock, user.id, how === "reset" ? "password_reset" : "password_changed", keepSessionId);
    await spendResetTokens(tx, clock, user.id);
    await recordActivity(tx, clock, { userId: user.id, kind: how === "reset" ? "password.reset" : "password.changed", client, sessionId });
    await enqueueMail(tx, clock, passwordChangedMail(user, how));
    return ended;
  };

  const createResetToken = async (user: UserRow, client: ClientInfo): Promise<void> => {
    const now = clock();
    const token = randomBytes(32).toString("base64url");
    const queued = await db.transaction(async (tx) => {
      // At most one mail per interval, so the form cannot be used to flood someone's mailbox.
      const [latest] = await tx
        .select({ createTime: passwordResetTokens.createTime })
        .from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.userId, user.id), gt(passwordResetTokens.createTime, new Date(now - config.passwordResetInterval * 1000))))
        .orderBy(desc(passwordResetTokens.createTime))
        .limit(1);
      if (latest) return false;
      await tx.insert(passwordResetTokens).values({
        tokenHash: hashResetToken(token),
        userId: user.id,
        createTime: new Date(now),
        expireTime: new Date(now + config.passwordResetTtl * 1000),
      });
      await enqueueMail(tx, clock, passwordResetMail(user, { token, publicUrl: config.mail.publicUrl, ttlSeconds: config.passwordResetTtl }));
      await recordActivity(tx, clock, { userId: user.id, kind: "password.reset_requested", client });
      return true;
    });
    if (queued) hooks.mailQueued();
  };

  return {
    /**
     * Sets a new password after confirming the current one and ends every other session of the user.
     * INVALID_ARGUMENT naming new_password or current_password; RESOURCE_EXHAUSTED when wrong current passwords
     * were tried too often.
     */
    async changePassword(principal: Principal, input: { currentPassword: string; newPassword: string }, client: ClientInfo): Promise<void> {
      const user = await findUserById(db, principal.subject);
      if (!user) throw unauthenticated("account no longer exists");
      checkPassword(input.newPassword, user, "new_password");
      if (input.newPassword === input.currentPassword) throw invalidArgument("new_password", "must differ from the current password");
      await confirmPassword(deps, user, input.currentPassword, client, "current_password");
      const passwordHash = await hashPassword(input.newPassword);
      const ended = await db.transaction((tx) => setPassword(tx, user, passwordHash, "changed", principal.sessionId, client, principal.sessionId));
      hooks.sessionsEnded(ended);
      hooks.mailQueued();
    },

    /**
     * Always resolves the same way for a well-formed address, known or not, and does the same reads either way;
     * for an enabled account it then creates a reset token and queues its mail, after answering, so timing says
     * nothing either. INVALID_ARGUMENT only for a malformed address.
     */
    async requestPasswordReset(email: string, client: ClientInfo): Promise<void> {
      const normalised = normaliseEmail(email);
      const user = await findUserByLogin(db, normalised);
      if (!user || user.disabled || user.email !== normalised) return;
      const work = createResetToken(user, client).catch((e: unknown) => logger.error("password reset request failed", { user_id: user.id, error: e }));
      background.add(work);
      void work.finally(() => background.delete(work));
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
      const [found] = await db
        .select({ userId: passwordResetTokens.userId })
        .from(passwordResetTokens)
        .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.spendTime), gt(passwordResetTokens.expireTime, now)));
      const user = found ? await findUserById(db, found.userId) : undefined;
      if (!user || user.disabled) throw badResetToken();
      checkPassword(input.newPassword, user, "new_password");
      const passwordHash = await hashPassword(input.newPassword);
      const ended = await db.transaction(async (tx) => {
        // Spending is the guard: of two concurrent uses of one token only one updates the row.
        const spent = await tx
          .update(passwordResetTokens)
          .set({ spendTime: new Date(clock()) })
          .where(and(eq(passwordResetTokens.tokenHash, tokenHash), isNull(passwordResetTokens.spendTime), gt(passwordResetTokens.expireTime, new Date(clock()))))
          .returning({ userId: passwordResetTokens.userId });
        if (spent.length === 0) throw badResetToken();
        return setPassword(tx, user, passwordHash, "reset", undefined, client);
      });
      hooks.sessionsEnded(ended);
      hooks.principalChanged(user.id);
      hooks.mailQueued();
    },

    /** Waits for reset requests still being processed after their answer (at shutdown). */
    async drain(): Promise<void> {
      while (background.size > 0) await Promise.allSettled([...background]);
    },
  };
}

export type PasswordManagement = ReturnType<typeof createPasswordManagement>;
