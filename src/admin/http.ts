/**
 * The admin HTTP listener (Deno.serve): Prometheus metrics, health probes
 * and a read-only JSON API over a broker's StatusPort. Every answer but
 * /metrics is JSON; a bad path, method or parameter gets a 4xx with a
 * JSON `{ "error": … }` body, and a failure while answering a logged 500:
 * nothing a client sends can stop the listener.
 */
import { checkPair, type StatusPort } from "../broker/mod.ts";
import { DASHBOARD_HTML } from "./dashboard.ts";

export interface AdminServer {
  /** The port it listens on (the OS's choice when asked for 0). */
  readonly port: number;
  /**
   * Serves new connections with another certificate (SIGHUP); requests in
   * flight finish on the old one. A pair Deno refuses throws, and nothing
   * changes. Without TLS there is nothing to reload.
   */
  reloadTls(tls: { cert: string; key: string }): Promise<void>;
  stop(): Promise<void>;
}

/** An answer to give with its HTTP status. */
class HttpError extends Error {
  override name = "HttpError";
  constructor(
    readonly status: number,
    message: string,
    readonly extra = {},
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

function json(
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): Response {
  return new Response(JSON.stringify(body, null, 2) + "\n", {
    status,
    headers: { "content-type": "application/json; charset=utf-8", ...headers },
  });
}

/** A path segment decoded, or a 400 when its percent-encoding is broken. */
function segment(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    throw new HttpError(400, `Path segment "${raw}" is not valid URI encoding`);
  }
}

/** A partition number as the path writes it: digits only, within int32. */
function partitionNumber(raw: string): number {
  if (!/^\d{1,10}$/.test(raw) || Number(raw) > 2 ** 31 - 1) {
    throw new HttpError(
      400,
      `Partition "${raw}" is not a partition number (0 or more)`,
    );
  }
  return Number(raw);
}

type Route = (status: StatusPort, params: string[]) => Response;

/** Each route: its path as the README documents it, its pattern, its answer. */
const ROUTES: [string, RegExp, Route][] = [
  ["/metrics", /^\/metrics$/, (s) =>
    new Response(s.metrics(), {
      headers: { "content-type": "text/plain; version=0.0.4; charset=utf-8" },
    })],
  [
    "/v1/health/live",
    /^\/v1\/health\/live$/,
    (s) => json(200, { status: "live", nodeId: s.nodeId }),
  ],
  ["/v1/health/ready", /^\/v1\/health\/ready$/, (s) => {
    const r = s.readiness();
    return json(r.ready ? 200 : 503, {
      status: r.ready ? "ready" : "not ready",
      nodeId: s.nodeId,
      controllerId: r.controllerId,
      unavailable: r.unavailable,
    });
  }],
  ["/v1/brokers", /^\/v1\/brokers$/, (s) => json(200, s.brokers())],
  ["/v1/topics", /^\/v1\/topics$/, (s) => json(200, s.topics())],
  ["/v1/topics/{name}", /^\/v1\/topics\/([^/]+)$/, (s, [name]) => {
    const topic = segment(name!);
    const t = s.topic(topic);
    if (t === undefined) {
      throw new HttpError(404, `Topic "${topic}" does not exist`);
    }
    return json(200, t);
  }],
  [
    "/v1/partitions/{topic}/{partition}",
    /^\/v1\/partitions\/([^/]+)\/([^/]+)$/,
    (s, [name, raw]) => {
      const topic = segment(name!);
      const index = partitionNumber(segment(raw!));
      const p = s.partition(topic, index);
      if (p === undefined) {
        throw new HttpError(
          404,
          `Partition ${index} of topic "${topic}" does not exist`,
        );
      }
      return json(200, p);
    },
  ],
  ["/v1/groups", /^\/v1\/groups$/, (s) => json(200, s.groups())],
  ["/v1/groups/{id}", /^\/v1\/groups\/([^/]+)$/, (s, [raw]) => {
    const groupId = segment(raw!);
    const g = s.group(groupId);
    if (g.ok) return json(200, g.group);
    if (g.reason === "elsewhere") {
      // The group lives on another broker: say which, as Kafka clients are told.
      throw new HttpError(
        421,
        `Group "${groupId}" is coordinated by broker ${g.coordinator}`,
        { coordinator: g.coordinator },
      );
    }
    if (g.reason === "unknown") {
      throw new HttpError(404, `Group "${groupId}" does not exist`);
    }
    throw new HttpError(
      503,
      `Group "${groupId}" is being loaded by its coordinator: try again`,
    );
  }],
  ["/", /^\/$/, () =>
    new Response(DASHBOARD_HTML, {
      headers: { "content-type": "text/html; charset=utf-8" },
    })],
];

/** The documented paths, in the order the README lists them. */
export const ADMIN_PATHS: readonly string[] = ROUTES.map(([path]) => path);

/** Probes must answer without credentials: kubelets and systemd have none. */
const OPEN_PATHS: ReadonlySet<string> = new Set([
  "/v1/health/live",
  "/v1/health/ready",
]);

const CHALLENGE = {
  "www-authenticate": 'Basic realm="raftq", charset="UTF-8"',
};

/** The user and password of an `Authorization: Basic` header (RFC 7617). */
function basicCredentials(
  header: string | null,
): { user: string; password: string } | null {
  const m = /^Basic\s+([A-Za-z0-9+/]+=*)\s*$/i.exec(header ?? "");
  if (m === null) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(
      Uint8Array.from(atob(m[1]!), (c) => c.charCodeAt(0)),
    );
  } catch {
    return null;
  }
  const colon = text.indexOf(":");
  if (colon <= 0) return null;
  return { user: text.slice(0, colon), password: text.slice(colon + 1) };
}

