/**
 * Where a KafkaServer's connections come from: Deno.listen for plain TCP,
 * node:tls for TLS. Deno.listenTls can neither ask for client certificates
 * nor change its certificate, and fetch responses leave it at about half
 * node:tls' rate (kcat consuming over SASL_SSL, `deno task bench`).
 */
import { X509Certificate } from "node:crypto";
import tls from "node:tls";
import type { ClientAuth } from "../config/mod.ts";

/** What the server reads and writes; a Deno.Conn is one as it stands. */
export interface ClientConn {
  read(into: Uint8Array): Promise<number | null>;
  write(bytes: Uint8Array): Promise<number>;
  close(): void;
  readonly remoteAddr: Deno.Addr;
  /**
   * The subject of the client certificate the CA vouched for, as RFC 2253
   * text ("CN=alice,O=acme"); absent without one.
   */
  readonly peerSubject?: string;
}

export interface CertifiedKey {
  cert: string;
  key: string;
}

export interface ClientTls extends CertifiedKey {
  clientAuth: ClientAuth;
  /** PEM CA certificates client certificates must chain to. */
  ca?: string;
}

export interface ClientListener {
  readonly port: number;
  /** Rejects when accepting failed, and once the listener is closed. */
  accept(): Promise<ClientConn>;
  /**
   * New connections are served with `pair` (and `ca`); open ones keep what
   * they have. A pair TLS refuses throws at once, and nothing changes.
   */
  reload(pair: CertifiedKey & { ca?: string }): Promise<void>;
  close(): void;
}

export interface ListenOptions {
  hostname: string;
  port: number;
  tls?: ClientTls;
  log: (msg: string) => void;
}

export function openListener(opts: ListenOptions): Promise<ClientListener> {
  return opts.tls === undefined
    ? Promise.resolve(new TcpListener(opts))
    : TlsListener.open(opts, opts.tls);
}

/**
 * Throws what is wrong with a certificate, key and CA that cannot be
 * served. node:tls would take them all and fail every handshake instead;
 * a throwaway Deno listener checks the pair.
 */
export function checkPair(pair: CertifiedKey & { ca?: string }): void {
  Deno.listenTls({
    hostname: "127.0.0.1",
    port: 0,
    cert: pair.cert,
    key: pair.key,
  }).close();
  if (pair.ca !== undefined) new X509Certificate(pair.ca);
}

class TcpListener implements ClientListener {
  readonly #listener: Deno.TcpListener;

  constructor(opts: ListenOptions) {
    this.#listener = Deno.listen({
      hostname: opts.hostname,
      port: opts.port,
      transport: "tcp",
    });
  }

  get port(): number {
    return (this.#listener.addr as Deno.NetAddr).port;
  }

  async accept(): Promise<ClientConn> {
    const conn = await this.#listener.accept();
    // Replies are whole frames written at once; Nagle would only delay them.
    conn.setNoDelay(true);
    return conn;
  }

  /** A plain listener has no certificate to change. */
  reload(): Promise<void> {
    return Promise.resolve();
  }

  close(): void {
    this.#listener.close();
  }
}

/**
 * TLS, asking for client certificates unless clientAuth is "none".
 * "required" fails the handshake of a client without one the CA vouches
 * for; "requested" lets a client without a certificate in, but not one
 * whose certificate fails the check. A handshake that fails (bad bytes
 * included) is logged and ends its own connection only.
 */
class TlsListener implements ClientListener {
  readonly #server: tls.Server;
  readonly port: number;
  readonly #ready: ClientConn[] = [];
  readonly #waiting: {
    resolve: (conn: ClientConn) => void;
    reject: (err: Error) => void;
  }[] = [];
  #closed = false;

  private constructor(server: tls.Server, port: number) {
    this.#server = server;
    this.port = port;
  }

  static open(opts: ListenOptions, auth: ClientTls): Promise<TlsListener> {
    checkPair(auth);
    const server = tls.createServer({
      cert: auth.cert,
      key: auth.key,
      ...(auth.ca === undefined ? {} : { ca: auth.ca }),
      requestCert: auth.clientAuth !== "none",
      rejectUnauthorized: auth.clientAuth === "required",
    });
    return new Promise((resolve, reject) => {
      server.once("error", reject);
      server.listen({ host: opts.hostname, port: opts.port }, () => {
        server.off("error", reject);
        const port = (server.address() as { port: number }).port;
        const listener = new TlsListener(server, port);
        server.on("secureConnection", (socket) => {
          const why = listener.#refusal(socket);
          if (why === null) return listener.#hand(new NodeTlsConn(socket));
          opts.log(`refusing connection ${peer(socket)}: ${why}`);
          socket.destroy();
        });
        server.on("tlsClientError", (err, socket) => {
          // Once a handshake has failed, the TLS socket no longer knows its
          // peer; the TCP socket under it still does.
          const under = (socket as { _parent?: Parameters<typeof peer>[0] })
            ._parent;
          opts.log(
            `TLS handshake with ${
              peer(under ?? socket)
            } failed: ${err.message}`,
          );
        });
        server.on("error", (err) => opts.log(`listener error: ${err.message}`));
        resolve(listener);
      });
    });
  }

  /** Why a connection that finished its handshake is not served. */
  #refusal(socket: tls.TLSSocket): string | null {
    if (socket.authorized) return null;
    const presented = socket.getPeerX509Certificate() !== undefined;
    return presented
      ? `client certificate refused: ${socket.authorizationError}`
      : null;
  }

  #hand(conn: ClientConn): void {
    if (this.#closed) return conn.close();
    const waiter = this.#waiting.shift();
    if (waiter === undefined) this.#ready.push(conn);
    else waiter.resolve(conn);
  }

  accept(): Promise<ClientConn> {
    if (this.#closed) return Promise.reject(new Deno.errors.BadResource());
    const conn = this.#ready.shift();
    if (conn !== undefined) return Promise.resolve(conn);
    return new Promise((resolve, reject) => {
      this.#waiting.push({ resolve, reject });
    });
  }

  // deno-lint-ignore require-await
  async reload(pair: CertifiedKey & { ca?: string }): Promise<void> {
    if (this.#closed) return;
    checkPair(pair);
    this.#server.setSecureContext({
      cert: pair.cert,
      key: pair.key,
      ...(pair.ca === undefined ? {} : { ca: pair.ca }),
    });
  }

  close(): void {
    this.#closed = true;
    this.#server.close();
    for (const conn of this.#ready.splice(0)) conn.close();
    for (const waiter of this.#waiting.splice(0)) {
      waiter.reject(new Deno.errors.BadResource("listener closed"));
    }
  }
}

