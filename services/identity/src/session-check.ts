import type { DescMethod } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import type { Principal } from "../../platform/src/context.js";
import type { Clock } from "../../platform/src/service-module.js";

/**
 * Identity's own RPCs refuse tokens whose session has ended, so logout and revocation bite at once here. Answers
 * are cached for `ttlMs` per session; sessions ended in this process are forgotten immediately.
 */
export function createSessionCheck(options: { isLive: (userId: string, sessionId: string) => Promise<boolean>; clock: Clock; ttlMs: number }) {
  const cache = new Map<string, { live: boolean; at: number }>();
  return {
    async check(principal: Principal, method: DescMethod): Promise<void> {
      if (!method.parent.typeName.startsWith("grocery.identity.") || principal.sessionId === "") return;
      const key = `${principal.subject}/${principal.sessionId}`;
      const now = options.clock();
      let entry = cache.get(key);
      if (!entry || now - entry.at >= options.ttlMs) {
        entry = { live: await options.isLive(principal.subject, principal.sessionId), at: now };
        if (cache.size > 50_000) cache.clear();
        cache.set(key, entry);
      }
      if (!entry.live) throw new ConnectError("session has ended", Code.Unauthenticated);
    },
    forget(sessionId: string): void {
      for (const key of cache.keys()) if (key.endsWith(`/${sessionId}`)) cache.delete(key);
    },
  };
}
