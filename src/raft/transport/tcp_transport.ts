import type { NodeId } from "../core/mod.ts";
import { ByteWriter } from "../wal/mod.ts";
import { concatBytes, writeAll } from "../../util/mod.ts";
import {
  checkAppMessageSize,
  type Envelope,
  envelopeBytes,
  FRAME_BYTES_MAX,
  FrameDecoder,
  FrameKind,
  messagesFrameLength,
  readAppPayload,
  readHelloPayload,
  readMessagesPayload,
  readProofPayload,
  SnapshotAssembler,
  writeAppFrame,
  writeFrame,
  writeHelloFrame,
  writeMessagesFrames,
  writeProofFrame,
  writeSnapshotFrames,
} from "./codec.ts";
import { CHALLENGE_BYTES, PeerCredentials } from "./peer_proof.ts";
import type {
  Address,
  InboundHandlers,
  Transport,
  TransportLogger,
} from "./transport.ts";

export interface TcpTransportOptions {
  nodeId: NodeId;
  listen: Address;
  peers: ReadonlyMap<NodeId, Address>;
  /** Bytes queued for one peer beyond which new frames are dropped. Default 64 MiB. */
  sendQueueBytesMax?: number;
  /** Default 50 ms, doubling per failed attempt up to backoffMaxMs (default 1 s). */
  backoffMinMs?: number;
  backoffMaxMs?: number;
  /** A Ping goes to a peer that was sent nothing for this long. Default 100 ms. */
  pingIntervalMs?: number;
  /**
   * A connection to a peer heard from before, but neither since for this
   * long nor since the connection opened, is dropped and opened again.
   * Default 1 s.
   */
  silenceMs?: number;
  /** A connection attempt gives up after this long. Default 1 s. */
  connectTimeoutMs?: number;
  /**
   * TLS on every connection, and a proof of the connecting node's
   * certificate before anything it sends is read (peer_proof.ts).
   */
  tls?: PeerCredentials;
  logger?: TransportLogger;
}

/** One outbound connection; messages to this peer only ever travel on it. */
class Peer {
  readonly id: NodeId;
  address: Address;
  conn: Deno.Conn | null = null;
  /** When `conn` was opened (performance.now()). */
  connectedAtMs = 0;
  connecting = false;
  failures = 0;
  nextAttemptMs = 0;
  lastSentMs = -Infinity;
  /** Envelopes of this loop turn, framed together by flush(). */
  pending: Envelope[] = [];
  /** The encoded length of each, and their sum. */
  pendingSizes: number[] = [];
  pendingBytes = 0;
  /** Framed bytes waiting for the socket. */
  queue: Uint8Array[] = [];
  queuedBytes = 0;
  writing = false;

  constructor(id: NodeId, address: Address) {
    this.id = id;
    this.address = address;
  }

  clearPending(): void {
    this.pending = [];
    this.pendingSizes = [];
    this.pendingBytes = 0;
  }
}

/**
 * Transport over TCP: one outbound connection per peer node, opened with a
 * Hello frame naming this node; inbound connections are read only. A dead
 * connection is retried with exponential backoff, and messages for it are
 * dropped meanwhile.
 */
export class TcpTransport implements Transport {
  readonly #nodeId: NodeId;
  readonly #listenAddress: Address;
  readonly #queueBytesMax: number;
  readonly #backoffMinMs: number;
  readonly #backoffMaxMs: number;
  readonly #pingIntervalMs: number;
  readonly #silenceMs: number;
  readonly #connectTimeoutMs: number;
  readonly #logger: TransportLogger | undefined;
  readonly #peers = new Map<NodeId, Peer>();
  readonly #lastHeard = new Map<NodeId, number>();
  readonly #inbound = new Set<Deno.Conn>();
  readonly #tasks = new Set<Promise<void>>();
  readonly #frame = new ByteWriter(1 << 16);
  #tls: PeerCredentials | undefined;
  #listener: Deno.Listener<Deno.Conn, Deno.NetAddr> | null = null;
  #handlers: InboundHandlers | null = null;
  #streamId = 0;
  #closed = false;

