/**
 * Shared leaf: assertions and small helpers that every module may import.
 * Imports nothing from raftq.
 */
export { assert, AssertionError } from "./assert.ts";
