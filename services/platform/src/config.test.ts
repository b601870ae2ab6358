import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { describe, it } from "node:test";
import { promisify } from "node:util";
import { ConfigError, envDuration, envEnum, envInt, envList } from "./config.js";
import { readPlatformConfig } from "./platform.js";

describe("config", () => {
  it("reads defaults", () => {
    const c = readPlatformConfig({});
    assert.equal(c.port, 8080);
    assert.equal(c.maxMessageBytes, 1024 * 1024);
    assert.equal(c.databaseUrl, undefined);
    assert.ok(c.dataDir.endsWith("/data"));
  });

  it("names the variable when a value is bad", () => {
    const bad: [Record<string, string>, RegExp][] = [
      [{ PORT: "eighty" }, /^PORT /],
      [{ PORT: "70000" }, /^PORT /],
      [{ DATABASE_URL: "not a url" }, /^DATABASE_URL /],
      [{ LOG_LEVEL: "loud" }, /^LOG_LEVEL /],
      [{ SHUTDOWN_GRACE: "soon" }, /^SHUTDOWN_GRACE /],
      [{ MAX_MESSAGE_BYTES: "12" }, /^MAX_MESSAGE_BYTES /],
    ];
    for (const [env, message] of bad) {
      assert.throws(() => readPlatformConfig(env), (e: unknown) => e instanceof ConfigError && message.test(e.message), JSON.stringify(env));
    }
  });

  it("parses durations, lists, enums and integers", () => {
    assert.equal(envDuration({ D: "15m" }, "D", 1), 900);
    assert.equal(envDuration({ D: "14d" }, "D", 1), 14 * 86400);
    assert.equal(envDuration({ D: "90" }, "D", 1), 90);
    assert.equal(envDuration({}, "D", 7), 7);
    assert.deepEqual(envList({ L: " a, b ,,c" }, "L"), ["a", "b", "c"]);
    assert.equal(envEnum({ E: "x" }, "E", ["x", "y"], "y"), "x");
    assert.equal(envInt({ I: "-3" }, "I", 0), -3);
    assert.throws(() => envInt({ I: "3" }, "I", 0, { max: 2 }), ConfigError);
  });

  it("a process with a bad setting stops at once with a message naming it", async () => {
    const run = promisify(execFile);
    const result = await run("node", ["--import", "tsx", "services/main.ts"], {
      env: { ...process.env, PORT: "not-a-port", LOG_LEVEL: "silent" },
      timeout: 60_000,
    }).then(
      () => ({ code: 0, stderr: "" }),
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal(result.code, 78);
    assert.match(result.stderr, /PORT must be an integer/);
  });
});