  constructor(options: TcpTransportOptions) {
    this.#nodeId = options.nodeId;
    this.#listenAddress = options.listen;
    this.#queueBytesMax = options.sendQueueBytesMax ?? 64 * 1024 * 1024;
    this.#backoffMinMs = options.backoffMinMs ?? 50;
    this.#backoffMaxMs = options.backoffMaxMs ?? 1000;
    this.#pingIntervalMs = options.pingIntervalMs ?? 100;
    this.#silenceMs = options.silenceMs ?? 1000;
    this.#connectTimeoutMs = options.connectTimeoutMs ?? 1000;
    this.#logger = options.logger;
    this.#tls = options.tls;
    this.setPeers(options.peers);
  }

  /** The port actually bound (useful when listening on port 0). */
  get port(): number {
    const addr = this.#listener?.addr;
    return addr === undefined ? this.#listenAddress.port : addr.port;
  }

  start(handlers: InboundHandlers): Promise<void> {
    this.#handlers = handlers;
    const address = {
      hostname: this.#listenAddress.hostname,
      port: this.#listenAddress.port,
    };
    this.#listener = this.#tls === undefined
      ? Deno.listen(address)
      : Deno.listenTls({
        ...address,
        cert: this.#tls.cert,
        key: this.#tls.key,
      });
    this.#track(this.#acceptLoop(this.#listener));
    return Promise.resolve();
  }

