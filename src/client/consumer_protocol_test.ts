/**
 * The consumer protocol's bytes against kafkajs' implementation of the same
 * Kafka format, in both directions, and the range assignor's split.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import {
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  rangeAssign,
} from "./consumer_protocol.ts";

const require = createRequire(import.meta.url);
const kafkajs: {
  MemberMetadata: {
    encode(m: { version: number; topics: string[] }): Buffer;
    decode(b: Buffer): { version: number; topics: string[] };
  };
  MemberAssignment: {
    encode(
      m: { version: number; assignment: Record<string, number[]> },
    ): Buffer;
    decode(
      b: Buffer,
    ): { version: number; assignment: Record<string, number[]> } | null;
  };
} = require("../../node_modules/kafkajs/src/consumer/assignerProtocol.js");

Deno.test("decodeSubscription reads kafkajs metadata and kafkajs reads ours", () => {
  const theirs = kafkajs.MemberMetadata.encode({
    version: 1,
    topics: ["orders", "ünïcødé"],
  });
  assert.deepEqual(decodeSubscription(new Uint8Array(theirs)), [
    "orders",
    "ünïcødé",
  ]);
  const ours = encodeSubscription(["a", "b"]);
  assert.deepEqual(kafkajs.MemberMetadata.decode(Buffer.from(ours)).topics, [
    "a",
    "b",
  ]);
});

Deno.test("decodeAssignment reads kafkajs assignments and kafkajs reads ours", () => {
  const theirs = kafkajs.MemberAssignment.encode({
    version: 0,
    assignment: { orders: [0, 2], audit: [1] },
  });
  assert.deepEqual(decodeAssignment(new Uint8Array(theirs)), [
    { topic: "orders", partitions: [0, 2] },
    { topic: "audit", partitions: [1] },
  ]);
  const ours = encodeAssignment([{ topic: "t", partitions: [3, 4] }]);
  assert.deepEqual(kafkajs.MemberAssignment.decode(Buffer.from(ours)), {
    version: 0,
    assignment: { t: [3, 4] },
    userData: null,
  });
});

Deno.test("decodeAssignment of empty bytes is no partitions", () => {
  assert.deepEqual(decodeAssignment(new Uint8Array(0)), []);
});

Deno.test("rangeAssign gives sorted members contiguous ranges, extras first", () => {
  const plan = rangeAssign(
    new Map([["m-b", ["t", "u"]], ["m-a", ["t"]], ["m-c", ["t"]]]),
    new Map([["t", 7], ["u", 2]]),
  );
  assert.deepEqual(Object.fromEntries(plan), {
    "m-a": [{ topic: "t", partitions: [0, 1, 2] }],
    "m-b": [
      { topic: "t", partitions: [3, 4] },
      { topic: "u", partitions: [0, 1] },
    ],
    "m-c": [{ topic: "t", partitions: [5, 6] }],
  });
});

Deno.test("rangeAssign leaves members beyond the partition count empty", () => {
  const plan = rangeAssign(
    new Map([["x", ["t"]], ["y", ["t"]], ["z", ["gone"]]]),
    new Map([["t", 1]]),
  );
  assert.deepEqual(Object.fromEntries(plan), {
    x: [{ topic: "t", partitions: [0] }],
    y: [],
    z: [],
  });
});
