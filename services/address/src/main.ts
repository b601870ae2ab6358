import { runMain } from "@local-e-grocery/platform/platform.js";
import { addressService } from "./service.js";

// The address service alone (npm run start:address); needs IDENTITY_JWKS_URL to verify tokens.
await runMain([addressService]);
