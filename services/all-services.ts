import type { ServiceDefinition } from "./platform/src/service-module.js";
import { identityService } from "./identity/src/service.js";

/** Every service of the platform, in start-up order (identity first: it owns the signing keys). */
export const allServices: readonly ServiceDefinition[] = [identityService];
