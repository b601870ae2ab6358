// Empties gen/ before `buf generate` writes it again, so code for a deleted or renamed proto does not linger.
// buf's own `clean: true` would delete gen/ whole, package.json included: gen/ is the @local-e-grocery/gen
// workspace package, and its package.json is written by hand.
import { readdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const gen = fileURLToPath(new URL("../gen", import.meta.url));
for (const name of readdirSync(gen)) {
  if (name !== "package.json") rmSync(join(gen, name), { recursive: true, force: true });
}
