import { runMain } from "@local-e-grocery/platform/platform.js";
import { cartService } from "./service.js";

// The cart service alone: DATABASE_URL (or embedded PGlite under DATA_DIR) and IDENTITY_JWKS_URL to verify tokens.
await runMain([cartService]);
