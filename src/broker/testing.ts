/**
 * For the broker's unit tests: a PartitionManager over a directory, with
 * small segments and no retention.
 */
import { Flusher } from "../storage/mod.ts";
import { PartitionManager } from "./partitions.ts";

export function testPartitionManager(
  dir: string,
  opts: { visibleOnAppend: boolean; flusher?: Flusher },
): PartitionManager {
  return new PartitionManager({
    dataDir: dir,
    flusher: opts.flusher ?? new Flusher(),
    visibleOnAppend: opts.visibleOnAppend,
    defaults: {
      segmentBytes: 1 << 20,
      segmentMs: 3_600_000,
      retentionMs: -1,
      retentionBytes: -1,
      indexIntervalBytes: 4096,
      maxMessageBytes: 1 << 20,
    },
  });
}
