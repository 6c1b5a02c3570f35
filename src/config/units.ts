/**
 * Durations and sizes as people write them in a config file. Both return
 * `undefined` for text they cannot read, so the caller can name the field in
 * its error; neither throws.
 */

const DURATION_MS: Record<string, number> = {
  ms: 1,
  s: 1_000,
  m: 60_000,
  h: 3_600_000,
  d: 86_400_000,
};

// Binary units are the usual meaning in storage settings; SI ones are kept
// for people who mean them ("1MB" = 10^6, as Kafka tooling does).
const SIZE_BYTES: Record<string, number> = {
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  tb: 1e12,
  kib: 2 ** 10,
  mib: 2 ** 20,
  gib: 2 ** 30,
  tib: 2 ** 40,
};

const QUANTITY = /^(-?\d+(?:\.\d+)?)\s*([a-z]*)$/i;

function parseQuantity(
  value: unknown,
  units: Record<string, number>,
  unitless: string,
): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? value : undefined;
  }
  if (typeof value !== "string") return undefined;
  const match = QUANTITY.exec(value.trim());
  if (match === null) return undefined;
  const factor = units[(match[2] || unitless).toLowerCase()];
  if (factor === undefined) return undefined;
  // Fractions are fine ("1.5s") as long as they land on a whole unit.
  const result = Number(match[1]) * factor;
  return Number.isSafeInteger(result) ? result : undefined;
}

/** "10ms", "5s", "2m", "1h", "7d", or a plain number of milliseconds. */
export function parseDurationMs(value: unknown): number | undefined {
  return parseQuantity(value, DURATION_MS, "ms");
}

/** "512KiB", "64MiB", "1GiB", "1MB" (10^6), or a plain number of bytes. */
export function parseSizeBytes(value: unknown): number | undefined {
  return parseQuantity(value, SIZE_BYTES, "b");
}
