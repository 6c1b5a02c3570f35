/**
 * The partitioner against kafkajs' implementation of Kafka's murmur2, which
 * Kafka's own Java tests pin; keys of every tail length are covered.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createRequire } from "node:module";
import { murmur2, partitionForKey } from "./partitioner.ts";

const require = createRequire(import.meta.url);
// kafkajs hashes String(key) unless given a Buffer, so tests pass a Buffer.
const kafkajsMurmur2: (key: Buffer) => number = require(
  "../../node_modules/kafkajs/src/producer/partitioners/default/murmur2.js",
);

Deno.test("murmur2 matches kafkajs for keys of every tail length", () => {
  const encoder = new TextEncoder();
  for (
    const key of [
      "",
      "a",
      "ab",
      "abc",
      "abcd",
      "21",
      "foobar",
      "order-12345",
      "ünïcødé",
    ]
  ) {
    const bytes = encoder.encode(key);
    assert.equal(
      murmur2(bytes),
      kafkajsMurmur2(Buffer.from(bytes)),
      `key "${key}"`,
    );
  }
});

Deno.test("partitionForKey is stable and within range", () => {
  const key = new TextEncoder().encode("user-42");
  const p = partitionForKey(key, 7);
  assert.ok(p >= 0 && p < 7);
  assert.equal(partitionForKey(key, 7), p);
});
