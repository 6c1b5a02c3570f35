/**
 * `deno task bench`: produce and consume throughput and produce latency of a
 * raftq broker that this script starts (a real process, its own data dir,
 * flush mode "always", so every acknowledged batch is fdatasync'ed), driven
 * by raftq's own client and by kcat (librdkafka) with the same workloads.
 *
 *   deno task bench [--json] [--seconds N] [--quick] [--no-cluster]
 *                   [--inflight N] [--only "1024B acks=all p=1"]
 *
 * Figures on a shared machine are noisy: compare rows of one run, not runs.
 */
import { parseArgs } from "node:util";
import { buildRecordBatch, readBatchHeader } from "../src/protocol/mod.ts";
import { KafkaClient } from "../src/client/mod.ts";
import {
  freePorts,
  hasKcat,
  removeDir,
  startBroker,
} from "../tests/harness.ts";
import {
  Cluster,
  SequentialProducer,
  waitFor,
} from "../tests/cluster_harness.ts";
import {
  benchNats,
  benchNatsR3,
  NATS_WINDOW,
  natsUnavailable,
} from "./bench_nats.ts";
import { benchRedis, latencyOwn, redisUnavailable } from "./bench_latency.ts";
import { makeCerts, signCert } from "../tests/tls_certs.ts";
import { benchTransactions } from "./bench_txn.ts";
import { kcatInput, kcatProduceArgs } from "./kcat.ts";
import type { SecurityOptions } from "../src/client/mod.ts";

const { values: flags } = parseArgs({
  args: Deno.args,
  options: {
    json: { type: "boolean", default: false },
    quick: { type: "boolean", default: false },
    seconds: { type: "string", default: "3" },
    "no-cluster": { type: "boolean", default: false },
    // Pipelined batches per partition for raftq's client: Kafka's producer
    // default (max.in.flight.requests.per.connection=5), each request
    // carrying one 64 KiB batch (a batch.size raised for throughput, as
    // kcat's below is).
    inflight: { type: "string", default: "5" },
    // Runs only the single-broker workloads whose name contains this.
    only: { type: "string", default: "" },
  },
});
const SECONDS = flags.quick ? 1 : Number(flags.seconds);
const BATCH_BYTES = 64 * 1024;
const INFLIGHT_PER_PARTITION = Number(flags.inflight);
if (!Number.isInteger(INFLIGHT_PER_PARTITION) || INFLIGHT_PER_PARTITION < 1) {
  throw new RangeError(
    `--inflight must be a positive integer: got ${flags.inflight}`,
  );
}
const CLUSTER_PARTITIONS = 6;
const FAILOVER_KILLS = 5;
/** Partitions of the rolling-restart topic, one sequential producer each. */
const ROLLING_PARTITIONS = 3;
const LATENCY_SINGLE = "produce 1024B acks=all, 1 in flight";
const LATENCY_RF3 = "cluster 3x produce 1024B acks=all RF=3, 1 in flight";
const LATENCY_REDIS = "Redis XADD 1024B, appendfsync always, 1 in flight";
const LATENCY_NATS_R3 = "NATS JetStream R3 publish 1024B, 1 in flight";

interface Row {
  workload: string;
  driver: string;
  msgsPerSec: number | null;
  mbPerSec: number | null;
  p50Ms: number | null;
  p99Ms: number | null;
  /**
   * Against a peer of the same run: MB/s over NATS JetStream's for 1 KiB
   * throughput rows, ack latency over Redis' or NATS R3's for the
   * one-in-flight rows.
   */
  vsPeer: string | null;
}

function percentile(sorted: number[], p: number): number | null {
  if (sorted.length === 0) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor(sorted.length * p))]!;
}

function batchFor(messageBytes: number): { batch: Uint8Array; count: number } {
  const count = Math.max(1, Math.floor(BATCH_BYTES / messageBytes));
  const value = new Uint8Array(messageBytes).fill(0x61);
  const records = Array.from({ length: count }, () => ({ value }));
  return { batch: buildRecordBatch(records), count };
}

