import { envDuration, envInt, type Env } from "../../platform/src/config.js";

/** The cart rules' limits; each has a documented default and an environment variable. */
export interface CartConfig {
  /** CART_MAX_CARTS: carts one user may own. */
  readonly maxCarts: number;
  /** CART_MAX_LINES: distinct (product, shop) lines in one cart. */
  readonly maxLines: number;
  /** CART_MAX_QUANTITY: units on one line. */
  readonly maxQuantity: number;
  /** CART_MAX_NAME_LENGTH: characters in a cart name. */
  readonly maxNameLength: number;
  /** CART_REQUEST_ID_TTL: how long an AddItem request_id is remembered, in seconds. */
  readonly requestIdTtlSeconds: number;
}

export const defaultCartConfig: CartConfig = {
  maxCarts: 20,
  maxLines: 100,
  maxQuantity: 999,
  maxNameLength: 64,
  requestIdTtlSeconds: 24 * 3600,
};

/** Reads the cart settings; throws ConfigError naming the variable at fault. */
export function readCartConfig(env: Env): CartConfig {
  return {
    maxCarts: envInt(env, "CART_MAX_CARTS", defaultCartConfig.maxCarts, { min: 1, max: 10_000 }),
    maxLines: envInt(env, "CART_MAX_LINES", defaultCartConfig.maxLines, { min: 1, max: 10_000 }),
    // A line's quantity is an int32 on the wire, and item_count (their sum) must stay one too.
    maxQuantity: envInt(env, "CART_MAX_QUANTITY", defaultCartConfig.maxQuantity, { min: 1, max: 100_000 }),
    maxNameLength: envInt(env, "CART_MAX_NAME_LENGTH", defaultCartConfig.maxNameLength, { min: 1, max: 1024 }),
    requestIdTtlSeconds: envDuration(env, "CART_REQUEST_ID_TTL", defaultCartConfig.requestIdTtlSeconds),
  };
}
