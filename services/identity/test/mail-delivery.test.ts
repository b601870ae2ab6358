import assert from "node:assert/strict";
import net from "node:net";
import { after, before, describe, it } from "node:test";
import { sql } from "drizzle-orm";
import { backends, openTestDatabase, uniqueName } from "../../../test/harness.js";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { startIdentity, type IdentityTestEnv } from "./identity-helpers.js";

interface SmtpMessage {
  recipients: string[];
  data: string;
}

/** Just enough of an SMTP server (RFC 5321, no TLS, no auth) to receive what nodemailer sends; it can refuse the first messages with 451. */
async function fakeSmtpServer(options: { refuseFirst: number }) {
  const received: SmtpMessage[] = [];
  const refused: string[][] = [];
  let refusals = options.refuseFirst;
  const server = net.createServer((socket) => {
    socket.write("220 fake.smtp ESMTP\r\n");
    let buffer = "";
    let data: string[] | undefined;
    let recipients: string[] = [];
    socket.on("data", (chunk) => {
      buffer += chunk.toString("utf8");
      for (let end = buffer.indexOf("\r\n"); end >= 0; end = buffer.indexOf("\r\n")) {
        const line = buffer.slice(0, end);
        buffer = buffer.slice(end + 2);
        if (data) {
          if (line !== ".") {
            data.push(line.startsWith("..") ? line.slice(1) : line);
            continue;
          }
          if (refusals-- > 0) {
            refused.push(recipients);
            socket.write("451 4.3.0 try again later\r\n");
          } else {
            received.push({ recipients, data: data.join("\n") });
            socket.write("250 2.0.0 queued\r\n");
          }
          data = undefined;
          recipients = [];
          continue;
        }
        const verb = line.slice(0, 4).toUpperCase();
        if (verb === "EHLO" || verb === "HELO") socket.write("250 fake.smtp\r\n");
        else if (verb === "RCPT") {
          recipients.push(/<([^>]*)>/.exec(line)?.[1] ?? "");
          socket.write("250 2.1.5 ok\r\n");
        } else if (verb === "DATA") {
          data = [];
          socket.write("354 go ahead\r\n");
        } else if (verb === "QUIT") socket.end("221 bye\r\n");
        else socket.write("250 ok\r\n");
      }
    });
    socket.on("error", () => socket.destroy());
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    received,
    refused,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

async function until<T>(what: string, probe: () => T | undefined, timeoutMs = 5000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

for (const backend of backends) {
  describe(`mail delivery over SMTP (${backend})`, () => {
    let t: IdentityTestEnv;
    let smtp: Awaited<ReturnType<typeof fakeSmtpServer>>;
    before(async () => {
      smtp = await fakeSmtpServer({ refuseFirst: 1 });
      t = await startIdentity(backend, { MAIL_TRANSPORT: "smtp", SMTP_URL: `smtp://127.0.0.1:${smtp.port}`, MAIL_FROM: "Grocery <no-reply@grocery.test>" });
    });
    after(async () => {
      await t.close();
      await smtp.close();
    });

    it("sends outbox mail through SMTP, retrying a refused message after its back-off, and scrubs sent bodies", async () => {
      const username = uniqueName();
      const email = `${username}@example.com`;
      await t.auth.register({ username, email, password: "a fine head of lettuce" });
      // The first attempt is refused (451); the retry waits 5 s of clock time, which has not moved yet.
      await until("the refused first attempt", () => smtp.refused.find((r) => r.includes(email)));
      assert.equal(smtp.received.length, 0);
      // The clock moves on each look: the retry's due time (5 s after the failure) is written once the dispatcher has
      // handled the refusal, which may be after this test saw it at the server.
      const welcome = await until("the welcome mail", () => {
        t.clock.advance(6_000);
        return smtp.received.find((m) => m.recipients.includes(email));
      });
      assert.match(welcome.data, /Subject: Welcome to Local E-Grocery/);
      assert.match(welcome.data, /From: Grocery <no-reply@grocery\.test>/);

      await t.auth.requestPasswordReset({ email });
      const reset = await until("the reset mail", () => smtp.received.find((m) => m.recipients.includes(email) && /Subject: Reset/.test(m.data)));
      const token = /reset-token: (\S+)/.exec(reset.data)?.[1];
      assert.ok(token);
      await new Promise((r) => setTimeout(r, 200));

      // Delivered rows keep who and what, not the body with its token.
      await t.tp.stop();
      const db = await openTestDatabase(t.tp);
      try {
        const rows = rowsOf<{ status: string; payload: Record<string, unknown>; attempts: number }>(
          await db.db.execute(sql`select status, payload, attempts from identity.outbox where topic = 'mail' order by create_time`),
        );
        assert.deepEqual(
          rows.map((r) => [r.status, Object.keys(r.payload).sort().join(","), r.attempts]),
          [
            ["delivered", "subject,to", 2],
            ["delivered", "subject,to", 1],
          ],
        );
        assert.ok(!JSON.stringify(rows).includes(token));
      } finally {
        await db.close();
      }
      t.tp = await t.tp.restart();
    });
  });
}