/** With admin.auth basic: throws the 401 or 403 a request without access gets. */
function checkAccess(
  status: StatusPort,
  req: Request,
  clientHost: string,
): void {
  const credentials = basicCredentials(req.headers.get("authorization"));
  const access = credentials === null ? "unauthenticated" : status.adminAccess(
    credentials.user,
    credentials.password,
    clientHost,
  );
  if (access === "unauthenticated") {
    throw new HttpError(
      401,
      "Give the credentials of a raftq user (HTTP Basic)",
      {},
      CHALLENGE,
    );
  }
  if (access === "forbidden") {
    throw new HttpError(
      403,
      `User "${credentials!.user}" may not DESCRIBE the cluster`,
    );
  }
}

export interface AdminRequestOptions {
  readonly auth: "none" | "basic";
  /** The client's address, without the port, for ACLs on hosts. */
  readonly clientHost: string;
  readonly log: (message: string) => void;
}

/** Answers one request. */
export function handleAdminRequest(
  status: StatusPort,
  req: Request,
  opts: AdminRequestOptions,
): Response {
  const path = new URL(req.url).pathname;
  try {
    if (opts.auth === "basic" && !OPEN_PATHS.has(path)) {
      checkAccess(status, req, opts.clientHost);
    }
    for (const [, pattern, route] of ROUTES) {
      const m = pattern.exec(path);
      if (m === null) continue;
      if (req.method !== "GET" && req.method !== "HEAD") {
        throw new HttpError(405, `${req.method} ${path}: the API is read-only`);
      }
      return route(status, m.slice(1));
    }
    throw new HttpError(404, `No such path: ${path}`);
  } catch (err) {
    if (err instanceof HttpError) {
      return json(
        err.status,
        { error: err.message, ...err.extra },
        err.headers,
      );
    }
    opts.log(
      `admin: ${req.method} ${path} failed: ${(err as Error).stack ?? err}`,
    );
    return json(500, { error: `Internal error: ${(err as Error).message}` });
  }
}

/** Serves the admin API until stop(); over HTTPS when given `tls`. */
export function startAdminServer(opts: {
  hostname: string;
  port: number;
  status: StatusPort;
  log: (message: string) => void;
  auth: "none" | "basic";
  /** PEM certificate chain and key. */
  tls?: { cert: string; key: string };
}): AdminServer {
  const serve = (
    port: number,
    tls: { cert: string; key: string } | undefined,
  ) =>
    Deno.serve({
      hostname: opts.hostname,
      port,
      onListen: () => {},
      ...(tls ?? {}),
    }, (req, info) =>
      handleAdminRequest(opts.status, req, {
        auth: opts.auth,
        clientHost: info.remoteAddr.hostname,
        log: opts.log,
      }));
  let server = serve(opts.port, opts.tls);
  const port = server.addr.port;
  return {
    port,
    reloadTls: async (tls) => {
      if (opts.tls === undefined) return;
      // A refused pair throws here, before the running server is touched.
      checkPair(tls);
      // Deno.serve cannot change its certificate, nor (without unstable
      // flags) share its port: the port is shut from the old server's close
      // to the new one's bind, while requests in flight finish on the old.
      const closing = server.shutdown();
      for (let attempt = 0;; attempt++) {
        try {
          server = serve(port, tls);
          break;
        } catch (err) {
          if (!(err instanceof Deno.errors.AddrInUse) || attempt >= 100) {
            throw err;
          }
          await new Promise((r) => setTimeout(r, 10));
        }
      }
      await closing;
    },
    stop: () => server.shutdown(),
  };
}
