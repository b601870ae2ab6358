import type { ServiceDefinition } from "@local-e-grocery/platform/service-module.js";
import { addressService } from "@local-e-grocery/address/service.js";
import { cartService } from "@local-e-grocery/cart/service.js";
import { identityService } from "@local-e-grocery/identity/service.js";

/** Every service of the platform, in start-up order (identity first: it owns the signing keys). */
export const allServices: readonly ServiceDefinition[] = [identityService, cartService, addressService];
