/**
 * The page: register, log in, show "me", create and list carts — every call gRPC-web to the platform.
 *
 * The API's address comes from `config.json` beside the page (`{ "apiBaseUrl": "…" }`), written by whoever
 * deploys it, and defaults to the page's own origin. It is deliberately not read from the page's URL: a
 * crafted link must not be able to send someone's password elsewhere. The access token and the refresh token
 * live in memory only (nothing in storage for a script injection to read); reloading the page signs out. A call
 * refused UNAUTHENTICATED (an expired token, or the edge not knowing a new key yet) is retried once after
 * RefreshToken; when that fails too, the page signs out.
 */
import { Code, ConnectError } from "@connectrpc/connect";
import { Role } from "@local-e-grocery/gen/grocery/auth/v1/auth_pb.js";
import type { User } from "@local-e-grocery/gen/grocery/identity/v1/user_pb.js";
import { createGroceryClients, type GroceryClients } from "./client.js";

const status = element("status", HTMLParagraphElement);
const signedOut = element("signed-out", HTMLElement);
const signedIn = element("signed-in", HTMLElement);
const cartList = element("cart-list", HTMLUListElement);

let accessToken: string | undefined;
let refreshToken: string | undefined;

void main().catch(showError);

async function main(): Promise<void> {
  const { apiBaseUrl } = await loadConfig();
  // Renewal goes through clients of its own, without the token interceptor: RefreshToken is public.
  const anonymous = createGroceryClients({ baseUrl: apiBaseUrl });
  const clients = createGroceryClients({
    baseUrl: apiBaseUrl,
    accessToken: () => accessToken,
    renewAccessToken: async () => {
      const presented = refreshToken;
      if (!presented) return undefined;
      try {
        // Bounded: every call waiting on the renewal waits on this one.
        const renewed = await anonymous.auth.refreshToken({ refreshToken: presented }, { timeoutMs: 10_000 });
        accessToken = renewed.accessToken;
        refreshToken = renewed.refreshToken;
        return accessToken;
      } catch {
        // The session is over (revoked, expired): sign out rather than retry.
        accessToken = refreshToken = undefined;
        showMe(undefined);
        return undefined;
      }
    },
  });

  onSubmit("register-form", async (form) => {
    const { user } = await clients.auth.register({
      username: field(form, "username"),
      email: field(form, "email"),
      password: field(form, "password"),
      role: Role.CUSTOMER,
    });
    form.reset();
    return `Registered ${user?.username ?? ""}. Log in to continue.`;
  });

  onSubmit("login-form", async (form) => {
    const login = await clients.auth.login({ login: field(form, "login"), password: field(form, "password") });
    accessToken = login.accessToken;
    refreshToken = login.refreshToken;
    form.reset();
    const { user } = await clients.users.getMe({});
    showMe(user);
    await showCarts(clients);
    return `Logged in as ${user?.username ?? ""}.`;
  });

  onSubmit("cart-form", async (form) => {
    const { cart } = await clients.carts.createCart({ name: field(form, "name") });
    form.reset();
    await showCarts(clients);
    return `Created cart “${cart?.name ?? ""}”.`;
  });

  element("logout", HTMLButtonElement).addEventListener("click", () => {
    void run(async () => {
      try {
        await clients.auth.logout({});
      } finally {
        // Forget the token even if the server could not be told: the person asked to leave.
        accessToken = refreshToken = undefined;
        showMe(undefined);
      }
      return "Logged out.";
    });
  });

  setStatus("idle", "Ready.");
}

interface WebConfig {
  apiBaseUrl: string;
}

async function loadConfig(): Promise<WebConfig> {
  const res = await fetch("config.json", { cache: "no-store" });
  if (res.status === 404) return { apiBaseUrl: location.origin };
  if (!res.ok) throw new Error(`config.json: HTTP ${res.status}`);
  const json: unknown = await res.json();
  if (typeof json !== "object" || json === null || !("apiBaseUrl" in json) || typeof json.apiBaseUrl !== "string") {
    throw new Error("config.json: apiBaseUrl must be a string");
  }
  return { apiBaseUrl: json.apiBaseUrl };
}

function showMe(user: User | undefined): void {
  signedIn.hidden = user === undefined;
  signedOut.hidden = user !== undefined;
  element("me-username", HTMLElement).textContent = user?.username ?? "";
  element("me-email", HTMLElement).textContent = user?.email ?? "";
  element("me-roles", HTMLElement).textContent = user?.roles.map((r) => Role[r]).join(", ") ?? "";
  if (user === undefined) cartList.replaceChildren();
}

async function showCarts(clients: GroceryClients): Promise<void> {
  const { carts } = await clients.carts.listCarts({ pageSize: 50 });
  cartList.replaceChildren(
    ...carts.map((cart) => {
      const li = document.createElement("li");
      li.dataset["cartId"] = cart.id;
      li.textContent = `${cart.name} (${cart.itemCount} items)`;
      return li;
    }),
  );
  if (carts.length === 0) {
    const li = document.createElement("li");
    li.textContent = "No carts yet.";
    cartList.append(li);
  }
}

/** Runs `action` on submit; its result (or the error) becomes the status line. */
function onSubmit(id: string, action: (form: HTMLFormElement) => Promise<string>): void {
  const form = element(id, HTMLFormElement);
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    void run(() => action(form));
  });
}

/** Marks the page busy while `action` runs, so a person (or a test) can tell when a call has finished. */
async function run(action: () => Promise<string>): Promise<void> {
  setStatus("busy", "Working…");
  try {
    setStatus("ok", await action());
  } catch (e) {
    showError(e);
  }
}

/** Shows the gRPC status name, e.g. `UNAUTHENTICATED`, read from the grpc-status the server exposes. */
function showError(e: unknown): void {
  const err = ConnectError.from(e);
  const code = grpcCodeName(err.code);
  setStatus("error", `${code}: ${err.rawMessage}`, code);
}

function setStatus(state: "idle" | "busy" | "ok" | "error", text: string, code?: string): void {
  status.dataset["state"] = state;
  if (code === undefined) delete status.dataset["code"];
  else status.dataset["code"] = code;
  status.textContent = text;
}

/** `Code.InvalidArgument` → `INVALID_ARGUMENT`, the name gRPC documents. */
function grpcCodeName(code: Code): string {
  return Code[code].replace(/([a-z])([A-Z])/g, "$1_$2").toUpperCase();
}

function field(form: HTMLFormElement, name: string): string {
  const value = new FormData(form).get(name);
  return typeof value === "string" ? value : "";
}

function element<T extends HTMLElement>(id: string, type: new () => T): T {
  const found = document.getElementById(id);
  if (!(found instanceof type)) throw new Error(`#${id} is missing from the page`);
  return found;
}
