import { isIP } from "node:net";
import type { DescMethodUnary, DescService } from "@bufbuild/protobuf";
import { AuthService } from "@local-e-grocery/gen/grocery/identity/v1/auth_service_pb.js";
import { ConfigError, envDuration, envOptional, type Env } from "./config.js";
import { createServiceClient, readServiceTarget, type ServiceClient, type ServiceTarget } from "./service-client.js";
import { createServiceTokenSource } from "./service-token.js";
import type { Clock } from "./service-module.js";

/** How a service reaches the others: typed gRPC clients, each call carrying this process's SERVICE token. */
export interface Mesh {
  /**
   * A client of `service` run by the service called `name` ("cart"), at the replicas `<NAME>_SERVICE_ADDR`
   * lists. When the variable is unset and `name` runs in this process, calls go to this process over loopback:
   * the all-in-one mode takes the same path as the mesh. A bad or missing address is a ConfigError naming the
   * variable, thrown here, i.e. while the calling service is built at start-up.
   */
  client<S extends DescService>(service: S, name: string): ServiceClient<S>;
}

export interface MeshOptions {
  env: Env;
  clock: Clock;
  /** Services this process runs. */
  localServices: readonly string[];
}

/** The platform's side of the mesh: clients are handed out at build time and start calling once it listens. */
export interface PlatformMesh extends Mesh {
  /** This process listens on `port` of `host`: its own clients may call there. */
  listening(port: number, host: string): void;
  /**
   * Where SERVICE tokens come from. A process running identity signs its own; any other gets them from
   * identity's IssueServiceToken with SERVICE_CLIENT_ID and SERVICE_CLIENT_SECRET (no defaults), which are only
   * required once some service of the process asked for a client. Throws a ConfigError when they are missing.
   */
  useTokens(signer: (() => Promise<string>) | undefined): void;
  close(): void;
}

/** SERVICE_CALL_TIMEOUT: the deadline of an internal call whose caller has none (or a longer one). */
export function readServiceCallTimeoutMs(env: Env): number {
  return Math.round(envDuration(env, "SERVICE_CALL_TIMEOUT", 5) * 1000);
}

export function createMesh(options: MeshOptions): PlatformMesh {
  const { env } = options;
  const deadlineMs = readServiceCallTimeoutMs(env);
  let self: string | undefined;
  let token: (() => Promise<string>) | undefined;
  const closers: (() => void)[] = [];
  let wanted = false;

  const targetOf = (name: string): (() => ServiceTarget) => {
    const variable = `${name.toUpperCase()}_SERVICE_ADDR`;
    const configured = readServiceTarget(env, variable);
    if (configured) return () => configured;
    if (!options.localServices.includes(name)) {
      throw new ConfigError(`${variable} is required: ${name} does not run in this process and is called by it`);
    }
    return () => {
      if (self === undefined) throw new Error(`${name} is called before this process listens`);
      return { kind: "list", uri: self };
    };
  };

  /** A client whose channel opens on its first call, when the loopback port and the token source are known. */
  const lazyClient = <S extends DescService>(service: S, target: () => ServiceTarget, withToken: boolean): ServiceClient<S> => {
    let built: ServiceClient<S> | undefined;
    const get = () => {
      if (!built) {
        const made = createServiceClient(service, {
          target: target(),
          deadlineMs,
          ...(withToken ? { token: () => (token ?? missingToken)() } : {}),
        });
        closers.push(made.close);
        built = made.client;
      }
      return built;
    };
    const client: Record<string, unknown> = {};
    for (const method of service.methods.filter((m): m is DescMethodUnary => m.methodKind === "unary")) {
      client[method.localName] = (request: unknown, call: unknown) => (get() as Record<string, (a: unknown, b: unknown) => unknown>)[method.localName]!(request, call);
    }
    return client as ServiceClient<S>;
  };

  const missingToken = () => Promise.reject(new Error("no SERVICE token source: the platform has not started"));

  return {
    client(service, name) {
      wanted = true;
      return lazyClient(service, targetOf(name), true);
    },
    listening(port, host) {
      self = selfAddress(host, port);
    },
    useTokens(signer) {
      if (signer) {
        token = signer;
        return;
      }
      if (!wanted) return;
      const clientId = envOptional(env, "SERVICE_CLIENT_ID");
      const clientSecret = envOptional(env, "SERVICE_CLIENT_SECRET");
      if (!clientId || !clientSecret) {
        throw new ConfigError("SERVICE_CLIENT_ID and SERVICE_CLIENT_SECRET are required: this process calls other services and does not run identity");
      }
      // The token request itself carries no token: IssueServiceToken is public.
      const auth = lazyClient(AuthService, targetOf("identity"), false);
      token = createServiceTokenSource({
        clock: options.clock,
        issue: async () => {
          const issued = await auth.issueServiceToken({ clientId, clientSecret });
          return { accessToken: issued.accessToken, expiresIn: issued.expiresIn };
        },
      }).token;
    },
    close() {
      for (const close of closers.splice(0)) close();
    },
  };
}

/**
 * The address this process reaches itself at: loopback when it listens on every address (or by name), else the one
 * address it listens on, which loopback would not reach.
 */
export function selfHost(host: string): string {
  return host === "" || host === "0.0.0.0" || host === "::" || isIP(host) === 0 ? "127.0.0.1" : host;
}

function selfAddress(host: string, port: number): string {
  const self = selfHost(host);
  return isIP(self) === 6 ? `ipv6:[${self}]:${port}` : `ipv4:${self}:${port}`;
}
