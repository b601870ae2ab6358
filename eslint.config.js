import js from "@eslint/js";
import tseslint from "typescript-eslint";
import packageBoundaries from "./scripts/eslint-package-boundaries.mjs";

/**
 * Service boundaries (DESIGN.md "Layout"): the workspace packages are the boundaries, checked by
 * `grocery/package-boundaries` (scripts/eslint-package-boundaries.mjs) from each file's real location: a package
 * imports another only by name and only if its package.json declares it, and a service may depend on nothing but
 * the platform and gen. The wiring (services/all-services.ts, services/main.ts) belongs to the root package,
 * which no workspace may import.
 *
 * The store pattern (services/README.md): inside a service's src/, only its store (store.ts, store/) and its
 * schema (schema.ts) reach drizzle, the table definitions or the database handle; everything else asks the store.
 */
const storeOnly = [
  { regex: "^drizzle-orm(?:/|$)", message: "only the store (src/store.ts, src/store/) and src/schema.ts may use drizzle: ask the store" },
  { regex: "(?:^|/)schema\\.js$", message: "only the store (src/store.ts, src/store/) may use the table definitions: ask the store" },
  { regex: "^@local-e-grocery/platform/db\\.js$", message: "only the store (src/store.ts, src/store/) may hold the database handle: ask the store" },
];
// esquery reads a regex up to its first "/", so the copy used in selectors spells "/" as \x2F.
const esquery = (r) => r.replaceAll("/", "\\x2F");
const storeRules = {
  "no-restricted-imports": ["error", { patterns: storeOnly }],
  // no-restricted-imports does not look at import("…") expressions or `import("…")` types.
  "no-restricted-syntax": [
    "error",
    ...storeOnly.map(({ regex, message }) => ({ selector: `:matches(ImportExpression, TSImportType) Literal[value=/${esquery(regex)}/]`, message })),
  ],
};

export default tseslint.config(
  { ignores: ["gen/**", "node_modules/**", "data/**", ".cache/**", "**/*.js", "**/*.mjs"] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      "@typescript-eslint/consistent-type-imports": ["error", { fixStyle: "inline-type-imports" }],
      "@typescript-eslint/no-explicit-any": "error",
      "@typescript-eslint/no-unused-vars": ["error", { argsIgnorePattern: "^_", varsIgnorePattern: "^_" }],
      "no-console": ["error", { allow: ["warn", "error"] }],
    },
  },
  {
    files: ["**/*.test.ts", "test/**", "bench/**", "scripts/**"],
    rules: { "no-console": "off" },
  },
  {
    files: ["**/*.ts"],
    plugins: { grocery: packageBoundaries },
    rules: { "grocery/package-boundaries": "error" },
  },
  {
    // The platform is not a service with a store: its db.ts and tombstones.ts are what the stores build on.
    files: ["services/*/src/**/*.ts"],
    ignores: ["services/platform/**", "services/*/src/store.ts", "services/*/src/store/**", "services/*/src/schema.ts"],
    rules: storeRules,
  },
);