/**
 * Produces with raftq's client: INFLIGHT_PER_PARTITION pipelined batches per
 * partition for `seconds`, or at `ratePerSec` batches when given (to measure
 * latency below saturation).
 */
async function produceOwn(opts: {
  client: KafkaClient;
  topic: string;
  partitions: number;
  messageBytes: number;
  acks: -1 | 1;
  seconds: number;
  batchesPerSec?: number;
}): Promise<
  { msgs: number; bytes: number; latencies: number[]; elapsed: number }
> {
  const { batch, count } = batchFor(opts.messageBytes);
  const latencies: number[] = [];
  let msgs = 0;
  const start = performance.now();
  const end = start + opts.seconds * 1000;
  const interval = opts.batchesPerSec === undefined
    ? 0
    : (1000 / opts.batchesPerSec) * opts.partitions * INFLIGHT_PER_PARTITION;
  const lane = async (partition: number, laneIndex: number) => {
    let next = start + (interval * laneIndex) / INFLIGHT_PER_PARTITION;
    while (performance.now() < end) {
      if (interval > 0) {
        const wait = next - performance.now();
        if (wait > 0) await new Promise((r) => setTimeout(r, wait));
        next += interval;
      }
      const t0 = performance.now();
      await opts.client.produce(opts.topic, partition, batch, {
        acks: opts.acks,
      });
      latencies.push(performance.now() - t0);
      msgs += count;
    }
  };
  const lanes = [];
  for (let p = 0; p < opts.partitions; p++) {
    for (let l = 0; l < INFLIGHT_PER_PARTITION; l++) lanes.push(lane(p, l));
  }
  await Promise.all(lanes);
  const elapsed = (performance.now() - start) / 1000;
  latencies.sort((a, b) => a - b);
  return { msgs, bytes: msgs * opts.messageBytes, latencies, elapsed };
}

/** Reads every partition from offset 0 to its end with raftq's client. */
async function consumeOwn(
  client: KafkaClient,
  topic: string,
  partitions: number,
): Promise<{ msgs: number; bytes: number; elapsed: number }> {
  const start = performance.now();
  let msgs = 0;
  let bytes = 0;
  await Promise.all(
    Array.from({ length: partitions }, async (_, p) => {
      let offset = 0n;
      for (;;) {
        const res = await client.fetch(topic, p, offset, {
          maxWaitMs: 0,
          maxBytes: 8 * 1024 * 1024,
        });
        if (res.records.length === 0) break;
        let pos = 0;
        while (pos + 61 <= res.records.length) {
          const h = readBatchHeader(res.records, pos);
          if (pos + h.sizeBytes > res.records.length) break;
          msgs += h.recordsCount;
          offset = h.baseOffset + BigInt(h.lastOffsetDelta) + 1n;
          pos += h.sizeBytes;
        }
        bytes += pos;
        if (offset >= res.highWatermark) break;
      }
    }),
  );
  return { msgs, bytes, elapsed: (performance.now() - start) / 1000 };
}

