import { runMain } from "./platform/src/platform.js";
import { identityService } from "./identity/src/service.js";

// All services in one process on one port, on the embedded database unless DATABASE_URL is set.
await runMain([identityService], (p) =>
  [
    `Local E-Grocery is up on ${p.url} (gRPC, gRPC-web and Connect on one port).`,
    `Try: npx buf curl --http2-prior-knowledge --protocol grpc --reflect --list-methods ${p.url}`,
  ].join("\n"),
);
