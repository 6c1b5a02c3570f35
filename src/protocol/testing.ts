/**
 * Test helpers for the protocol module (never imported by production code):
 * a seeded RNG and a generator of random message bodies driven by the
 * schema, independent of the codec's own default handling.
 */
import { type FieldSchema, inRange, type MessageSchema } from "./schema.ts";

/** mulberry32: small, seeded, reproducible. */
export function seededRng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

type Rng = () => number;

function int(rng: Rng, min: number, max: number): number {
  return min + Math.floor(rng() * (max - min + 1));
}

/** A nonzero integer in [min, max], so it differs from the zero default. */
function nonZero(rng: Rng, min: number, max: number): number {
  const v = int(rng, min, max);
  return v === 0 ? 1 : v;
}

const ALPHABET = "abcdefghijklmnopqrstuvwxyz-._0123456789é€😀";

function text(rng: Rng): string {
  const chars = Array.from(ALPHABET);
  const n = rng() < 0.2 ? int(rng, 40, 90) : int(rng, 1, 12);
  let s = "";
  for (let i = 0; i < n; i++) s += chars[int(rng, 0, chars.length - 1)];
  return s;
}

function zero(f: FieldSchema, version: number): unknown {
  if (f.default !== undefined) return f.default;
  if (f.array) return [];
  switch (f.type) {
    case "int64":
      return 0n;
    case "bool":
      return false;
    case "string":
      return "";
    case "uuid":
      return "0".repeat(32);
    case "bytes":
    case "records":
      return new Uint8Array(0);
    case "struct":
      return randomStruct(f.fields ?? [], { version, rng: null });
    default:
      return 0;
  }
}

function scalar(f: FieldSchema, version: number, rng: Rng): unknown {
  switch (f.type) {
    case "int8":
      return nonZero(rng, -128, 127);
    case "int16":
      return nonZero(rng, -32768, 32767);
    case "uint16":
      return nonZero(rng, 1, 65535);
    case "int32":
      return nonZero(rng, -(2 ** 31), 2 ** 31 - 1);
    case "int64":
      return BigInt(nonZero(rng, -(2 ** 31), 2 ** 31 - 1)) *
        BigInt(int(rng, 1, 2 ** 30));
    case "float64":
      return (rng() - 0.5) * 1e6;
    case "bool":
      return true;
    case "string":
      return text(rng);
    case "uuid":
      return Array.from({ length: 32 }, () => int(rng, 0, 15).toString(16))
        .join("");
    case "bytes":
    case "records":
      return Uint8Array.from(
        { length: int(rng, 1, 40) },
        () => int(rng, 0, 255),
      );
    case "struct":
      return randomStruct(f.fields ?? [], { version, rng });
  }
}

/**
 * A struct with a non-default random value in every field present at
 * `version` and the default in every other one (what a decoder fills in).
 * With `rng` null every field gets its default.
 */
export function randomStruct(
  fields: readonly FieldSchema[],
  opts: { version: number; rng: Rng | null },
): Record<string, unknown> {
  const { version, rng } = opts;
  const out: Record<string, unknown> = {};
  for (const f of fields) {
    if (rng === null || !inRange(f.versions, version)) {
      out[f.name] = zero(f, version);
    } else if (inRange(f.nullableVersions, version) && rng() < 0.25) {
      out[f.name] = null;
    } else if (f.array) {
      out[f.name] = Array.from(
        { length: int(rng, 1, 3) },
        () => scalar(f, version, rng),
      );
    } else {
      out[f.name] = scalar(f, version, rng);
    }
  }
  return out;
}

/** Every version in a message's validVersions. */
export function versionsOf(message: MessageSchema): number[] {
  const [min, max] = message.validVersions;
  return Array.from({ length: max - min + 1 }, (_, i) => min + i);
}
