/**
 * The one-request-in-flight rows of `deno task bench`: how long one durable
 * write takes when nothing else queues behind it, for raftq and for two
 * peers run in the same script. Redis with `appendfsync always` answers an
 * XADD only after fdatasync, so it is the floor for one fsynced append on
 * this disk; NATS JetStream R3 replicates to a quorum but does not fsync,
 * so raftq RF=3 (which must) meeting its p50 is a demanding yardstick.
 */
import { buildRecordBatch } from "../src/protocol/mod.ts";
import type { KafkaClient } from "../src/client/mod.ts";
import { concatBytes, writeAll } from "../src/util/mod.ts";
import { freePorts } from "../tests/harness.ts";
import { waitFor } from "../tests/cluster_harness.ts";

const REDIS_SERVER = "/usr/bin/redis-server";
export const LATENCY_MESSAGE_BYTES = 1024;

export interface LatencyFigures {
  msgs: number;
  bytes: number;
  elapsed: number;
  /** Ascending, in ms. */
  latencies: number[];
}

/** Calls `send` back to back for `seconds`, timing each call. */
export async function sequential(
  seconds: number,
  send: () => Promise<void>,
): Promise<LatencyFigures> {
  // Warm the path (connections, JIT, page cache) before timing it.
  for (let i = 0; i < 50; i++) await send();
  const latencies: number[] = [];
  const start = performance.now();
  const end = start + seconds * 1000;
  while (performance.now() < end) {
    const t0 = performance.now();
    await send();
    latencies.push(performance.now() - t0);
  }
  const elapsed = (performance.now() - start) / 1000;
  return {
    msgs: latencies.length,
    bytes: latencies.length * LATENCY_MESSAGE_BYTES,
    elapsed,
    latencies: latencies.sort((a, b) => a - b),
  };
}

/** One acks=all 1 KiB record at a time to `topic`-0 with raftq's client. */
export function latencyOwn(
  client: KafkaClient,
  topic: string,
  seconds: number,
): Promise<LatencyFigures> {
  const batch = buildRecordBatch([
    { value: new Uint8Array(LATENCY_MESSAGE_BYTES).fill(0x61) },
  ]);
  return sequential(seconds, async () => {
    await client.produce(topic, 0, batch, { acks: -1 });
  });
}

/** Why a peer binary cannot run here, or null when it can. */
export async function missing(binary: string): Promise<string | null> {
  try {
    await Deno.stat(binary);
    return null;
  } catch {
    return `${binary} is missing (bash scripts/setup_test_deps.sh)`;
  }
}
export const redisUnavailable = () => missing(REDIS_SERVER);

/** `attempt` again until it stops throwing: a server just spawned. */
export const whenUp = <T>(what: string, attempt: () => Promise<T>) =>
  waitFor(what, attempt, { timeoutMs: 10_000, intervalMs: 50 });

/** Spawns a peer server whose output nobody reads. */
export function spawnQuiet(binary: string, args: string[]): Deno.ChildProcess {
  return new Deno.Command(binary, {
    args,
    stdin: "null",
    stdout: "null",
    stderr: "null",
  }).spawn();
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();

/**
 * Reads one RESP reply from `conn`: enough of the protocol for XADD's bulk
 * string and an error line.
 */
class RespReader {
  #buf: Uint8Array = new Uint8Array(0);
  readonly #conn: Deno.Conn;
  readonly #chunk = new Uint8Array(4096);
  constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  async #fill(): Promise<void> {
    const n = await this.#conn.read(this.#chunk);
    if (n === null) throw new Error("redis closed the connection");
    this.#buf = concatBytes([this.#buf, this.#chunk.subarray(0, n)]);
  }

  async #line(): Promise<string> {
    for (;;) {
      const crlf = this.#buf.indexOf(0x0a);
      if (crlf >= 0) {
        const line = decoder.decode(this.#buf.subarray(0, crlf - 1));
        this.#buf = this.#buf.subarray(crlf + 1);
        return line;
      }
      await this.#fill();
    }
  }

  async reply(): Promise<void> {
    const line = await this.#line();
    if (line.startsWith("-")) throw new Error(`redis: ${line.slice(1)}`);
    if (!line.startsWith("$")) return;
    const length = Number(line.slice(1));
    while (this.#buf.length < length + 2) await this.#fill();
    this.#buf = this.#buf.subarray(length + 2);
  }
}

function respCommand(args: (string | Uint8Array)[]): Uint8Array {
  const parts: Uint8Array[] = [encoder.encode(`*${args.length}\r\n`)];
  for (const a of args) {
    const bytes = typeof a === "string" ? encoder.encode(a) : a;
    parts.push(
      encoder.encode(`$${bytes.length}\r\n`),
      bytes,
      encoder.encode("\r\n"),
    );
  }
  return concatBytes(parts);
}

/**
 * One `XADD` of a 1 KiB field at a time to a redis-server of its own that
 * fsyncs its append-only file before every answer.
 */
export async function benchRedis(seconds: number): Promise<LatencyFigures> {
  const dir = await Deno.makeTempDir({ prefix: "raftq-bench-redis-" });
  const port = freePorts(1)[0]!;
  const server = spawnQuiet(REDIS_SERVER, [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    "--appendonly",
    "yes",
    "--appendfsync",
    "always",
  ]);
  try {
    const conn = await whenUp(
      "redis-server",
      () => Deno.connect({ hostname: "127.0.0.1", port }),
    );
    try {
      conn.setNoDelay(true);
      const reader = new RespReader(conn);
      const xadd = respCommand([
        "XADD",
        "bench",
        "*",
        "v",
        new Uint8Array(LATENCY_MESSAGE_BYTES).fill(0x61),
      ]);
      return await sequential(seconds, async () => {
        await writeAll(conn, xadd);
        await reader.reply();
      });
    } finally {
      conn.close();
    }
  } finally {
    server.kill("SIGTERM");
    await server.status;
    await Deno.remove(dir, { recursive: true });
  }
}
