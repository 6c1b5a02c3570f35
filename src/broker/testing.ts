/**
 * For the broker's unit tests: a PartitionManager over a directory, with
 * small segments and no retention.
 */
import { PartitionManager } from "./partitions.ts";

export function testPartitionManager(dir: string): PartitionManager {
  return new PartitionManager({
    dataDir: dir,
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
