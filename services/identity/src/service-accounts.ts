import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import type { Principal } from "@local-e-grocery/platform/context.js";
import { notFound, unauthenticated } from "@local-e-grocery/platform/errors.js";
import { isUuid } from "@local-e-grocery/platform/ids.js";
import { pageOf, resolvePageSize, type Page } from "@local-e-grocery/platform/pagination.js";
import type { IdentityDeps } from "./identity-deps.js";
import { decodeNameCursor, encodeNameCursor, identityPageSizes } from "./page-cursors.js";
import type { ServiceAccountRecord } from "./model.js";

/** How fresh an account's last-used time is kept. */
const lastUsedResolutionMs = 60_000;

const clientIdPattern = /^svc_[0-9a-f]{24}$/;

/**
 * A fast hash is right for client secrets: they are 256 random bits, so there is nothing to slow a guesser
 * down for (argon2 is for human passwords).
 */
const hashSecret = (secret: string) => createHash("sha256").update(secret).digest();
const invalidClient = () => unauthenticated("invalid client credentials");

/** Service accounts and the client-credentials grant (RFC 6749 §4.4, tokens shaped per RFC 9068). */
export function createServiceAccounts(deps: Pick<IdentityDeps, "store" | "clock" | "signAccessToken" | "hooks">) {
  const { clock } = deps;
  const direct = deps.store.direct;
  // Compared against when the client id is unknown, so unknown and known ids cost the same.
  const dummyHash = hashSecret(randomBytes(32).toString("base64url"));

  return {
    /**
     * Creates an account and returns its secret, which is stored only as a hash. The name keeps
     * CreateServiceAccountRequest.name's field rule and is stored trimmed, in lower case; ALREADY_EXISTS when taken.
     */
    async create(actor: Principal, rawName: string): Promise<{ account: ServiceAccountRecord; clientSecret: string }> {
      const name = rawName.trim().toLowerCase();
      const clientSecret = `gsk_${randomBytes(32).toString("base64url")}`;
      // A taken name is ALREADY_EXISTS from the store.
      const account = await direct.insertServiceAccount({
        clientId: `svc_${randomBytes(12).toString("hex")}`,
        name,
        secretHash: hashSecret(clientSecret).toString("base64url"),
        createTime: new Date(clock()),
        createdBy: isUuid(actor.subject) ? actor.subject : null,
      });
      return { account, clientSecret };
    },

    /** Accounts ordered by name. INVALID_ARGUMENT on a page token not issued for this query. */
    async list(request: { pageSize: number; pageToken: string }): Promise<Page<ServiceAccountRecord>> {
      const size = resolvePageSize(request.pageSize, identityPageSizes);
      const after = decodeNameCursor(request.pageToken, "service-accounts");
      const rows = await direct.listServiceAccounts(after, size + 1);
      return pageOf(rows, size, (last) => encodeNameCursor("service-accounts", last.name));
    },

    /** Deletes an account: no new tokens, and identity refuses the ones it holds. NOT_FOUND when absent. */
    async delete(clientId: string): Promise<void> {
      // Nothing but an issued client id can name an account; anything else (a NUL, say) never reaches SQL.
      if (!clientIdPattern.test(clientId)) throw notFound("service account");
      if (!(await direct.deleteServiceAccount(clientId))) throw notFound("service account");
      deps.hooks.principalChanged(clientId);
    },

    /** True while the account exists. */
    async exists(clientId: string): Promise<boolean> {
      if (!clientIdPattern.test(clientId)) return false;
      return direct.serviceAccountExists(clientId);
    },

    /**
     * The client-credentials grant: an access token with role SERVICE, `sub` and `client_id` = the client id,
     * and no session. Any failure is the same UNAUTHENTICATED.
     */
    async issueToken(clientId: string, clientSecret: string): Promise<{ accessToken: string; expiresIn: number }> {
      const account = clientIdPattern.test(clientId) ? await direct.findServiceAccount(clientId) : undefined;
      const presented = hashSecret(clientSecret);
      const stored = account ? Buffer.from(account.secretHash, "base64url") : dummyHash;
      const match = stored.length === presented.length && timingSafeEqual(stored, presented);
      if (!account || !match || clientSecret === "") throw invalidClient();
      const now = clock();
      // Written at most once a minute per account: a client asking for tokens in a burst would otherwise make a
      // write of every read, for a time the admin reads to the minute.
      if (account.lastUsedTime === null || now - account.lastUsedTime.getTime() >= lastUsedResolutionMs) {
        await direct.touchServiceAccount(account.clientId, new Date(now));
      }
      const { token, expiresIn } = await deps.signAccessToken({ subject: account.clientId, roles: [Role.SERVICE], sessionId: "", clientId: account.clientId });
      return { accessToken: token, expiresIn };
    },
  };
}

export type ServiceAccounts = ReturnType<typeof createServiceAccounts>;
