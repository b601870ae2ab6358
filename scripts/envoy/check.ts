/**
 * `npm run check:envoy [file]`: checks envoy.yaml (or the file given) against Envoy's v3 API the way the edge
 * tests do, printing each problem as `<path>: <what>`. Exits 1 when there is any.
 */
import { readFile } from "node:fs/promises";
import { resolve } from "node:path";
import { loadEnvoyApi } from "./descriptors.js";
import { outputPath } from "./generate.js";
import { checkEnvoyYaml } from "./validate.js";

const file = process.argv[2] ? resolve(process.argv[2]) : outputPath;
const started = Date.now();
const api = loadEnvoyApi();
const { errors } = checkEnvoyYaml(await readFile(file, "utf8"), api);
const took = `${Date.now() - started} ms${api.built ? ", descriptor set built" : ""}`;
if (errors.length > 0) {
  for (const e of errors) console.error(e);
  console.error(`${file}: ${errors.length} problem(s) (${took})`);
  process.exit(1);
}
console.log(`${file}: valid for Envoy's v3 API (${api.fileCount} files, ${took})`);
