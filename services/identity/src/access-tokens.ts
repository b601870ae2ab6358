import jwt from "jsonwebtoken";
import type { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { roleToClaim } from "@local-e-grocery/platform/auth/roles.js";
import type { Clock } from "@local-e-grocery/platform/service-module.js";
import type { SigningKeyRing } from "./signing-keys.js";

export interface AccessTokenClaims {
  subject: string;
  roles: readonly Role[];
  /** Session id; empty for service tokens. */
  sessionId: string;
  /** Client id for service tokens (RFC 9068 `client_id`). */
  clientId?: string;
}

export type AccessTokenSigner = (claims: AccessTokenClaims) => Promise<{ token: string; expiresIn: number }>;

/** Signs RFC 9068-shaped access tokens: ES256, `typ: at+jwt`, iss/aud/sub/roles/sid/jti/iat/exp. */
export function createAccessTokenSigner(options: { keys: SigningKeyRing; clock: Clock; newId: () => string; issuer: string; audience: string; ttlSeconds: number }): AccessTokenSigner {
  return async (claims) => {
    const key = await options.keys.current();
    const iat = Math.floor(options.clock() / 1000);
    const payload: Record<string, unknown> = {
      iss: options.issuer,
      aud: options.audience,
      sub: claims.subject,
      roles: claims.roles.map(roleToClaim),
      jti: options.newId(),
      iat,
      exp: iat + options.ttlSeconds,
    };
    if (claims.sessionId) payload["sid"] = claims.sessionId;
    if (claims.clientId) payload["client_id"] = claims.clientId;
    const token = jwt.sign(payload, key.privateKey, { algorithm: "ES256", keyid: key.kid, header: { alg: "ES256", typ: "at+jwt", kid: key.kid } });
    return { token, expiresIn: options.ttlSeconds };
  };
}
