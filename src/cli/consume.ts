import {
  EARLIEST_TIMESTAMP,
  GroupMember,
  type KafkaClient,
  LATEST_TIMESTAMP,
} from "../client/mod.ts";
import { decodeRecordBatches } from "../protocol/mod.ts";
import { aborted, type CliIo } from "./io.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";

// Short enough that an interrupt, a reached --max-messages or a rebalance
// ends a fetch promptly; the broker answers sooner whenever data arrives.
const FETCH_WAIT_MS = 500;

/**
 * Prints `partition` from `offset` until `signal` aborts; `afterBatch`
 * gets the next offset after each batch that printed something and
 * answers whether to go on.
 */
type Follow = (
  partition: number,
  offset: bigint,
  how: {
    signal: AbortSignal;
    afterBatch?: (next: bigint) => Promise<boolean>;
  },
) => Promise<void>;

export interface ConsumeOptions extends ClientCommandOptions {
  fromBeginning?: boolean;
  maxMessages?: number;
  partition?: number;
  group?: string;
}

/**
 * Prints message values one per line until interrupted or --max-messages
 * values have been printed: from every partition (or one), or with
 * --group from the partitions the group assigns to this consumer, starting
 * at the group's committed offsets and committing after each batch.
 */
export function consume(
  io: CliIo,
  topic: string,
  opts: ConsumeOptions,
): Promise<void> {
  return withClient(opts, async (client) => {
    const done = new AbortController();
    const stop = AbortSignal.any([io.interrupt, done.signal]);
    const decoder = new TextDecoder();
    const max = opts.maxMessages ?? Infinity;
    const startAt = opts.fromBeginning ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP;
    let printed = 0;

    const follow: Follow = async (partition, offset, how) => {
      while (!how.signal.aborted) {
        const { records } = await client.fetch(topic, partition, offset, {
          maxWaitMs: FETCH_WAIT_MS,
        });
        let out = "";
        for (const record of decodeRecordBatches(records)) {
          // A fetch starts at the batch holding `offset`, maybe before it.
          if (record.offset < offset || printed >= max) continue;
          offset = record.offset + 1n;
          out += (record.value === null ? "" : decoder.decode(record.value)) +
            "\n";
          printed++;
        }
        if (out !== "") {
          io.stdout(out);
          if (how.afterBatch && !(await how.afterBatch(offset))) return;
        }
        if (printed >= max) done.abort();
      }
    };

    try {
      if (opts.group !== undefined) {
        await consumeInGroup(client, {
          topic,
          groupId: opts.group,
          startAt,
          stop,
          follow,
        });
        return;
      }
      const partitions = opts.partition !== undefined
        ? [opts.partition]
        : Array.from(
          { length: await client.partitionCount(topic) },
          (_, i) => i,
        );
      await Promise.all(partitions.map(async (p) => {
        const offset = await client.listOffsets(topic, p, startAt);
        await follow(p, offset, { signal: stop });
      }));
    } finally {
      done.abort();
    }
  });
}

/**
 * Follows the partitions of `topic` that the group assigns, generation
 * after generation, and leaves the group when `stop` aborts.
 */
async function consumeInGroup(
  client: KafkaClient,
  run: {
    topic: string;
    groupId: string;
    startAt: bigint;
    stop: AbortSignal;
    follow: Follow;
  },
): Promise<void> {
  const { topic, groupId, stop } = run;
  // Joining as the leader assigns partitions, which needs the topic.
  await client.partitionCount(topic);
  const member = await GroupMember.join(client, { groupId, topics: [topic] });
  try {
    while (!stop.aborted) {
      const generation = await Promise.race([
        member.generation(),
        aborted(stop).then(() => null),
      ]);
      if (generation === null) break;
      const owned = generation.assignment.filter((a) => a.topic === topic)
        .flatMap((a) => a.partitions);
      const signal = AbortSignal.any([stop, generation.revoked]);
      if (owned.length === 0) {
        await aborted(signal);
        continue;
      }
      const committed = await client.fetchOffsets(groupId, [{
        topic,
        partitions: owned,
      }]);
      await Promise.all(owned.map(async (partition) => {
        const offset = committed.find((c) => c.partition === partition)
          ?.offset ?? -1n;
        const start = offset >= 0n
          ? offset
          : await client.listOffsets(topic, partition, run.startAt);
        await run.follow(partition, start, {
          signal,
          afterBatch: (next) =>
            member.commit([{ topic, partition, offset: next }]),
        });
      }));
    }
  } finally {
    await member.leave();
  }
}
