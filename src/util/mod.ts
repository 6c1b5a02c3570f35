/**
 * Shared leaf: assertions, the Clock seam, a metrics registry and small
 * helpers that every module may import (raft's WAL and the broker both feed
 * metrics). CRC-32C lives here because both Kafka record batches
 * (protocol, storage) and Raft's write-ahead log checksum with it, and raft
 * may not import protocol. Imports nothing from raftq.
 */
export { assert, AssertionError } from "./assert.ts";
export {
  type Clock,
  realClock,
  sleep,
  type TimerCallback,
  type TimerHandle,
} from "./clock.ts";
export { concatBytes, writeAll, writeAllSync } from "./bytes.ts";
export { crc32c, crc32cCombine, noteCrc32c, takeCrc32c } from "./crc32c.ts";
export {
  type CounterChild,
  type GaugeChild,
  type HistogramChild,
  type PushedFamily,
  Registry,
} from "./metrics.ts";
export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
} from "./log.ts";
