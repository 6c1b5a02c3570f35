/** Byte helpers shared by the LZ77-family codecs (snappy, LZ4, xxHash32). */

/** Reads a little-endian uint32 at `i` as a signed 32-bit number. */
export function readI32LE(b: Uint8Array, i: number): number {
  return b[i]! | (b[i + 1]! << 8) | (b[i + 2]! << 16) | (b[i + 3]! << 24);
}

/**
 * Appends `len` bytes copied from `offset` back in `out` at `op`. Callers
 * have checked 0 < offset <= op and op + len <= out.length. Overlapping
 * copies (offset < len) repeat the pattern: long ones go by block copies
 * whose source span doubles each pass, short ones byte by byte, which beats
 * copyWithin's call cost below a few hundred bytes.
 */
export function copyMatch(
  out: Uint8Array,
  op: number,
  match: { offset: number; len: number },
): void {
  const { offset, len } = match;
  let from = op - offset;
  if (offset >= len) {
    if (len < 32) {
      for (let k = 0; k < len; k++) out[op + k] = out[from + k]!;
    } else {
      out.copyWithin(op, from, from + len);
    }
    return;
  }
  if (len < 256) {
    for (let k = 0; k < len; k++) out[op + k] = out[from + k]!;
    return;
  }
  const end = op + len;
  let span = offset;
  while (op < end) {
    const n = Math.min(span, end - op);
    out.copyWithin(op, from, from + n);
    op += n;
    span += n;
    from = op - span;
  }
}
