import { defineConfig } from "drizzle-kit";

export default defineConfig({
  dialect: "postgresql",
  schema: "./services/cart/src/schema.ts",
  out: "./services/cart/migrations",
  schemaFilter: ["cart"],
});
