import { EARLIEST_TIMESTAMP, LATEST_TIMESTAMP } from "../client/mod.ts";
import { decodeRecordBatches } from "../protocol/mod.ts";
import type { CliIo } from "./io.ts";
import { type ClientCommandOptions, withClient } from "./topic.ts";

// Short enough that an interrupt or a reached --max-messages ends the
// command promptly; the broker answers sooner whenever data arrives.
const FETCH_WAIT_MS = 500;

/**
 * Prints message values one per line, from every partition (or one), until
 * interrupted or --max-messages values have been printed.
 */
export function consume(
  io: CliIo,
  topic: string,
  opts: ClientCommandOptions & {
    fromBeginning?: boolean;
    maxMessages?: number;
    partition?: number;
  },
): Promise<void> {
  return withClient(opts, async (client) => {
    const partitions = opts.partition !== undefined
      ? [opts.partition]
      : Array.from({ length: await client.partitionCount(topic) }, (_, i) => i);
    const done = new AbortController();
    const stop = AbortSignal.any([io.interrupt, done.signal]);
    const decoder = new TextDecoder();
    const max = opts.maxMessages ?? Infinity;
    let printed = 0;

    const follow = async (partition: number) => {
      let offset = await client.listOffsets(
        topic,
        partition,
        opts.fromBeginning ? EARLIEST_TIMESTAMP : LATEST_TIMESTAMP,
      );
      while (!stop.aborted) {
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
        if (out !== "") io.stdout(out);
        if (printed >= max) done.abort();
      }
    };
    try {
      await Promise.all(partitions.map(follow));
    } finally {
      done.abort();
    }
  });
}
