import { allServices } from "./all-services.js";
import { runMain } from "@local-e-grocery/platform/platform.js";

// All services in one process on one port, on the embedded database unless DATABASE_URL is set.
await runMain(allServices, (p) =>
  [
    `Local E-Grocery is up on ${p.url} (gRPC, gRPC-web and Connect on one port).`,
    `Try: npx buf curl --http2-prior-knowledge --protocol grpc --list-methods ${p.url}`,
  ].join("\n"),
);