  /**
   * New connections, both ways, use `tls`; open ones keep what they proved.
   * A listener cannot change its certificate, so the port goes to a new
   * one: peers that dial in the instant between retry, as after any drop.
   */
  async reloadTls(tls: PeerCredentials): Promise<void> {
    const old = this.#listener;
    if (this.#tls === undefined || old === null || this.#closed) return;
    this.#tls = tls;
    // Unset first, so the old accept loop ends without a warning.
    this.#listener = null;
    old.close();
    const address = {
      hostname: this.#listenAddress.hostname,
      port: old.addr.port,
    };
    for (let attempt = 0;; attempt++) {
      try {
        this.#listener = Deno.listenTls({
          ...address,
          cert: tls.cert,
          key: tls.key,
        });
        break;
      } catch (err) {
        if (!(err instanceof Deno.errors.AddrInUse) || attempt >= 50) throw err;
        await new Promise((r) => setTimeout(r, 10));
      }
    }
    this.#track(this.#acceptLoop(this.#listener));
  }

  setPeers(peers: ReadonlyMap<NodeId, Address>): void {
    for (const [id, peer] of this.#peers) {
      if (!peers.has(id)) {
        this.#disconnect(peer);
        this.#peers.delete(id);
      }
    }
    for (const [id, address] of peers) {
      if (id === this.#nodeId) continue;
      const peer = this.#peers.get(id);
      if (peer === undefined) {
        this.#peers.set(id, new Peer(id, { ...address }));
      } else if (
        peer.address.hostname !== address.hostname ||
        peer.address.port !== address.port
      ) {
        peer.address = { ...address };
        this.#disconnect(peer);
      }
    }
  }

  send(to: NodeId, env: Envelope): boolean {
    const peer = this.#peers.get(to);
    if (peer === undefined || this.#closed) return false;
    if (peer.conn === null) {
      this.#maybeConnect(peer, performance.now());
      return false;
    }
    if (peer.queuedBytes > this.#queueBytesMax) return false;
    if (env.message.snapshot !== null) {
      // A snapshot goes out as its own chunk stream, ahead of this turn's batch.
      const w = new ByteWriter(1 << 16);
      writeSnapshotFrames(w, env, ++this.#streamId);
      return this.#enqueue(peer, w.view());
    }
    // Refused here rather than when the turn's frames are written, so that
    // the sender learns of it: a leader then probes the peer instead of
    // streaming appends (up to max in-flight × max size, per group) that
    // the queue would drop.
    const bytes = envelopeBytes(env);
    if (messagesFrameLength(bytes) > FRAME_BYTES_MAX) {
      this.#warn(
        `message of ${bytes} bytes for ${to} exceeds the ${FRAME_BYTES_MAX}-byte frame limit: dropped`,
      );
      return false;
    }
    if (
      peer.queuedBytes + peer.pendingBytes + bytes > this.#queueBytesMax
    ) {
      return false;
    }
    peer.pending.push(env);
    peer.pendingSizes.push(bytes);
    peer.pendingBytes += bytes;
    return true;
  }

  sendApp(to: NodeId, data: Uint8Array): boolean {
    checkAppMessageSize(data);
    const peer = this.#peers.get(to);
    if (peer === undefined || this.#closed) return false;
    const nowMs = performance.now();
    if (peer.conn === null) {
      this.#maybeConnect(peer, nowMs);
      return false;
    }
    // Straight onto the socket queue: app messages carry no Raft state, so nothing makes them wait for a turn.
    const w = new ByteWriter(data.length + 16);
    writeAppFrame(w, { to, data });
    if (!this.#enqueue(peer, w.view())) return false;
    peer.lastSentMs = nowMs;
    return true;
  }

  flush(nowMs: number): void {
    const now = performance.now();
    for (const peer of this.#peers.values()) {
      // A cut link fails no write: TCP retransmits on an ever longer
      // backoff, and the link carries nothing for seconds after it heals.
      // Every peer that knows us pings us, so its silence says this
      // connection is dead too. One never heard from may not know us yet.
      const heardMs = this.lastHeardMs(peer.id);
      const quietMs = now - Math.max(heardMs, peer.connectedAtMs);
      if (
        peer.conn !== null && heardMs > -Infinity && quietMs > this.#silenceMs
      ) {
        this.#warn(
          `nothing heard from ${peer.id} for ${
            Math.round(now - heardMs)
          } ms: reconnecting`,
        );
        this.#fail(peer);
      }
      if (peer.conn === null) {
        peer.clearPending();
        this.#maybeConnect(peer, nowMs);
        continue;
      }
      const w = this.#frame;
      w.reset();
      if (peer.pending.length > 0) {
        writeMessagesFrames(w, peer.pending, peer.pendingSizes);
        peer.clearPending();
      } else if (
        peer.queuedBytes === 0 &&
        nowMs - peer.lastSentMs >= this.#pingIntervalMs
      ) {
        writeFrame(w, FrameKind.Ping, () => {});
      }
      if (w.length > 0) {
        peer.lastSentMs = nowMs;
        this.#enqueue(peer, w.view().slice());
      }
    }
  }

  lastHeardMs(peer: NodeId): number {
    return this.#lastHeard.get(peer) ?? -Infinity;
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#listener?.close();
    for (const peer of this.#peers.values()) this.#disconnect(peer);
    for (const conn of this.#inbound) closeQuietly(conn);
    this.#inbound.clear();
    await Promise.all([...this.#tasks]);
  }

  #track(task: Promise<void>): void {
    this.#tasks.add(task);
    task.finally(() => this.#tasks.delete(task));
  }

  #warn(message: string): void {
    this.#logger?.warn(`raft transport ${this.#nodeId}: ${message}`);
  }

  /** Returns false when the peer's queue is full and `bytes` were dropped. */
  #enqueue(peer: Peer, bytes: Uint8Array): boolean {
    if (peer.queuedBytes + bytes.length > this.#queueBytesMax) return false;
    peer.queue.push(bytes);
    peer.queuedBytes += bytes.length;
    if (!peer.writing) this.#track(this.#writeLoop(peer));
    return true;
  }

  async #writeLoop(peer: Peer): Promise<void> {
    peer.writing = true;
    try {
      while (peer.queue.length > 0 && peer.conn !== null) {
        const conn = peer.conn;
        const bytes = concatBytes(peer.queue, peer.queuedBytes);
        peer.queue = [];
        peer.queuedBytes = 0;
        try {
          await writeAll(conn, bytes);
        } catch (err) {
          if (!this.#closed) this.#warn(`send to ${peer.id} failed: ${err}`);
          if (peer.conn === conn) this.#fail(peer);
        }
      }
    } finally {
      peer.writing = false;
    }
  }

  #maybeConnect(peer: Peer, nowMs: number): void {
    if (this.#closed || peer.connecting || peer.conn !== null) return;
    if (nowMs < peer.nextAttemptMs) return;
    peer.connecting = true;
    this.#track(this.#connect(peer));
  }

  async #connect(peer: Peer): Promise<void> {
    let conn: Deno.Conn;
    let proof: Uint8Array | null = null;
    const tls = this.#tls;
    try {
      const tcp = await Deno.connect({
        hostname: peer.address.hostname,
        port: peer.address.port,
        // A SYN into a cut link is retried for minutes.
        signal: AbortSignal.timeout(this.#connectTimeoutMs),
      });
      tcp.setNoDelay(true);
      conn = tcp;
      if (tls !== undefined) {
        conn = await Deno.startTls(tcp, {
          hostname: peer.address.hostname,
          caCerts: [...tls.caCerts],
        });
        proof = await this.#answerChallenge(conn, tls);
      }
    } catch (err) {
      // Refused or unreachable: expected while the peer is down; back off
      // quietly. A peer that fails TLS is not: say why.
      if (tls !== undefined && !isUnreachable(err)) {
        this.#warn(`TLS to ${peer.id} failed: ${err}`);
      }
      peer.connecting = false;
      this.#fail(peer);
      return;
    }
    peer.connecting = false;
    if (this.#closed || !this.#peers.has(peer.id)) {
      closeQuietly(conn);
      return;
    }
    peer.conn = conn;
    peer.connectedAtMs = performance.now();
    peer.failures = 0;
    const hello = new ByteWriter(16);
    writeHelloFrame(hello, this.#nodeId);
    peer.queue.unshift(hello.view());
    peer.queuedBytes += hello.length;
    if (proof !== null) {
      peer.queue.unshift(proof);
      peer.queuedBytes += proof.length;
    }
    if (!peer.writing) this.#track(this.#writeLoop(peer));
    // The peer writes nothing after its challenge: a read returns only at close, which is how death shows.
    this.#track(this.#watchClose(peer, conn));
  }

  /** Reads the receiver's challenge and frames this node's proof. */
  async #answerChallenge(
    conn: Deno.Conn,
    tls: PeerCredentials,
  ): Promise<Uint8Array> {
    const challenge = new Uint8Array(CHALLENGE_BYTES);
    const timeout = setTimeout(
      () => closeQuietly(conn),
      this.#connectTimeoutMs,
    );
    try {
      for (let got = 0; got < CHALLENGE_BYTES;) {
        const n = await conn.read(challenge.subarray(got));
        if (n === null) throw new Error("closed before its challenge");
        got += n;
      }
    } finally {
      clearTimeout(timeout);
    }
    const w = new ByteWriter(4096);
    writeProofFrame(w, tls.prove(challenge));
    return w.view().slice();
  }

  async #watchClose(peer: Peer, conn: Deno.Conn): Promise<void> {
    const buf = new Uint8Array(64);
    try {
      while ((await conn.read(buf)) !== null) { /* peer sends nothing */ }
    } catch {
      // Reset by peer: treated like a close.
    }
    if (peer.conn === conn) this.#fail(peer);
  }

  /** Drops the connection and schedules the next attempt with exponential backoff. */
  #fail(peer: Peer): void {
    this.#disconnect(peer);
    const delayMs = Math.min(
      this.#backoffMaxMs,
      this.#backoffMinMs * 2 ** Math.min(peer.failures, 16),
    );
    peer.failures++;
    peer.nextAttemptMs = performance.now() + delayMs;
  }

  #disconnect(peer: Peer): void {
    if (peer.conn !== null) closeQuietly(peer.conn);
    peer.conn = null;
    peer.queue = [];
    peer.queuedBytes = 0;
    peer.clearPending();
  }

  async #acceptLoop(
    listener: Deno.Listener<Deno.Conn, Deno.NetAddr>,
  ): Promise<void> {
    try {
      for await (const conn of listener) {
        if (this.#closed) {
          closeQuietly(conn);
          break;
        }
        this.#inbound.add(conn);
        this.#track(this.#readLoop(conn));
      }
    } catch (err) {
      if (!this.#closed && listener === this.#listener) {
        this.#warn(`accept failed: ${err}`);
      }
    }
  }

  async #readLoop(conn: Deno.Conn): Promise<void> {
    const decoder = new FrameDecoder();
    const assembler = new SnapshotAssembler();
    const buf = new Uint8Array(256 * 1024);
    let from: NodeId = 0;
    // With raft.tls nothing is read until the connecting node proves itself.
    let challenge: Uint8Array | null = null;
    // A reload mid-handshake does not mix two credentials in one check.
    const tls = this.#tls;
    try {
      if (tls !== undefined) {
        challenge = PeerCredentials.challenge();
        await writeAll(conn, challenge);
      }
      for (;;) {
        const n = await conn.read(buf);
        if (n === null) break;
        for (const frame of decoder.push(buf.subarray(0, n))) {
          if (challenge !== null) {
            if (frame.kind !== FrameKind.Proof) {
              throw new TypeError(
                `First frame has kind ${frame.kind}, expected the Proof raft.tls asks for`,
              );
            }
            const refusal = tls!.check(
              challenge,
              readProofPayload(frame.payload),
            );
            if (refusal !== null) {
              throw new TypeError(`Proof refused: ${refusal}`);
            }
            challenge = null;
            continue;
          }
          if (from === 0) {
            if (frame.kind !== FrameKind.Hello) {
              throw new TypeError(
                `First frame has kind ${frame.kind}, expected Hello`,
              );
            }
            from = readHelloPayload(frame.payload);
            continue;
          }
          this.#lastHeard.set(from, performance.now());
          if (frame.kind === FrameKind.Messages) {
            this.#handlers?.messages(from, readMessagesPayload(frame.payload));
          } else if (frame.kind === FrameKind.SnapChunk) {
            const env = assembler.add(frame.payload);
            if (env !== null) this.#handlers?.messages(from, [env]);
          } else if (frame.kind === FrameKind.App) {
            const app = readAppPayload(frame.payload);
            // A stale address book can route to the wrong node; what is not ours is dropped.
            if (app.to === this.#nodeId) this.#handlers?.app(from, app.data);
          } else if (frame.kind !== FrameKind.Ping) {
            throw new TypeError(`Unknown frame kind ${frame.kind}`);
          }
        }
      }
    } catch (err) {
      // A malformed frame closes this one connection; the peer reconnects.
      if (!this.#closed && !(err instanceof Deno.errors.ConnectionReset)) {
        this.#warn(`inbound connection from ${from} dropped: ${err}`);
      }
    } finally {
      this.#inbound.delete(conn);
      closeQuietly(conn);
    }
  }
}

function isUnreachable(err: unknown): boolean {
  return err instanceof Deno.errors.ConnectionRefused ||
    err instanceof Deno.errors.ConnectionReset ||
    err instanceof Deno.errors.TimedOut ||
    (err instanceof DOMException && err.name === "TimeoutError");
}

function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch (err) {
    // Already closed by the other side or by us: nothing left to release.
    if (!(err instanceof Deno.errors.BadResource)) throw err;
  }
}
