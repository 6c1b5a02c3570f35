/**
 * `deno task bench:faults`: how long a partition accepts no write after a
 * single fault, on 3 real brokers each in its own network namespace (as
 * root), under a librdkafka producer (python3-confluent-kafka) sending one acks=all
 * message per partition every INTERVAL_MS (idempotent with --idempotent).
 *
 *   deno task bench:faults [--rounds N] [--fault-ms MS] [--idempotent]
 *                          [--set path=value]... [--client-set key=value]...
 *                          [--only FAULT] [--json]
 *
 * Faults, one at a time, each `--rounds` times: the leader of partition 0
 * cut off from everyone (its veth down), a follower cut off, the leader
 * paused (SIGSTOP), the leader killed (kill -9), and a majority killed and
 * restarted. Each lasts `--fault-ms` before it is healed. The figure is the
 * longest gap between two acknowledgements of any partition around the
 * fault; for the majority, the time from the restart to the first
 * acknowledgement of every partition. For faults of the leader, a second
 * figure splits the gap: when a follower's Metadata first names another
 * leader (polled every 10 ms), the broker's part; the rest is the client
 * finding out (its metadata refresh). At the end every acknowledged value
 * must be at its offset, and every replica's segment files identical.
 */
import { parseArgs } from "node:util";
import { KafkaClient } from "../src/client/mod.ts";
import { decodeRecordBatches } from "../src/protocol/mod.ts";
import {
  type BrokerProcess,
  removeDir,
  run,
  startBroker,
} from "../tests/harness.ts";
import { waitFor } from "../tests/cluster_harness.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    rounds: { type: "string", default: "5" },
    "fault-ms": { type: "string", default: "6000" },
    json: { type: "boolean", default: false },
    // librdkafka's default is off; Kafka's Java producer's is on.
    idempotent: { type: "boolean", default: false },
    // Broker config overrides (path=value), to compare settings.
    set: { type: "string", multiple: true, default: [] },
    // librdkafka settings (key=value) for the producer.
    "client-set": { type: "string", multiple: true, default: [] },
    // Runs only the faults whose name contains this.
    only: { type: "string", default: "" },
  },
});
const ROUNDS = Number(flags.rounds);
const FAULT_MS = Number(flags["fault-ms"]);
const SIZE = 3;
const PARTITIONS = 3;
const INTERVAL_MS = 20;
const TOPIC = "faults";
const KAFKA_PORT = 9092;
const RAFT_PORT = 9093;

