/**
 * Structural checks for JSON decoded from the controller log and snapshots.
 * Commands and snapshots share one set of small composable checks, so each
 * format is described once as data and checked field by field with the
 * path of the first bad field in the error.
 */

/** Decoded bytes that are not a well-formed controller command or snapshot. */
export class ControllerDecodeError extends SyntaxError {
  override name = "ControllerDecodeError";
}

/** Throws ControllerDecodeError naming `path` if `value` is not of the checked kind. */
export type Check = (value: unknown, path: string) => void;

function fail(path: string, want: string, value: unknown): never {
  const shown = JSON.stringify(value) ?? String(value);
  throw new ControllerDecodeError(
    `Field "${path}" is invalid: expected ${want}, got ${shown.slice(0, 80)}`,
  );
}

export const str: Check = (v, path) => {
  if (typeof v !== "string") fail(path, "a string", v);
};

export const int: Check = (v, path) => {
  if (!Number.isSafeInteger(v)) fail(path, "a safe integer", v);
};

export const bool: Check = (v, path) => {
  if (typeof v !== "boolean") fail(path, "true or false", v);
};

/** A non-negative int64 carried as a decimal string (JSON has no bigint). */
export const bigintText: Check = (v, path) => {
  if (typeof v !== "string" || !/^(0|[1-9]\d{0,18})$/.test(v)) {
    fail(path, "a non-negative integer as a decimal string", v);
  }
};

export function oneOf(values: readonly string[]): Check {
  return (v, path) => {
    if (typeof v !== "string" || !values.includes(v)) {
      fail(path, `one of ${values.join(", ")}`, v);
    }
  };
}

export function nullable(check: Check): Check {
  return (v, path) => {
    if (v !== null) check(v, path);
  };
}

/** A field commands written before it existed do not carry. */
export function optional(check: Check): Check {
  return (v, path) => {
    if (v !== undefined) check(v, path);
  };
}

export function arrayOf(check: Check): Check {
  return (v, path) => {
    if (!Array.isArray(v)) fail(path, "an array", v);
    v.forEach((item, i) => check(item, `${path}[${i}]`));
  };
}

export function recordOf(check: Check): Check {
  return (v, path) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      fail(path, "an object", v);
    }
    for (const [key, item] of Object.entries(v)) check(item, `${path}.${key}`);
  };
}

/**
 * An object with exactly these fields: an unknown field is refused rather
 * than dropped, because a field this version ignores could change what a
 * newer proposer meant.
 */
export function shape(fields: Record<string, Check>): Check {
  return (v, path) => {
    if (typeof v !== "object" || v === null || Array.isArray(v)) {
      fail(path, "an object", v);
    }
    const record = v as Record<string, unknown>;
    for (const key of Object.keys(record)) {
      if (!Object.hasOwn(fields, key)) {
        fail(`${path}.${key}`, "no such field", record[key]);
      }
    }
    for (const [key, check] of Object.entries(fields)) {
      check(record[key], `${path}.${key}`);
    }
  };
}

/**
 * A union of objects told apart by their `type` field; each variant lists
 * its other fields.
 */
export function tagged(variants: Record<string, Record<string, Check>>): Check {
  const checks = new Map(
    Object.entries(variants).map((
      [type, fields],
    ) => [type, shape({ ...fields, type: str })]),
  );
  return (v, path) => {
    const type = typeof v === "object" && v !== null
      ? (v as Record<string, unknown>).type
      : undefined;
    const check = typeof type === "string" ? checks.get(type) : undefined;
    if (check === undefined) {
      fail(`${path}.type`, `one of ${[...checks.keys()].join(", ")}`, type);
    }
    check(v, path);
  };
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder("utf-8", { fatal: true });

/** One version byte, then UTF-8 JSON. */
export function encodeVersioned(version: number, value: unknown): Uint8Array {
  const body = textEncoder.encode(JSON.stringify(value));
  const out = new Uint8Array(1 + body.length);
  out[0] = version;
  out.set(body, 1);
  return out;
}

/** Inverse of encodeVersioned; checks the version and the shape before returning. */
export function decodeVersioned(
  bytes: Uint8Array,
  options: { what: string; version: number; check: Check },
): unknown {
  const version = bytes[0];
  if (version !== options.version) {
    throw new ControllerDecodeError(
      `Controller ${options.what} has version ${
        version ?? "(none: empty)"
      }: this broker reads only version ${options.version}`,
    );
  }
  let value: unknown;
  try {
    value = JSON.parse(textDecoder.decode(bytes.subarray(1)));
  } catch (err) {
    throw new ControllerDecodeError(
      `Controller ${options.what} is not valid UTF-8 JSON: ${
        (err as Error).message
      }`,
      { cause: err },
    );
  }
  options.check(value, options.what);
  return value;
}