async function timed(cmd: string, args: string[], stdin?: Uint8Array) {
  const t0 = performance.now();
  const child = new Deno.Command(cmd, {
    args,
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = child.stdin.getWriter();
    await w.write(stdin);
    await w.close();
  }
  const out = await child.output();
  if (out.code !== 0) {
    throw new Error(`${cmd} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return (performance.now() - t0) / 1000;
}

const broker = await startBroker({ set: ["log.segment_bytes=256MiB"] });
const client = await KafkaClient.connect(broker.bootstrap);
const rows: Row[] = [];
const row = (
  workload: string,
  driver: string,
  r: { msgs: number; bytes: number; elapsed: number; latencies?: number[] },
): Row => {
  const result: Row = {
    workload,
    driver,
    msgsPerSec: Math.round(r.msgs / r.elapsed),
    mbPerSec: Math.round((r.bytes / r.elapsed / 1e6) * 10) / 10,
    p50Ms: r.latencies ? percentile(r.latencies, 0.5) : null,
    p99Ms: r.latencies ? percentile(r.latencies, 0.99) : null,
    vsPeer: null,
  };
  rows.push(result);
  if (!flags.json) {
    console.error(
      `${workload.padEnd(34)} ${driver.padEnd(14)} ${
        String(result.msgsPerSec).padStart(9)
      } msg/s ${String(result.mbPerSec).padStart(7)} MB/s`,
    );
  }
  return result;
};

try {
  for (const messageBytes of [1024, 100]) {
    for (const partitions of [1, 8]) {
      for (const acks of [1, -1] as const) {
        const name = `produce ${messageBytes}B acks=${
          acks === -1 ? "all" : 1
        } p=${partitions}`;
        if (!name.includes(flags.only)) continue;
        const topic = `bench-${messageBytes}-${partitions}-${
          acks === -1 ? "all" : 1
        }`;
        await client.createTopic(topic, { partitions });
        const peak = await produceOwn({
          client,
          topic,
          partitions,
          messageBytes,
          acks,
          seconds: SECONDS,
        });
        row(name, "raftq client", peak);
        if (acks === -1) {
          // Latency below saturation: half the peak rate.
          const batchesPerSec = peak.msgs / peak.elapsed /
            Math.max(1, Math.floor(BATCH_BYTES / messageBytes)) / 2;
          const half = await produceOwn({
            client,
            topic,
            partitions,
            messageBytes,
            acks,
            seconds: SECONDS,
            batchesPerSec,
          });
          row(`${name} @50%`, "raftq client", half);
        }
        if (hasKcat) {
          const count = Math.min(
            Math.round((peak.msgs / peak.elapsed) * SECONDS),
            Math.floor(300e6 / messageBytes),
          );
          const input = kcatInput(messageBytes, Math.max(count, 1000));
          const kcatTopic = `${topic}-kcat`;
          await client.createTopic(kcatTopic, { partitions });
          const elapsed = await timed(
            "kcat",
            kcatProduceArgs(broker.bootstrap, kcatTopic, acks),
            input,
          );
          const n = Math.max(count, 1000);
          row(name, "kcat", { msgs: n, bytes: n * messageBytes, elapsed });
        }
        if (acks === -1) {
          const consumed = await consumeOwn(client, topic, partitions);
          row(
            `consume ${messageBytes}B p=${partitions}`,
            "raftq client",
            consumed,
          );
          if (hasKcat) {
            const elapsed = await timed("kcat", [
              "-b",
              broker.bootstrap,
              "-C",
              "-t",
              topic,
              "-e",
              "-q",
              "-f",
              "%s\\n",
            ]);
            row(`consume ${messageBytes}B p=${partitions}`, "kcat", {
              msgs: consumed.msgs,
              bytes: consumed.bytes,
              elapsed,
            });
          }
        }
      }
    }
  }
  if (LATENCY_SINGLE.includes(flags.only)) {
    await client.createTopic("bench-latency", { partitions: 1 });
    row(
      LATENCY_SINGLE,
      "raftq client",
      await latencyOwn(client, "bench-latency", SECONDS),
    );
  }
} finally {
  await client.close();
  await broker.stop();
  await removeDir(broker.dataDir);
}

/**
 * Kills the leader of `topic`-0 FAILOVER_KILLS times while a producer sends
 * one acks=all message at a time, and returns, in ms, each time from SIGKILL
 * to the first acknowledgement after it and to the first Metadata answer
 * without the killed broker. The killed broker restarts and takes its
 * leadership back between kills.
 */
async function failoverTimes(cluster: Cluster, topic: string) {
  const admin = await cluster.client();
  const client = await KafkaClient.connect(cluster.bootstrap(), {
    retries: 0,
    requestTimeoutMs: 5_000,
  });
  const producer = new SequentialProducer(client, topic);
  const acked: number[] = [];
  const dropped: number[] = [];
  try {
    for (let kill = 0; kill < FAILOVER_KILLS; kill++) {
      const md = await cluster.waitForLeaders(admin, topic, {
        preferred: true,
      });
      const victim = md.partitions[0]!.leader;
      await producer.ackedMore(20, 10_000);
      const t0 = performance.now();
      await cluster.kill9(victim);
      const gone = waitFor("the killed broker to leave Metadata", async () => {
        const now = await admin.metadata([]);
        return now.brokers.some((b) => b.nodeId === victim)
          ? undefined
          : performance.now() - t0;
      }, { intervalMs: 50 });
      await producer.ackedMore(1, 30_000);
      acked.push(performance.now() - t0);
      dropped.push(await gone);
      await cluster.restart(victim);
      await cluster.waitForBrokers(cluster.members.length);
    }
  } finally {
    await producer.stop();
    await client.close();
    await admin.close();
  }
  const sorted = (xs: number[]) => xs.sort((a, b) => a - b);
  return { acked: sorted(acked), dropped: sorted(dropped) };
}

/**
 * Stops (SIGTERM, a clean shutdown that hands leaderships off first) or
 * kills (SIGKILL) each broker in turn and starts it again, waiting until
 * it is back and leads its preferred partitions (so it is in sync) before
 * the next, while one producer per partition of `topic` sends one acks=all
 * message at a time. Returns the longest time, in ms, that any message
 * waited from its first send to its acknowledgement, retries included.
 */
async function rollingRestartStall(
  cluster: Cluster,
  topic: string,
  signal: "SIGTERM" | "SIGKILL",
): Promise<number> {
  const admin = await cluster.client();
  const client = await KafkaClient.connect(cluster.bootstrap(), {
    retries: 0,
    requestTimeoutMs: 5_000,
  });
  const producers = Array.from(
    { length: ROLLING_PARTITIONS },
    (_, partition) => new SequentialProducer(client, topic, { partition }),
  );
  const ackedMore = (count: number, timeoutMs: number) =>
    Promise.all(producers.map((p) => p.ackedMore(count, timeoutMs)));
  try {
    await cluster.waitForLeaders(admin, topic, { preferred: true });
    await ackedMore(20, 10_000);
    for (const p of producers) p.resetAckMsMax();
    for (const m of cluster.members) {
      if (signal === "SIGTERM") await cluster.stop(m.nodeId);
      else await cluster.kill9(m.nodeId);
      await ackedMore(10, 30_000);
      await cluster.restart(m.nodeId);
      await cluster.waitForBrokers(cluster.members.length);
      await cluster.waitForLeaders(admin, topic, {
        preferred: true,
        timeoutMs: 30_000,
      });
      await ackedMore(10, 10_000);
    }
  } finally {
    await Promise.allSettled(producers.map((p) => p.stop()));
    await client.close();
    await admin.close();
  }
  return Math.max(...producers.map((p) => p.ackMsMax));
}

/**
 * What metrics cost a produce: the same workload on one broker with its
 * admin listener, with nobody scraping and with /metrics scraped every
 * second, alternated twice so that drift of the machine hits both alike.
 * The request path always updates its counters and histograms (there is no
 * switch to turn them off); a scrape renders the whole page.
 */
async function scrapeCost(): Promise<void> {
  const name = "produce 100B acks=all p=8";
  if (!`${name} scrape`.includes(flags.only)) return;
  const metered = await startBroker({
    adminPort: freePorts(1)[0]!,
    set: ["log.segment_bytes=256MiB"],
  });
  const own = await KafkaClient.connect(metered.bootstrap);
  const scrapes: number[] = [];
  let pageBytes = 0;
  try {
    await own.createTopic("bench-scrape", { partitions: 8 });
    for (const round of [0, 1]) {
      for (const scraped of round === 0 ? [false, true] : [true, false]) {
        const stop = new AbortController();
        const scraper = scraped
          ? (async () => {
            while (!stop.signal.aborted) {
              const t0 = performance.now();
              const page = await (await fetch(`${metered.adminUrl}/metrics`))
                .text();
              scrapes.push(performance.now() - t0);
              pageBytes = page.length;
              await new Promise((r) => setTimeout(r, 1000));
            }
          })()
          : Promise.resolve();
        const result = await produceOwn({
          client: own,
          topic: "bench-scrape",
          partitions: 8,
          messageBytes: 100,
          acks: -1,
          seconds: SECONDS,
        });
        stop.abort();
        await scraper;
        row(
          `${name} ${scraped ? "scraped 1/s" : "no scrape"} #${round + 1}`,
          "raftq client",
          result,
        );
      }
    }
  } finally {
    await own.close();
    await metered.stop();
    await removeDir(metered.dataDir);
  }
  scrapes.sort((a, b) => a - b);
  console.error(
    `/metrics: ${pageBytes} bytes, scrape p50 ${
      percentile(scrapes, 0.5)?.toFixed(1)
    } ms over ${scrapes.length} scrapes`,
  );
}
await scrapeCost();

