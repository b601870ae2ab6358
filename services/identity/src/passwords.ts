import { readFileSync } from "node:fs";
import { hash, verify, type Algorithm } from "@node-rs/argon2";

// Algorithm is an ambient const enum, which isolated modules cannot read: 2 is Argon2id.
const argon2id = 2 as Algorithm.Argon2id;

/** The argon2id cost of new hashes; existing hashes carry their own parameters and verify with them. */
export interface PasswordCost {
  /** KiB of memory per hash. */
  readonly memoryKiB: number;
  readonly iterations: number;
}

/** OWASP's argon2id baseline: 19 MiB, 2 iterations, 1 lane. */
export const owaspPasswordCost: PasswordCost = { memoryKiB: 19 * 1024, iterations: 2 };

export interface PasswordHasher {
  hash(password: string): Promise<string>;
  /**
   * Checks `password` against `stored`; with no stored hash it checks against a dummy one of the same cost, so
   * that unknown accounts cost the same time as known ones.
   */
  verify(stored: string | undefined, password: string): Promise<boolean>;
}

/** Hashing on the libuv pool, off the event loop, at `cost`. */
export function createPasswordHasher(cost: PasswordCost): PasswordHasher {
  const params = { algorithm: argon2id, memoryCost: cost.memoryKiB, timeCost: cost.iterations, parallelism: 1 } as const;
  const hashPassword = (password: string) => hash(password, params);
  let dummy: Promise<string> | undefined;
  return {
    hash: hashPassword,
    async verify(stored, password) {
      const target = stored ?? (await (dummy ??= hashPassword("dummy password that no account has " + Math.random())));
      try {
        const ok = await verify(target, password);
        return stored !== undefined && ok;
      } catch {
        return false;
      }
    },
  };
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
