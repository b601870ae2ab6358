/**
 * ESLint rule `grocery/package-boundaries`: the workspaces (root package.json) are the boundaries, and every
 * import is checked against them with the file's real location, not by matching the specifier's text.
 *
 * - A relative import stays inside its own package. The one way out: a package's tests (anything outside its
 *   src/) may use the shared test helpers in the root's test/, and the root's tests a package's test helpers.
 * - Another workspace package is imported by name (`@local-e-grocery/platform/errors.js`), never by path, and
 *   only when the importing package declares it in its package.json. A package never imports itself by name.
 * - Which packages may depend on which is fixed here, not left to package.json: gen depends on no workspace,
 *   the platform on gen only, a service on the platform and gen only (services talk through generated clients),
 *   and only the root (the wiring, tests, tools) on the services.
 * - A third-party package used by a package's src/ is among that package's dependencies; its tests may also use
 *   its devDependencies and the root's.
 * - A folder under services/ that is not a workspace is reported, so a new service cannot start outside the rules.
 */
import { existsSync, readFileSync } from "node:fs";
import { builtinModules } from "node:module";
import { dirname, join, relative, resolve, sep } from "node:path";
import { fileURLToPath } from "node:url";

const root = fileURLToPath(new URL("..", import.meta.url));
const scope = "@local-e-grocery/";
const builtins = new Set(builtinModules);

function readJson(path) {
  return JSON.parse(readFileSync(path, "utf8"));
}

// Read once per ESLint process: the rule's create() runs for every linted file.
let workspaces;
function loadWorkspaces() {
  workspaces ??= readWorkspaces();
  return workspaces;
}

function readWorkspaces() {
  const rootPkg = readJson(join(root, "package.json"));
  const packages = rootPkg.workspaces.map((folder) => {
    const pkg = readJson(join(root, folder, "package.json"));
    return { folder, dir: join(root, folder), name: pkg.name, dependencies: pkg.dependencies ?? {}, devDependencies: pkg.devDependencies ?? {} };
  });
  const rootPackage = { folder: "", dir: root, name: rootPkg.name, dependencies: rootPkg.dependencies ?? {}, devDependencies: rootPkg.devDependencies ?? {} };
  return { packages, rootPackage };
}

/** The workspace names a package of that kind may depend on (the root: any). */
function allowedWorkspaceDeps(pkg) {
  if (pkg.folder === "gen") return [];
  if (pkg.folder === "services/platform") return [`${scope}gen`];
  if (pkg.folder.startsWith("services/")) return [`${scope}platform`, `${scope}gen`];
  return undefined;
}

/** Why `owner` may not depend on the workspace package `name`, or undefined when it may. */
function forbiddenDependency(owner, name) {
  const allowed = allowedWorkspaceDeps(owner);
  if (!allowed || allowed.includes(name)) return undefined;
  if (owner.folder.startsWith("services/") && owner.folder !== "services/platform") {
    return `${owner.name} may not import ${name}: a service depends only on the platform and gen, and calls another service through its generated client`;
  }
  return `${owner.name} may not import ${name}: it depends only on ${allowed.join(", ") || "no workspace package"}`;
}

const inside = (dir, path) => path === dir || path.startsWith(dir + sep);

function packageName(specifier) {
  const parts = specifier.split("/");
  return specifier.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

export const packageBoundaries = {
  meta: {
    type: "problem",
    docs: { description: "imports respect the workspace packages: by name across packages, declared in package.json" },
    schema: [],
  },
  create(context) {
    const file = context.filename;
    const { packages, rootPackage } = loadWorkspaces();
    const owner = packages.find((p) => inside(p.dir, file)) ?? rootPackage;
    const inRoot = owner === rootPackage;
    const isSource = !inRoot && inside(join(owner.dir, "src"), file);
    const servicesDir = join(root, "services");
    const strayService = inRoot && inside(servicesDir, file) && relative(servicesDir, file).includes(sep) ? relative(servicesDir, file).split(sep)[0] : undefined;

    function check(node, specifier) {
      if (typeof specifier !== "string") return;
      const report = (message) => context.report({ node, message });
      if (specifier.startsWith(".")) {
        const target = resolve(dirname(file), specifier);
        const targetOwner = packages.find((p) => inside(p.dir, target)) ?? rootPackage;
        if (targetOwner === owner) return;
        const sharedTestHelpers =
          (!inRoot && !isSource && targetOwner === rootPackage && inside(join(root, "test"), target)) ||
          (inRoot && inside(join(root, "test"), file) && targetOwner !== rootPackage && inside(join(targetOwner.dir, "test"), target));
        if (sharedTestHelpers) return;
        if (targetOwner === rootPackage) report(`"${specifier}" leaves ${owner.name} (${owner.folder}/) by path: a package imports only its own files and the packages it depends on`);
        else report(forbiddenDependency(owner, targetOwner.name) ?? `"${specifier}" reaches into ${targetOwner.name} by path: import it by name ("${targetOwner.name}/…") and declare it in package.json`);
        return;
      }
      if (specifier.startsWith("node:") || builtins.has(specifier)) return;
      const name = packageName(specifier);
      if (name.startsWith(scope) && packages.some((p) => p.name === name)) {
        if (name === owner.name) return report(`${owner.name} imports itself by name: use a relative path`);
        const forbidden = forbiddenDependency(owner, name);
        if (forbidden) return report(forbidden);
      }
      if (inRoot) return;
      const declared = isSource ? owner.dependencies : { ...rootPackage.devDependencies, ...owner.devDependencies, ...owner.dependencies };
      if (declared[name] === undefined) report(`${name} is not among ${owner.name}'s ${isSource ? "dependencies" : "dependencies or devDependencies"} (${owner.folder}/package.json)`);
    }

    const fromSource = (node) => node.source && check(node.source, node.source.value);
    return {
      Program(node) {
        if (strayService !== undefined && !existsSync(join(servicesDir, strayService, "package.json"))) {
          context.report({ node, message: `services/${strayService}/ is not a workspace package: give it a package.json and list it in the root package.json's workspaces` });
        }
      },
      ImportDeclaration: fromSource,
      ExportNamedDeclaration: fromSource,
      ExportAllDeclaration: fromSource,
      ImportExpression(node) {
        if (node.source.type === "Literal") check(node.source, node.source.value);
      },
      TSImportType(node) {
        const literal = node.argument?.literal ?? node.argument;
        if (literal?.type === "Literal") check(literal, literal.value);
      },
    };
  },
};

export default { rules: { "package-boundaries": packageBoundaries } };
