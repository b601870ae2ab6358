import { setMaxListeners } from "node:events";
import { Code, ConnectError, type Interceptor } from "@connectrpc/connect";
import { raceSignal } from "./signals.js";

/**
 * Whether this process can serve calls that need its database, as the health probe last saw it. While it
 * cannot, calls answer UNAVAILABLE at once instead of queueing behind a dead connection, and the calls already
 * waiting when the outage is seen are answered UNAVAILABLE too: a client can retry on another replica.
 */
export interface Availability {
  readonly serving: boolean;
  set(serving: boolean): void;
  /** Aborted when the outage that ends the calls running now is seen. */
  readonly outage: AbortSignal;
}

export function createAvailability(): Availability {
  let serving = true;
  const fresh = () => {
    const controller = new AbortController();
    // Every running call listens for the outage; thousands at once are normal.
    setMaxListeners(0, controller.signal);
    return controller;
  };
  let outage = fresh();
  return {
    get serving() {
      return serving;
    },
    get outage() {
      return outage.signal;
    },
    set(next) {
      if (next === serving) return;
      serving = next;
      if (!next) outage.abort(new ConnectError("database unavailable, try again", Code.Unavailable));
      else outage = fresh();
    },
  };
}

/**
 * Refuses calls with UNAVAILABLE while the database is out, and answers running unary calls UNAVAILABLE when an
 * outage begins. Services in `exempt` (health, reflection) never need the database and always pass.
 */
export function createAvailabilityInterceptor(availability: Availability, exempt: readonly string[]): Interceptor {
  const pass = new Set(exempt);
  return (next) => (req) => {
    if (pass.has(req.service.typeName)) return next(req);
    if (!availability.serving) return Promise.reject(new ConnectError("database unavailable, try again", Code.Unavailable));
    return req.stream ? next(req) : raceSignal(next(req), availability.outage);
  };
}
