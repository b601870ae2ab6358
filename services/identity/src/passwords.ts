import { readFileSync } from "node:fs";
import { hash, verify, type Algorithm } from "@node-rs/argon2";

// Algorithm is an ambient const enum, which isolated modules cannot read: 2 is Argon2id.
const argon2id = 2 as Algorithm.Argon2id;

/** OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane. Runs on the libuv pool, off the event loop. */
const params = { algorithm: argon2id, memoryCost: 19 * 1024, timeCost: 2, parallelism: 1 } as const;

export function hashPassword(password: string): Promise<string> {
  return hash(password, params);
}

/**
 * Checks `password` against `stored`; with no stored hash it checks against a dummy one so that unknown
 * accounts cost the same time as known ones.
 */
export async function verifyPassword(stored: string | undefined, password: string): Promise<boolean> {
  const target = stored ?? (await dummyHash());
  try {
    const ok = await verify(target, password);
    return stored !== undefined && ok;
  } catch {
    return false;
  }
}

let dummy: Promise<string> | undefined;
function dummyHash(): Promise<string> {
  dummy ??= hashPassword("dummy password that no account has " + Math.random());
  return dummy;
}

let common: Set<string> | undefined;
/** True when the password is in the shipped list of commonly used passwords (compared case-insensitively). */
export function isCommonPassword(password: string): boolean {
  common ??= new Set(
    readFileSync(new URL("../data/common-passwords.txt", import.meta.url), "utf8")
      .split("\n")
      .map((l) => l.trim().toLowerCase())
      .filter((l) => l !== "" && !l.startsWith("#")),
  );
  return common.has(password.toLowerCase());
}
