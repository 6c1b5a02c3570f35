import type { KafkaClient, PartitionQuorum } from "../client/mod.ts";
import { type CliIo, CommandError } from "./io.ts";
import { formatTable } from "./table.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";

/** How often a waiting command looks at the cluster again. */
const POLL_MS = 200;

/**
 * Each replica's lag as "broker:entries", from the partition leader's
 * DescribeQuorum answer: how many Raft log entries the replica's log is
 * behind the leader's (0 = caught up); "?" when the leader did not answer.
 */
function formatLag(q: PartitionQuorum | null): string {
  if (q === null) return "?";
  const leaderEnd = q.replicas.find((r) => r.nodeId === q.leader)
    ?.logEndOffset;
  if (leaderEnd === undefined) return "?";
  return q.replicas
    .map((r) =>
      `${r.nodeId}${r.voter ? "" : "(learner)"}:${leaderEnd - r.logEndOffset}`
    )
    .join(",");
}

/**
 * The brokers (the controller marked) and, per topic partition, its
 * leader, replicas, in-sync replicas and each replica's lag.
 */
export function clusterStatus(
  io: CliIo,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const metadata = await client.metadata(null);
    // Metadata names some broker while the controller is elected;
    // DescribeCluster says which broker leads the controller group.
    const { controllerId } = await client.describeCluster();
    const brokers = [...metadata.brokers].sort((a, b) => a.nodeId - b.nodeId);
    const topics = [...metadata.topics].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
    const partitions = await Promise.all(
      topics.flatMap((t) =>
        [...t.partitions].sort((a, b) => a.partition - b.partition).map(
          async (p) => {
            const quorum = p.leader < 0
              ? null
              : await client.describeQuorum(t.name, p.partition).catch(() =>
                null
              );
            return [
              t.name,
              p.partition,
              p.leader < 0 ? "none" : p.leader,
              p.replicas.join(",") || "-",
              p.isr.join(",") || "-",
              formatLag(quorum),
            ];
          },
        )
      ),
    );
    io.stdout(
      `Cluster: ${metadata.clusterId ?? "-"}\n\n` +
        formatTable(
          ["BROKER", "ADDRESS", "CONTROLLER"],
          brokers.map((b) => [
            b.nodeId,
            `${b.host}:${b.port}`,
            b.nodeId === controllerId ? "*" : "",
          ]),
        ) + "\n" +
        formatTable(
          ["TOPIC", "PARTITION", "LEADER", "REPLICAS", "ISR", "LAG"],
          partitions,
        ),
    );
  });
}

async function partitionOf(
  client: KafkaClient,
  topic: string,
  partition: number,
) {
  const md = await client.metadata([topic]);
  const p = md.topics.find((t) => t.name === topic && t.errorCode === 0)
    ?.partitions.find((x) => x.partition === partition);
  if (p === undefined) {
    throw new CommandError(`Partition ${partition} of "${topic}" not found`);
  }
  return p;
}

/** The partition indexes of a topic, in order. */
async function partitionsOf(
  client: KafkaClient,
  topic: string,
): Promise<number[]> {
  const md = await client.metadata([topic]);
  const t = md.topics.find((x) => x.name === topic && x.errorCode === 0);
  if (t === undefined) throw new CommandError(`Topic "${topic}" not found`);
  return t.partitions.map((p) => p.partition).sort((a, b) => a - b);
}

/** Polls `done` until it holds; false once `timeoutMs` ran out. */
async function waitUntil(
  done: () => Promise<boolean>,
  timeoutMs: number,
): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    if (await done()) return true;
    if (Date.now() >= deadline) return false;
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
}

export interface ReassignOptions extends ClientCommandOptions {
  replicas?: number[];
  cancel?: boolean;
  wait?: boolean;
  timeoutMs: number;
}

/**
 * Moves a partition, or with no partition every partition of the topic, to
 * new replicas through Raft membership changes (or cancels the move); with
 * --wait, returns once every move is done.
 */
export function reassign(
  io: CliIo,
  topic: string,
  partition: number | undefined,
  opts: ReassignOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const replicas = opts.cancel === true ? null : opts.replicas;
    if (replicas === undefined) {
      throw new CommandError("Give --replicas or --cancel");
    }
    const indexes = partition === undefined
      ? await partitionsOf(client, topic)
      : [partition];
    for (const index of indexes) {
      await client.reassignPartition(topic, index, replicas);
    }
    const names = indexes.map((i) => `${topic}-${i}`).join(", ");
    if (opts.wait !== true) {
      io.stdout(
        replicas === null
          ? `Cancelling the move of ${names}\n`
          : `Moving ${names} to [${replicas.join(",")}]\n`,
      );
      return;
    }
    const done = await waitUntil(async () => {
      const moving = await client.listReassignments();
      return !moving.some((r) =>
        r.topic === topic && indexes.includes(r.partition)
      );
    }, opts.timeoutMs);
    if (!done) {
      throw new CommandError(
        `${names} still moving after ${opts.timeoutMs} ms`,
      );
    }
    for (const index of indexes) {
      const p = await partitionOf(client, topic, index);
      io.stdout(`${topic}-${index} replicas: ${p.replicas.join(",")}\n`);
    }
  });
}

/**
 * Makes `broker` the partition's preferred leader (a reassignment that
 * only reorders the replicas, so leader balancing keeps it there) and
 * waits until metadata shows it leading.
 */
export function transferLeader(
  io: CliIo,
  topic: string,
  partition: number,
  broker: number,
  opts: ClientCommandOptions & { timeoutMs: number },
): Promise<void> {
  return withClient(opts, async (client) => {
    const before = await partitionOf(client, topic, partition);
    if (!before.replicas.includes(broker)) {
      throw new CommandError(
        `Broker ${broker} is not a replica of ${topic}-${partition} (replicas ${
          before.replicas.join(",")
        }): reassign it there first`,
      );
    }
    const replicas = [broker, ...before.replicas.filter((r) => r !== broker)];
    await client.reassignPartition(topic, partition, replicas);
    const led = await waitUntil(
      async () =>
        (await partitionOf(client, topic, partition)).leader === broker,
      opts.timeoutMs,
    );
    if (!led) {
      throw new CommandError(
        `Broker ${broker} does not lead ${topic}-${partition} after ${opts.timeoutMs} ms`,
      );
    }
    io.stdout(`Broker ${broker} leads ${topic}-${partition}\n`);
  });
}
