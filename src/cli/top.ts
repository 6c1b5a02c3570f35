/**
 * raftq top: records per second into each topic, from the log end offsets
 * (ListOffsets) sampled every interval and redrawn in place until
 * interrupted. --once prints one table from two samples and exits, for
 * scripts. Offsets count records, not bytes: Kafka's API has no byte
 * counters; /metrics on the admin listener has them.
 */
import { type KafkaClient, LATEST_TIMESTAMP } from "../client/mod.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";
import { aborted, type CliIo } from "./io.ts";
import { formatTable } from "./table.ts";

export interface TopOptions extends ClientCommandOptions {
  intervalMs: number;
  once?: boolean;
  /** Also show internal topics (__consumer_offsets). */
  internal?: boolean;
}

/** Each topic's partition count and the sum of its log end offsets, at `at`. */
export interface Sample {
  at: number;
  topics: Map<string, { partitions: number; endOffsets: bigint }>;
}

async function sample(
  client: KafkaClient,
  internal: boolean,
): Promise<Sample> {
  const metadata = await client.metadata(null);
  const topics = new Map<string, { partitions: number; endOffsets: bigint }>();
  await Promise.all(
    metadata.topics.filter((t) => internal || !t.isInternal).map(async (t) => {
      const ends = await Promise.all(
        t.partitions.map((p) =>
          client.listOffsets(t.name, p.partition, LATEST_TIMESTAMP)
        ),
      );
      topics.set(t.name, {
        partitions: t.partitions.length,
        endOffsets: ends.reduce((sum, e) => sum + e, 0n),
      });
    }),
  );
  return { at: performance.now(), topics };
}

/**
 * The table of two samples, busiest topic first. A topic deleted and
 * recreated in between starts over: its rate is not negative but unknown.
 */
export function topTable(before: Sample, after: Sample): string {
  const seconds = Math.max(after.at - before.at, 1) / 1000;
  const rows = [...after.topics].map(([name, now]) => {
    const then = before.topics.get(name);
    const delta = then === undefined ? null : now.endOffsets - then.endOffsets;
    const rate = delta === null || delta < 0n ? null : Number(delta) / seconds;
    return { name, now, rate };
  });
  rows.sort((a, b) =>
    (b.rate ?? -1) - (a.rate ?? -1) || (a.name < b.name ? -1 : 1)
  );
  return formatTable(
    ["TOPIC", "PARTITIONS", "RECORDS/S", "END OFFSETS"],
    rows.map((r) => [
      r.name,
      r.now.partitions,
      r.rate === null ? "-" : r.rate.toFixed(1),
      r.now.endOffsets,
    ]),
  );
}

/** Moves the cursor home and clears the screen (ANSI), as top(1) redraws. */
const REDRAW = "\x1b[H\x1b[2J";

export async function top(io: CliIo, opts: TopOptions): Promise<void> {
  const internal = opts.internal === true;
  await withClient(opts, async (client) => {
    let before = await sample(client, internal);
    const stop = aborted(io.interrupt).then(() => "stop" as const);
    while (!io.interrupt.aborted) {
      let timer: ReturnType<typeof setTimeout> | undefined;
      const tick = new Promise<"tick">((resolve) => {
        timer = setTimeout(() => resolve("tick"), opts.intervalMs);
      });
      const woke = await Promise.race([tick, stop]);
      clearTimeout(timer);
      if (woke === "stop") return;
      const after = await sample(client, internal);
      const table = topTable(before, after);
      if (opts.once === true) {
        io.stdout(table);
        return;
      }
      io.stdout(
        `${REDRAW}raftq top, every ${opts.intervalMs} ms (Ctrl-C to quit)\n\n${table}`,
      );
      before = after;
    }
  });
}
