/**
 * Hostile transport: peers that stop half-way through the preface, a request line or a body, trickle bytes, never
 * read, reset streams as fast as they open them, or open thousands of streams. Properties, for every case: the
 * other clients keep being served within their deadline, every hostile socket is closed within the configured
 * timeouts, cancelled work is not done, and the process's memory stays bounded.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import net from "node:net";
import { after, afterEach, before, describe, it } from "node:test";
import { create, toBinary } from "@bufbuild/protobuf";
import { RegisterRequestSchema } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { Health, HealthCheckResponse_ServingStatus as Status } from "@local-e-grocery/gen/grpc/health/v1/health_pb.js";
import { ServerReflectionRequestSchema } from "@local-e-grocery/gen/grpc/reflection/v1/reflection_pb.js";
import { clientFor } from "../clients.js";
import { openTestDatabase, startTestPlatform, uniqueName, type TestPlatform } from "../harness.js";
import { grpcFrame, H2, h2Body, h2Call, h2Frame, h2Preface, h2Session, healthCheckFrame, rawPeer, sessionClosedWithin, trickle, until } from "../hostile-peers.js";
import { sql } from "drizzle-orm";
import { rowsOf } from "@local-e-grocery/platform/db.js";
import { proofReport } from "./report.js";

/** Short bounds so the suite runs in seconds; production defaults are in seconds too (see README). */
const limits = {
  CONNECTION_FIRST_BYTES_TIMEOUT: "1s",
  HTTP_HEADERS_TIMEOUT: "1s",
  REQUEST_BODY_TIMEOUT: "3s",
  REQUEST_BODY_IDLE_TIMEOUT: "1s",
  HTTP_KEEPALIVE_TIMEOUT: "1s",
  HTTP2_IDLE_TIMEOUT: "1s",
  HTTP2_PING_TIMEOUT: "1s",
  WRITE_STALL_TIMEOUT: "1s",
  HTTP2_MAX_CONCURRENT_STREAMS: "100",
};
/** Timers fire on a busy 2-core machine; node:http checks its timeouts once a second. */
const slackMs = 2500;

const report = proofReport("hostile transport");

