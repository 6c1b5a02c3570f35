/**
 * The NATS JetStream peer row of `deno task bench`: one nats-server with a
 * file-store stream (JetStream's default: no fsync per message, the page
 * cache is trusted), fed 1 KiB messages by the nats.js client with async
 * acks, then read back by a pull consumer. It answers "how does raftq
 * compare with another broker written for speed, on this machine, now".
 */
import {
  connect,
  createInbox,
  type NatsConnection,
} from "@nats-io/transport-node";
import {
  AckPolicy,
  DeliverPolicy,
  jetstream,
  jetstreamManager,
  StorageType,
} from "@nats-io/jetstream";

const NATS_SERVER = "/usr/sbin/nats-server";
const STREAM = "bench";
/**
 * Publishes awaiting their ack at once: nats.go's PublishAsyncMaxPending
 * default. Each publish carries its own reply subject under one wildcard
 * subscription, as PublishAsync does, rather than one request (and one
 * timer and error object) per message.
 */
export const NATS_WINDOW = 4000;
/** Messages a pull consumer asks for at a time. */
const CONSUME_BATCH = 10_000;

export interface NatsFigures {
  publish: {
    msgs: number;
    bytes: number;
    elapsed: number;
    latencies: number[];
  };
  consume: { msgs: number; bytes: number; elapsed: number };
}

/** Why the NATS row cannot run here, or null when it can. */
export async function natsUnavailable(): Promise<string | null> {
  try {
    await Deno.stat(NATS_SERVER);
    return null;
  } catch {
    return `${NATS_SERVER} is missing (apt-get install nats-server)`;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (listener.addr as Deno.NetAddr).port;
  listener.close();
  return port;
}

async function connectWhenUp(port: number): Promise<NatsConnection> {
  const deadline = performance.now() + 10_000;
  for (;;) {
    try {
      return await connect({ servers: `127.0.0.1:${port}` });
    } catch (error) {
      if (performance.now() > deadline) {
        throw new Error(`nats-server did not accept connections on ${port}`, {
          cause: error,
        });
      }
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

/**
 * Starts nats-server on a free port with its own store directory, publishes
 * `messageBytes` messages for `seconds`, consumes them all, and removes
 * everything it made.
 */
export async function benchNats(
  opts: { messageBytes: number; seconds: number },
): Promise<NatsFigures> {
  const storeDir = await Deno.makeTempDir({ prefix: "raftq-bench-nats-" });
  const port = freePort();
  const server = new Deno.Command(NATS_SERVER, {
    args: ["-js", "-sd", storeDir, "-a", "127.0.0.1", "-p", String(port)],
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
  try {
    const nc = await connectWhenUp(port);
    try {
      const jsm = await jetstreamManager(nc);
      await jsm.streams.add({
        name: STREAM,
        subjects: [STREAM],
        storage: StorageType.File,
      });
      const publish = await publishAsync(nc, opts);
      await jsm.consumers.add(STREAM, {
        durable_name: "bench",
        ack_policy: AckPolicy.None,
        deliver_policy: DeliverPolicy.All,
      });
      const consumer = await jetstream(nc).consumers.get(STREAM, "bench");
      const start = performance.now();
      let msgs = 0;
      let bytes = 0;
      const messages = await consumer.consume({ max_messages: CONSUME_BATCH });
      for await (const m of messages) {
        msgs++;
        bytes += m.data.length;
        if (msgs >= publish.msgs) break;
      }
      const consume = {
        msgs,
        bytes,
        elapsed: (performance.now() - start) / 1000,
      };
      return { publish, consume };
    } finally {
      await nc.close();
    }
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await Deno.remove(storeDir, { recursive: true });
  }
}

/** Keeps NATS_WINDOW publishes unacknowledged until `seconds` are over. */
function publishAsync(
  nc: NatsConnection,
  opts: { messageBytes: number; seconds: number },
): Promise<NatsFigures["publish"]> {
  const data = new Uint8Array(opts.messageBytes).fill(0x61);
  const prefix = createInbox();
  const sentAt: number[] = [];
  const latencies: number[] = [];
  let sent = 0;
  let acked = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const { promise, resolve, reject } = Promise.withResolvers<
    NatsFigures["publish"]
  >();
  const decoder = new TextDecoder();
  const refill = () => {
    while (sent - acked < NATS_WINDOW && performance.now() < end) {
      sentAt.push(performance.now());
      nc.publish(STREAM, data, { reply: `${prefix}.${sent++}` });
    }
    if (sent === acked) {
      sub.unsubscribe();
      resolve({
        msgs: acked,
        bytes: acked * opts.messageBytes,
        elapsed: (performance.now() - start) / 1000,
        latencies: latencies.sort((a, b) => a - b),
      });
    }
  };
  const sub = nc.subscribe(`${prefix}.*`, {
    callback: (error, msg) => {
      const ack = error === null ? JSON.parse(decoder.decode(msg.data)) : null;
      if (ack === null || ack.error !== undefined) {
        sub.unsubscribe();
        reject(
          new Error(
            `JetStream refused a publish: ${
              error ?? JSON.stringify(ack.error)
            }`,
          ),
        );
        return;
      }
      const id = Number(msg.subject.slice(prefix.length + 1));
      latencies.push(performance.now() - sentAt[id]!);
      acked++;
      refill();
    },
  });
  refill();
  return promise;
}
