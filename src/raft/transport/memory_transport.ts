import type { NodeId } from "../core/mod.ts";
import { type Clock, realClock } from "../../util/mod.ts";
import { ByteWriter } from "../wal/mod.ts";
import {
  checkAppMessageSize,
  type Envelope,
  readAppPayload,
  readMessagesPayload,
  writeAppFrame,
  writeMessagesFrame,
} from "./codec.ts";
import type { Address, InboundHandlers, Transport } from "./transport.ts";

/**
 * Joins MemoryTransports of one process. Every delivery goes through the
 * wire codec, so receivers get deep copies and the codec is exercised.
 */
export class MemoryNetwork {
  readonly #nodes = new Map<NodeId, MemoryTransport>();
  readonly #cut = new Set<string>();
  /** What lastHeardMs answers in: the hosts' clock (a simulation's, or real time). */
  readonly clock: Clock;

  constructor(options: { clock?: Clock } = {}) {
    this.clock = options.clock ?? realClock;
  }

  /** Creates the transport of `nodeId` on this network. */
  transport(nodeId: NodeId): MemoryTransport {
    const t = new MemoryTransport(this, nodeId);
    this.#nodes.set(nodeId, t);
    return t;
  }

  /** Drops everything between `a` and `b`, both ways, until heal(). */
  cut(a: NodeId, b: NodeId): void {
    this.#cut.add(`${a}-${b}`);
    this.#cut.add(`${b}-${a}`);
  }

  heal(): void {
    this.#cut.clear();
  }

  /** @internal the running transport of `to` if `from` can reach it. */
  reach(from: NodeId, to: NodeId): MemoryTransport | undefined {
    if (this.#cut.has(`${from}-${to}`)) return undefined;
    const t = this.#nodes.get(to);
    return t?.running ? t : undefined;
  }

  detach(nodeId: NodeId, t: MemoryTransport): void {
    if (this.#nodes.get(nodeId) === t) this.#nodes.delete(nodeId);
  }
}

export class MemoryTransport implements Transport {
  readonly #network: MemoryNetwork;
  readonly #nodeId: NodeId;
  readonly #pending = new Map<NodeId, Envelope[]>();
  readonly #lastHeard = new Map<NodeId, number>();
  readonly #frame = new ByteWriter();
  #handlers: InboundHandlers | null = null;

  constructor(network: MemoryNetwork, nodeId: NodeId) {
    this.#network = network;
    this.#nodeId = nodeId;
  }

  get running(): boolean {
    return this.#handlers !== null;
  }

  start(handlers: InboundHandlers): Promise<void> {
    this.#handlers = handlers;
    return Promise.resolve();
  }

  setPeers(_peers: ReadonlyMap<NodeId, Address>): void {
    // Reachability is the network's business here; addresses mean nothing.
  }

  send(to: NodeId, env: Envelope): boolean {
    if (this.#network.reach(this.#nodeId, to) === undefined) return false;
    let list = this.#pending.get(to);
    if (list === undefined) {
      list = [];
      this.#pending.set(to, list);
    }
    list.push(env);
    return true;
  }

  sendApp(to: NodeId, data: Uint8Array): boolean {
    checkAppMessageSize(data);
    const from = this.#nodeId;
    if (this.#network.reach(from, to) === undefined) return false;
    const w = new ByteWriter(data.length + 16);
    writeAppFrame(w, { to, data });
    const { data: copy } = readAppPayload(w.view().subarray(5).slice());
    // Asynchronous like a socket: the receiver never runs inside the sender's call.
    queueMicrotask(() => this.#network.reach(from, to)?.deliverApp(from, copy));
    return true;
  }

  flush(nowMs: number): void {
    const batches = [...this.#pending];
    this.#pending.clear();
    for (const [to, envelopes] of batches) {
      const target = this.#network.reach(this.#nodeId, to);
      if (target === undefined) continue;
      const w = this.#frame;
      w.reset();
      writeMessagesFrame(w, envelopes);
      // Skip the 5-byte frame header: the payload is what a TCP receiver
      // decodes. A copy, as #frame is reused and the messages keep views of it.
      target.deliver(
        this.#nodeId,
        readMessagesPayload(w.view().slice(5)),
        nowMs,
      );
    }
  }

  /** @internal called by the sending side's flush. */
  deliver(from: NodeId, envelopes: Envelope[], nowMs: number): void {
    this.#lastHeard.set(from, nowMs);
    this.#handlers?.messages(from, envelopes);
  }

  /** @internal called by the sending side's sendApp. */
  deliverApp(from: NodeId, data: Uint8Array): void {
    this.#lastHeard.set(from, this.#network.clock.nowMs());
    this.#handlers?.app(from, data);
  }

  lastHeardMs(peer: NodeId): number {
    // Without sockets, liveness is reachability itself.
    return this.#network.reach(this.#nodeId, peer) === undefined
      ? (this.#lastHeard.get(peer) ?? -Infinity)
      : this.#network.clock.nowMs();
  }

  /** The in-memory network has no TLS to renew. */
  reloadTls(): Promise<void> {
    return Promise.resolve();
  }

  close(): Promise<void> {
    this.#handlers = null;
    this.#network.detach(this.#nodeId, this);
    return Promise.resolve();
  }
}