/**
 * What TLS and SASL cost: the same 1 KiB acks=all workloads through a
 * PLAINTEXT and a SASL_SSL (SCRAM-SHA-256) listener of one broker, with
 * raftq's client and kcat, and through an SSL listener that requires client
 * certificates, of a second broker, with kcat (raftq's client cannot turn
 * Nagle off on a connection with a client certificate). Ratios are against
 * PLAINTEXT of the same broker.
 */
async function securityCost(): Promise<void> {
  const produceName = "produce 1024B acks=all p=1";
  if (!`${produceName} security`.includes(flags.only)) return;
  const certs = await makeCerts();
  const benchCert = await signCert(certs, "bench", "/CN=bench");
  const password = "bench-password";
  const [plainA, saslSsl, plainB, ssl] = freePorts(4) as [
    number,
    number,
    number,
    number,
  ];
  const tls = [
    `tls.cert_file=${certs.certFile}`,
    `tls.key_file=${certs.keyFile}`,
    "log.segment_bytes=256MiB",
  ];
  const brokers = [
    await startBroker({
      set: [
        ...tls,
        `listeners=PLAINTEXT://127.0.0.1:${plainA},SASL_SSL://127.0.0.1:${saslSsl}`,
      ],
    }),
    await startBroker({
      set: [
        ...tls,
        `listeners=PLAINTEXT://127.0.0.1:${plainB},SSL://127.0.0.1:${ssl}`,
        `tls.ca_file=${certs.caFile}`,
        "tls.client_auth=required",
      ],
    }),
  ];
  const kcatTls = ["-X", `ssl.ca.location=${certs.caFile}`];
  const listeners = [
    { label: "PLAINTEXT", port: plainA, kcat: [] as string[] },
    {
      label: "SASL_SSL SCRAM-SHA-256",
      port: saslSsl,
      security: {
        tls: { caCerts: [Deno.readTextFileSync(certs.caFile)] },
        sasl: { mechanism: "SCRAM-SHA-256", username: "bench", password },
      } satisfies SecurityOptions,
      kcat: [
        ...kcatTls,
        "-X",
        "security.protocol=SASL_SSL",
        "-X",
        "sasl.mechanisms=SCRAM-SHA-256",
        "-X",
        "sasl.username=bench",
        "-X",
        `sasl.password=${password}`,
      ],
    },
    { label: "PLAINTEXT (mTLS broker)", port: plainB, kcat: [] as string[] },
    {
      label: "SSL client_auth=required",
      port: ssl,
      kcatOnly: true,
      kcat: [
        ...kcatTls,
        "-X",
        "security.protocol=SSL",
        "-X",
        `ssl.certificate.location=${benchCert.certFile}`,
        "-X",
        `ssl.key.location=${benchCert.keyFile}`,
      ],
    },
  ];
  const admins = await Promise.all(
    [plainA, plainB].map((port) => KafkaClient.connect(`127.0.0.1:${port}`)),
  );
  try {
    await admins[0]!.upsertUser("bench", {
      mechanism: "SCRAM-SHA-256",
      password,
    });
    const baseline = new Map<string, number>();
    let kcatCount = 0;
    for (const [i, l] of listeners.entries()) {
      const admin = admins[i < 2 ? 0 : 1]!;
      const bootstrap = `127.0.0.1:${l.port}`;
      const topic = `bench-security-${i}`;
      await admin.createTopic(topic, { partitions: 1 });
      const measured: Row[] = [];
      if (!("kcatOnly" in l)) {
        const own = await KafkaClient.connect(
          bootstrap,
          "security" in l ? { security: l.security } : {},
        );
        try {
          const produced = await produceOwn({
            client: own,
            topic,
            partitions: 1,
            messageBytes: 1024,
            acks: -1,
            seconds: SECONDS,
          });
          kcatCount ||= Math.min(
            300_000,
            Math.max(
              1000,
              Math.round(produced.msgs / produced.elapsed * SECONDS),
            ),
          );
          measured.push(
            row(`${produceName} ${l.label}`, "raftq client", produced),
            row(
              `consume 1024B p=1 ${l.label}`,
              "raftq client",
              await consumeOwn(own, topic, 1),
            ),
          );
        } finally {
          await own.close();
        }
      }
      if (hasKcat) {
        kcatCount ||= 100_000;
        const kcatTopic = `${topic}-kcat`;
        await admin.createTopic(kcatTopic, { partitions: 1 });
        const produced = await timed(
          "kcat",
          [...kcatProduceArgs(bootstrap, kcatTopic, -1), ...l.kcat],
          kcatInput(1024, kcatCount),
        );
        const bytes = kcatCount * 1024;
        measured.push(
          row(`${produceName} ${l.label}`, "kcat", {
            msgs: kcatCount,
            bytes,
            elapsed: produced,
          }),
        );
        const consumed = await timed("kcat", [
          "-b",
          bootstrap,
          "-C",
          "-t",
          kcatTopic,
          "-e",
          "-q",
          "-f",
          "%s\\n",
          ...l.kcat,
        ]);
        measured.push(
          row(`consume 1024B p=1 ${l.label}`, "kcat", {
            msgs: kcatCount,
            bytes,
            elapsed: consumed,
          }),
        );
      }
      // A plain listener is the baseline of the secured one after it.
      for (const r of measured) {
        const key = `${r.workload.split(" ")[0]} ${r.driver}`;
        const base = baseline.get(key);
        if (l.label.startsWith("PLAINTEXT")) {
          if (r.mbPerSec !== null) baseline.set(key, r.mbPerSec);
        } else if (base !== undefined && base > 0 && r.mbPerSec !== null) {
          r.vsPeer = `${(r.mbPerSec / base).toFixed(2)}x PLAINTEXT`;
        }
      }
    }
  } finally {
    await Promise.all(admins.map((a) => a.close()));
    for (const b of brokers) {
      await b.stop();
      await removeDir(b.dataDir);
    }
    await removeDir(certs.dir);
  }
}
await securityCost();

