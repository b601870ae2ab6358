/** Shared set-up for identity's account-management tests: a platform with a mail folder, an admin, and clients. */
import { mkdtemp, readdir, readFile, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { UserService } from "@local-e-grocery/gen/grocery/identity/v1/user_service_pb.js";
import { bearer, clientFor } from "../../../test/clients.js";
import { createTestClock, startTestPlatform, uniqueName, type Backend, type TestClock, type TestPlatform, type TestUser } from "../../../test/harness.js";

export const adminCredentials = { username: "root_admin", email: "root@grocery.example", password: "carrots in the cellar" };

export interface IdentityTestEnv {
  tp: TestPlatform;
  clock: TestClock;
  auth: ReturnType<typeof clientFor<typeof AuthService>>;
  users: ReturnType<typeof clientFor<typeof UserService>>;
  mailDir: string;
  close(): Promise<void>;
}

/** Starts the platform with ADMIN_* set, mail written to a private folder and dispatched quickly. */
export async function startIdentity(backend: Backend, env: Record<string, string> = {}): Promise<IdentityTestEnv> {
  const clock = createTestClock();
  const mailDir = await mkdtemp(join(tmpdir(), "grocery-mail-"));
  const tp = await startTestPlatform({
    backend,
    clock,
    env: {
      ADMIN_USERNAME: adminCredentials.username,
      ADMIN_EMAIL: adminCredentials.email,
      ADMIN_PASSWORD: adminCredentials.password,
      MAIL_FILE_DIR: mailDir,
      MAIL_DISPATCH_INTERVAL_MS: "100",
      PASSWORD_RESET_INTERVAL: "0",
      ...env,
    },
  });
  const t: IdentityTestEnv = {
    tp,
    clock,
    auth: clientFor(AuthService, tp.url),
    users: clientFor(UserService, tp.url),
    mailDir,
    async close() {
      // t.tp, not tp: a test may have restarted the platform.
      await t.tp.close();
      await rm(mailDir, { recursive: true, force: true });
    },
  };
  return t;
}

/** `startIdentity` with its administrator already logged in, for suites that act as the admin. */
export async function startIdentityWithAdmin(backend: Backend, env: Record<string, string> = {}): Promise<{ t: IdentityTestEnv; admin: Account }> {
  const t = await startIdentity(backend, env);
  return { t, admin: await loginAdmin(t) };
}

/** Restarts the platform on the same data (a new replica, in effect) and points the clients at it. */
export async function restartIdentity(t: IdentityTestEnv): Promise<void> {
  t.tp = await t.tp.restart();
  t.auth = clientFor(AuthService, t.tp.url);
  t.users = clientFor(UserService, t.tp.url);
}

/** A test user (see test/harness.ts) and the session its tokens belong to. */
export interface Account extends TestUser {
  sessionId: string;
}

/** Registers and logs in a fresh account through the API. */
export async function newAccount(t: IdentityTestEnv, role: Role = Role.CUSTOMER, userAgent = "test-agent/1"): Promise<Account> {
  const username = uniqueName();
  const email = `${username}@example.com`;
  const password = `tomato soup ${username}`;
  await t.auth.register({ username, email, password, role });
  return { ...(await login(t, username, password, userAgent)), email };
}

export async function login(t: IdentityTestEnv, username: string, password: string, userAgent = "test-agent/1"): Promise<Account> {
  const res = await t.auth.login({ login: username, password }, { headers: { "user-agent": userAgent } });
  return {
    userId: res.user?.id ?? "",
    username,
    email: res.user?.email ?? "",
    password,
    accessToken: res.accessToken,
    refreshToken: res.refreshToken,
    sessionId: sidOf(res.accessToken),
  };
}

export function loginAdmin(t: IdentityTestEnv): Promise<Account> {
  return login(t, adminCredentials.username, adminCredentials.password);
}

/** The claims of a JWT, unverified (tests only). */
export function claimsOf(token: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(token.split(".")[1] ?? "", "base64url").toString("utf8")) as Record<string, unknown>;
}

export function sidOf(token: string): string {
  const sid = claimsOf(token)["sid"];
  return typeof sid === "string" ? sid : "";
}

export interface ReceivedMail {
  file: string;
  to: string;
  subject: string;
  body: string;
}

export async function mailbox(dir: string): Promise<ReceivedMail[]> {
  const files = (await readdir(dir)).filter((f) => f.endsWith(".eml")).sort();
  return Promise.all(
    files.map(async (file) => {
      const raw = await readFile(join(dir, file), "utf8");
      const [head = "", ...rest] = raw.split("\r\n\r\n");
      const header = (name: string) => new RegExp(`^${name}: (.*)$`, "mi").exec(head)?.[1]?.trim() ?? "";
      return { file, to: header("To"), subject: header("Subject"), body: rest.join("\r\n\r\n").replace(/\r\n/g, "\n") };
    }),
  );
}

/** Waits until `count` messages to `to` whose subject matches have arrived; returns them, oldest first. */
export async function waitForMail(dir: string, to: string, subject: RegExp, count = 1, timeoutMs = 5000): Promise<ReceivedMail[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const found = (await mailbox(dir)).filter((m) => m.to === to && subject.test(m.subject));
    if (found.length >= count) return found;
    if (Date.now() > deadline) throw new Error(`no mail "${subject}" to ${to} after ${timeoutMs} ms (have ${found.length})`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

export function resetTokenIn(mail: ReceivedMail): string {
  const token = /reset-token: (\S+)/.exec(mail.body)?.[1];
  if (!token) throw new Error("no reset token in mail");
  return token;
}

export const bearerOf = (a: { accessToken: string }) => bearer(a.accessToken);
