import {
  EARLIEST_TIMESTAMP,
  type KafkaClient,
  LATEST_TIMESTAMP,
  type PartitionOffset,
} from "../client/mod.ts";
import { type CliIo, CommandError } from "./io.ts";
import { formatTable } from "./table.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";

export function listGroups(
  io: CliIo,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const groups = await client.listGroups();
    io.stdout(formatTable(
      ["GROUP", "STATE", "PROTOCOL-TYPE"],
      groups.map((g) => [g.groupId, g.state, g.protocolType || "-"]),
    ));
  });
}

/**
 * The group's state, then one row per partition that it owns or has an
 * offset for: committed offset, log end offset, lag and owner, as
 * kafka-consumer-groups.sh --describe shows them.
 */
export function describeGroup(
  io: CliIo,
  groupId: string,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const group = await client.describeGroup(groupId);
    const committed = await client.fetchOffsets(groupId);
    if (group.state === "Dead" && committed.length === 0) {
      throw new CommandError(`Group "${groupId}" does not exist`);
    }
    const rows = new Map<
      string,
      { topic: string; partition: number; offset: bigint; owner?: string[] }
    >();
    const row = (topic: string, partition: number) => {
      const key = `${topic}\0${partition}`;
      const found = rows.get(key) ?? { topic, partition, offset: -1n };
      rows.set(key, found);
      return found;
    };
    for (const c of committed) row(c.topic, c.partition).offset = c.offset;
    for (const m of group.members) {
      for (const a of m.assignment) {
        for (const p of a.partitions) {
          row(a.topic, p).owner = [m.memberId, m.clientHost, m.clientId];
        }
      }
    }
    const sorted = [...rows.values()].sort((a, b) =>
      a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition
    );
    const table = await Promise.all(sorted.map(async (r) => {
      const end = await client.listOffsets(
        r.topic,
        r.partition,
        LATEST_TIMESTAMP,
      );
      const has = r.offset >= 0n;
      return [
        r.topic,
        r.partition,
        has ? r.offset : "-",
        end,
        has ? end - r.offset : "-",
        ...(r.owner ?? ["-", "-", "-"]),
      ];
    }));
    io.stdout(
      `Group: ${groupId}  State: ${group.state}  Protocol: ${
        group.protocol || "-"
      }  Members: ${group.members.length}\n\n` +
        formatTable([
          "TOPIC",
          "PARTITION",
          "CURRENT-OFFSET",
          "LOG-END-OFFSET",
          "LAG",
          "CONSUMER-ID",
          "HOST",
          "CLIENT-ID",
        ], table),
    );
  });
}

export interface ResetOffsetsOptions extends ClientCommandOptions {
  topic: string;
  toEarliest?: boolean;
  toLatest?: boolean;
  toOffset?: bigint;
}

/**
 * Sets the group's committed offset of every partition of a topic. Like
 * Kafka, only for a group without members: a live consumer would go on
 * from its own position and overwrite the reset with its next commit.
 */
export function resetOffsets(
  io: CliIo,
  groupId: string,
  opts: ResetOffsetsOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const group = await client.describeGroup(groupId);
    if (group.members.length > 0) {
      throw new CommandError(
        `Cannot reset the offsets of group "${groupId}": it has ${group.members.length} active member(s) (state ${group.state}); stop its consumers first`,
      );
    }
    const partitions = await client.topicPartitions(opts.topic);
    const offsets: PartitionOffset[] = await Promise.all(
      partitions.map(async (partition) => ({
        topic: opts.topic,
        partition,
        offset: await targetOffset(client, opts.topic, partition, opts),
      })),
    );
    await client.commitOffsets(groupId, offsets);
    io.stdout(formatTable(
      ["TOPIC", "PARTITION", "NEW-OFFSET"],
      offsets.map((o) => [o.topic, o.partition, o.offset]),
    ));
  });
}

/** The offset to reset to: a given one is kept within the log's bounds. */
async function targetOffset(
  client: KafkaClient,
  topic: string,
  partition: number,
  opts: ResetOffsetsOptions,
): Promise<bigint> {
  if (opts.toEarliest) {
    return client.listOffsets(topic, partition, EARLIEST_TIMESTAMP);
  }
  const latest = await client.listOffsets(topic, partition, LATEST_TIMESTAMP);
  if (opts.toOffset === undefined) return latest;
  const earliest = await client.listOffsets(
    topic,
    partition,
    EARLIEST_TIMESTAMP,
  );
  const wanted = opts.toOffset;
  return wanted < earliest ? earliest : wanted > latest ? latest : wanted;
}

export function deleteGroup(
  _io: CliIo,
  groupId: string,
  opts: ClientCommandOptions,
): Promise<void> {
  return withClient(opts, (client) => client.deleteGroup(groupId));
}

export function deleteOffsets(
  io: CliIo,
  groupId: string,
  opts: ClientCommandOptions & { topic: string; partition?: number },
): Promise<void> {
  return withClient(opts, async (client) => {
    const partitions = opts.partition === undefined
      ? await client.topicPartitions(opts.topic)
      : [opts.partition];
    await client.deleteOffsets(groupId, opts.topic, partitions);
    io.stdout(formatTable(
      ["TOPIC", "PARTITION", "STATUS"],
      partitions.map((p) => [opts.topic, p, "deleted"]),
    ));
  });
}
