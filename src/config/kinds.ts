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

/** A YAML list, or one string of items between separators (the form env vars allow). */
function listOf<T>(
  itemExpected: string,
  readItem: (item: string) => T | undefined,
  separator = ",",
): Kind<readonly T[]> {
  const between = separator === "," ? "comma" : `"${separator}"`;
  return kind(
    `a list of ${itemExpected} (or one ${between}-separated string)`,
    (value) => {
      const items = typeof value === "string"
        ? value.split(separator).map((s) => s.trim()).filter((s) => s !== "")
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

/**
 * `separator` splits the string form; items that hold commas themselves
 * (certificate principals) need another.
 */
export function textList(separator = ","): Kind<readonly string[]> {
  return listOf(
    "non-empty strings",
    (s) => s === "" ? undefined : s,
    separator,
  );
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

export const SECURITY_PROTOCOLS = [
  "PLAINTEXT",
  "SSL",
  "SASL_PLAINTEXT",
  "SASL_SSL",
] as const;
export type SecurityProtocol = typeof SECURITY_PROTOCOLS[number];

export const SASL_MECHANISMS = [
  "SCRAM-SHA-256",
  "SCRAM-SHA-512",
  "PLAIN",
] as const;
export type SaslMechanism = typeof SASL_MECHANISMS[number];

/** A Kafka listener as written; the loader fills in what is left out. */
export interface ListenerSpec {
  readonly name: string;
  readonly host: string;
  /** 0 lets the OS choose a free port. */
  readonly port: number;
  readonly protocol: SecurityProtocol;
  readonly advertisedHost?: string;
  readonly advertisedPort?: number;
  readonly saslMechanisms?: readonly SaslMechanism[];
}

const LISTENER_KEYS = [
  "name",
  "host",
  "port",
  "protocol",
  "advertised_host",
  "advertised_port",
  "sasl_mechanisms",
];
const LISTENER_NAME = /^[A-Za-z][A-Za-z0-9_-]*$/;
/** Kafka's short form: "SASL_SSL://0.0.0.0:9094" (the name is the protocol). */
const LISTENER_URL =
  /^([A-Za-z][A-Za-z0-9_-]*):\/\/(\[[^\]]+\]|[^:\s\[\]]*):(\d+)$/;

function readListenerUrl(item: string): Record<string, unknown> | string {
  const match = LISTENER_URL.exec(item.trim());
  if (match === null) {
    return `${JSON.stringify(item)} is not of the form "PROTOCOL://host:port"`;
  }
  return {
    name: match[1],
    protocol: match[1]!.toUpperCase(),
    host: match[2]!.replace(/^\[|\]$/g, "") || "0.0.0.0",
    port: match[3],
  };
}

/** The listener, or what is wrong with it, naming its field. */
function readListener(raw: unknown, at: string): ListenerSpec | string {
  const item = typeof raw === "string" ? readListenerUrl(raw) : raw;
  if (typeof item === "string") return `${at}: ${item}`;
  if (typeof item !== "object" || item === null || Array.isArray(item)) {
    return `${at}: ${
      JSON.stringify(item)
    } is neither a mapping nor "PROTOCOL://host:port"`;
  }
  const fields = item as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    if (!LISTENER_KEYS.includes(key)) {
      return `${at}.${key}: unknown key; known keys: ${
        LISTENER_KEYS.join(", ")
      }`;
    }
  }
  const problem = (key: string, expected: string) =>
    `${at}.${key}: ${JSON.stringify(fields[key])} is not ${expected}`;
  const name = fields.name;
  if (typeof name !== "string" || !LISTENER_NAME.test(name)) {
    return problem("name", "a name of letters, digits, _ and -");
  }
  const protocol = SECURITY_PROTOCOLS.find((p) => p === fields.protocol);
  if (protocol === undefined) {
    return problem("protocol", `one of ${SECURITY_PROTOCOLS.join(", ")}`);
  }
  const host = fields.host ?? "0.0.0.0";
  if (typeof host !== "string" || host.trim() === "") {
    return problem("host", "a non-empty string");
  }
  const listenPort = port({ zeroMeans: "a free port" }).parse(fields.port);
  if (!listenPort.ok) return problem("port", listenPort.expected);
  const spec: {
    -readonly [K in keyof ListenerSpec]: ListenerSpec[K];
  } = { name, host, port: listenPort.value, protocol };
  if (fields.advertised_host !== undefined) {
    const advertised = text({ nonEmpty: true }).parse(fields.advertised_host);
    if (!advertised.ok) return problem("advertised_host", advertised.expected);
    spec.advertisedHost = advertised.value;
  }
  if (fields.advertised_port !== undefined) {
    const advertised = port().parse(fields.advertised_port);
    if (!advertised.ok) return problem("advertised_port", advertised.expected);
    spec.advertisedPort = advertised.value;
  }
  if (fields.sasl_mechanisms !== undefined) {
    const mechanisms = listOf(
      SASL_MECHANISMS.join(", "),
      (s) => SASL_MECHANISMS.find((m) => m === s),
    ).parse(fields.sasl_mechanisms);
    if (!mechanisms.ok || mechanisms.value.length === 0) {
      return problem(
        "sasl_mechanisms",
        `a non-empty list of ${SASL_MECHANISMS.join(", ")}`,
      );
    }
    spec.saslMechanisms = mechanisms.value;
  }
  return spec;
}

const LISTENERS_EXPECTED =
  'a list of listeners, each a mapping {name, host, port, protocol, advertised_host, advertised_port, sasl_mechanisms} or "PROTOCOL://host:port" (one comma-separated string in the environment)';

/**
 * Kafka's listeners. A failure names the item and field at fault
 * ("listeners[1].protocol"), since a list of mappings is hard to scan.
 */
export function listeners(): Kind<readonly ListenerSpec[]> {
  return {
    expected: LISTENERS_EXPECTED,
    parse: (value) => {
      const items = typeof value === "string"
        ? value.split(",").map((s) => s.trim()).filter((s) => s !== "")
        : value;
      if (!Array.isArray(items)) {
        return { ok: false, expected: LISTENERS_EXPECTED };
      }
      const result: ListenerSpec[] = [];
      for (const [i, item] of items.entries()) {
        const read = readListener(item, `listeners[${i}]`);
        if (typeof read === "string") {
          return { ok: false, expected: `${LISTENERS_EXPECTED}; ${read}` };
        }
        result.push(read);
      }
      return ok(result);
    },
  };
}
