/** Structured JSON logs: one object per line on stdout (or a sink given in tests). */
export type LogLevel = "debug" | "info" | "warn" | "error" | "silent";
const order: Record<LogLevel, number> = { debug: 10, info: 20, warn: 30, error: 40, silent: 100 };

export interface Logger {
  debug(msg: string, fields?: Record<string, unknown>): void;
  info(msg: string, fields?: Record<string, unknown>): void;
  warn(msg: string, fields?: Record<string, unknown>): void;
  error(msg: string, fields?: Record<string, unknown>): void;
  child(fields: Record<string, unknown>): Logger;
}

export interface LoggerOptions {
  level?: LogLevel;
  write?: (line: string) => void;
  fields?: Record<string, unknown>;
}

export function createLogger(options: LoggerOptions = {}): Logger {
  const threshold = order[options.level ?? "info"];
  const write = options.write ?? writeStdout;
  const base = options.fields ?? {};
  const baseNeedsReplacer = needsReplacer(base);
  const log = (level: Exclude<LogLevel, "silent">) => (msg: string, fields?: Record<string, unknown>) => {
    if (order[level] < threshold) return;
    const entry = { time: isoNow(), level, msg, ...base, ...fields };
    // The replacer runs for every key; most lines (one per RPC) hold only strings and numbers and need none.
    write(baseNeedsReplacer || (fields !== undefined && needsReplacer(fields)) ? JSON.stringify(entry, errorReplacer) : JSON.stringify(entry));
  };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
    child: (fields) => createLogger({ ...options, fields: { ...base, ...fields } }),
  };
}

/**
 * The time as ISO 8601, formatted once per millisecond: a busy process writes many lines within one, and
 * formatting a Date for each was a measurable share of every call.
 */
let isoMs = -1;
let isoText = "";
function isoNow(): string {
  const ms = Date.now();
  if (ms !== isoMs) {
    isoMs = ms;
    isoText = new Date(ms).toISOString();
  }
  return isoText;
}

/** Whether a value among `fields` may hold an Error or a bigint, which plain JSON.stringify cannot write. */
function needsReplacer(fields: Record<string, unknown>): boolean {
  for (const key in fields) {
    const value = fields[key];
    if ((typeof value === "object" && value !== null) || typeof value === "bigint") return true;
  }
  return false;
}

/**
 * Lines for stdout are gathered and written once per turn of the event loop: a write to a file or pipe is
 * synchronous in node, and one per line (one per RPC) held the loop for a syscall each. Pending lines are written
 * before the process exits, and at once when they pass a size bound. One buffer for the process, as stdout is one.
 */
const pending: string[] = [];
let pendingBytes = 0;
let flushScheduled = false;
let exitHooked = false;
const maxPendingBytes = 256 * 1024;

/** Writes the log lines still pending now, so text written to stdout after them keeps its place. */
export function flushStdoutLogs(): void {
  flushStdout();
}

function flushStdout(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  const chunk = pending.join("");
  pending.length = 0;
  pendingBytes = 0;
  process.stdout.write(chunk);
}

function writeStdout(line: string): void {
  if (!exitHooked) {
    exitHooked = true;
    process.on("exit", flushStdout);
  }
  pending.push(line + "\n");
  pendingBytes += line.length + 1;
  if (pendingBytes >= maxPendingBytes) {
    flushStdout();
    return;
  }
  if (!flushScheduled) {
    flushScheduled = true;
    // Unref'd: a logged line never keeps the process alive; the exit hook writes what is left.
    setImmediate(flushStdout).unref();
  }
}

function errorReplacer(_key: string, value: unknown): unknown {
  if (value instanceof Error) {
    return { name: value.name, message: value.message, stack: value.stack, cause: value.cause };
  }
  if (typeof value === "bigint") return value.toString();
  return value;
}
