/**
 * Shared leaf: assertions, the Clock seam and small helpers that every
 * module may import. CRC-32C lives here because both Kafka record batches
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
export { concatBytes } from "./bytes.ts";
export { crc32c, crc32cCombine, noteCrc32c, takeCrc32c } from "./crc32c.ts";
