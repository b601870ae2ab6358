import { randomUUID } from "node:crypto";
import { Code, ConnectError } from "@connectrpc/connect";
import { Role } from "../../../gen/grocery/auth/v1/auth_pb.js";
import type { Principal } from "../../platform/src/context.js";
import type { Db } from "../../platform/src/db.js";
import { invalidArgument, unauthenticated } from "../../platform/src/errors.js";
import type { Logger } from "../../platform/src/logger.js";
import type { Clock } from "../../platform/src/service-module.js";
import type { AccessTokenSigner } from "./access-tokens.js";
import { hashPassword, verifyPassword } from "./passwords.js";
import { findSession, isLive, openSession, refreshExpiresIn, revokeSession, rotateRefreshToken, type SessionPolicy } from "./sessions.js";
import { findUserById, findUserByLogin, insertUser, isUuid, roleClaims, rolesOf, type UserRow } from "./users.js";
import { checkPassword, normaliseDisplayName, normaliseEmail, normaliseUsername } from "./validation.js";

export interface AccountsDeps {
  db: Db;
  clock: Clock;
  logger: Logger;
  signAccessToken: AccessTokenSigner;
  sessionPolicy: SessionPolicy;
}

export interface TokenPair {
  accessToken: string;
  expiresIn: number;
  refreshToken: string;
  refreshExpiresIn: number;
}

const loginFailed = () => unauthenticated("invalid login or password");

/** Registration, login and the session/token lifecycle. */
export function createAccounts(deps: AccountsDeps) {
  const { db, clock } = deps;

  const issuePair = async (user: UserRow, session: Awaited<ReturnType<typeof openSession>>["session"], refreshToken: string): Promise<TokenPair> => {
    const access = await deps.signAccessToken({ subject: user.id, roles: rolesOf(user), sessionId: session.id });
    return {
      accessToken: access.token,
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: refreshExpiresIn(session, clock(), deps.sessionPolicy),
    };
  };

  return {
    /** Creates a CUSTOMER or SHOP_OWNER account. INVALID_ARGUMENT naming the field; ALREADY_EXISTS on duplicates. */
    async register(input: { username: string; email: string; password: string; role: Role; displayName: string }): Promise<UserRow> {
      const username = normaliseUsername(input.username);
      const email = normaliseEmail(input.email);
      const role = input.role === Role.UNSPECIFIED ? Role.CUSTOMER : input.role;
      if (role !== Role.CUSTOMER && role !== Role.SHOP_OWNER) throw invalidArgument("role", "must be ROLE_CUSTOMER or ROLE_SHOP_OWNER");
      checkPassword(input.password, { username, email });
      const displayName = normaliseDisplayName(input.displayName, username);
      // Cheap duplicate check before the costly hash; the unique indexes still decide under a race.
      const clash = (await findUserByLogin(db, username)) ?? (await findUserByLogin(db, email));
      if (clash) throw new ConnectError(`${clash.email === email ? "email" : "username"} already exists`, Code.AlreadyExists);
      const now = new Date(clock());
      return insertUser(db, {
        id: randomUUID(),
        username,
        email,
        passwordHash: await hashPassword(input.password),
        roles: roleClaims([role]),
        displayName,
        createTime: now,
        updateTime: now,
      });
    },

    /**
     * Checks the password and opens a session. Unknown login, wrong password and disabled account give the same
     * UNAUTHENTICATED after the same argon2 work.
     */
    async login(input: { login: string; password: string; userAgent: string; ip: string }): Promise<{ user: UserRow; tokens: TokenPair }> {
      const user = await findUserByLogin(db, input.login);
      const ok = await verifyPassword(user?.passwordHash, input.password);
      if (!user || !ok || user.disabled) throw loginFailed();
      const { session, refreshToken } = await openSession(db, clock, deps.sessionPolicy, { userId: user.id, userAgent: input.userAgent, ip: input.ip });
      return { user, tokens: await issuePair(user, session, refreshToken) };
    },

    /** Spends a refresh token for a new pair; a spent token revokes its session. All failures: UNAUTHENTICATED. */
    async refresh(token: string): Promise<{ user: UserRow; tokens: TokenPair; sessionId: string }> {
      if (token === "" || token.length > 128) throw unauthenticated("invalid refresh token");
      const result = await rotateRefreshToken(db, clock, deps.sessionPolicy, token);
      if (result.kind === "reused") {
        deps.logger.warn("refresh token reuse: session revoked", { session_id: result.session.id, user_id: result.session.userId });
      }
      if (result.kind !== "rotated") throw unauthenticated("invalid refresh token");
      const user = await findUserById(db, result.session.userId);
      if (!user || user.disabled) throw unauthenticated("invalid refresh token");
      return { user, tokens: await issuePair(user, result.session, result.refreshToken), sessionId: result.session.id };
    },

    /** Ends the caller's session. */
    async logout(principal: Principal): Promise<void> {
      if (principal.sessionId) await revokeSession(db, clock, principal.subject, principal.sessionId, "logout");
    },

    async getUser(id: string): Promise<UserRow> {
      const user = await findUserById(db, id);
      if (!user) throw unauthenticated("account no longer exists");
      return user;
    },

    /** True when the session exists, belongs to `userId`, and is live now. */
    async sessionIsLive(userId: string, sessionId: string): Promise<boolean> {
      if (!isUuid(sessionId)) return false;
      const session = await findSession(db, sessionId);
      return session !== undefined && session.userId === userId && isLive(session, clock(), deps.sessionPolicy);
    },
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
