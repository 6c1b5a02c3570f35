/**
 * End-to-end test harness: starts real raftq broker processes (main.ts serve)
 * on loopback with a free port and a temporary data directory, and runs real
 * client tools (kcat) against them.
 */
import type { KafkaClient } from "../src/client/mod.ts";
import {
  completeBatchSize,
  FrameDecoder,
  readBatchHeader,
} from "../src/protocol/mod.ts";

const ROOT = new URL("..", import.meta.url).pathname;
const SERVING = /serving Kafka on [^\s]+:(\d+)/;
const SERVING_ADMIN = /serving admin (HTTPS?) on [^\s]+:(\d+)/;
const LOG_KEEP_BYTES = 512 * 1024;

export interface BrokerProcess {
  readonly port: number;
  /** The admin HTTP listener's port; 0 when it was not enabled. */
  readonly adminPort: number;
  /** http://127.0.0.1:<adminPort>, https:// with admin.tls. */
  readonly adminUrl: string;
  readonly bootstrap: string;
  readonly dataDir: string;
  /** Everything the broker wrote to stderr so far. */
  logs(): string;
  /** Sends `signal` without waiting for the broker to exit (SIGSTOP, SIGCONT). */
  signal(signal: Deno.Signal): void;
  /** kill -9: no shutdown code runs. */
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

export interface StartOptions {
  dataDir?: string;
  port?: number;
  /**
   * The admin HTTP listener's port; 0 (the default here) disables it, so
   * that brokers of tests running in parallel never clash on 9644.
   */
  adminPort?: number;
  /** Extra `--set path=value` overrides. */
  set?: string[];
  /** The address to bind and advertise [127.0.0.1]. */
  host?: string;
  /** Runs the broker inside this network namespace (`ip netns exec`). */
  netns?: string;
}

/**
 * Starts a broker, on `opts.port` or else on a port of freePorts: one the
 * kernel handed out for port 0 could be taken by any outgoing connection
 * while the broker restarts. Another test may take that port between its
 * choice and the broker's bind, so a broker that finds it taken is
 * started again on another.
 */
export async function startBroker(opts: StartOptions = {}): Promise<
  BrokerProcess
> {
  const dataDir = opts.dataDir ??
    await Deno.makeTempDir({ prefix: "raftq-e2e-" });
  if (opts.port !== undefined) return await spawnBroker(opts, dataDir);
  for (let attempt = 1;; attempt++) {
    try {
      return await spawnBroker({ ...opts, port: freePorts(1)[0]! }, dataDir);
    } catch (err) {
      if (attempt === 3 || !String(err).includes("Address already in use")) {
        throw err;
      }
    }
  }
}

/** Stops a broker and starts it again on its data dir and port. */
export async function restartBroker(
  broker: BrokerProcess,
  opts: { set?: string[] } = {},
): Promise<BrokerProcess> {
  await broker.stop();
  return await startBroker({
    dataDir: broker.dataDir,
    port: broker.port,
    ...opts,
  });
}

async function spawnBroker(
  opts: StartOptions,
  dataDir: string,
): Promise<BrokerProcess> {
  const host = opts.host ?? "127.0.0.1";
  const args = [
    "run",
    "-A",
    `${ROOT}main.ts`,
    "serve",
    "--port",
    String(opts.port ?? 0),
    "--data-dir",
    dataDir,
    "--set",
    `advertised_host=${host}`,
    "--set",
    `bind_addr=${host}`,
    "--set",
    `admin.port=${opts.adminPort ?? 0}`,
    "--set",
    `admin.bind_addr=${host}`,
  ];
  for (const s of opts.set ?? []) args.push("--set", s);
  // `ip netns exec` execs the broker in place, so signals reach it.
  const [cmd, ...cmdArgs] = opts.netns === undefined
    ? [Deno.execPath(), ...args]
    : ["ip", "netns", "exec", opts.netns, Deno.execPath(), ...args];
  const child = new Deno.Command(cmd!, {
    args: cmdArgs,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).spawn();
  let text = "";
  const decoder = new TextDecoder();
  let resolvePort!: (port: number) => void;
  let rejectPort!: (err: Error) => void;
  const portReady = new Promise<number>((res, rej) => {
    resolvePort = res;
    rejectPort = rej;
  });
  let serving = false;
  const wantAdmin = (opts.adminPort ?? 0) !== 0;
  const pump = async (stream: ReadableStream<Uint8Array>) => {
    for await (const chunk of stream) {
      text += decoder.decode(chunk, { stream: true });
      if (text.length > LOG_KEEP_BYTES * 2) {
        // A chatty broker must not fill the test runner's memory: keep the
        // start (startup, recovery) and the most recent lines.
        text = text.slice(0, LOG_KEEP_BYTES / 8) + "\n[...]\n" +
          text.slice(-LOG_KEEP_BYTES);
      }
      if (!serving) {
        const m = SERVING.exec(text);
        // With the admin listener on, it is up once it says so too.
        if (m && (!wantAdmin || SERVING_ADMIN.test(text))) {
          serving = true;
          resolvePort(Number(m[1]));
        }
      }
    }
  };
  const pumps = Promise.all([pump(child.stdout), pump(child.stderr)]);
  const status = child.status;
  status.then((s) =>
    rejectPort(new Error(`broker exited (${s.code}): ${text}`))
  );
  const timer = setTimeout(
    () => rejectPort(new Error(`broker did not start in 30 s: ${text}`)),
    30_000,
  );
  let port: number;
  try {
    port = await portReady;
  } catch (err) {
    try {
      child.kill("SIGKILL");
    } catch {
      // Already gone.
    }
    await status;
    await pumps;
    throw err;
  } finally {
    clearTimeout(timer);
  }
  let ended = false;
  const end = async (signal: Deno.Signal) => {
    if (ended) return;
    ended = true;
    try {
      child.kill(signal);
    } catch {
      // Exited by itself.
    }
    await status;
    await pumps;
  };
  const admin = SERVING_ADMIN.exec(text);
  const adminPort = Number(admin?.[2] ?? 0);
  return {
    port,
    adminPort,
    adminUrl: `${admin?.[1]?.toLowerCase() ?? "http"}://${host}:${adminPort}`,
    bootstrap: `${host}:${port}`,
    dataDir,
    logs: () => text,
    signal: (signal) => child.kill(signal),
    kill9: () => end("SIGKILL"),
    stop: () => end("SIGTERM"),
  };
}

/**
 * The first port the kernel may pick as the source of an outgoing
 * connection: a port from port 0 is one of those, so any client on the
 * machine can take it while its broker restarts.
 */
const EPHEMERAL_FROM = Number(
  (await Deno.readTextFile("/proc/sys/net/ipv4/ip_local_port_range").catch(
    () => "32768",
  )).trim().split(/\s+/)[0],
);
const LOWEST_TEST_PORT = 10_000;

/**
 * Ports free right now, below the ephemeral range so that no outgoing
 * connection takes one while its broker is down; holding them all open
 * until every one is found keeps them distinct.
 */
export function freePorts(count: number): number[] {
  const listeners: Deno.Listener[] = [];
  while (listeners.length < count) {
    const port = LOWEST_TEST_PORT +
      Math.floor(Math.random() * (EPHEMERAL_FROM - LOWEST_TEST_PORT));
    try {
      listeners.push(Deno.listen({ hostname: "127.0.0.1", port }));
    } catch (err) {
      if (!(err instanceof Deno.errors.AddrInUse)) throw err;
    }
  }
  const ports = listeners.map((l) => (l.addr as Deno.NetAddr).port);
  for (const l of listeners) l.close();
  return ports;
}

export interface RunResult {
  code: number;
  stdout: Uint8Array;
  stderr: string;
}

/** Runs a command to completion, feeding `stdin` if given. */
export async function run(
  cmd: string,
  args: string[],
  opts: {
    stdin?: Uint8Array;
    timeoutMs?: number;
    env?: Record<string, string>;
  } = {},
): Promise<RunResult> {
  const child = new Deno.Command(cmd, {
    args,
    ...(opts.env === undefined ? {} : { env: opts.env }),
    stdin: opts.stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
    cwd: ROOT,
  }).spawn();
  const timer = setTimeout(() => {
    try {
      child.kill("SIGKILL");
    } catch {
      // Finished meanwhile.
    }
  }, opts.timeoutMs ?? 60_000);
  if (opts.stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(opts.stdin);
    await w.close();
  }
  const out = await child.output();
  clearTimeout(timer);
  return {
    code: out.code,
    stdout: out.stdout,
    stderr: new TextDecoder().decode(out.stderr),
  };
}

/** Whether kcat (librdkafka's CLI) is installed: tests that drive it need it. */
export const hasKcat: boolean = await run("kcat", ["-V"]).then((r) =>
  r.code === 0
).catch(() => false);

/** Runs `deno run -A main.ts <args>`: the raftq CLI as a user runs it. */
export function raftq(
  args: string[],
  opts: { stdin?: Uint8Array; timeoutMs?: number } = {},
): Promise<RunResult> {
  return run(Deno.execPath(), ["run", "-A", `${ROOT}main.ts`, ...args], opts);
}

export async function removeDir(dir: string): Promise<void> {
  await Deno.remove(dir, { recursive: true }).catch(() => {});
}

export interface ConsumedRecord {
  offset: bigint;
  key: string;
  value: string;
}

/**
 * Reads every partition of `topic` from the beginning to its current end
 * with kcat (librdkafka), by partition in offset order.
 */
export async function kcatConsume(
  bootstrap: string,
  topic: string,
  args: readonly string[] = [],
): Promise<Map<number, ConsumedRecord[]>> {
  const out = await run("kcat", [
    ...args,
    "-b",
    bootstrap,
    "-C",
    "-t",
    topic,
    "-o",
    "beginning",
    "-e",
    "-q",
    "-f",
    "%p\\t%o\\t%k\\t%s\\n",
  ], { timeoutMs: 60_000 });
  if (out.code !== 0) throw new Error(`kcat -C failed: ${out.stderr}`);
  const byPartition = new Map<number, ConsumedRecord[]>();
  for (const line of new TextDecoder().decode(out.stdout).split("\n")) {
    if (line === "") continue;
    const [p, offset, key, value] = line.split("\t");
    if (value === undefined) throw new Error(`Bad kcat line "${line}"`);
    const list = byPartition.get(Number(p)) ?? [];
    list.push({ offset: BigInt(offset!), key: key!, value });
    byPartition.set(Number(p), list);
  }
  return byPartition;
}

/** Produces `lines` (one message each) to `topic` with kcat; `args` adds options. */
export async function kcatProduce(
  bootstrap: string,
  topic: string,
  lines: readonly string[],
  args: readonly string[] = [],
): Promise<void> {
  const out = await run("kcat", ["-b", bootstrap, "-P", "-t", topic, ...args], {
    stdin: new TextEncoder().encode(lines.map((l) => `${l}\n`).join("")),
  });
  if (out.code !== 0) throw new Error(`kcat -P failed: ${out.stderr}`);
}

/** Every message value of `topic` read with kcat, partition by partition. */
export async function kcatValues(
  bootstrap: string,
  topic: string,
): Promise<string[]> {
  const byPartition = await kcatConsume(bootstrap, topic);
  return [...byPartition.keys()].sort((x, y) => x - y).flatMap((p) =>
    byPartition.get(p)!.map((r) => r.value)
  );
}

/** Sends one request frame to the broker at `port`; returns the reply frame. */
export async function exchange(
  port: number,
  frame: Uint8Array,
): Promise<Uint8Array> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await conn.write(frame);
    const frames = new FrameDecoder({ maxFrameBytes: 1 << 20 });
    for (;;) {
      const reply = frames.next();
      if (reply !== null) return reply;
      const n = await conn.read(frames.writable(64 * 1024));
      if (n === null) throw new Error("broker closed the connection");
      frames.commit(n);
    }
  } finally {
    conn.close();
  }
}

