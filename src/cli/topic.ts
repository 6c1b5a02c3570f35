import { KafkaError } from "../client/mod.ts";
import { ErrorCode } from "../protocol/mod.ts";
import { configLines } from "./configs.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";
import type { CliIo } from "./io.ts";

export function createTopic(
  _io: CliIo,
  name: string,
  opts: ClientCommandOptions & {
    partitions?: number;
    replicationFactor?: number;
    config: Record<string, string>;
  },
): Promise<void> {
  return withClient(opts, (client) =>
    client.createTopic(name, {
      ...(opts.partitions === undefined ? {} : { partitions: opts.partitions }),
      ...(opts.replicationFactor === undefined
        ? {}
        : { replicationFactor: opts.replicationFactor }),
      configs: opts.config,
    }));
}

export function deleteTopic(
  _io: CliIo,
  name: string,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, (client) => client.deleteTopic(name));
}

export function addPartitions(
  _io: CliIo,
  name: string,
  opts: ClientCommandOptions & { count: number },
): Promise<void> {
  return withClient(
    opts,
    (client) => client.createPartitions(name, opts.count),
  );
}

/** Prints the partition's log start offset after the trim. */
export async function trimPartition(
  io: CliIo,
  name: string,
  partition: number,
  opts: ClientCommandOptions & { before: bigint },
): Promise<void> {
  const start = await withClient(
    opts,
    (client) => client.deleteRecords(name, partition, opts.before),
  );
  io.stdout(`${start}\n`);
}

export function listTopics(
  io: CliIo,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const metadata = await client.metadata(null);
    const names = metadata.topics.map((t) => t.name).sort();
    io.stdout(names.map((n) => `${n}\n`).join(""));
  });
}

const TOPIC_SOURCE = 1;

export function describeTopic(
  io: CliIo,
  name: string,
  opts: ClientCommandOptions & { allConfigs?: boolean },
): Promise<void> {
  return withClient(opts, async (client) => {
    const metadata = await client.metadata([name]);
    const topic = metadata.topics.find((t) => t.name === name);
    if (topic === undefined || topic.errorCode !== 0) {
      throw new KafkaError(
        topic?.errorCode ?? ErrorCode.UNKNOWN_TOPIC_OR_PARTITION,
        `topic "${name}"`,
      );
    }
    const partitions = [...topic.partitions].sort((a, b) =>
      a.partition - b.partition
    );
    const configs = await client.describeConfigs({ type: "topic", name });
    const own = configs.filter((c) => c.source === TOPIC_SOURCE)
      .map((c) => `${c.name}=${c.value}`).join(",");
    // Kafka's kafka-topics.sh --describe layout, which people already read.
    const lines = [
      `Topic: ${topic.name}\tTopicId: ${topic.topicId}\tPartitionCount: ${partitions.length}\tReplicationFactor: ${
        partitions[0]?.replicas.length ?? 0
      }\tConfigs: ${own}`,
      ...partitions.map((p) =>
        `\tTopic: ${topic.name}\tPartition: ${p.partition}\tLeader: ${
          p.leader < 0 ? "none" : p.leader
        }\tReplicas: ${p.replicas.join(",")}\tIsr: ${p.isr.join(",")}`
      ),
    ];
    if (opts.allConfigs) {
      lines.push(...configLines(configs).map((l) => `\t${l}`));
    }
    io.stdout(lines.map((l) => `${l}\n`).join(""));
  });
}
