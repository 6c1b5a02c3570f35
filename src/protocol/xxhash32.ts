/**
 * xxHash32 (Yann Collet's non-cryptographic hash), as the LZ4 frame format
 * uses it for header, block and content checksums.
 */
import { readI32LE } from "./lz_util.ts";

const PRIME1 = 0x9e3779b1;
const PRIME2 = 0x85ebca77;
const PRIME3 = 0xc2b2ae3d;
const PRIME4 = 0x27d4eb2f;
const PRIME5 = 0x165667b1;

function rotl(x: number, r: number): number {
  return (x << r) | (x >>> (32 - r));
}

function round(acc: number, lane: number): number {
  return Math.imul(rotl((acc + Math.imul(lane, PRIME2)) | 0, 13), PRIME1);
}

/** The 32-bit xxHash of `data`, as an unsigned number. */
export function xxhash32(data: Uint8Array, seed = 0): number {
  const n = data.length;
  let i = 0;
  let acc: number;
  if (n >= 16) {
    let v1 = (seed + PRIME1 + PRIME2) | 0;
    let v2 = (seed + PRIME2) | 0;
    let v3 = seed | 0;
    let v4 = (seed - PRIME1) | 0;
    const stripesEnd = n - 16;
    while (i <= stripesEnd) {
      v1 = round(v1, readI32LE(data, i));
      v2 = round(v2, readI32LE(data, i + 4));
      v3 = round(v3, readI32LE(data, i + 8));
      v4 = round(v4, readI32LE(data, i + 12));
      i += 16;
    }
    acc = (rotl(v1, 1) + rotl(v2, 7) + rotl(v3, 12) + rotl(v4, 18)) | 0;
  } else {
    acc = (seed + PRIME5) | 0;
  }
  acc = (acc + n) | 0;
  for (; i + 4 <= n; i += 4) {
    acc = Math.imul(
      rotl((acc + Math.imul(readI32LE(data, i), PRIME3)) | 0, 17),
      PRIME4,
    );
  }
  for (; i < n; i++) {
    acc = Math.imul(rotl((acc + Math.imul(data[i]!, PRIME5)) | 0, 11), PRIME1);
  }
  acc ^= acc >>> 15;
  acc = Math.imul(acc, PRIME2);
  acc ^= acc >>> 13;
  acc = Math.imul(acc, PRIME3);
  acc ^= acc >>> 16;
  return acc >>> 0;
}
