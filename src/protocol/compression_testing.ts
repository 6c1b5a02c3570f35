/**
 * Test helpers shared by the snappy and LZ4 tests (never imported by
 * production code): sample inputs that exercise each encoder path, and a
 * seeded fuzz loop for decoders.
 */
import assert from "node:assert/strict";
import { CompressionError } from "./compression_error.ts";
import { seededRng } from "./testing.ts";

function randomBytes(rng: () => number, n: number): Uint8Array {
  const out = new Uint8Array(n);
  for (let i = 0; i < n; i++) out[i] = Math.floor(rng() * 256);
  return out;
}

/** Text-like data: words from a small vocabulary, so matches are frequent. */
function wordy(rng: () => number, n: number): Uint8Array {
  const words = ["raft", "kafka", "broker ", "term=", "42", "\n", "leader "];
  let s = "";
  while (s.length < n) s += words[Math.floor(rng() * words.length)];
  return new TextEncoder().encode(s.slice(0, n));
}

/** Named inputs: empty, tiny, random, repetitive, mixed and 1 MiB ones. */
export function sampleInputs(): [string, Uint8Array][] {
  const rng = seededRng(7);
  const mixed = new Uint8Array(200_000);
  for (let i = 0; i < mixed.length; i += 5000) {
    mixed.set(
      i % 10000 === 0 ? randomBytes(rng, 5000) : wordy(rng, 5000),
      i,
    );
  }
  return [
    ["empty", new Uint8Array(0)],
    ["one byte", new Uint8Array([42])],
    ["12 bytes", new TextEncoder().encode("aaaaaaaaaaaa")],
    ["13 bytes", new TextEncoder().encode("aaaaaaaaaaaaa")],
    ["random 1000", randomBytes(rng, 1000)],
    ["zeros 100000", new Uint8Array(100_000)],
    ["period 3", new TextEncoder().encode("abc".repeat(30_000))],
    ["wordy 70000", wordy(rng, 70_000)],
    ["mixed 200000", mixed],
    ["random 1 MiB", randomBytes(rng, 1 << 20)],
    ["wordy 1 MiB", wordy(rng, 1 << 20)],
  ];
}

/**
 * Feeds a decoder `rounds` seeded corruptions of `valid` (truncations, byte
 * flips, random tails, pure noise): it must return or throw
 * CompressionError, nothing else, and each call must finish.
 */
export function fuzzDecoder(
  decode: (data: Uint8Array) => Uint8Array,
  options: { valid: Uint8Array[]; rounds: number; seed: number },
): void {
  const rng = seededRng(options.seed);
  for (let r = 0; r < options.rounds; r++) {
    const base = options.valid[r % options.valid.length]!;
    let input: Uint8Array;
    switch (r % 4) {
      case 0:
        input = base.subarray(0, Math.floor(rng() * base.length));
        break;
      case 1: {
        input = base.slice();
        const flips = 1 + Math.floor(rng() * 4);
        for (let k = 0; k < flips && input.length > 0; k++) {
          input[Math.floor(rng() * input.length)] = Math.floor(rng() * 256);
        }
        break;
      }
      case 2: {
        const cut = Math.floor(rng() * base.length);
        input = new Uint8Array([
          ...base.subarray(0, cut),
          ...randomBytes(rng, Math.floor(rng() * 64)),
        ]);
        break;
      }
      default:
        input = randomBytes(rng, Math.floor(rng() * 300));
    }
    try {
      decode(input);
    } catch (e) {
      assert.ok(
        e instanceof CompressionError,
        `round ${r}: expected CompressionError, got ${e}`,
      );
    }
  }
}
