import { runMain } from "../../platform/src/platform.js";
import { identityService } from "./service.js";

await runMain([identityService]);
