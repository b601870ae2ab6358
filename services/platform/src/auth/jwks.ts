import { createPublicKey, type JsonWebKey, type KeyObject } from "node:crypto";

/** A public key as published in a JWKS (RFC 7517); only EC P-256 keys for ES256 are used here. */
export interface PublicJwk {
  kty: string;
  crv?: string;
  x?: string;
  y?: string;
  kid?: string;
  use?: string;
  alg?: string;
}

export type JwksSource = (signal?: AbortSignal) => Promise<readonly PublicJwk[]>;

export interface JwksCacheOptions {
  source: JwksSource;
  /** Minimum time between two refetches triggered by unknown kids, so forged kids cannot flood identity. */
  minRefetchIntervalMs?: number;
  /** Keys are refetched after this age even when every kid is known, so retired keys eventually drop. */
  maxAgeMs?: number;
  now?: () => number;
}

export interface JwksCache {
  /** The key for `kid`, refetching the set once (rate-limited) when the kid is unknown; undefined if still unknown. */
  get(kid: string): Promise<KeyObject | undefined>;
}

/** Caches a JWKS by kid; concurrent misses share one fetch. */
export function createJwksCache(options: JwksCacheOptions): JwksCache {
  const minInterval = options.minRefetchIntervalMs ?? 10_000;
  const maxAge = options.maxAgeMs ?? 5 * 60_000;
  const now = options.now ?? Date.now;
  let keys = new Map<string, KeyObject>();
  let fetchedAt = -Infinity;
  let inflight: Promise<void> | undefined;

  const refresh = (): Promise<void> => {
    inflight ??= (async () => {
      try {
        const jwks = await options.source();
        const next = new Map<string, KeyObject>();
        for (const jwk of jwks) {
          if (jwk.kty !== "EC" || jwk.crv !== "P-256" || !jwk.kid) continue;
          if (jwk.alg !== undefined && jwk.alg !== "" && jwk.alg !== "ES256") continue;
          next.set(jwk.kid, createPublicKey({ key: jwk as JsonWebKey, format: "jwk" }));
        }
        keys = next;
      } finally {
        // A failed fetch also counts, so an unreachable identity is not hammered.
        fetchedAt = now();
        inflight = undefined;
      }
    })();
    return inflight;
  };

  return {
    async get(kid) {
      const age = now() - fetchedAt;
      if (age > maxAge || (!keys.has(kid) && age >= minInterval)) {
        try {
          await refresh();
        } catch {
          // Keep serving the keys we have; an unknown kid stays unknown.
        }
      } else if (inflight) {
        await inflight.catch(() => {});
      }
      return keys.get(kid);
    },
  };
}

/** A JWKS source that fetches identity's `/.well-known/jwks.json` over HTTP. */
export function httpJwksSource(url: string, timeoutMs = 3000): JwksSource {
  return async (signal) => {
    const res = await fetch(url, { signal: signal ?? AbortSignal.timeout(timeoutMs) });
    if (!res.ok) throw new Error(`JWKS fetch from ${url} answered ${res.status}`);
    const body = (await res.json()) as { keys?: PublicJwk[] };
    return body.keys ?? [];
  };
}
