/**
 * The NATS JetStream peer rows of `deno task bench`: one nats-server with a
 * file-store stream (JetStream's default: no fsync per message, the page
 * cache is trusted), fed 1 KiB messages by the nats.js client with async
 * acks, then read back by a pull consumer. It answers "how does raftq
 * compare with another broker written for speed, on this machine, now".
 * And three clustered nats-servers with an R3 stream, one publish in flight,
 * for the replicated latency row.
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
import { freePorts } from "../tests/harness.ts";
import {
  LATENCY_MESSAGE_BYTES,
  type LatencyFigures,
  missing,
  sequential,
  spawnQuiet,
  whenUp,
} from "./bench_latency.ts";

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

/** Why the NATS rows cannot run here, or null when they can. */
export const natsUnavailable = () => missing(NATS_SERVER);

/** A JetStream-enabled nats-server on loopback `port`, storing in `storeDir`. */
function spawnNats(
  storeDir: string,
  port: number,
  extra: string[] = [],
): Deno.ChildProcess {
  return spawnQuiet(NATS_SERVER, [
    "-js",
    "-sd",
    storeDir,
    "-a",
    "127.0.0.1",
    "-p",
    String(port),
    ...extra,
  ]);
}

const connectWhenUp = (port: number) =>
  whenUp("nats-server", () => connect({ servers: `127.0.0.1:${port}` }));

/**
 * Starts nats-server on a free port with its own store directory, publishes
 * `messageBytes` messages for `seconds`, consumes them all, and removes
 * everything it made.
 */
export async function benchNats(
  opts: { messageBytes: number; seconds: number },
): Promise<NatsFigures> {
  const storeDir = await Deno.makeTempDir({ prefix: "raftq-bench-nats-" });
  const port = freePorts(1)[0]!;
  const server = spawnNats(storeDir, port);
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

/**
 * One JetStream publish at a time, awaiting its ack, to a file-store stream
 * with three replicas on three clustered nats-servers of its own.
 */
export async function benchNatsR3(seconds: number): Promise<LatencyFigures> {
  const dir = await Deno.makeTempDir({ prefix: "raftq-bench-nats-r3-" });
  const ports = freePorts(6);
  const clientPorts = ports.slice(0, 3);
  const routePorts = ports.slice(3);
  const routes = routePorts.map((p) => `nats://127.0.0.1:${p}`).join(",");
  const servers = clientPorts.map((port, i) =>
    spawnNats(`${dir}/n${i}`, port, [
      "--server_name",
      `n${i}`,
      "--cluster_name",
      "bench",
      "--cluster",
      `nats://127.0.0.1:${routePorts[i]}`,
      "--routes",
      routes,
    ])
  );
  let nc: NatsConnection | undefined;
  try {
    nc = await connectWhenUp(clientPorts[0]!);
    // JetStream answers, and the stream can be added, only once the servers
    // have formed a meta group and elected its leader.
    const conn = nc;
    await whenUp(
      "the JetStream cluster",
      async () =>
        (await jetstreamManager(conn)).streams.add({
          name: "latency",
          subjects: ["latency"],
          storage: StorageType.File,
          num_replicas: 3,
        }),
    );
    const js = jetstream(nc);
    const data = new Uint8Array(LATENCY_MESSAGE_BYTES).fill(0x61);
    return await sequential(seconds, async () => {
      await js.publish("latency", data);
    });
  } finally {
    await nc?.close();
    for (const s of servers) s.kill("SIGTERM");
    await Promise.all(servers.map((s) => s.status));
    await Deno.remove(dir, { recursive: true });
  }
}
