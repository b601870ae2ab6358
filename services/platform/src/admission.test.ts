import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError, createContextValues, type UnaryRequest, type UnaryResponse } from "@connectrpc/connect";
import { AuthService, RegisterRequestSchema } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { createAdmissionInterceptor } from "./admission.js";

const register = AuthService.method.register;
const getJwks = AuthService.method.getJwks;

function request(method: typeof register | typeof getJwks, signal: AbortSignal): UnaryRequest {
  return {
    stream: false,
    service: AuthService,
    method: method as never,
    requestMethod: "POST",
    url: "",
    signal,
    header: new Headers(),
    contextValues: createContextValues(),
    message: create(RegisterRequestSchema) as never,
  };
}

/** A handler the test releases by hand, counting the calls that actually ran. */
function gatedHandler() {
  const gates: (() => void)[] = [];
  let ran = 0;
  const next = async (req: UnaryRequest): Promise<UnaryResponse> => {
    ran++;
    await new Promise<void>((r) => gates.push(r));
    return { stream: false, service: req.service, method: req.method, header: new Headers(), trailer: new Headers(), message: req.message } as UnaryResponse;
  };
  return { next, gates, ran: () => ran };
}

const codeOf = (p: Promise<unknown>) => p.then(() => "ok", (e: unknown) => Code[ConnectError.from(e).code]);

describe("admission of expensive calls", () => {
  it("runs at most `concurrency` at once, queues up to `queueLength`, refuses the rest RESOURCE_EXHAUSTED", async () => {
    const h = gatedHandler();
    const call = createAdmissionInterceptor({ concurrency: 2, queueLength: 1 })(h.next as never);
    const signal = new AbortController().signal;
    const running = [call(request(register, signal)), call(request(register, signal))];
    const queued = call(request(register, signal));
    assert.equal(await codeOf(call(request(register, signal))), "ResourceExhausted");
    await new Promise((r) => setImmediate(r));
    assert.equal(h.ran(), 2);
    h.gates.shift()!();
    await running[0];
    await new Promise((r) => setImmediate(r));
    assert.equal(h.ran(), 3, "the queued call runs when a slot frees");
    for (const g of h.gates.splice(0)) g();
    await Promise.all([running[1], queued]);
  });

  it("a call cancelled while it waits leaves the queue and never runs", async () => {
    const h = gatedHandler();
    const call = createAdmissionInterceptor({ concurrency: 1, queueLength: 10 })(h.next as never);
    const first = call(request(register, new AbortController().signal));
    const client = new AbortController();
    const waiting = call(request(register, client.signal));
    client.abort(new ConnectError("client went away", Code.Canceled));
    assert.equal(await codeOf(waiting), "Canceled");
    h.gates.shift()!();
    await first;
    await new Promise((r) => setImmediate(r));
    assert.equal(h.ran(), 1, "the cancelled call ran");
  });

  it("cheap calls pass without a slot", async () => {
    const h = gatedHandler();
    const call = createAdmissionInterceptor({ concurrency: 1, queueLength: 0 })(h.next as never);
    const signal = new AbortController().signal;
    const busy = call(request(register, signal));
    const cheap = call(request(getJwks, signal));
    await new Promise((r) => setImmediate(r));
    assert.equal(h.ran(), 2);
    for (const g of h.gates.splice(0)) g();
    await Promise.all([busy, cheap]);
  });
});
