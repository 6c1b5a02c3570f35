/**
 * Value kinds of config fields. Each kind reads a value from YAML or from
 * text (environment, command line) and says in words what it accepts, so
 * every error message can tell the user what would have been allowed.
 */
import { parseDurationMs, parseSizeBytes } from "./units.ts";

export type Parsed<T> = { ok: true; value: T } | {
  ok: false;
  expected: string;
};

export interface Kind<T> {
  /** What the kind accepts, completing "expected ...". */
  readonly expected: string;
  parse(value: unknown): Parsed<T>;
}

function ok<T>(value: T): Parsed<T> {
  return { ok: true, value };
}

function kind<T>(
  expected: string,
  read: (value: unknown) => T | undefined,
): Kind<T> {
  return {
    expected,
    parse: (value) => {
      const result = read(value);
      return result === undefined ? { ok: false, expected } : ok(result);
    },
  };
}

function rangeText(min: number, max: number, unlimited: boolean): string {
  const range = max === Number.MAX_SAFE_INTEGER
    ? `at least ${min}`
    : `from ${min} to ${max}`;
  return unlimited ? `${range}, or -1 for unlimited` : range;
}

function inRange(
  n: number | undefined,
  opts: { min: number; max: number; unlimited: boolean },
): number | undefined {
  if (n === undefined) return undefined;
  if (opts.unlimited && n === -1) return n;
  return n >= opts.min && n <= opts.max ? n : undefined;
}

interface RangeOptions {
  min?: number;
  max?: number;
  /** -1 is also accepted and means "no limit". */
  unlimited?: boolean;
}

function rangeOf(opts: RangeOptions) {
  return {
    min: opts.min ?? 0,
    max: opts.max ?? Number.MAX_SAFE_INTEGER,
    unlimited: opts.unlimited ?? false,
  };
}

function readInteger(value: unknown): number | undefined {
  if (typeof value === "number") {
    return Number.isSafeInteger(value) ? value : undefined;
  }
  if (typeof value === "string" && /^\s*-?\d+\s*$/.test(value)) {
    const n = Number(value);
    return Number.isSafeInteger(n) ? n : undefined;
  }
  return undefined;
}

export function integer(opts: RangeOptions = {}): Kind<number> {
  const range = rangeOf(opts);
  return kind(
    `an integer ${rangeText(range.min, range.max, range.unlimited)}`,
    (value) => inRange(readInteger(value), range),
  );
}

export function port(opts: { zeroMeans?: string } = {}): Kind<number> {
  return kind(
    opts.zeroMeans === undefined
      ? "a port number from 1 to 65535"
      : `a port number from 1 to 65535, or 0 for ${opts.zeroMeans}`,
    (value) =>
      inRange(readInteger(value), {
        min: opts.zeroMeans === undefined ? 1 : 0,
        max: 65535,
        unlimited: false,
      }),
  );
}

export function duration(opts: RangeOptions = {}): Kind<number> {
  const range = rangeOf(opts);
  return kind(
    `a duration such as "10ms", "5s", "2m", "1h", "7d" or a number of ms, ${
      rangeText(range.min, range.max, range.unlimited)
    } ms`,
    (value) => inRange(parseDurationMs(value), range),
  );
}

export function size(opts: RangeOptions = {}): Kind<number> {
  const range = rangeOf(opts);
  return kind(
    `a size such as "512KiB", "64MiB", "1GiB", "1MB" or a number of bytes, ${
      rangeText(range.min, range.max, range.unlimited)
    } bytes`,
    (value) => inRange(parseSizeBytes(value), range),
  );
}

export function boolean(): Kind<boolean> {
  return kind("true or false", (value) => {
    if (typeof value === "boolean") return value;
    if (value === "true") return true;
    if (value === "false") return false;
    return undefined;
  });
}

export function text(opts: { nonEmpty?: boolean } = {}): Kind<string> {
  const nonEmpty = opts.nonEmpty ?? false;
  return kind(nonEmpty ? "a non-empty string" : "a string", (value) => {
    // YAML reads `password: 1234` as a number; the user meant the text.
    const s = typeof value === "number" ? String(value) : value;
    if (typeof s !== "string") return undefined;
    return nonEmpty && s.trim() === "" ? undefined : s;
  });
}

export function oneOf<const T extends string>(values: readonly T[]): Kind<T> {
  return kind(
    `one of ${values.map((v) => JSON.stringify(v)).join(", ")}`,
    (value) => values.find((v) => v === value),
  );
}

/** A YAML list, or one comma-separated string (the form env vars allow). */
function listOf<T>(
  itemExpected: string,
  readItem: (item: string) => T | undefined,
): Kind<readonly T[]> {
  return kind(
    `a list of ${itemExpected} (or one comma-separated string)`,
    (value) => {
      const items = typeof value === "string"
        ? value.split(",").map((s) => s.trim()).filter((s) => s !== "")
        : value;
      if (!Array.isArray(items)) return undefined;
      const result: T[] = [];
      for (const item of items) {
        const read = typeof item === "string" ? readItem(item) : undefined;
        if (read === undefined) return undefined;
        result.push(read);
      }
      return result;
    },
  );
}

export function textList(): Kind<readonly string[]> {
  return listOf("non-empty strings", (s) => s === "" ? undefined : s);
}

const NODE_ID_TEXT = /^(?:[a-z][a-z0-9_-]*?-?)?(\d+)$/i;

/** A node id, either a number or a name ending in one ("broker-1" → 1). */
export function readNodeId(value: unknown): number | undefined {
  const n = typeof value === "string"
    ? readInteger(NODE_ID_TEXT.exec(value.trim())?.[1])
    : readInteger(value);
  return n !== undefined && n >= 1 && n <= 2 ** 31 - 1 ? n : undefined;
}

export function nodeId(): Kind<number> {
  return kind(
    `a node id from 1 to ${2 ** 31 - 1}, or a name ending in one ("broker-1")`,
    readNodeId,
  );
}

/** One voter of a static cluster, as Kafka's controller.quorum.voters. */
export interface Peer {
  readonly nodeId: number;
  readonly host: string;
  /** The peer's raft_port. */
  readonly port: number;
}

const PEER = /^([^@\s]+)@(\[[^\]]+\]|[^:\s\[\]]+):(\d+)$/;

export function readPeer(item: string): Peer | undefined {
  const match = PEER.exec(item.trim());
  if (match === null) return undefined;
  const id = readNodeId(match[1]);
  const peerPort = readInteger(match[3]);
  if (id === undefined || peerPort === undefined) return undefined;
  if (peerPort < 1 || peerPort > 65535) return undefined;
  return {
    nodeId: id,
    host: match[2]!.replace(/^\[|\]$/g, ""),
    port: peerPort,
  };
}

export function peers(): Kind<readonly Peer[]> {
  return listOf(
    '"id@host:raft_port" entries such as "2@10.0.0.2:19092"',
    readPeer,
  );
}
