import { runMain } from "@local-e-grocery/platform/platform.js";
import { identityService } from "./service.js";

await runMain([identityService]);
