/**
 * A replicated raftq cluster for end-to-end tests and benchmarks: N broker
 * processes on loopback with static discovery, each with its own data
 * directory and fixed Kafka and Raft ports (fixed so that a broker killed
 * with SIGKILL comes back at the same addresses, as a real one would).
 */
import assert from "node:assert/strict";
import {
  ConnectionError,
  KafkaClient,
  KafkaError,
  RequestTimeoutError,
  type TopicMetadata,
} from "../src/client/mod.ts";
import { buildRecordBatch } from "../src/protocol/mod.ts";
import {
  type BrokerProcess,
  freePorts,
  removeDir,
  startBroker,
} from "./harness.ts";

export interface ClusterMember {
  readonly nodeId: number;
  readonly kafkaPort: number;
  readonly raftPort: number;
  /** Fixed like the others, so a restarted broker answers at the same URL. */
  readonly adminPort: number;
  readonly dataDir: string;
  readonly bootstrap: string;
  /** http://127.0.0.1:<adminPort> */
  readonly adminUrl: string;
}

export { freePorts } from "./harness.ts";

async function sleep(ms: number): Promise<void> {
  await new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `probe` until it returns a value other than undefined. */
export async function waitFor<T>(
  what: string,
  probe: () => Promise<T | undefined>,
  opts: { timeoutMs?: number; intervalMs?: number } = {},
): Promise<T> {
  const deadline = performance.now() + (opts.timeoutMs ?? 30_000);
  let lastError: unknown;
  while (performance.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    await sleep(opts.intervalMs ?? 100);
  }
  throw new Error(`Timed out waiting for ${what}`, { cause: lastError });
}

export class Cluster {
  readonly members: readonly ClusterMember[];
  readonly #set: readonly string[];
  readonly #peersOf: (m: ClusterMember) => string;
  readonly #processes = new Map<number, BrokerProcess>();

  private constructor(
    members: ClusterMember[],
    set: string[],
    peersOf: (m: ClusterMember) => string,
  ) {
    this.members = members;
    this.#set = set;
    this.#peersOf = peersOf;
  }

  /**
   * Starts `size` [3] brokers (node ids 1..size) and waits until the
   * controller group has a leader that knows every broker. With `running`,
   * only the first `running` brokers start: the others are listed in every
   * broker's static peers (so they are founding controller voters that are
   * merely down) and come up later with restart(), as new brokers that
   * hold no partitions yet. With `founders`, only the first `founders`
   * brokers list each other; the later ones list everyone, as a broker
   * added to a running cluster is configured. With `running: 0` nothing
   * starts.
   */
  static async start(
    opts: {
      size?: number;
      running?: number;
      founders?: number;
      set?: string[];
    } = {},
  ): Promise<Cluster> {
    const size = opts.size ?? 3;
    const running = opts.running ?? size;
    const ports = freePorts(size * 3);
    const members: ClusterMember[] = [];
    for (let i = 0; i < size; i++) {
      const kafkaPort = ports[3 * i]!;
      const adminPort = ports[3 * i + 2]!;
      members.push({
        nodeId: i + 1,
        kafkaPort,
        raftPort: ports[3 * i + 1]!,
        adminPort,
        dataDir: await Deno.makeTempDir({ prefix: `raftq-cluster-${i + 1}-` }),
        bootstrap: `127.0.0.1:${kafkaPort}`,
        adminUrl: `http://127.0.0.1:${adminPort}`,
      });
    }
    const peersOf = (list: ClusterMember[]) =>
      `discovery.peers=${
        list.map((m) => `${m.nodeId}@127.0.0.1:${m.raftPort}`).join(",")
      }`;
    const founders = members.slice(0, opts.founders ?? size);
    const cluster = new Cluster(members, [
      "discovery.type=static",
      ...(opts.set ?? []),
    ], (m) => peersOf(founders.includes(m) ? founders : members));
    try {
      await Promise.all(
        members.slice(0, running).map((m) => cluster.restart(m.nodeId)),
      );
      if (running > 0) await cluster.waitForBrokers(running);
    } catch (err) {
      await cluster.destroy();
      throw err;
    }
    return cluster;
  }

  /** Sends `signal` to a running broker. */
  signal(nodeId: number, signal: Deno.Signal): void {
    this.#processes.get(nodeId)?.signal(signal);
  }

  member(nodeId: number): ClusterMember {
    const m = this.members.find((x) => x.nodeId === nodeId);
    if (m === undefined) throw new RangeError(`No cluster member ${nodeId}`);
    return m;
  }

  /** The Kafka addresses of the running brokers, comma-separated. */
  bootstrap(): string {
    return this.members.filter((m) => this.#processes.has(m.nodeId))
      .map((m) => m.bootstrap).join(",");
  }

  /**
   * Starts a member that is not running, with the arguments it had; with
   * `alone`, on memory discovery, as a broker on its own.
   */
  async restart(nodeId: number, opts: { alone?: boolean } = {}): Promise<void> {
    if (this.#processes.has(nodeId)) {
      throw new Error(`Broker ${nodeId} is already running`);
    }
    const m = this.member(nodeId);
    const broker = await startBroker({
      dataDir: m.dataDir,
      port: m.kafkaPort,
      adminPort: m.adminPort,
      set: [
        `node_id=${nodeId}`,
        `raft_port=${m.raftPort}`,
        ...(opts.alone === true
          ? this.#set.filter((s) => !s.startsWith("discovery."))
          : [this.#peersOf(m), ...this.#set]),
      ],
    });
    this.#processes.set(nodeId, broker);
  }

  /** What a running member wrote to stderr so far ("" when not running). */
  logs(nodeId: number): string {
    return this.#processes.get(nodeId)?.logs() ?? "";
  }

  /** Until a running member's log matches `pattern`. */
  async waitForLog(
    nodeId: number,
    pattern: RegExp,
    opts: { timeoutMs?: number } = {},
  ): Promise<void> {
    await waitFor(
      `broker ${nodeId} to log ${pattern}`,
      () => Promise.resolve(pattern.test(this.logs(nodeId)) ? true : undefined),
      opts,
    );
  }

  /** kill -9: no shutdown code runs. */
  async kill9(nodeId: number): Promise<void> {
    const p = this.#processes.get(nodeId);
    if (p === undefined) throw new Error(`Broker ${nodeId} is not running`);
    this.#processes.delete(nodeId);
    await p.kill9();
  }

  /**
   * SIGTERM: the broker shuts down cleanly (it hands off its leaderships
   * first). Resolves, once it exited, with everything it wrote to stderr.
   */
  async stop(nodeId: number): Promise<string> {
    const p = this.#processes.get(nodeId);
    if (p === undefined) throw new Error(`Broker ${nodeId} is not running`);
    this.#processes.delete(nodeId);
    await p.stop();
    return p.logs();
  }

  /** Stops every running broker with SIGTERM (a clean shutdown). */
  async stopAll(): Promise<void> {
    const running = [...this.#processes.values()];
    this.#processes.clear();
    await Promise.all(running.map((p) => p.stop()));
  }

  /** Stops everything and removes the data directories. */
  async destroy(): Promise<void> {
    const running = [...this.#processes.values()];
    this.#processes.clear();
    await Promise.all(running.map((p) => p.kill9()));
    await Promise.all(this.members.map((m) => removeDir(m.dataDir)));
  }

  /** A client bootstrapped from every running broker. */
  client(): Promise<KafkaClient> {
    return KafkaClient.connect(this.bootstrap(), { retries: 12 });
  }

  /**
   * Waits until a running broker reports `count` live brokers and an
   * elected controller (DescribeCluster's: Metadata names a broker even
   * while the controller group elects).
   */
  async waitForBrokers(count: number): Promise<void> {
    const client = await this.client();
    try {
      await waitFor(`${count} live brokers`, async () => {
        const described = await client.describeCluster();
        return described.brokers.length === count &&
            described.controllerId >= 0
          ? true
          : undefined;
      });
    } finally {
      await client.close();
    }
  }

  /**
   * Waits until every partition of `topic` has a leader among the running
   * brokers (with `preferred`, its first replica: the leader the cluster
   * settles on, so that no balancing move interrupts what follows), and
   * returns the topic's metadata.
   */
  async waitForLeaders(
    client: KafkaClient,
    topic: string,
    opts: { timeoutMs?: number; preferred?: boolean } = {},
  ): Promise<TopicMetadata> {
    return await waitFor(`leaders of "${topic}"`, async () => {
      const md = await client.metadata([topic]);
      const t = md.topics.find((x) => x.name === topic);
      if (t === undefined || t.errorCode !== 0 || t.partitions.length === 0) {
        return undefined;
      }
      const led = t.partitions.every((p) =>
        p.leader >= 0 && this.#processes.has(p.leader) &&
        (opts.preferred !== true || p.leader === p.replicas[0])
      );
      return led ? t : undefined;
    }, opts);
  }

  /**
   * The segment files (`*.log`) of `topic`-`partition` on a member, by
   * name. Read them after the member stopped: a running broker appends.
   */
  async logFiles(
    nodeId: number,
    topic: string,
    partition: number,
  ): Promise<Map<string, Uint8Array>> {
    const dir = `${this.member(nodeId).dataDir}/${topic}-${partition}`;
    const files = new Map<string, Uint8Array>();
    for await (const e of Deno.readDir(dir)) {
      if (e.isFile && e.name.endsWith(".log")) {
        files.set(e.name, await Deno.readFile(`${dir}/${e.name}`));
      }
    }
    return files;
  }
}

/**
 * Asserts that every member (or those of `nodeIds`) holds byte-identical,
 * non-empty segment files for `topic`-`partition`: replicas apply the same
 * entries in the same order, so their logs match byte for byte. Call after
 * stopAll().
 */
export async function assertSameLogs(
  cluster: Cluster,
  topic: string,
  partition: number,
  nodeIds?: readonly number[],
): Promise<void> {
  const [first, ...rest] = nodeIds?.map((id) => cluster.member(id)) ??
    cluster.members;
  assert.ok(first !== undefined);
  const expected = await cluster.logFiles(first.nodeId, topic, partition);
  const sizeBytes = [...expected.values()].reduce((n, f) => n + f.length, 0);
  assert.ok(sizeBytes > 0, `${topic}-${partition} on ${first.nodeId} is empty`);
  for (const m of rest) {
    const actual = await cluster.logFiles(m.nodeId, topic, partition);
    const pair: string =
      `segments of ${topic}-${partition} on brokers ${first.nodeId} and ${m.nodeId}`;
    assert.deepEqual(
      [...actual.keys()].sort(),
      [...expected.keys()].sort(),
      pair,
    );
    // Compared by hand: deepEqual's message for two megabyte arrays that
    // differ is a diff of millions of numbers, which took the test runner
    // past 20 GB of memory until the kernel killed it.
    for (const [name, want] of expected) {
      const got = actual.get(name)!;
      let at = 0;
      while (at < want.length && at < got.length && want[at] === got[at]) at++;
      assert.ok(
        at === want.length && at === got.length,
        `${pair}: ${name} differs from byte ${at} (${got.length} bytes against ${want.length})`,
      );
    }
  }
}

/**
 * Waits until the replicas' segment files are identical while they run (a
 * follower applies the last entry only once it hears that it committed),
 * then stops every broker and compares them again.
 */
export async function assertSameLogsSoon(
  cluster: Cluster,
  topic: string,
  opts: { partitions: readonly number[]; nodeIds?: readonly number[] },
): Promise<void> {
  for (const p of opts.partitions) {
    await waitFor(
      `identical replica logs of ${topic}-${p}`,
      () => assertSameLogs(cluster, topic, p, opts.nodeIds).then(() => true),
    );
  }
  await cluster.stopAll();
  for (const p of opts.partitions) {
    await assertSameLogs(cluster, topic, p, opts.nodeIds);
  }
}

const RETRY_PAUSE_MS = 20;
/** A value still unacknowledged after this long means the cluster is stuck. */
const GIVE_UP_MS = 30_000;
const encoder = new TextEncoder();

/**
 * Produces "v-0", "v-1", ... to one partition (0 unless given), one request
 * at a time with acks=all, retrying each value until acknowledged. It
 * records the order of acknowledgements, which values had a request that
 * went unanswered (the connection died or timed out): only those may be
 * written twice, and the longest wait of a value from its first send to
 * its acknowledgement, retries included.
 */
export class SequentialProducer {
  readonly acked: number[] = [];
  readonly unanswered = new Set<number>();
  /** The slowest value's time from first send to acknowledgement. */
  ackMsMax = 0;
  #stopped = false;
  readonly done: Promise<void>;

  constructor(
    client: KafkaClient,
    topic: string,
    opts: { partition?: number } = {},
  ) {
    this.done = this.#run(client, topic, opts.partition ?? 0);
  }

  /** Forgets the slowest wait so far (say, one from before a warm-up). */
  resetAckMsMax(): void {
    this.ackMsMax = 0;
  }

  async #run(
    client: KafkaClient,
    topic: string,
    partition: number,
  ): Promise<void> {
    for (let i = 0; !this.#stopped; i++) {
      const batch = buildRecordBatch([{ value: encoder.encode(`v-${i}`) }]);
      const sentMs = performance.now();
      const deadline = sentMs + GIVE_UP_MS;
      for (;;) {
        try {
          await client.produce(topic, partition, batch, { acks: -1 });
          this.acked.push(i);
          this.ackMsMax = Math.max(this.ackMsMax, performance.now() - sentMs);
          break;
        } catch (err) {
          if (
            err instanceof ConnectionError || err instanceof RequestTimeoutError
          ) {
            this.unanswered.add(i);
          } else if (!(err instanceof KafkaError && err.retriable)) {
            throw err;
          }
          if (performance.now() > deadline) {
            throw new Error(`v-${i} unacknowledged for ${GIVE_UP_MS} ms`, {
              cause: err,
            });
          }
          await sleep(RETRY_PAUSE_MS);
          // Learn where the partition's leader went before the retry.
          await client.metadata([topic]).catch(() => {});
        }
      }
    }
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    await this.done;
  }

  /** Waits until `count` more values than now have been acknowledged. */
  async ackedMore(count: number, timeoutMs: number): Promise<void> {
    const target = this.acked.length + count;
    await waitFor(
      `${count} acknowledgements`,
      () => Promise.resolve(this.acked.length >= target ? true : undefined),
      { timeoutMs, intervalMs: 5 },
    );
  }
}

/**
 * Asserts that `values` (the numbers of a SequentialProducer's "v-N"
 * values, in log order) are v-0, v-1, ... in acknowledgement order: one
 * value was in flight at a time, so a value repeats only right after
 * itself and only when one of its requests went unanswered.
 */
export function assertAckedInOrder(
  values: readonly number[],
  producer: SequentialProducer,
): void {
  let next = 0;
  for (const [position, v] of values.entries()) {
    if (v === next) {
      next++;
      continue;
    }
    assert.equal(v, next - 1, `value at offset ${position}`);
    assert.ok(
      producer.unanswered.has(v),
      `v-${v} appears twice but every request for it was answered`,
    );
  }
  assert.equal(next, producer.acked.length, "every acknowledged value");
}
