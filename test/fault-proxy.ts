/**
 * A TCP proxy a test puts between a service process and PostgreSQL, to cut the database off without touching
 * the shared server: `reset` tears down every connection and refuses new ones with a reset, `drop` holds every
 * connection open but carries no bytes (a silent network partition: what was sent arrives once it heals, as TCP
 * retransmission would deliver it), `pass` forwards normally.
 */
import net from "node:net";
import { emptyDatabase } from "./harness.js";
import { startServiceProcess, type ServiceProcess } from "./service-process.js";

export type FaultMode = "pass" | "reset" | "drop";

export interface FaultProxy {
  readonly port: number;
  readonly mode: FaultMode;
  set(mode: FaultMode): void;
  close(): Promise<void>;
}

export async function startFaultProxy(target: { host: string; port: number }): Promise<FaultProxy> {
  let mode: FaultMode = "pass";
  /** One direction of a connection: what it holds back while traffic is dropped. */
  interface Leg {
    from: net.Socket;
    to: net.Socket;
    held: Buffer[];
  }
  const legs = new Set<Leg>();
  const forward = (leg: Leg) => {
    leg.from.on("data", (chunk: Buffer) => {
      if (mode === "drop") leg.held.push(chunk);
      else leg.to.write(chunk);
    });
  };
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    if (mode === "reset") {
      client.resetAndDestroy();
      return;
    }
    const upstream = net.connect(target.port, target.host);
    const up: Leg = { from: client, to: upstream, held: [] };
    const down: Leg = { from: upstream, to: client, held: [] };
    for (const s of [client, upstream]) {
      sockets.add(s);
      s.on("error", () => {});
      s.once("close", () => {
        sockets.delete(s);
        legs.delete(up);
        legs.delete(down);
        client.destroy();
        upstream.destroy();
      });
    }
    legs.add(up).add(down);
    forward(up);
    forward(down);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return {
    port: (server.address() as net.AddressInfo).port,
    get mode() {
      return mode;
    },
    set(next) {
      mode = next;
      if (next === "reset") {
        for (const s of sockets) s.resetAndDestroy();
      } else if (next === "pass") {
        for (const leg of legs) for (const chunk of leg.held.splice(0)) leg.to.write(chunk);
      }
    },
    async close() {
      for (const s of sockets) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** A service process on a fresh PostgreSQL database that it reaches only through a fault proxy. */
export interface ProxiedService {
  readonly proxy: FaultProxy;
  readonly service: ServiceProcess;
  /** Stops the service if it still runs, then the proxy, and drops the database. */
  close(): Promise<void>;
}

export async function startBehindFaultProxy(entry: string, env: Record<string, string>): Promise<ProxiedService> {
  const data = await emptyDatabase("postgres");
  const direct = new URL(data.env["DATABASE_URL"]!);
  const proxy = await startFaultProxy({ host: direct.hostname, port: Number(direct.port || 5432) });
  const viaProxy = new URL(direct);
  viaProxy.host = `127.0.0.1:${proxy.port}`;
  try {
    const service = await startServiceProcess(entry, { ...data.env, ...env, DATABASE_URL: viaProxy.toString() });
    return {
      proxy,
      service,
      async close() {
        await service.stop();
        await proxy.close();
        await data.drop();
      },
    };
  } catch (e) {
    await proxy.close();
    await data.drop();
    throw e;
  }
}
