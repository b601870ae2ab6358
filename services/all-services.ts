import type { ServiceDefinition } from "./platform/src/service-module.js";
import { addressService } from "./address/src/service.js";
import { cartService } from "./cart/src/service.js";
import { identityService } from "./identity/src/service.js";

/** Every service of the platform, in start-up order (identity first: it owns the signing keys). */
export const allServices: readonly ServiceDefinition[] = [identityService, cartService, addressService];