/** Transactional against idempotent produce with one client, one broker. */
async function transactionCost(): Promise<void> {
  const name = "produce 1024B acks=all p=1 kafkajs";
  if (!`${name} transactions`.includes(flags.only)) return;
  const broker = await startBroker({ set: ["log.segment_bytes=256MiB"] });
  const admin = await KafkaClient.connect(broker.bootstrap);
  try {
    await admin.createTopic("bench-txn", { partitions: 1 });
    const runs = await benchTransactions(broker.bootstrap, {
      seconds: SECONDS,
      topic: "bench-txn",
    });
    const base = row(`${name} idempotent`, "kafkajs", runs.idempotent);
    const txn = row(
      `${name} transactional, commit per 10 sends`,
      "kafkajs",
      runs.transactional,
    );
    if (base.mbPerSec !== null && base.mbPerSec > 0 && txn.mbPerSec !== null) {
      txn.vsPeer = `${(txn.mbPerSec / base.mbPerSec).toFixed(2)}x idempotent`;
    }
  } finally {
    await admin.close();
    await broker.stop();
    await removeDir(broker.dataDir);
  }
}
await transactionCost();

// The peers run only in a full run: a filtered one measures raftq alone.
const peersMissing = flags.only === "" ? null : "--only runs raftq rows only";
const natsMissing = peersMissing ?? await natsUnavailable();
if (natsMissing !== null) {
  console.error(`Skipping the NATS JetStream row: ${natsMissing}`);
} else {
  const nats = await benchNats({ messageBytes: 1024, seconds: SECONDS });
  const publishName =
    `NATS JetStream publish 1024B, file store, ${NATS_WINDOW} async acks`;
  row(publishName, "nats.js", nats.publish);
  row("NATS JetStream consume 1024B", "nats.js", nats.consume);
  const peer = (prefix: string) =>
    rows.find((r) => r.workload.startsWith(prefix))?.mbPerSec ?? null;
  const publishMbPerSec = peer("NATS JetStream publish");
  const consumeMbPerSec = peer("NATS JetStream consume");
  for (const r of rows) {
    const base = r.workload.startsWith("produce 1024B")
      ? publishMbPerSec
      : r.workload.startsWith("consume 1024B")
      ? consumeMbPerSec
      : null;
    if (base !== null && base > 0 && r.mbPerSec !== null) {
      r.vsPeer = `${(r.mbPerSec / base).toFixed(2)}x NATS`;
    }
  }
}

