/**
 * One Kafka client listener: accepts connections (listeners.ts), splits each
 * stream into frames, and hands every request to the dispatcher as soon as it
 * arrives, so that requests pipelined on one connection are processed
 * concurrently (one fsync can cover them all) while their responses still go
 * out in request order, as Kafka clients require.
 */
import {
  FrameDecoder,
  FrameTooLargeError,
  writeFrames,
} from "../protocol/mod.ts";
import type { CertifiedKey, ClientConn, ClientListener } from "./listeners.ts";
import { newSession, type Session } from "./security/session.ts";

/** What the dispatcher answers: a size-prefixed frame, or nothing (acks=0). */
export type Reply = Uint8Array | null;

/**
 * Handles one request frame (without its size prefix). Throwing closes the
 * connection: that is the answer to a malformed request.
 */
export type Dispatch = (
  frame: Uint8Array,
  conn: ConnectionInfo,
) => Promise<Reply>;

export interface ConnectionInfo {
  readonly id: number;
  readonly remote: string;
  /** The listener the connection came in on. */
  readonly listener: string;
  /** Who the connection authenticated as; what SASL is in the middle of. */
  readonly session: Session;
  /** Closes the connection once the replies already dispatched are written. */
  closeAfterReplies(): void;
}

export interface ServerOptions {
  /** Where connections come from. */
  socket: ClientListener;
  /** The listener's name, handed to the dispatcher with every request. */
  listener: string;
  /**
   * A verified client certificate authenticates its connection: its subject
   * is the principal (an SSL listener; on SASL_SSL, SASL says who it is).
   */
  certificatePrincipals: boolean;
  maxFrameBytes: number;
  /** Shared by every listener of a broker: limits.max_connections is broker-wide. */
  connections: ConnectionCount;
  maxInflightRequests: number;
  dispatch: Dispatch;
  log: (msg: string) => void;
}

/**
 * Each connection reads into buffers of READ_CHUNK_BYTES (several 64 KiB
 * produce batches per read) and takes a new one when less than
 * READ_MIN_BYTES is left. Frames are views into these buffers, so a buffer
 * is never reused; filling each one nearly full halves what is allocated
 * (and collected) per byte received, compared with a new buffer of twice
 * the read size whenever one read's worth no longer fits.
 */
const READ_CHUNK_BYTES = 512 * 1024;
const READ_MIN_BYTES = 32 * 1024;

/** Open client connections of a broker, across its listeners. */
export interface ConnectionCount {
  open: number;
  readonly max: number;
}

/** The dispatcher asked for the close: nothing went wrong on the wire. */
class ClosedAfterReplyError extends Error {
  override name = "ClosedAfterReplyError";
}

/** A dispatched request; `reply` is set once it has settled. */
interface InFlight {
  readonly settled: Promise<void>;
  done: boolean;
  reply: Reply;
}

export class KafkaServer {
  readonly #opts: ServerOptions;
  readonly #conns = new Map<number, ClientConn>();
  #nextConnId = 1;
  #accepted = 0;
  #accepting: Promise<void> | null = null;
  #stopped = false;

  constructor(opts: ServerOptions) {
    this.#opts = opts;
  }

  get port(): number {
    return this.#opts.socket.port;
  }

  /** Connections open now. */
  get connections(): number {
    return this.#conns.size;
  }

  /** Connections accepted since start (refused ones not counted). */
  get accepted(): number {
    return this.#accepted;
  }

  start(): void {
    this.#accepting = this.#acceptLoop();
  }

  /** Serves new connections with another certificate (SIGHUP). */
  reloadTls(pair: CertifiedKey & { ca?: string }): Promise<void> {
    if (this.#stopped) return Promise.resolve();
    return this.#opts.socket.reload(pair);
  }

  async #acceptLoop(): Promise<void> {
    while (!this.#stopped) {
      let conn: ClientConn;
      try {
        conn = await this.#opts.socket.accept();
      } catch (err) {
        if (this.#stopped) return;
        this.#opts.log(`accept failed: ${(err as Error).message}`);
        continue;
      }
      const count = this.#opts.connections;
      if (count.open >= count.max) {
        this.#opts.log(
          `refusing connection: ${count.open} open, limits.max_connections is ${count.max}`,
        );
        conn.close();
        continue;
      }
      this.#accepted++;
      const id = this.#nextConnId++;
      this.#conns.set(id, conn);
      count.open++;
      this.#serve(id, conn).finally(() => {
        this.#conns.delete(id);
        count.open--;
      });
    }
  }

  async #serve(id: number, conn: ClientConn): Promise<void> {
    const addr = conn.remoteAddr as Deno.NetAddr;
    let closing = false;
    const session = newSession(addr.hostname);
    if (this.#opts.certificatePrincipals && conn.peerSubject !== undefined) {
      session.principal = `User:${conn.peerSubject}`;
    }
    const info: ConnectionInfo = {
      id,
      remote: `${addr.hostname}:${addr.port}`,
      listener: this.#opts.listener,
      session,
      closeAfterReplies: () => (closing = true),
    };
    const decoder = new FrameDecoder({
      maxFrameBytes: this.#opts.maxFrameBytes,
      chunkBytes: READ_CHUNK_BYTES,
    });
    // Replies in request order; `maxInflightRequests` bounds how far reading
    // runs ahead of writing.
    const pending: InFlight[] = [];
    // An object, so TypeScript does not narrow it across the closures.
    const state: { broken: Error | null } = { broken: null };
    const fail = (err: Error) => {
      state.broken ??= err;
      try {
        conn.close();
      } catch {
        // Closing twice is harmless; the read loop sees the close and ends.
      }
    };
    // Pipelined produce requests settle together (one fsync covers them),
    // so every reply that is ready goes out in one write, not one each.
    const drain = async () => {
      while (pending.length > 0 && state.broken === null) {
        await pending[0]!.settled;
        const ready: Uint8Array[] = [];
        while (pending.length > 0 && pending[0]!.done) {
          const reply = pending.shift()!.reply;
          if (reply !== null) ready.push(reply);
        }
        await writeFrames(conn, ready);
        if (closing) fail(new ClosedAfterReplyError());
      }
    };
    // Never rejects: failures close the connection through `fail`.
    let writer: Promise<void> = Promise.resolve();
    try {
      while (state.broken === null) {
        const buf = decoder.writable(READ_MIN_BYTES);
        const n = await conn.read(buf);
        if (n === null) break;
        decoder.commit(n);
        for (
          let frame = decoder.next();
          frame !== null;
          frame = decoder.next()
        ) {
          const entry: InFlight = {
            settled: this.#opts.dispatch(frame, info).then((reply) => {
              entry.done = true;
              entry.reply = reply;
            }, fail),
            done: false,
            reply: null,
          };
          pending.push(entry);
          if (pending.length === 1) writer = writer.then(drain).catch(fail);
          if (pending.length >= this.#opts.maxInflightRequests) await writer;
        }
      }
      await writer;
    } catch (err) {
      if (state.broken === null) fail(err as Error);
    }
    const broken = state.broken;
    if (
      broken !== null && !this.#stopped &&
      !(broken instanceof ClosedAfterReplyError)
    ) {
      const why = broken instanceof FrameTooLargeError
        ? broken.message
        : `${broken.name}: ${broken.message}`;
      this.#opts.log(`closing connection ${info.remote}: ${why}`);
    }
    fail(new Error("connection finished"));
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    this.#opts.socket.close();
    for (const conn of this.#conns.values()) {
      try {
        conn.close();
      } catch {
        // The connection's own loop may have closed it first.
      }
    }
    await this.#accepting;
  }
}
