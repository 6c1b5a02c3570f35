/**
 * Shared leaf: assertions, the Clock seam and small helpers that every
 * module may import. Imports nothing from raftq.
 */
export { assert, AssertionError } from "./assert.ts";
export {
  type Clock,
  realClock,
  type TimerCallback,
  type TimerHandle,
} from "./clock.ts";