const redisMissing = peersMissing ?? await redisUnavailable();
if (redisMissing !== null) {
  console.error(`Skipping the Redis row: ${redisMissing}`);
} else {
  row(LATENCY_REDIS, "RESP", await benchRedis(SECONDS));
}

if (!flags["no-cluster"]) {
  const cluster = await Cluster.start({ set: ["log.segment_bytes=256MiB"] });
  const admin = await cluster.client();
  try {
    const peakByRf = new Map<number, Row>();
    for (const rf of [3, 1]) {
      const topic = `cluster-rf${rf}`;
      await admin.createTopic(topic, {
        partitions: CLUSTER_PARTITIONS,
        replicationFactor: rf,
      });
      await cluster.waitForLeaders(admin, topic, { preferred: true });
      const name =
        `cluster 3x produce 1024B acks=all RF=${rf} p=${CLUSTER_PARTITIONS}`;
      const peak = await produceOwn({
        client: admin,
        topic,
        partitions: CLUSTER_PARTITIONS,
        messageBytes: 1024,
        acks: -1,
        seconds: SECONDS,
      });
      peakByRf.set(rf, row(name, "raftq client", peak));
      if (hasKcat) {
        const n = Math.max(
          1000,
          Math.min(Math.round((peak.msgs / peak.elapsed) * SECONDS), 300_000),
        );
        const elapsed = await timed(
          "kcat",
          kcatProduceArgs(cluster.bootstrap(), topic, -1),
          kcatInput(1024, n),
        );
        row(name, "kcat", { msgs: n, bytes: n * 1024, elapsed });
      }
    }
    const rf3 = peakByRf.get(3)!;
    const rf1Mb = peakByRf.get(1)!.mbPerSec;
    if (rf3.mbPerSec !== null && rf1Mb) {
      rf3.vsPeer = `${(rf3.mbPerSec / rf1Mb).toFixed(2)}x RF=1`;
    }
    await admin.createTopic("cluster-latency", {
      partitions: 1,
      replicationFactor: 3,
    });
    await cluster.waitForLeaders(admin, "cluster-latency", { preferred: true });
    row(
      LATENCY_RF3,
      "raftq client",
      await latencyOwn(admin, "cluster-latency", SECONDS),
    );
    await admin.createTopic("cluster-failover", {
      partitions: 1,
      replicationFactor: 3,
    });
    // Created while all three brokers are surely live: right after the
    // failover rows the controller may not count the last one killed yet.
    await admin.createTopic("cluster-rolling", {
      partitions: ROLLING_PARTITIONS,
      replicationFactor: 3,
    });
    const times = await failoverTimes(cluster, "cluster-failover");
    for (
      const [what, ms] of [
        ["to first ack", times.acked],
        ["to broker gone from Metadata", times.dropped],
      ] as const
    ) {
      const result: Row = {
        workload:
          `cluster failover, SIGKILL leader ${what} (${FAILOVER_KILLS} kills; p99 = max)`,
        driver: "raftq client",
        msgsPerSec: null,
        mbPerSec: null,
        p50Ms: percentile(ms, 0.5),
        p99Ms: ms.at(-1) ?? null,
        vsPeer: null,
      };
      rows.push(result);
      if (!flags.json) {
        console.error(
          `${result.workload} ${ms.map((t) => t.toFixed(0)).join(", ")} ms`,
        );
      }
    }
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      const stallMs = await rollingRestartStall(
        cluster,
        "cluster-rolling",
        signal,
      );
      const result: Row = {
        workload:
          `cluster rolling restart (${signal} each broker), longest produce stall (acks=all, p=${ROLLING_PARTITIONS}; p99 = max)`,
        driver: "raftq client",
        msgsPerSec: null,
        mbPerSec: null,
        p50Ms: null,
        p99Ms: stallMs,
        vsPeer: null,
      };
      rows.push(result);
      if (!flags.json) {
        console.error(`${result.workload} ${stallMs.toFixed(0)} ms`);
      }
    }
  } finally {
    await admin.close();
    await cluster.destroy();
  }
}

