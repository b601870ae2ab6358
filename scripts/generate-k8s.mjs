#!/usr/bin/env node
// `npm run generate:k8s`: copies envoy.yaml into deploy/k8s/, where kustomization.yaml's configMapGenerator
// reads it (kustomize loads no file outside the kustomization's folder, and resolves symlinks before checking).
// The copy is byte-for-byte; test/deployment.test.ts fails when it is stale. `--check` only compares.
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const source = join(root, "envoy.yaml");
const copy = join(root, "deploy", "k8s", "envoy.yaml");
const text = readFileSync(source);
let current;
try {
  current = readFileSync(copy);
} catch {
  current = undefined;
}
if (current !== undefined && current.equals(text)) process.exit(0);
if (process.argv.includes("--check")) {
  console.error("deploy/k8s/envoy.yaml differs from envoy.yaml: run npm run generate:k8s");
  process.exit(1);
}
writeFileSync(copy, text);
console.warn("generate:k8s: wrote deploy/k8s/envoy.yaml");