/** A connection carrying hand-made request frames, one reply at a time. */
export class RawConnection {
  readonly #conn: Deno.Conn;

  private constructor(conn: Deno.Conn) {
    this.#conn = conn;
  }

  static async open(port: number): Promise<RawConnection> {
    return new RawConnection(
      await Deno.connect({ hostname: "127.0.0.1", port }),
    );
  }

  async #readFull(into: Uint8Array): Promise<boolean> {
    for (let at = 0; at < into.length;) {
      const n = await this.#conn.read(into.subarray(at));
      if (n === null) return false;
      at += n;
    }
    return true;
  }

  /** Sends `frame`; its reply frame without the size, or "closed". */
  async request(frame: Uint8Array): Promise<Uint8Array | "closed"> {
    try {
      await this.#conn.write(frame);
      const size = new Uint8Array(4);
      if (!await this.#readFull(size)) return "closed";
      const body = new Uint8Array(new DataView(size.buffer).getInt32(0));
      return await this.#readFull(body) ? body : "closed";
    } catch (err) {
      if (err instanceof Deno.errors.ConnectionReset) return "closed";
      throw err;
    }
  }

  /** Has the broker closed the connection within `ms`? */
  async closedWithin(ms: number): Promise<boolean> {
    const end = await Promise.race([
      this.#conn.read(new Uint8Array(1)).catch(() => null),
      new Promise((r) => setTimeout(() => r("open"), ms)),
    ]);
    return end === null;
  }

  close(): void {
    try {
      this.#conn.close();
    } catch {
      // Closed by the broker first.
    }
  }
}

/**
 * Sends `frames` one at a time on one connection; the replies, with an
 * empty one after them if the broker then closed the connection within a
 * second, or "closed" if it closed before a reply.
 */
export async function rawExchange(
  port: number,
  frames: Uint8Array[],
): Promise<Uint8Array[] | "closed"> {
  const conn = await RawConnection.open(port);
  try {
    const replies: Uint8Array[] = [];
    for (const frame of frames) {
      const reply = await conn.request(frame);
      if (reply === "closed") return "closed";
      replies.push(reply);
    }
    if (await conn.closedWithin(1_000)) replies.push(new Uint8Array(0));
    return replies;
  } finally {
    conn.close();
  }
}

/** The codec of every batch of partition 0 of `topic`, as a consumer fetches it. */
export async function fetchedCodecs(
  client: KafkaClient,
  topic: string,
): Promise<number[]> {
  const { records } = await client.fetch(topic, 0, 0n, { maxWaitMs: 0 });
  const codecs: number[] = [];
  for (let pos = 0; pos < records.length;) {
    const size = completeBatchSize(records, pos);
    if (size === 0) break;
    codecs.push(readBatchHeader(records, pos).attributes & 0x07);
    pos += size;
  }
  return codecs;
}
