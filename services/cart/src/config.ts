import { CartItemSchema } from "@local-e-grocery/gen/grocery/cart/v1/cart_pb.js";
import { CreateCartRequestSchema } from "@local-e-grocery/gen/grocery/cart/v1/cart_service_pb.js";
import { envDuration, envInt, type Env } from "@local-e-grocery/platform/config.js";
import { schemaMaximum } from "@local-e-grocery/platform/field-rules.js";
import { DEFAULT_PURGE_TOMBSTONE_TTL_SECONDS, readPurgeTombstoneTtlMs } from "@local-e-grocery/platform/user-data.js";

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
  /** PURGE_TOMBSTONE_TTL: how long a purged user's cart writes stay refused, in ms (outlasting the access token lifetime). */
  readonly purgeTombstoneTtlMs: number;
}

export const defaultCartConfig: CartConfig = {
  maxCarts: 20,
  maxLines: 100,
  maxQuantity: 999,
  maxNameLength: 64,
  requestIdTtlSeconds: 24 * 3600,
  purgeTombstoneTtlMs: DEFAULT_PURGE_TOMBSTONE_TTL_SECONDS * 1000,
};

/** Reads the cart settings; throws ConfigError naming the variable at fault. */
export function readCartConfig(env: Env): CartConfig {
  return {
    maxCarts: envInt(env, "CART_MAX_CARTS", defaultCartConfig.maxCarts, { min: 1, max: 10_000 }),
    maxLines: envInt(env, "CART_MAX_LINES", defaultCartConfig.maxLines, { min: 1, max: 10_000 }),
    // The schema declares the most each may be (cart.proto: 100000 units, which keeps item_count an int32; 1024
    // characters); configuration may only tighten that, and the code checks the configured value.
    maxQuantity: envInt(env, "CART_MAX_QUANTITY", defaultCartConfig.maxQuantity, { min: 1, max: schemaMaximum(CartItemSchema.field.quantity) }),
    maxNameLength: envInt(env, "CART_MAX_NAME_LENGTH", defaultCartConfig.maxNameLength, { min: 1, max: schemaMaximum(CreateCartRequestSchema.field.name) }),
    requestIdTtlSeconds: envDuration(env, "CART_REQUEST_ID_TTL", defaultCartConfig.requestIdTtlSeconds),
    purgeTombstoneTtlMs: readPurgeTombstoneTtlMs(env),
  };
}
