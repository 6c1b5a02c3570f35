/**
 * Joins byte arrays into one. A single part is answered as is, without a
 * copy; `totalBytes`, when the caller has kept count, saves a pass.
 */
export function concatBytes(
  parts: readonly Uint8Array[],
  totalBytes = parts.reduce((n, p) => n + p.length, 0),
): Uint8Array {
  if (parts.length === 1) return parts[0]!;
  const out = new Uint8Array(totalBytes);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}
