/**
 * Request/response between brokers over the Raft host's application
 * messages (the same one connection per peer as Raft). Brokers use it to
 * hand controller commands to the controller's leader; delivery is best
 * effort, so every request has a timeout and callers retry.
 */
import { type Clock, realClock } from "../../util/mod.ts";

/*
 * The methods brokers serve, in one table so that no two share a number.
 * Each is handled beside the code that calls it.
 */
/** Has the controller's leader apply a command (node.ts). */
export const RPC_CONTROLLER_COMMAND = 1;
/** Asks the controller's leader to add the sender to its group (membership.ts). */
export const RPC_JOIN = 2;
/** Asks a replica whether its log of a group is complete, no gap open (reassignment.ts). */
export const RPC_REPLICA_COMPLETE = 3;
/** Answers with the controller group's voters, if this broker runs it (membership.ts). */
export const RPC_CONTROLLER_VOTERS = 4;
/** Reads whole batches of a replica's partition log (hosting.ts gap fill). */
export const RPC_READ_LOG = 5;
/** Has a partition's leader append a transaction marker (transactions/txn_markers.ts). */
export const RPC_WRITE_TXN_MARKER = 6;
/** How long a broker waits on another's answer, or on a command it proposes. */
export const RPC_TIMEOUT_MS = 5_000;

const KIND_REQUEST = 1;
const KIND_RESPONSE = 2;
const HEADER_BYTES = 1 + 4 + 1;

/** What the host offers: best-effort sends and a message callback. */
export interface AppChannel {
  sendApp(to: number, data: Uint8Array): boolean;
  onAppMessage(cb: (from: number, data: Uint8Array) => void): () => void;
}

function frameOf(
  header: { kind: number; id: number; method: number },
  body: Uint8Array,
): Uint8Array {
  const frame = new Uint8Array(HEADER_BYTES + body.length);
  const v = new DataView(frame.buffer);
  v.setUint8(0, header.kind);
  v.setUint32(1, header.id);
  v.setUint8(5, header.method);
  frame.set(body, HEADER_BYTES);
  return frame;
}

export class RpcError extends Error {
  override name = "RpcError";
}

/** Serves requests by `method` byte; answers with bytes. */
export type RpcHandler = (
  from: number,
  body: Uint8Array,
) => Promise<Uint8Array>;

export class Rpc {
  readonly #channel: AppChannel;
  readonly #handlers = new Map<number, RpcHandler>();
  readonly #pending = new Map<
    number,
    { resolve: (b: Uint8Array) => void; reject: (e: Error) => void }
  >();
  readonly #unsubscribe: () => void;
  readonly #clock: Clock;
  #nextId = 1;

  /** `clock` times out requests (default: real time). */
  constructor(channel: AppChannel, options: { clock?: Clock } = {}) {
    this.#channel = channel;
    this.#clock = options.clock ?? realClock;
    this.#unsubscribe = channel.onAppMessage((from, data) =>
      this.#receive(from, data)
    );
  }

  handle(method: number, handler: RpcHandler): void {
    this.#handlers.set(method, handler);
  }

  request(
    to: number,
    method: number,
    body: Uint8Array,
    opts: { timeoutMs: number },
  ): Promise<Uint8Array> {
    const id = this.#nextId++ >>> 0;
    const frame = frameOf({ kind: KIND_REQUEST, id, method }, body);
    return new Promise((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#pending.delete(id);
        reject(
          new RpcError(
            `Request ${method} to broker ${to} got no answer within ${opts.timeoutMs} ms`,
          ),
        );
      }, opts.timeoutMs);
      this.#pending.set(id, {
        resolve: (b) => {
          this.#clock.clearTimeout(timer);
          resolve(b);
        },
        reject: (e) => {
          this.#clock.clearTimeout(timer);
          reject(e);
        },
      });
      if (!this.#channel.sendApp(to, frame)) {
        this.#pending.get(id)?.reject(
          new RpcError(`Broker ${to} is not reachable`),
        );
        this.#pending.delete(id);
      }
    });
  }

  #receive(from: number, data: Uint8Array): void {
    if (data.length < HEADER_BYTES) return;
    const v = new DataView(data.buffer, data.byteOffset, data.byteLength);
    const kind = v.getUint8(0);
    const id = v.getUint32(1);
    const method = v.getUint8(5);
    const body = data.subarray(HEADER_BYTES);
    if (kind === KIND_RESPONSE) {
      const waiter = this.#pending.get(id);
      this.#pending.delete(id);
      waiter?.resolve(body);
      return;
    }
    const handler = this.#handlers.get(method);
    if (kind !== KIND_REQUEST || handler === undefined) return;
    handler(from, body).then((answer) => {
      this.#channel.sendApp(
        from,
        frameOf({ kind: KIND_RESPONSE, id, method }, answer),
      );
    }, (err) => {
      // A handler failure is a bug on this side; the caller times out.
      console.error(`raftq: rpc method ${method} from ${from} failed:`, err);
    });
  }

  close(): void {
    this.#unsubscribe();
    for (const waiter of this.#pending.values()) {
      waiter.reject(new RpcError("Closed"));
    }
    this.#pending.clear();
  }
}
