import { Code, ConnectError } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import type { Principal } from "@local-e-grocery/platform/context.js";
import { unauthenticated } from "@local-e-grocery/platform/errors.js";
import { isUuid } from "@local-e-grocery/platform/ids.js";
import type { Logger } from "@local-e-grocery/platform/logger.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { AccessTokenSigner } from "./access-tokens.js";
import { recordActivity, type ClientInfo } from "./activity.js";
import { noHooks, type AccountHooks } from "./identity-deps.js";
import type { PasswordHasher } from "./passwords.js";
import type { LoginThrottle } from "./login-throttle.js";
import type { RegistrationThrottle } from "./registration-throttle.js";
import { welcomeMail } from "./mail-templates.js";
import { enqueueMail } from "./outbox.js";
import type { SessionRecord, UserRecord } from "./model.js";
import { isLive, openSessionIn, refreshExpiresIn, revokeSession, rotateRefreshToken, type SessionPolicy } from "./sessions.js";
import type { IdentityStore, IdentityTx } from "./store.js";
import { roleClaims, rolesOf } from "./users.js";
import { checkPassword, normaliseDisplayName, normaliseEmail, normaliseUsername } from "./validation.js";

export interface AccountsDeps {
  store: IdentityStore;
  clock: Clock;
  /** Ids of new users and sessions (and of the mail queued for them). */
  newId: () => string;
  logger: Logger;
  signAccessToken: AccessTokenSigner;
  sessionPolicy: SessionPolicy;
  passwords: PasswordHasher;
  /** Brute-force defence for Login; without it logins are not throttled. */
  throttle?: LoginThrottle;
  /** Register limit per client IP; without it registrations are not limited. */
  registrationThrottle?: RegistrationThrottle;
  hooks?: AccountHooks;
}

/** What the live-session check needs to know about a token's session. */
export interface SessionState {
  live: boolean;
  /** The user's roles now (not those in the token). */
  roles: readonly Role[];
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
  const { store, clock, newId } = deps;
  const direct = store.direct;
  const hooks = deps.hooks ?? noHooks;

  const issuePair = async (user: UserRecord, session: SessionRecord, refreshToken: string): Promise<TokenPair> => {
    const access = await deps.signAccessToken({ subject: user.id, roles: rolesOf(user), sessionId: session.id });
    return {
      accessToken: access.token,
      expiresIn: access.expiresIn,
      refreshToken,
      refreshExpiresIn: refreshExpiresIn(session, clock(), deps.sessionPolicy),
    };
  };

  /** Whether the session is live (and its user enabled), and the user's current roles. */
  const sessionState = async (userId: string, sessionId: string): Promise<SessionState> => {
    if (!isUuid(sessionId)) return { live: false, roles: [] };
    const session = await direct.findSession(sessionId);
    if (!session || session.userId !== userId || !isLive(session, clock(), deps.sessionPolicy)) return { live: false, roles: [] };
    const user = await direct.findUserById(userId);
    if (!user || user.disabled) return { live: false, roles: [] };
    return { live: true, roles: rolesOf(user) };
  };

