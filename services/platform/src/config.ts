/**
 * Reading configuration from the environment. Each process calls these once at start-up; a bad value throws a
 * ConfigError naming the variable, and the entry point prints it and exits.
 */
export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

export type Env = Readonly<Record<string, string | undefined>>;

export function envString(env: Env, name: string, fallback?: string): string {
  const value = env[name];
  if (value === undefined || value === "") {
    if (fallback === undefined) throw new ConfigError(`${name} is required`);
    return fallback;
  }
  return value;
}

export function envOptional(env: Env, name: string): string | undefined {
  const value = env[name];
  return value === undefined || value === "" ? undefined : value;
}

export function envInt(env: Env, name: string, fallback: number, range: { min?: number; max?: number } = {}): number {
  const raw = envOptional(env, name);
  if (raw === undefined) return fallback;
  if (!/^-?\d+$/.test(raw)) throw new ConfigError(`${name} must be an integer, got ${JSON.stringify(raw)}`);
  const value = Number(raw);
  if (range.min !== undefined && value < range.min) throw new ConfigError(`${name} must be >= ${range.min}, got ${value}`);
  if (range.max !== undefined && value > range.max) throw new ConfigError(`${name} must be <= ${range.max}, got ${value}`);
  return value;
}

/** A duration such as `900`, `900s`, `250ms`, `15m`, `14d`, returned in seconds (fractional for ms). */
export function envDuration(env: Env, name: string, fallbackSeconds: number): number {
  const raw = envOptional(env, name);
  if (raw === undefined) return fallbackSeconds;
  const m = /^(\d+)(ms|s|m|h|d)?$/.exec(raw);
  if (!m) throw new ConfigError(`${name} must be a duration like 900, 90s, 500ms, 15m, 12h or 14d, got ${JSON.stringify(raw)}`);
  const unit = { ms: 0.001, s: 1, m: 60, h: 3600, d: 86400 }[(m[2] ?? "s") as "ms" | "s" | "m" | "h" | "d"];
  const value = Number(m[1]) * unit;
  if (value <= 0) throw new ConfigError(`${name} must be positive`);
  return value;
}

export function envList(env: Env, name: string, fallback: string[] = []): string[] {
  const raw = envOptional(env, name);
  if (raw === undefined) return fallback;
  return raw.split(",").map((s) => s.trim()).filter((s) => s !== "");
}

export function envEnum<T extends string>(env: Env, name: string, allowed: readonly T[], fallback: T): T {
  const raw = envOptional(env, name);
  if (raw === undefined) return fallback;
  if (!(allowed as readonly string[]).includes(raw)) throw new ConfigError(`${name} must be one of ${allowed.join(", ")}, got ${JSON.stringify(raw)}`);
  return raw as T;
}

export function envUrl(env: Env, name: string): string | undefined {
  const raw = envOptional(env, name);
  if (raw === undefined) return undefined;
  try {
    new URL(raw);
  } catch {
    throw new ConfigError(`${name} must be a URL`);
  }
  return raw;
}
