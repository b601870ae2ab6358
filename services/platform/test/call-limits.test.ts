/**
 * The bounds on concurrent work: a peer that opens more streams than HTTP2_MAX_CONCURRENT_STREAMS allows (a raw
 * client that ignores the server's SETTINGS, as Node's own client never would) has the excess refused with
 * REFUSED_STREAM before any work, and calls beyond MAX_CALLS_IN_FLIGHT in the process answer RESOURCE_EXHAUSTED
 * while the calls already running finish normally.
 */
import assert from "node:assert/strict";
import http2 from "node:http2";
import { after, before, describe, it } from "node:test";
import { H2, h2Call, h2Frame, h2Preface, h2Session, healthCheckFrame, hpackLiterals, parseH2Frames, rawPeer, until, type ParsedFrame } from "../../../test/hostile-peers.js";
import { servicesNamed, startTestPlatform, untilInFlight, type TestPlatform } from "../../../test/harness.js";

const streamsPerConnection = 4;
const callsInFlight = 6;
const healthCheck = hpackLiterals({
  ":method": "POST",
  ":scheme": "http",
  ":path": "/grpc.health.v1.Health/Check",
  ":authority": "localhost",
  "content-type": "application/grpc",
  te: "trailers",
});

describe("limits on concurrent streams and calls (pglite)", () => {
  let tp: TestPlatform;
  before(async () => {
    tp = await startTestPlatform({
      backend: "pglite",
      services: servicesNamed("identity"),
      env: { HTTP2_MAX_CONCURRENT_STREAMS: String(streamsPerConnection), MAX_CALLS_IN_FLIGHT: String(callsInFlight) },
    });
  });
  after(() => tp?.close());

  /** The server's first SETTINGS frame, as a map of identifier to value. */
  function settingsOf(frames: ParsedFrame[]): Map<number, number> | undefined {
    const frame = frames.find((f) => f.type === H2.SETTINGS && (f.flags & H2.ACK) === 0);
    if (!frame) return undefined;
    const settings = new Map<number, number>();
    for (let at = 0; at + 6 <= frame.payload.length; at += 6) settings.set(frame.payload.readUInt16BE(at), frame.payload.readUInt32BE(at + 2));
    return settings;
  }
  // Twelve streams at once, each with its headers but no body, so none can finish and free its slot.
  const opened = Array.from({ length: 12 }, (_, i) => 2 * i + 1);
  const openAll = () => opened.map((id) => h2Frame(H2.HEADERS, H2.END_HEADERS, id, healthCheck));

  it("refuses streams beyond the per-connection limit with REFUSED_STREAM from a peer that opens them before the limit is settled", async () => {
    // Sent before the peer acknowledges the server's SETTINGS: the limit is pending, and nghttp2 refuses the excess.
    const peer = await rawPeer(tp.port, Buffer.concat([h2Preface, h2Frame(H2.SETTINGS, 0, 0), ...openAll()]));
    try {
      const frames = () => parseH2Frames(peer.received());
      const refused = () =>
        frames()
          .filter((f) => f.type === H2.RST_STREAM && f.payload.readUInt32BE(0) === http2.constants.NGHTTP2_REFUSED_STREAM)
          .map((f) => f.streamId);
      await until(() => refused().length >= opened.length - streamsPerConnection, 5_000, "REFUSED_STREAM for every stream over the limit");
      assert.equal(settingsOf(frames())?.get(0x3), streamsPerConnection, "SETTINGS_MAX_CONCURRENT_STREAMS is advertised");
      assert.deepEqual(refused().sort((a, b) => a - b), opened.slice(streamsPerConnection), "exactly the streams over the limit are refused");
      assert.ok(!frames().some((f) => f.type === H2.GOAWAY), "the connection itself stays up");
      assert.ok(tp.platform.inFlight <= streamsPerConnection, `${tp.platform.inFlight} calls started for ${streamsPerConnection} streams allowed`);
    } finally {
      peer.socket.destroy();
    }
  });

  it("closes the connection of a peer that acknowledged the limit and opens streams beyond it anyway", async () => {
    const peer = await rawPeer(tp.port, Buffer.concat([h2Preface, h2Frame(H2.SETTINGS, 0, 0)]));
    try {
      const frames = () => parseH2Frames(peer.received());
      await until(() => settingsOf(frames()) !== undefined, 5_000, "the server's SETTINGS");
      peer.socket.write(Buffer.concat([h2Frame(H2.SETTINGS, H2.ACK, 0), ...openAll()]));
      // A connection error (RFC 9113 §5.4.1): GOAWAY naming the last stream it took, the fourth, and the socket closed.
      const closedMs = await peer.closedWithin(5_000);
      const goaway = frames().find((f) => f.type === H2.GOAWAY);
      assert.ok(goaway, `GOAWAY before the close (${closedMs} ms)`);
      assert.equal(goaway.payload.readUInt32BE(0) & 0x7fffffff, opened[streamsPerConnection - 1], "the last stream taken is the last within the limit");
      assert.notEqual(goaway.payload.readUInt32BE(4), http2.constants.NGHTTP2_NO_ERROR, "an error, not a graceful close");
      const other = await h2Session(tp.url);
      const canary = await h2Call(other, "/grpc.health.v1.Health/Check", healthCheckFrame);
      other.destroy();
      assert.equal(canary.grpcStatus, "0", "other clients are served");
    } finally {
      peer.socket.destroy();
    }
  });

  it("answers calls beyond the process's limit RESOURCE_EXHAUSTED at once, and the running ones still finish", async () => {
    await until(() => tp.platform.inFlight === 0, 5_000, "the previous peer's streams to close");
    const sessions = await Promise.all([h2Session(tp.url), h2Session(tp.url), h2Session(tp.url)]);
    try {
      // Calls held open by a body that has not fully arrived: each counts against the limit until it ends.
      const held = sessions.slice(0, 2).flatMap((session) =>
        Array.from({ length: callsInFlight / 2 }, () => {
          const stream = session.request({ ":method": "POST", ":path": "/grpc.health.v1.Health/Check", "content-type": "application/grpc", te: "trailers" });
          stream.write(healthCheckFrame.subarray(0, 2));
          const status = new Promise<string>((resolve) => {
            let grpcStatus = "";
            stream.on("response", (h) => (grpcStatus = String(h["grpc-status"] ?? grpcStatus)));
            stream.on("trailers", (t) => (grpcStatus = String(t["grpc-status"] ?? grpcStatus)));
            stream.on("data", () => {});
            stream.on("error", () => {});
            stream.on("close", () => resolve(grpcStatus));
          });
          return { stream, status };
        }),
      );
      await untilInFlight(tp, callsInFlight);
      const over = await h2Call(sessions[2]!, "/grpc.health.v1.Health/Check", healthCheckFrame);
      assert.equal(over.grpcStatus, "8", "a call over the limit answers RESOURCE_EXHAUSTED");
      assert.ok(over.ms < 2_000, `and at once (${over.ms} ms)`);

      for (const { stream } of held) stream.end(healthCheckFrame.subarray(2));
      assert.deepEqual(await Promise.all(held.map((h) => h.status)), held.map(() => "0"), "the calls admitted before the limit are served");
      await until(() => tp.platform.inFlight === 0, 5_000, "the held calls to end");
      const again = await h2Call(sessions[2]!, "/grpc.health.v1.Health/Check", healthCheckFrame);
      assert.equal(again.grpcStatus, "0", "below the limit calls are served again");
    } finally {
      for (const session of sessions) session.destroy();
    }
  });
});
