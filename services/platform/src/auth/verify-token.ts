import jwt from "jsonwebtoken";
import type { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { roleFromClaim } from "./roles.js";
import type { Principal } from "../context.js";
import type { JwksCache } from "./jwks.js";

export interface TokenVerifierOptions {
  jwks: JwksCache;
  issuer: string;
  audience: string;
  /** Seconds of clock skew tolerated on exp/nbf. */
  clockToleranceSeconds?: number;
  /** Seconds since the epoch; injectable for tests. */
  now?: () => number;
  /** How many verified tokens to remember until they expire. */
  cacheSize?: number;
}

export type TokenVerifier = (token: string) => Promise<Principal>;

/** How far past `exp` (and before `nbf`) a token is still accepted, for clocks that disagree a little. */
export const DEFAULT_CLOCK_TOLERANCE_SECONDS = 30;

export class InvalidTokenError extends Error {
  override readonly name = "InvalidTokenError";
}

/**
 * Verifies an access token: ES256 only, `typ` at+jwt, key by `kid` from the JWKS cache, `iss`, `aud`, `exp`,
 * `nbf` checked. Throws InvalidTokenError (with the reason, for logs only) on any failure.
 */
export function createTokenVerifier(options: TokenVerifierOptions): TokenVerifier {
  const now = options.now ?? (() => Math.floor(Date.now() / 1000));
  const tolerance = options.clockToleranceSeconds ?? DEFAULT_CLOCK_TOLERANCE_SECONDS;
  const cacheSize = options.cacheSize ?? 10_000;
  const verified = new Map<string, Principal>();

  return async (token) => {
    const cached = verified.get(token);
    if (cached && cached.expiresAt + tolerance > now()) return cached;
    if (cached) verified.delete(token);

    const decoded = jwt.decode(token, { complete: true });
    if (!decoded || typeof decoded.payload === "string") throw new InvalidTokenError("malformed token");
    const { header } = decoded;
    if (header.alg !== "ES256") throw new InvalidTokenError(`algorithm ${header.alg} not accepted`);
    if (header.typ?.toLowerCase() !== "at+jwt" && header.typ?.toLowerCase() !== "application/at+jwt") {
      throw new InvalidTokenError("not an access token (typ)");
    }
    if (!header.kid) throw new InvalidTokenError("no kid");
    const key = await options.jwks.get(header.kid);
    if (!key) throw new InvalidTokenError("unknown kid");
    let payload: jwt.JwtPayload;
    try {
      payload = jwt.verify(token, key, {
        algorithms: ["ES256"],
        issuer: options.issuer,
        audience: options.audience,
        clockTolerance: tolerance,
        clockTimestamp: now(),
      }) as jwt.JwtPayload;
    } catch (e) {
      throw new InvalidTokenError(e instanceof Error ? e.message : "invalid token");
    }
    if (typeof payload.sub !== "string" || payload.sub === "") throw new InvalidTokenError("no sub");
    if (typeof payload.exp !== "number") throw new InvalidTokenError("no exp");
    if (!Array.isArray(payload["roles"])) throw new InvalidTokenError("no roles");
    const roles: Role[] = [];
    for (const claim of payload["roles"] as unknown[]) {
      const role = typeof claim === "string" ? roleFromClaim(claim) : undefined;
      if (role !== undefined) roles.push(role);
    }
    const principal: Principal = {
      subject: payload.sub,
      roles,
      sessionId: typeof payload["sid"] === "string" ? payload["sid"] : "",
      tokenId: typeof payload.jti === "string" ? payload.jti : "",
      expiresAt: payload.exp,
    };
    if (verified.size >= cacheSize) {
      // Drop the oldest entry; Map keeps insertion order.
      const first = verified.keys().next();
      if (!first.done) verified.delete(first.value);
    }
    verified.set(token, principal);
    return principal;
  };
}