  return {
    /**
     * Creates a CUSTOMER or SHOP_OWNER account from a request that keeps RegisterRequest's field rules (role
     * among them). INVALID_ARGUMENT on password for a common one or one like the username or email; ALREADY_EXISTS
     * on duplicates; RESOURCE_EXHAUSTED (with `retry-after`) when the client IP has registered too often,
     * duplicates included.
     */
    async register(input: { username: string; email: string; password: string; role: Role; displayName: string }, client?: ClientInfo): Promise<UserRecord> {
      const username = normaliseUsername(input.username);
      const email = normaliseEmail(input.email);
      const role = input.role === Role.UNSPECIFIED ? Role.CUSTOMER : input.role;
      checkPassword(input.password, { username, email });
      const displayName = normaliseDisplayName(input.displayName, username);
      // Counted once the request is well-formed and before anything is looked up, so an ALREADY_EXISTS counts
      // as much as a new account, and a refused attempt learns nothing.
      await deps.registrationThrottle?.admit(client?.ip ?? "");
      // Cheap duplicate check before the costly hash; the unique indexes still decide under a race.
      const clash = (await direct.findUserByLogin(username)) ?? (await direct.findUserByLogin(email));
      if (clash) throw new ConnectError(`${clash.email === email ? "email" : "username"} already exists`, Code.AlreadyExists);
      const now = new Date(clock());
      const passwordHash = await deps.passwords.hash(input.password);
      // The welcome mail is queued in the same transaction: no mail for an account that was never stored.
      const user = await store.write(async (tx) => {
        const created = await tx.insertUser({ id: newId(), username, email, passwordHash, roles: roleClaims([role]), displayName, createTime: now, updateTime: now });
        await enqueueMail(tx, clock, newId, welcomeMail(created));
        return created;
      });
      hooks.mailQueued();
      return user;
    },

    /**
     * Checks the password and opens a session. Unknown login, wrong password and disabled account give the same
     * UNAUTHENTICATED after the same argon2 work (a history row is appended when the account exists) and count as
     * one failure against the login and the client IP. A login or client IP locked by repeated failures answers
     * RESOURCE_EXHAUSTED with a retry delay before any password is checked, whether or not the account exists.
     * `signal` ends a wait for a throttle slot (see login-throttle.ts).
     */
    async login(input: { login: string; password: string; userAgent: string; ip: string; signal?: AbortSignal | undefined }): Promise<{ user: UserRecord; tokens: TokenPair }> {
      const client: ClientInfo = { ip: input.ip, userAgent: input.userAgent };
      const throttle = deps.throttle;
      const accountKey = throttle?.accountKey(input.login);
      const keys = throttle && accountKey ? [accountKey, ...throttle.ipKeys(input.ip)] : [];
      // A slot is reserved before the password is checked, so concurrent guesses cannot outrun the lock.
      const attempt = await throttle?.admit(keys, { signal: input.signal });
      let user: UserRecord | undefined;
      let ok: boolean;
      try {
        user = await direct.findUserByLogin(input.login);
        ok = await deps.passwords.verify(user?.passwordHash, input.password);
      } catch (e) {
        // Nothing was learnt about the password: free the slot rather than count a failure.
        await attempt?.release().catch(() => {});
        throw e;
      }
      if (!user || !ok || user.disabled) {
        await attempt?.fail();
        if (user) await recordActivity(direct, clock, { userId: user.id, kind: "login.failed", client });
        throw loginFailed();
      }
      // A success forgets the account's failures (IP counters only decay with time), opens the session and
      // records it in one transaction.
      const signedIn = user;
      const open = async (tx: IdentityTx) => {
        const opened = await openSessionIn(tx, clock, newId, deps.sessionPolicy, { userId: signedIn.id, userAgent: input.userAgent, ip: input.ip });
        await recordActivity(tx, clock, { userId: signedIn.id, kind: "login.succeeded", client, sessionId: opened.session.id });
        return opened;
      };
      const { session, refreshToken } = attempt ? await attempt.succeed(accountKey ? [accountKey] : [], open) : await store.write(open);
      return { user, tokens: await issuePair(user, session, refreshToken) };
    },

    /**
     * Spends a refresh token for a new pair; a spent token revokes its session, except within the reuse grace
     * window, where it gets the refresh token it was spent for again (with a fresh access token). All failures:
     * UNAUTHENTICATED.
     */
    async refresh(token: string, input?: { client?: ClientInfo }): Promise<{ user: UserRecord; tokens: TokenPair; sessionId: string }> {
      if (token === "" || token.length > 128) throw unauthenticated("invalid refresh token");
      const result = await rotateRefreshToken(store, clock, deps.sessionPolicy, token);
      if (result.kind === "reused") {
        deps.logger.warn("refresh token reuse: session revoked", { session_id: result.session.id, user_id: result.session.userId });
        hooks.sessionsEnded([result.session.id]);
        await recordActivity(direct, clock, { userId: result.session.userId, kind: "refresh_token.reused", sessionId: result.session.id, client: input?.client });
      }
      if (result.kind === "replayed") deps.logger.info("refresh token presented again within the grace window", { session_id: result.session.id });
      if (result.kind !== "rotated" && result.kind !== "replayed") throw unauthenticated("invalid refresh token");
      const user = await direct.findUserById(result.session.userId);
      if (!user || user.disabled) throw unauthenticated("invalid refresh token");
      return { user, tokens: await issuePair(user, result.session, result.refreshToken), sessionId: result.session.id };
    },

    /** Ends the caller's session. */
    async logout(principal: Principal, client?: ClientInfo): Promise<void> {
      if (!principal.sessionId) return;
      if (await revokeSession(direct, clock, principal.subject, principal.sessionId, "logout")) {
        await recordActivity(direct, clock, { userId: principal.subject, kind: "logout", sessionId: principal.sessionId, client });
      }
      hooks.sessionsEnded([principal.sessionId]);
    },

    async getUser(id: string): Promise<UserRecord> {
      const user = await direct.findUserById(id);
      if (!user) throw unauthenticated("account no longer exists");
      return user;
    },

    /** True when the session exists, belongs to `userId`, and is live now. */
    async sessionIsLive(userId: string, sessionId: string): Promise<boolean> {
      return (await sessionState(userId, sessionId)).live;
    },

    sessionState,
  };
}

export type Accounts = ReturnType<typeof createAccounts>;
