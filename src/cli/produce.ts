import { buildRecordBatch } from "../protocol/mod.ts";
import type { CliIo } from "./io.ts";
import { partitionForKey } from "./partitioner.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";

// Bounds on one produce request; lines arriving faster than they are sent
// pile up into batches of up to this size. Half of Kafka's default
// max.message.bytes (1 MiB) leaves room for per-record overhead.
const BATCH_RECORDS_MAX = 10_000;
const BATCH_BYTES_MAX = 512 * 1024;

/**
 * Yields the lines of `input` in groups: each group holds the lines that
 * arrived in one read (split at the bounds above), so an interactive user
 * sees each line sent at once and a pipe is sent in large batches. Input
 * ends at end of file or when `stop` aborts.
 */
export async function* lineBatches(
  input: ReadableStream<Uint8Array>,
  stop: AbortSignal,
): AsyncGenerator<string[]> {
  const decoder = new TextDecoder();
  let partial = "";
  let group: string[] = [];
  let groupBytes = 0;
  for await (const chunk of readUntil(input, stop)) {
    const lines = (partial + decoder.decode(chunk, { stream: true })).split(
      "\n",
    );
    partial = lines.pop()!;
    for (const line of lines) {
      group.push(line.endsWith("\r") ? line.slice(0, -1) : line);
      groupBytes += line.length;
      if (group.length >= BATCH_RECORDS_MAX || groupBytes >= BATCH_BYTES_MAX) {
        yield group;
        group = [];
        groupBytes = 0;
      }
    }
    if (group.length > 0) yield group;
    group = [];
    groupBytes = 0;
  }
  partial += decoder.decode();
  if (partial !== "") yield [partial];
}

async function* readUntil(
  input: ReadableStream<Uint8Array>,
  stop: AbortSignal,
): AsyncGenerator<Uint8Array> {
  const reader = input.getReader();
  // Cancelling makes a pending read return done, ending the loop below.
  const cancel = () => reader.cancel();
  stop.addEventListener("abort", cancel, { once: true });
  try {
    while (!stop.aborted) {
      const { value, done } = await reader.read();
      if (done) return;
      yield value;
    }
  } finally {
    stop.removeEventListener("abort", cancel);
    reader.releaseLock();
  }
}

/**
 * Sends each line of stdin as one message until end of input or an
 * interrupt; prints nothing on success.
 */
export function produce(
  io: CliIo,
  topic: string,
  opts: ClientCommandOptions & {
    key?: string;
    acks: -1 | 0 | 1;
    partition?: number;
  },
): Promise<void> {
  const encoder = new TextEncoder();
  const key = opts.key === undefined ? null : encoder.encode(opts.key);
  return withClient(opts, async (client) => {
    const fixed = opts.partition ??
      (key === null
        ? undefined
        : partitionForKey(key, await client.partitionCount(topic)));
    // Without a key or partition, whole batches rotate over the partitions,
    // as Kafka's sticky partitioner spreads keyless records.
    const count = fixed === undefined ? await client.partitionCount(topic) : 1;
    let batchNo = 0;
    for await (const lines of lineBatches(io.stdin, io.interrupt)) {
      const batch = buildRecordBatch(
        lines.map((line) => ({ key, value: encoder.encode(line) })),
      );
      const partition = fixed ?? batchNo++ % count;
      await client.produce(topic, partition, batch, { acks: opts.acks });
    }
  });
}
