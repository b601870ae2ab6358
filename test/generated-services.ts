/** The services generated from proto/, for tests that check every RPC against its declared contract. */
import { readdir } from "node:fs/promises";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import type { DescService } from "@bufbuild/protobuf";

const genRoot = fileURLToPath(new URL("../gen", import.meta.url));

export interface GeneratedServicesOptions {
  /**
   * The folder under gen/ to walk: "grocery" (the default) holds this platform's own services; "" walks all of
   * gen/, the standard health and reflection services too.
   */
  under?: string;
}

/**
 * Every service in every generated file under gen/<under>, found by walking the folder, so a new proto is covered
 * without being listed anywhere. Files are read in path order, services in the order their file exports them.
 */
export async function generatedServices(options: GeneratedServicesOptions = {}): Promise<DescService[]> {
  const files: string[] = [];
  const walk = async (dir: string) => {
    for (const entry of await readdir(dir, { withFileTypes: true })) {
      const path = join(dir, entry.name);
      if (entry.isDirectory()) await walk(path);
      else if (entry.name.endsWith("_pb.ts")) files.push(path);
    }
  };
  await walk(join(genRoot, options.under ?? "grocery"));
  const services: DescService[] = [];
  for (const file of files.sort()) {
    const mod = (await import(`@local-e-grocery/gen/${relative(genRoot, file).split("\\").join("/").replace(/\.ts$/, ".js")}`)) as Record<string, unknown>;
    for (const value of Object.values(mod)) {
      if (typeof value === "object" && value !== null && (value as { kind?: unknown }).kind === "service") services.push(value as DescService);
    }
  }
  return services;
}
