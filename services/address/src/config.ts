import { FindNearbyShopsResponseSchema } from "@local-e-grocery/gen/grocery/address/v1/address_service_pb.js";
import { ConfigError, envInt, type Env } from "@local-e-grocery/platform/config.js";
import { schemaMaximum } from "@local-e-grocery/platform/field-rules.js";
import { readPurgeTombstoneTtlMs } from "@local-e-grocery/platform/user-data.js";

export interface AddressConfig {
  /** Most addresses one owner may keep (ADDRESS_MAX_PER_OWNER). */
  readonly maxPerOwner: number;
  /** FindNearbyShops radius when the request gives none (ADDRESS_DEFAULT_RADIUS_KM). */
  readonly defaultRadiusKm: number;
  /** Largest FindNearbyShops radius; larger requests are capped to it (ADDRESS_MAX_RADIUS_KM). */
  readonly maxRadiusKm: number;
  /** How long a purged user's address writes stay refused, in ms, outlasting the access token lifetime (PURGE_TOMBSTONE_TTL). */
  readonly purgeTombstoneTtlMs: number;
}

/** Reads the address service's settings; throws ConfigError naming the variable at fault. */
export function readAddressConfig(env: Env): AddressConfig {
  const maxPerOwner = envInt(env, "ADDRESS_MAX_PER_OWNER", 20, { min: 1, max: 1000 });
  // The schema declares the largest radius ever searched (address_service.proto, FindNearbyShopsResponse.radius_km:
  // 1000 km); configuration may only tighten it.
  const maxRadiusKm = envInt(env, "ADDRESS_MAX_RADIUS_KM", 50, { min: 1, max: schemaMaximum(FindNearbyShopsResponseSchema.field.radiusKm) });
  const defaultRadiusKm = envInt(env, "ADDRESS_DEFAULT_RADIUS_KM", Math.min(10, maxRadiusKm), { min: 1 });
  if (defaultRadiusKm > maxRadiusKm) {
    throw new ConfigError(`ADDRESS_DEFAULT_RADIUS_KM must be <= ADDRESS_MAX_RADIUS_KM (${maxRadiusKm}), got ${defaultRadiusKm}`);
  }
  return { maxPerOwner, defaultRadiusKm, maxRadiusKm, purgeTombstoneTtlMs: readPurgeTombstoneTtlMs(env) };
}
