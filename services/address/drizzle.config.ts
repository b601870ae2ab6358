import { defineConfig } from "drizzle-kit";

// Generates the address service's migrations: npx drizzle-kit generate --config services/address/drizzle.config.ts
export default defineConfig({
  dialect: "postgresql",
  schema: "./services/address/src/schema.ts",
  out: "./services/address/migrations",
  schemaFilter: ["address"],
});