async function sh(...args: string[]): Promise<void> {
  const r = await run(args[0]!, args.slice(1));
  if (r.code !== 0) throw new Error(`${args.join(" ")}: ${r.stderr}`);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Member {
  nodeId: number;
  netns: string;
  /** The root namespace's end of the member's veth pair. */
  veth: string;
  host: string;
  dataDir: string;
}

/** Brokers 1..SIZE on 10.77.<n>.1..SIZE behind one bridge. */
class NetnsCluster {
  readonly members: Member[] = [];
  readonly #running = new Map<number, BrokerProcess>();
  readonly #bridge: string;
  readonly #tag: string;

  private constructor(tag: string) {
    this.#tag = tag;
    this.#bridge = `rqbr${tag}`;
  }

  static async create(): Promise<NetnsCluster> {
    const tag = String(Deno.pid % 10_000);
    const subnet = `10.77.${Deno.pid % 250}`;
    const c = new NetnsCluster(tag);
    await sh("ip", "link", "add", c.#bridge, "type", "bridge");
    await sh("ip", "addr", "add", `${subnet}.254/24`, "dev", c.#bridge);
    await sh("ip", "link", "set", c.#bridge, "up");
    for (let id = 1; id <= SIZE; id++) {
      const m: Member = {
        nodeId: id,
        netns: `rq${tag}n${id}`,
        veth: `rq${tag}v${id}`,
        host: `${subnet}.${id}`,
        dataDir: await Deno.makeTempDir({ prefix: `raftq-faults-${id}-` }),
      };
      c.members.push(m);
      await sh("ip", "netns", "add", m.netns);
      await sh(
        "ip",
        "link",
        "add",
        m.veth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "netns",
        m.netns,
      );
      await sh("ip", "link", "set", m.veth, "master", c.#bridge, "up");
      await sh(
        "ip",
        "-n",
        m.netns,
        "addr",
        "add",
        `${m.host}/24`,
        "dev",
        "eth0",
      );
      await sh("ip", "-n", m.netns, "link", "set", "eth0", "up");
      await sh("ip", "-n", m.netns, "link", "set", "lo", "up");
    }
    return c;
  }

  member(id: number): Member {
    return this.members[id - 1]!;
  }

  bootstrap(): string {
    return this.members.map((m) => `${m.host}:${KAFKA_PORT}`).join(",");
  }

  async start(id: number): Promise<void> {
    const m = this.member(id);
    const peers = this.members.map((x) => `${x.nodeId}@${x.host}:${RAFT_PORT}`)
      .join(",");
    this.#running.set(
      id,
      await startBroker({
        dataDir: m.dataDir,
        port: KAFKA_PORT,
        host: m.host,
        netns: m.netns,
        set: [
          `node_id=${id}`,
          `raft_port=${RAFT_PORT}`,
          "discovery.type=static",
          `discovery.peers=${peers}`,
          ...flags.set,
        ],
      }),
    );
  }

  async kill9(id: number): Promise<void> {
    await this.#running.get(id)!.kill9();
    this.#running.delete(id);
  }

  signal(id: number, signal: Deno.Signal): void {
    this.#running.get(id)!.signal(signal);
  }

  async link(id: number, state: "up" | "down"): Promise<void> {
    await sh("ip", "link", "set", this.member(id).veth, state);
  }

  async stopAll(): Promise<void> {
    await Promise.all([...this.#running.values()].map((b) => b.stop()));
    this.#running.clear();
  }

  async destroy(): Promise<void> {
    await Promise.all([...this.#running.values()].map((b) => b.kill9()));
    this.#running.clear();
    for (const m of this.members) {
      await sh("ip", "netns", "del", m.netns).catch(() => {});
      await removeDir(m.dataDir);
    }
    await sh("ip", "link", "del", this.#bridge).catch(() => {});
  }
}

interface Delivery {
  p: number;
  o: number;
  v: string;
  t: number;
  e: string | null;
}

/** fault_producer.py, its delivery reports collected as they arrive. */
class Producer {
  readonly deliveries: Delivery[] = [];
  readonly #child: Deno.ChildProcess;
  readonly #stdin: WritableStreamDefaultWriter<Uint8Array>;
  readonly #read: Promise<void>;

  constructor(bootstrap: string) {
    const child = new Deno.Command("/usr/bin/python3", {
      args: [
        new URL("./fault_producer.py", import.meta.url).pathname,
        bootstrap,
        TOPIC,
        String(PARTITIONS),
        String(INTERVAL_MS),
        String(flags.idempotent),
        ...flags["client-set"],
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    this.#stdin = child.stdin.getWriter();
    this.#read = (async () => {
      let rest = "";
      const decoder = new TextDecoder();
      for await (const chunk of child.stdout) {
        rest += decoder.decode(chunk, { stream: true });
        const lines = rest.split("\n");
        rest = lines.pop()!;
        for (const l of lines) this.deliveries.push(JSON.parse(l));
      }
    })();
  }

  /** Delivery times of `partition`'s acknowledged values, oldest first. */
  ackTimes(partition: number): number[] {
    return this.deliveries.filter((d) => d.p === partition && d.e === null)
      .map((d) => d.t);
  }

  /** Until every partition has had `count` acknowledgements since `sinceMs`. */
  async flowing(sinceMs: number, count = 20): Promise<void> {
    await waitFor("acknowledgements on every partition", () => {
      const ok = Array.from({ length: PARTITIONS }, (_, p) => p).every((p) =>
        this.ackTimes(p).filter((t) => t >= sinceMs).length >= count
      );
      return Promise.resolve(ok ? true : undefined);
    }, { timeoutMs: 60_000, intervalMs: 20 });
  }

  async stop(): Promise<void> {
    await this.#stdin.close();
    await this.#child.status;
    await this.#read;
  }
}

/**
 * The longest wait between acknowledgements of partition 0, whose leader
 * or follower the fault hit, within [from, to]. (Each broker leads one
 * partition, so any fault hits some partition's leader.)
 */
function longestGap(producer: Producer, from: number, to: number): number {
  const times = producer.ackTimes(0).filter((t) => t >= from && t <= to);
  let gap = 0;
  for (let i = 1; i < times.length; i++) {
    gap = Math.max(gap, times[i]! - times[i - 1]!);
  }
  return gap;
}

async function leaderOf(cluster: NetnsCluster, partition: number) {
  const client = await KafkaClient.connect(cluster.bootstrap(), {
    retries: 3,
  });
  try {
    const md = await client.metadata([TOPIC]);
    const p = md.topics[0]!.partitions.find((x) => x.partition === partition)!;
    return { leader: p.leader, replicas: p.replicas };
  } finally {
    await client.close();
  }
}

/**
 * Until every broker, asked on its own, lists all brokers and names each
 * partition's preferred replica its leader: a broker that missed the
 * elections after a fault would send clients to the wrong one.
 */
async function settled(cluster: NetnsCluster): Promise<void> {
  await waitFor("every broker live, preferred leaders", async () => {
    const agree = await Promise.all(cluster.members.map(async (m) => {
      const client = await KafkaClient.connect(`${m.host}:${KAFKA_PORT}`, {
        retries: 0,
      });
      try {
        const md = await client.metadata([TOPIC]);
        const t = md.topics[0];
        return md.brokers.length === SIZE && t !== undefined &&
          t.partitions.length === PARTITIONS &&
          t.partitions.every((p) => p.leader === p.replicas[0]);
      } finally {
        await client.close();
      }
    }));
    return agree.every((a) => a) ? true : undefined;
  }, { timeoutMs: 60_000, intervalMs: 200 });
}

/**
 * Polls a follower's Metadata from `t0` until it names a leader of
 * partition 0 other than `old`: the broker side of a gap, before any client
 * refreshes. Resolves to the ms since `t0`, or null after `limitMs`.
 */
async function leaderNamed(
  cluster: NetnsCluster,
  follower: number,
  old: number,
  t0: number,
  limitMs: number,
): Promise<number | null> {
  const client = await KafkaClient.connect(
    `${cluster.member(follower).host}:${KAFKA_PORT}`,
    { retries: 0 },
  );
  try {
    while (Date.now() - t0 < limitMs) {
      const md = await client.metadata([TOPIC]);
      const p = md.topics[0]?.partitions.find((x) => x.partition === 0);
      if (p !== undefined && p.leader !== old && p.leader >= 0) {
        return Date.now() - t0;
      }
      await sleep(10);
    }
    return null;
  } finally {
    await client.close();
  }
}

type FaultKind =
  | "isolate the leader"
  | "isolate a follower"
  | "SIGSTOP the leader"
  | "kill -9 the leader"
  | "kill -9 and restart a majority";

interface Figure {
  /** The gap (or, for the majority, the wait after the restart), in ms. */
  ms: number;
  /** When a follower first named another leader, for faults of the leader. */
  namedMs: number | null;
}

/** Injects one fault, heals it, and returns its figures. */
async function fault(
  kind: FaultKind,
  cluster: NetnsCluster,
  producer: Producer,
): Promise<Figure> {
  const { leader, replicas } = await leaderOf(cluster, 0);
  const follower = replicas.find((r) => r !== leader)!;
  const t0 = Date.now();
  const named = kind.includes("the leader")
    ? leaderNamed(cluster, follower, leader, t0, FAULT_MS).catch((err) => {
      console.error(`watching the leader of ${TOPIC}-0: ${err}`);
      return null;
    })
    : Promise.resolve(null);
  switch (kind) {
    case "isolate the leader":
    case "isolate a follower": {
      const id = kind === "isolate the leader" ? leader : follower;
      await cluster.link(id, "down");
      await sleep(FAULT_MS);
      await cluster.link(id, "up");
      break;
    }
    case "SIGSTOP the leader":
      cluster.signal(leader, "SIGSTOP");
      await sleep(FAULT_MS);
      cluster.signal(leader, "SIGCONT");
      break;
    case "kill -9 the leader":
      await cluster.kill9(leader);
      await sleep(FAULT_MS);
      await cluster.start(leader);
      break;
    case "kill -9 and restart a majority": {
      await Promise.all([cluster.kill9(leader), cluster.kill9(follower)]);
      await sleep(FAULT_MS / 2);
      const restartedAt = Date.now();
      await Promise.all([cluster.start(leader), cluster.start(follower)]);
      await producer.flowing(restartedAt, 1);
      const firsts = Array.from(
        { length: PARTITIONS },
        (_, p) => producer.ackTimes(p).find((t) => t >= restartedAt)!,
      );
      await settled(cluster);
      return { ms: Math.max(...firsts) - restartedAt, namedMs: null };
    }
  }
  await producer.flowing(Date.now());
  const gap = longestGap(producer, t0 - 1_000, Date.now());
  await settled(cluster);
  return { ms: gap, namedMs: await named };
}

/** Every acknowledged value at its offset, in every partition's log. */
async function lostValues(
  cluster: NetnsCluster,
  producer: Producer,
): Promise<number> {
  const client = await KafkaClient.connect(cluster.bootstrap(), {
    retries: 5,
  });
  let lost = 0;
  try {
    for (let p = 0; p < PARTITIONS; p++) {
      const log = new Map<number, string>();
      for (let offset = 0n;;) {
        const { records, highWatermark } = await client.fetch(
          TOPIC,
          p,
          offset,
          { maxWaitMs: 0 },
        );
        const decoded = decodeRecordBatches(records);
        for (const r of decoded) {
          log.set(Number(r.offset), new TextDecoder().decode(r.value!));
        }
        if (decoded.length === 0 || offset >= highWatermark) break;
        offset = decoded.at(-1)!.offset + 1n;
        if (offset >= highWatermark) break;
      }
      for (const d of producer.deliveries) {
        if (d.p !== p || d.e !== null) continue;
        // librdkafka reports offset -1 for a retry the broker found to be
        // a duplicate: the value must then be somewhere in the log.
        const held = d.o < 0
          ? [...log.values()].includes(d.v)
          : log.get(d.o) === d.v;
        if (held) continue;
        lost++;
        console.error(
          `lost: ${d.v} acknowledged at ${TOPIC}-${p}@${d.o}, the log holds ${
            log.get(d.o) ?? "nothing"
          } there`,
        );
      }
    }
  } finally {
    await client.close();
  }
  return lost;
}

/** Partitions whose segment files differ between replicas (brokers stopped). */
async function divergentPartitions(cluster: NetnsCluster): Promise<number[]> {
  const divergent: number[] = [];
  for (let p = 0; p < PARTITIONS; p++) {
    const copies = await Promise.all(cluster.members.map(async (m) => {
      const dir = `${m.dataDir}/${TOPIC}-${p}`;
      const names = [...Deno.readDirSync(dir)].map((e) => e.name)
        .filter((n) => n.endsWith(".log")).sort();
      const bytes = await Promise.all(
        names.map((n) => Deno.readFile(`${dir}/${n}`)),
      );
      return JSON.stringify([names, bytes.map((b) => Array.from(b).join())]);
    }));
    if (new Set(copies).size !== 1) divergent.push(p);
  }
  return divergent;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

if (Deno.uid() !== 0) {
  console.log("bench:faults needs root (network namespaces): skipped");
  Deno.exit(0);
}
const cluster = await NetnsCluster.create();
try {
  await Promise.all(cluster.members.map((m) => cluster.start(m.nodeId)));
  const admin = await KafkaClient.connect(cluster.bootstrap(), { retries: 12 });
  await waitFor("3 live brokers", async () => {
    const md = await admin.metadata([]);
    return md.brokers.length === SIZE ? true : undefined;
  });
  await admin.createTopic(TOPIC, {
    partitions: PARTITIONS,
    replicationFactor: SIZE,
  });
  await admin.close();
  await settled(cluster);
  const producer = new Producer(cluster.bootstrap());
  await producer.flowing(0, 50);
  const kinds: FaultKind[] = [
    "isolate the leader",
    "isolate a follower",
    "SIGSTOP the leader",
    "kill -9 the leader",
    "kill -9 and restart a majority",
  ];
  const rows: { fault: string; gapsMs: number[]; namedMs: number[] }[] = [];
  for (const kind of kinds.filter((k) => k.includes(flags.only))) {
    const gapsMs: number[] = [];
    const namedMs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      const f = await fault(kind, cluster, producer);
      gapsMs.push(Math.round(f.ms));
      if (f.namedMs !== null) namedMs.push(f.namedMs);
      console.error(
        `${kind}, round ${round + 1}: ${Math.round(f.ms)} ms${
          f.namedMs === null ? "" : `, new leader named after ${f.namedMs} ms`
        }`,
      );
    }
    rows.push({ fault: kind, gapsMs, namedMs });
  }
  await producer.stop();
  const lost = await lostValues(cluster, producer);
  await cluster.stopAll();
  const divergent = await divergentPartitions(cluster);
  const acked = producer.deliveries.filter((d) => d.e === null).length;
  const failed = producer.deliveries.length - acked;
  if (flags.json) {
    console.log(
      JSON.stringify({ rows, acked, failed, lost, divergent }, null, 2),
    );
  } else {
    console.log(
      `| fault (${FAULT_MS} ms each) | rounds | median ms | max ms | each ms | leader named, median ms |`,
    );
    console.log("| --- | ---: | ---: | ---: | --- | ---: |");
    for (const r of rows) {
      console.log(
        `| ${r.fault} | ${r.gapsMs.length} | ${median(r.gapsMs)} | ${
          Math.max(...r.gapsMs)
        } | ${r.gapsMs.join(", ")} | ${
          r.namedMs.length === 0 ? "" : median(r.namedMs)
        } |`,
      );
    }
    console.log(
      `\n${acked} acknowledged, ${failed} failed, ${lost} lost; replicas ${
        divergent.length === 0
          ? "identical"
          : `differ in partitions ${divergent}`
      }`,
    );
  }
  if (lost > 0 || divergent.length > 0) Deno.exitCode = 1;
} finally {
  await cluster.destroy();
}
