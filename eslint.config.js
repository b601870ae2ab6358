import js from "@eslint/js";
import tseslint from "typescript-eslint";

/**
 * Service boundaries (DESIGN.md "Layout"): a file under services/<a>/ may import its own folder,
 * services/platform/ and gen/ — services talk to each other only through their generated clients — and, outside
 * src/, the shared test helpers in test/. services/platform/ is itself a services/<a>/, so it can reach only
 * itself and gen/. The wiring (services/all-services.ts, services/main.ts) sits outside every service folder and
 * so is free to import each service; no service may import the wiring back, as that would reach every other
 * service through it.
 *
 * `no-restricted-imports` matches the specifier as written, without resolving it, so the rules are made per
 * directory depth: a file d folders below services/<a>/ reaches services/ with exactly d+1 "../" and the
 * repository root with d+2, and each block forbids what may not follow there. That catches
 * "../../identity/src/accounts.js" from services/cart/src/ without flagging a service's own folder that
 * happens to share a name. New services are covered without being listed.
 */
const MAX_DEPTH = 12;
const up = (n) => `^(?:\\./)*(?:\\.\\./){${n}}`;
const notUp = "\\.\\.(?:/|$)";
const boundaryMessage =
  "a service may import only its own folder, services/platform/ and gen/ (its tests also test/): " +
  "call another service through its generated client";

/** Regexes for the specifiers a file `depth` folders below services/<a>/ may not import. */
function forbiddenSpecifiers(depth, rootAllowed) {
  return [
    // In services/: anything but platform (another service, the wiring). ".." goes on to the root, checked next.
    `${up(depth + 1)}(?!platform(?:/|$)|${notUp})`,
    // At the root: only the allowed folders; services/ only as services/platform/.
    `${up(depth + 2)}(?!(?:${rootAllowed.join("|")})/|services/platform(?:/|$))`,
  ];
}

/**
 * The store pattern (services/README.md): inside a service's src/, only its store (store.ts, store/) and its
 * schema (schema.ts) reach drizzle, the table definitions or the database handle; everything else asks the store.
 * A rule's options replace those of an earlier block rather than add to them, so these patterns travel with the
 * boundary patterns of the same file.
 */
const storeOnly = [
  { regex: "^drizzle-orm(?:/|$)", message: "only the store (src/store.ts, src/store/) and src/schema.ts may use drizzle: ask the store" },
  { regex: "(?:^|/)schema\\.js$", message: "only the store (src/store.ts, src/store/) may use the table definitions: ask the store" },
  { regex: "(?:^|/)platform/src/db\\.js$", message: "only the store (src/store.ts, src/store/) may hold the database handle: ask the store" },
];
const storeFiles = ["services/*/src/store.ts", "services/*/src/store/**", "services/*/src/schema.ts"];

function boundaryRules(depth, rootAllowed, extra = []) {
  const patterns = [...forbiddenSpecifiers(depth, rootAllowed).map((regex) => ({ regex, message: boundaryMessage })), ...extra];
  // esquery reads a regex up to its first "/", so the copy used in selectors spells "/" as \x2F.
  const esquery = (r) => r.replaceAll("/", "\\x2F");
  return {
    "no-restricted-imports": ["error", { patterns }],
    // no-restricted-imports does not look at import("…") expressions or `import("…")` types.
    "no-restricted-syntax": [
      "error",
      ...patterns.map(({ regex, message }) => ({
        selector: `:matches(ImportExpression, TSImportType) Literal[value=/${esquery(regex)}/]`,
        message,
      })),
    ],
  };
}

const boundaries = [];
for (let depth = 0; depth <= MAX_DEPTH; depth++) {
  boundaries.push({ files: [`services/*/${"*/".repeat(depth)}*`], rules: boundaryRules(depth, ["gen", "test"]) });
}
// Production code: no test helpers. Listed after the blocks above, so it replaces their options for src/.
for (let depth = 1; depth <= MAX_DEPTH; depth++) {
  boundaries.push({ files: [`services/*/src/${"*/".repeat(depth - 1)}*`], rules: boundaryRules(depth, ["gen"]) });
  // The platform is not a service with a store: its db.ts and tombstones.ts are what the stores build on.
  boundaries.push({
    files: [`services/*/src/${"*/".repeat(depth - 1)}*`],
    ignores: ["services/platform/**", ...storeFiles],
    rules: boundaryRules(depth, ["gen"], storeOnly),
  });
}
// Deeper than the blocks reach: fail loudly rather than let the boundary lapse there.
boundaries.push({
  files: [`services/*/${"*/".repeat(MAX_DEPTH + 1)}**`],
  rules: { "no-restricted-syntax": ["error", { selector: "Program", message: "too deep for the import-boundary rules: raise MAX_DEPTH in eslint.config.js" }] },
});

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
  ...boundaries,
);