const natsR3Missing = flags["no-cluster"] ? "--no-cluster" : natsMissing;
if (natsR3Missing !== null) {
  console.error(`Skipping the NATS R3 row: ${natsR3Missing}`);
} else {
  row(LATENCY_NATS_R3, "nats.js", await benchNatsR3(SECONDS));
}

/** Sets the one-in-flight row's latency ratios against its peer's row. */
function latencyAgainst(workload: string, peerWorkload: string, peer: string) {
  const own = rows.find((r) => r.workload === workload);
  const base = rows.find((r) => r.workload === peerWorkload);
  if (own === undefined || base === undefined) return;
  const ratio = (a: number | null, b: number | null) =>
    a === null || b === null || b === 0 ? "-" : `${(a / b).toFixed(2)}x`;
  own.vsPeer = `p50 ${ratio(own.p50Ms, base.p50Ms)}, p99 ${
    ratio(own.p99Ms, base.p99Ms)
  } ${peer}`;
}
latencyAgainst(LATENCY_SINGLE, LATENCY_REDIS, "Redis");
latencyAgainst(LATENCY_RF3, LATENCY_NATS_R3, "NATS R3");

const fmt = (v: number | null) => (v === null ? "-" : v.toFixed(2));
if (flags.json) {
  console.log(JSON.stringify(rows, null, 2));
} else {
  console.log(
    "| workload | driver | msgs/s | MB/s | ack p50 ms | ack p99 ms | vs peer |\n| --- | --- | ---: | ---: | ---: | ---: | ---: |",
  );
  for (const r of rows) {
    console.log(
      `| ${r.workload} | ${r.driver} | ${r.msgsPerSec ?? "-"} | ${
        r.mbPerSec ?? "-"
      } | ${fmt(r.p50Ms)} | ${fmt(r.p99Ms)} | ${r.vsPeer ?? "-"} |`,
    );
  }
}