describe("hostile transport", () => {
  let tp: TestPlatform;
  before(async () => {
    tp = await startTestPlatform({ backend: "pglite", env: { ...limits, REGISTER_IP_MAX_ATTEMPTS: "100000" } });
  });
  after(() => tp.close());
  afterEach(async () => {
    report.sampleRss();
    // Every call of a hostile peer ends with its connection: none may stay counted against MAX_CALLS_IN_FLIGHT.
    await until(() => tp.platform.inFlight === 0, 5_000 + slackMs, `calls still counted in flight (${tp.platform.inFlight})`);
  });

  /** A well-behaved client: must be answered SERVING within its deadline while the hostile peers do their worst. */
  const canary = async (protocol: "grpc" | "connect" = "grpc") => {
    const started = Date.now();
    const res = await clientFor(Health, tp.url, protocol).check({ service: "" }, { timeoutMs: 3000 });
    assert.equal(res.status, Status.SERVING);
    return Date.now() - started;
  };

  it("every prefix of the HTTP/2 preface: the server keeps serving and closes each socket after the first-bytes timeout", async () => {
    const peers = await Promise.all(Array.from({ length: h2Preface.length - 1 }, (_, i) => rawPeer(tp.port, h2Preface.subarray(0, i + 1))));
    await canary("grpc");
    await canary("connect");
    report.add({ cases: 1, faults: peers.length });
    const closed = await Promise.all(peers.map((p) => p.closedWithin(1000 + slackMs)));
    for (const ms of closed) assert.ok(ms >= 900, `closed after ${ms} ms, before the timeout`);
    await canary("grpc");
  });

  it("silent sockets are closed after the first-bytes timeout", async () => {
    const peers = await Promise.all(Array.from({ length: 50 }, () => rawPeer(tp.port)));
    report.add({ cases: 1, faults: peers.length });
    await canary();
    await Promise.all(peers.map((p) => p.closedWithin(1000 + slackMs)));
  });

  it("a preface trickled one byte at a time does not extend the first-bytes timeout", async () => {
    const peer = await rawPeer(tp.port);
    trickle(peer, h2Preface, 150);
    report.add({ cases: 1, faults: 1 });
    await canary();
    await peer.closedWithin(1000 + slackMs);
  });

  it("HTTP/1.1: a partial request line and a trickled header block are cut at the headers timeout", async () => {
    const partial = await rawPeer(tp.port, "GET /healthz HT");
    const slow = await rawPeer(tp.port);
    trickle(slow, "GET /healthz HTTP/1.1\r\nHost: localhost\r\nX-Long: " + "a".repeat(200), 100);
    report.add({ cases: 1, faults: 2 });
    await canary("connect");
    await partial.closedWithin(1000 + slackMs);
    await slow.closedWithin(1000 + slackMs);
  });

  it("HTTP/1.1: a body that stops arriving is answered DEADLINE_EXCEEDED and its connection closed", async () => {
    const peer = await rawPeer(
      tp.port,
      "POST /grocery.identity.v1.AuthService/Login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n" + '{"login":"x',
    );
    report.add({ cases: 1, faults: 1 });
    await canary("connect");
    await peer.closedWithin(1000 + slackMs);
    const answer = peer.received().toString();
    assert.match(answer, /^HTTP\/1\.1 504/);
    assert.match(answer, /deadline_exceeded/);
  });

  it("HTTP/1.1: an idle kept-alive connection is closed after the keep-alive timeout", async () => {
    const peer = await rawPeer(tp.port, "GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n");
    report.add({ cases: 1, faults: 1 });
    const ms = await peer.closedWithin(1000 + slackMs);
    assert.match(peer.received().toString(), /^HTTP\/1\.1 200/);
    assert.ok(ms >= 900, `closed after ${ms} ms`);
  });

  it("HTTP/1.1: a client that pipelines requests and never reads its answers is cut within the configured timeouts", async () => {
    const socket = net.connect(tp.port, "127.0.0.1");
    socket.on("error", () => {});
    await new Promise<void>((resolve, reject) => socket.once("connect", resolve).once("error", reject));
    // Never read: once the kernel's buffers are full the server's writes stall.
    socket.pause();
    const requests = 40_000;
    const batch = Buffer.from("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".repeat(1000));
    for (let i = 0; i < requests / 1000; i++) socket.write(batch);
    report.add({ cases: 1, faults: 1 });
    await canary("connect");
    await new Promise((r) => setTimeout(r, 1000 + slackMs));
    // A paused socket does not notice the server closing it; reading now drains what was sent, then the end.
    let answers = 0;
    let tail = "";
    socket.on("data", (chunk: Buffer) => {
      const text = tail + chunk.toString("latin1");
      answers += text.split("HTTP/1.1 200").length - 1;
      tail = text.slice(-16);
    });
    const closed = new Promise<boolean>((resolve) => {
      socket.once("close", () => resolve(true));
      setTimeout(() => resolve(false), 5000);
    });
    socket.resume();
    const ended = await closed;
    socket.destroy();
    report.sampleRss();
    assert.ok(ended, "the connection stayed open");
    assert.ok(answers < requests, `all ${requests} answers were written: the stalled connection was never cut`);
  });

  it("HTTP/2: an idle session is closed; a half-sent request body is answered and its stream ended", async () => {
    const idle = await h2Session(tp.url);
    report.add({ cases: 1, faults: 2 });
    await canary();
    await sessionClosedWithin(idle, 1000 + slackMs);

    const busy = await h2Session(tp.url);
    try {
      const outcome = await h2Call(busy, "/grpc.health.v1.Health/Check", healthCheckFrame.subarray(0, 3), { keepOpen: true });
      assert.equal(outcome.grpcStatus, "4", `status ${outcome.grpcStatus}, reset ${outcome.rstCode}`);
      assert.ok(outcome.statusMs < 1000 + slackMs, `answered after ${outcome.statusMs} ms`);
      // The client never ends its half of the stream: the server resets it after the write-stall timeout.
      assert.ok(outcome.ms < 2000 + slackMs, `stream left open for ${outcome.ms} ms`);
    } finally {
      busy.destroy();
    }
  });

  it("HTTP/2: a session that opens no stream is closed after the idle timeout, however many PINGs and SETTINGS it sends", async () => {
    const peer = await rawPeer(tp.port, Buffer.concat([h2Preface, h2Frame(H2.SETTINGS, 0, 0)]));
    report.add({ cases: 1, faults: 1 });
    let n = 0;
    // Frames every 200 ms, well inside the 1 s idle timeout, none of them a stream.
    const chatter = setInterval(() => {
      if (peer.socket.destroyed) return;
      const ping = Buffer.alloc(8);
      ping.writeUInt32BE(n++, 4);
      peer.socket.write(n % 2 === 0 ? h2Frame(H2.SETTINGS, 0, 0) : h2Frame(H2.PING, 0, 0, ping));
    }, 200);
    try {
      const closedMs = await peer.closedWithin(1000 + slackMs);
      assert.ok(n >= 3, `only ${n} frames were sent before the close at ${closedMs} ms`);
    } finally {
      clearInterval(chatter);
    }
    await canary();
  });

  it("HTTP/2: a reader that advertises a zero window has its streams cut after the write-stall timeout", async () => {
    const session = await h2Session(tp.url, { initialWindowSize: 0 });
    try {
      report.add({ cases: 1, faults: 50 });
      const outcomes = await Promise.all(Array.from({ length: 50 }, () => h2Call(session, "/grpc.health.v1.Health/Check", healthCheckFrame)));
      await canary();
      for (const o of outcomes) {
        assert.equal(o.rstCode, http2.constants.NGHTTP2_CANCEL, `stream ended with status ${o.grpcStatus}, reset ${o.rstCode}`);
        assert.ok(o.ms < 1000 + slackMs, `cut after ${o.ms} ms`);
      }
    } finally {
      session.destroy();
    }
  });

  it("HTTP/2: zero-window readers of large answers on many streams pin bounded memory, released when they are cut", async () => {
    // Reflection answers with a file and its dependencies (buf/validate among them): tens of KiB per stream, which
    // the server holds for as long as the reader's window stays shut.
    const request = grpcFrame(
      toBinary(ServerReflectionRequestSchema, create(ServerReflectionRequestSchema, { messageRequest: { case: "fileContainingSymbol", value: "grocery.identity.v1.UserService" } })),
    );
    const open = await h2Session(tp.url);
    const answer = await h2Body(open, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", request);
    open.destroy();
    assert.ok(answer > 20_000, `a reflection answer is ${answer} bytes`);

    const rssBefore = process.memoryUsage().rss;
    /** One round of 10 zero-window sessions × 100 streams; resolves with the peak RSS growth while it ran. */
    const round = async () => {
      const sessions = await Promise.all(Array.from({ length: 10 }, () => h2Session(tp.url, { initialWindowSize: 0 })));
      try {
        const calls = sessions.flatMap((s) => Array.from({ length: 100 }, () => h2Call(s, "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo", request)));
        report.add({ cases: 1, faults: calls.length });
        let peakMiB = 0;
        const sampler = setInterval(() => (peakMiB = Math.max(peakMiB, (process.memoryUsage().rss - rssBefore) / 2 ** 20)), 50);
        const served = await canary();
        const outcomes = await Promise.all(calls);
        clearInterval(sampler);
        assert.ok(served < 3000, `canary took ${served} ms`);
        for (const o of outcomes) assert.ok(o.rstCode === http2.constants.NGHTTP2_CANCEL && o.ms < 1000 + slackMs, `stream ended after ${o.ms} ms, status ${o.grpcStatus}, reset ${o.rstCode}`);
        return { peakMiB, pinnedMiB: (outcomes.length * answer) / 2 ** 20 };
      } finally {
        for (const s of sessions) s.destroy();
      }
    };
    // What a stalled reader can pin is bounded by the streams it may hold (and MAX_CALLS_IN_FLIGHT per process)
    // times the answer's size, for WRITE_STALL_TIMEOUT: growth stays within a small multiple of that, and once the
    // streams are cut and garbage is collected, what the answers held is free again.
    const gc = (globalThis as { gc?: () => void }).gc;
    assert.ok(gc, "the proof runner starts node with --expose-gc");
    const held = () => {
      gc();
      const m = process.memoryUsage();
      return (m.heapUsed + m.arrayBuffers) / 2 ** 20;
    };
    const heldBefore = held();
    for (let i = 0; i < 2; i++) {
      const { peakMiB, pinnedMiB } = await round();
      assert.ok(peakMiB < 4 * pinnedMiB + 100, `RSS grew by ${peakMiB.toFixed(0)} MiB while ${pinnedMiB.toFixed(0)} MiB of answers were pinned`);
      // The cut streams count against MAX_CALLS_IN_FLIGHT until the server has seen them close.
      await until(() => tp.platform.inFlight === 0, 5_000, "the cut streams to close");
      const heldAfter = held();
      assert.ok(heldAfter < heldBefore + 30, `round ${i + 1}: ${heldAfter.toFixed(0)} MiB held after, ${heldBefore.toFixed(0)} MiB before`);
    }
  });

  it("rapid reset: Register streams reset as soon as they are sent create no account and do not stall other clients", async () => {
    const prefix = uniqueName("rr");
    const session = await h2Session(tp.url);
    try {
      const started = Date.now();
      for (let i = 0; i < 300; i++) {
        const body = grpcFrame(toBinary(RegisterRequestSchema, create(RegisterRequestSchema, { username: `${prefix}${i}`, email: `${prefix}${i}@example.com`, password: "reset before it lands" })));
        const stream = session.request({ ":method": "POST", ":path": "/grocery.identity.v1.AuthService/Register", "content-type": "application/grpc", te: "trailers" });
        stream.on("error", () => {});
        stream.end(body);
        stream.close(http2.constants.NGHTTP2_CANCEL);
      }
      const resetMs = Date.now() - started;
      report.add({ cases: 1, faults: 300 });
      const served = await canary();
      assert.ok(served < 3000, `a health check took ${served} ms after the burst (reset in ${resetMs} ms)`);
    } finally {
      session.destroy();
    }
    // Let anything admitted run to its end before counting.
    await new Promise((r) => setTimeout(r, 1500));
    const db = await openTestDatabase(tp);
    try {
      const rows = rowsOf<{ n: number | string }>(await db.db.execute(sql`select count(*) as n from identity.users where username like ${prefix + "%"}`));
      assert.equal(Number(rows[0]?.n), 0, "cancelled Register calls created accounts");
    } finally {
      await db.close();
    }
  });

  it("2,000 streams on one connection and on 50: every stream ends, other clients are served, memory stays bounded", async () => {
    const rssBefore = process.memoryUsage().rss;
    const one = await h2Session(tp.url);
    const many = await Promise.all(Array.from({ length: 50 }, () => h2Session(tp.url)));
    try {
      const calls = [
        ...Array.from({ length: 2000 }, () => h2Call(one, "/grpc.health.v1.Health/Check", healthCheckFrame)),
        ...Array.from({ length: 2000 }, (_, i) => h2Call(many[i % many.length]!, "/grpc.health.v1.Health/Check", healthCheckFrame)),
      ];
      report.add({ cases: 2, faults: calls.length });
      const served = await canary();
      assert.ok(served < 3000, `canary took ${served} ms`);
      const outcomes = await Promise.all(calls);
      const ok = outcomes.filter((o) => o.grpcStatus === "0").length;
      const refused = outcomes.filter((o) => o.rstCode === http2.constants.NGHTTP2_REFUSED_STREAM || o.grpcStatus === "8").length;
      assert.equal(ok + refused, outcomes.length, "a stream ended some other way than served or refused");
      assert.ok(ok >= 2000, `only ${ok} of 4000 served`);
      const grownMiB = (process.memoryUsage().rss - rssBefore) / 2 ** 20;
      assert.ok(grownMiB < 300, `RSS grew by ${grownMiB.toFixed(0)} MiB`);
    } finally {
      one.destroy();
      for (const s of many) s.destroy();
    }
  });
});