function peer(
  socket: {
    remoteAddress?: string | undefined;
    remotePort?: number | undefined;
  },
): string {
  return `${socket.remoteAddress}:${socket.remotePort}`;
}

/**
 * Socket data is queued until read; past QUEUE_HIGH_BYTES the socket is
 * paused, so a client that writes faster than the broker reads is held back
 * by TCP, as a Deno.Conn would hold it back.
 */
const QUEUE_HIGH_BYTES = 1024 * 1024;

class NodeTlsConn implements ClientConn {
  readonly #socket: tls.TLSSocket;
  readonly remoteAddr: Deno.NetAddr;
  readonly peerSubject?: string;
  readonly #chunks: Uint8Array[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;

  constructor(socket: tls.TLSSocket) {
    this.#socket = socket;
    socket.setNoDelay(true);
    this.remoteAddr = {
      transport: "tcp",
      hostname: socket.remoteAddress ?? "",
      port: socket.remotePort ?? 0,
    };
    const cert = socket.authorized
      ? socket.getPeerX509Certificate()
      : undefined;
    if (cert !== undefined) this.peerSubject = rfc2253(cert.subject);
    socket.on("data", (chunk: Uint8Array) => {
      this.#chunks.push(chunk);
      this.#queued += chunk.length;
      if (this.#queued > QUEUE_HIGH_BYTES) socket.pause();
      this.#wakeReader();
    });
    const ended = () => {
      this.#ended = true;
      this.#wakeReader();
    };
    socket.on("end", ended);
    socket.on("close", ended);
    socket.on("error", (err: Error) => {
      this.#error ??= err;
      this.#wakeReader();
    });
  }

  #wakeReader(): void {
    const wake = this.#wake;
    this.#wake = null;
    wake?.();
  }

  async read(into: Uint8Array): Promise<number | null> {
    while (this.#chunks.length === 0) {
      if (this.#error !== null) throw this.#error;
      if (this.#ended) return null;
      await new Promise<void>((wake) => (this.#wake = wake));
    }
    let n = 0;
    while (n < into.length && this.#chunks.length > 0) {
      const chunk = this.#chunks[0]!;
      const take = Math.min(chunk.length, into.length - n);
      into.set(chunk.subarray(0, take), n);
      n += take;
      if (take === chunk.length) this.#chunks.shift();
      else this.#chunks[0] = chunk.subarray(take);
    }
    this.#queued -= n;
    if (this.#queued <= QUEUE_HIGH_BYTES && this.#socket.isPaused()) {
      this.#socket.resume();
    }
    return n;
  }

  write(bytes: Uint8Array): Promise<number> {
    return new Promise((resolve, reject) => {
      this.#socket.write(
        bytes,
        (err) => err ? reject(err) : resolve(bytes.length),
      );
    });
  }

  close(): void {
    this.#ended = true;
    this.#socket.destroy();
    this.#wakeReader();
  }
}

/** RFC 2253 special characters, escaped with a backslash inside a value. */
const SPECIAL = /[,+"\\<>;]/g;

/**
 * A subject as node:tls gives it (one "type=value" per line, the most
 * general first) in the form Kafka names an SSL principal: most specific
 * first, comma separated, special characters escaped.
 */
export function rfc2253(subject: string): string {
  return subject.split("\n").filter((line) => line !== "").reverse().map(
    (line) => {
      const eq = line.indexOf("=");
      const value = line.slice(eq + 1).replace(SPECIAL, (c) => `\\${c}`)
        .replace(/^([ #])/, "\\$1").replace(/ $/, "\\ ");
      return `${line.slice(0, eq)}=${value}`;
    },
  ).join(",");
}
