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

/** Writes all of `bytes`: a socket or file may take fewer than asked. */
export async function writeAll(
  sink: { write(p: Uint8Array): Promise<number> },
  bytes: Uint8Array,
): Promise<void> {
  for (let done = 0; done < bytes.length;) {
    done += await sink.write(bytes.subarray(done));
  }
}

/** writeAll for a synchronous sink (a file, stdout). */
export function writeAllSync(
  sink: { writeSync(p: Uint8Array): number },
  bytes: Uint8Array,
): void {
  for (let done = 0; done < bytes.length;) {
    done += sink.writeSync(bytes.subarray(done));
  }
}
