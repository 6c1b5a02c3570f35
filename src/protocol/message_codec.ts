/**
 * Turns a message schema at one version into a tree of closures, once, and
 * caches it: per call the codec only walks prebuilt field lists, never the
 * schema's version ranges.
 */
import {
  DecodeError,
  EncodeError,
  NULL_LENGTH,
  type Reader,
  Writer,
} from "./codec.ts";
import {
  type DefaultValue,
  type FieldSchema,
  inRange,
  type MessageSchema,
} from "./schema.ts";

type Value = unknown;
type Obj = Record<string, Value>;

export interface Codec {
  read(r: Reader): Value;
  write(w: Writer, value: Value): void;
  /** A fresh default value (arrays and structs are never shared). */
  makeDefault(): Value;
  isDefault(value: Value): boolean;
}

const ZERO_UUID = "00000000000000000000000000000000";

function withPath(e: unknown, segment: string): unknown {
  if (e instanceof DecodeError || e instanceof EncodeError) {
    e.prependPath(segment);
  }
  return e;
}

interface Shape {
  version: number;
  flexible: boolean;
}

/** The scalar codec for one primitive type; null handling is added above. */
function primitive(
  f: FieldSchema,
  shape: Shape,
  struct: Codec | null,
): { read(r: Reader): Value; write(w: Writer, v: Value): void } {
  const { flexible } = shape;
  switch (f.type) {
    case "int8":
      return { read: (r) => r.int8(), write: (w, v) => w.int8(v as number) };
    case "int16":
      return { read: (r) => r.int16(), write: (w, v) => w.int16(v as number) };
    case "uint16":
      return {
        read: (r) => r.uint16(),
        write: (w, v) => w.uint16(v as number),
      };
    case "int32":
      return { read: (r) => r.int32(), write: (w, v) => w.int32(v as number) };
    case "int64":
      return { read: (r) => r.int64(), write: (w, v) => w.int64(v as bigint) };
    case "float64":
      return {
        read: (r) => r.float64(),
        write: (w, v) => w.float64(v as number),
      };
    case "bool":
      return { read: (r) => r.bool(), write: (w, v) => w.bool(v as boolean) };
    case "uuid":
      return { read: (r) => r.uuid(), write: (w, v) => w.uuid(v as string) };
    case "string":
      return flexible
        ? {
          read: (r) => readText(r, r.compactLength()),
          write: (w, v) => w.compactString(v as string),
        }
        : {
          read: (r) => readText(r, r.int16Length()),
          write: (w, v) => w.int16String(v as string),
        };
    case "bytes":
    case "records":
      return flexible
        ? {
          read: (r) => readView(r, r.compactLength()),
          write: (w, v) => {
            w.uvarint((v as Uint8Array).length + 1);
            w.bytes(v as Uint8Array);
          },
        }
        : {
          read: (r) => readView(r, r.int32Length()),
          write: (w, v) => {
            w.int32((v as Uint8Array).length);
            w.bytes(v as Uint8Array);
          },
        };
    case "struct":
      return struct!;
  }
}

// Null lengths are caught by the nullable wrapper before these run.
function readText(r: Reader, n: number): string {
  if (n === NULL_LENGTH) throw r.error("null in a non-nullable string");
  return r.text(n);
}
function readView(r: Reader, n: number): Uint8Array {
  if (n === NULL_LENGTH) throw r.error("null in non-nullable bytes");
  return r.view(n);
}

/** Writes the null marker of a string, bytes, array or struct. */
function writeNull(w: Writer, f: FieldSchema, shape: Shape) {
  if (shape.flexible) w.uvarint(0);
  else if (f.type === "string" && !f.array) w.int16(-1);
  else if (f.type === "struct" && !f.array) w.int8(-1);
  else w.int32(-1);
}

/**
 * Peeks whether the next value is null without consuming a non-null prefix;
 * nullable structs carry a presence byte instead.
 */
function readIsNull(r: Reader, f: FieldSchema, shape: Shape): boolean {
  if (f.type === "struct" && !f.array) return r.int8() < 0;
  const start = r.pos;
  const n = shape.flexible
    ? r.compactLength()
    : f.type === "string" && !f.array
    ? r.int16Length()
    : r.int32Length();
  if (n === NULL_LENGTH) return true;
  r.pos = start;
  return false;
}

function defaultOf(f: FieldSchema, struct: Codec | null): () => Value {
  if (f.default !== undefined) {
    const d: DefaultValue = f.default;
    return () => d;
  }
  if (f.array) return () => [];
  switch (f.type) {
    case "int8":
    case "int16":
    case "uint16":
    case "int32":
    case "float64":
      return () => 0;
    case "int64":
      return () => 0n;
    case "bool":
      return () => false;
    case "string":
      return () => "";
    case "uuid":
      return () => ZERO_UUID;
    case "bytes":
    case "records":
      return () => new Uint8Array(0);
    case "struct":
      return () => struct!.makeDefault();
  }
}

function isDefaultOf(
  f: FieldSchema,
  makeDefault: () => Value,
  struct: Codec | null,
): (v: Value) => boolean {
  const d = makeDefault();
  if (d === null) return (v) => v === null || v === undefined;
  if (f.array) return (v) => v === undefined || (v as Value[]).length === 0;
  if (f.type === "bytes" || f.type === "records") {
    return (v) => v === undefined || (v as Uint8Array).length === 0;
  }
  if (struct) return (v) => v === undefined || struct.isDefault(v);
  return (v) => v === undefined || v === d;
}

/** Codec of one field's value at the shape's version, nulls and arrays included. */
function compileField(f: FieldSchema, shape: Shape): Codec {
  const struct = f.type === "struct"
    ? compileStruct(f.fields ?? [], shape)
    : null;
  const elem = primitive(f, shape, struct);
  let read = elem.read;
  let write = elem.write;
  if (f.array) {
    const lengthOf = shape.flexible
      ? (r: Reader) => r.compactLength()
      : (r: Reader) => r.int32Length();
    read = (r) => {
      const n = lengthOf(r);
      if (n === NULL_LENGTH) throw r.error("null in a non-nullable array");
      const out = new Array<Value>(n);
      for (let i = 0; i < n; i++) {
        try {
          out[i] = elem.read(r);
        } catch (e) {
          throw withPath(e, `[${i}]`);
        }
      }
      return out;
    };
    write = (w, v) => {
      if (!Array.isArray(v)) {
        throw new EncodeError(`${String(v)} is not an array`);
      }
      if (shape.flexible) w.uvarint(v.length + 1);
      else w.int32(v.length);
      for (let i = 0; i < v.length; i++) {
        try {
          elem.write(w, v[i]);
        } catch (e) {
          throw withPath(e, `[${i}]`);
        }
      }
    };
  }
  if (inRange(f.nullableVersions, shape.version)) {
    const readValue = read;
    const writeValue = write;
    const isStruct = f.type === "struct" && !f.array;
    read = (r) => readIsNull(r, f, shape) ? null : readValue(r);
    write = (w, v) => {
      if (v === null) writeNull(w, f, shape);
      else {
        if (isStruct) w.int8(1);
        writeValue(w, v);
      }
    };
  }
  const makeDefault = defaultOf(f, struct);
  const isDefault = isDefaultOf(f, makeDefault, struct);
  return { read, write, makeDefault, isDefault };
}

interface Slot {
  name: string;
  codec: Codec;
  /** Written in the body, or in the tagged section, or not at all. */
  place: "body" | "tagged" | "absent";
  tag: number;
}

function compileStruct(fields: readonly FieldSchema[], shape: Shape): Codec {
  const slots: Slot[] = fields.map((f) => ({
    name: f.name,
    codec: compileField(f, shape),
    place: !inRange(f.versions, shape.version)
      ? "absent"
      : inRange(f.taggedVersions, shape.version)
      ? "tagged"
      : "body",
    tag: f.tag ?? -1,
  }));
  const body = slots.filter((s) => s.place === "body");
  const tagged = slots.filter((s) => s.place === "tagged")
    .sort((a, b) => a.tag - b.tag);
  const byTag = new Map(tagged.map((s) => [s.tag, s]));
  const { flexible } = shape;

  const makeDefault = () => {
    const o: Obj = {};
    for (const s of slots) o[s.name] = s.codec.makeDefault();
    return o;
  };

  const read = (r: Reader): Value => {
    const o: Obj = {};
    for (const s of slots) {
      if (s.place !== "body") {
        o[s.name] = s.codec.makeDefault();
        continue;
      }
      try {
        o[s.name] = s.codec.read(r);
      } catch (e) {
        throw withPath(e, s.name);
      }
    }
    if (flexible) readTagged(r, o, byTag);
    return o;
  };

  const write = (w: Writer, value: Value): void => {
    if (typeof value !== "object" || value === null) {
      throw new EncodeError(`${String(value)} is not an object`);
    }
    const o = value as Obj;
    for (const s of body) {
      const v = o[s.name];
      try {
        s.codec.write(w, v === undefined ? s.codec.makeDefault() : v);
      } catch (e) {
        throw withPath(e, s.name);
      }
    }
    if (flexible) writeTagged(w, o, tagged);
  };

  const isDefault = (value: Value): boolean =>
    slots.every((s) => s.codec.isDefault((value as Obj)[s.name]));

  return { read, write, makeDefault, isDefault };
}

function readTagged(r: Reader, o: Obj, byTag: Map<number, Slot>) {
  const count = r.uvarint();
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint();
    const size = r.uvarint();
    if (size > r.remaining) {
      throw r.error(`tagged field ${tag} of ${size} bytes exceeds the input`);
    }
    const end = r.pos + size;
    const slot = byTag.get(tag);
    if (slot === undefined) {
      r.skip(size);
      continue;
    }
    try {
      o[slot.name] = slot.codec.read(r);
    } catch (e) {
      throw withPath(e, slot.name);
    }
    if (r.pos !== end) {
      throw r.error(`tagged field ${tag} does not fill its ${size} bytes`);
    }
  }
}

function writeTagged(w: Writer, o: Obj, tagged: readonly Slot[]) {
  const present = tagged.filter((s) => !s.codec.isDefault(o[s.name]));
  w.uvarint(present.length);
  for (const s of present) {
    // The size prefix comes first, so the value is staged in its own buffer.
    const staged = new Writer(64);
    try {
      s.codec.write(staged, o[s.name]);
    } catch (e) {
      throw withPath(e, s.name);
    }
    const bytes = staged.finish();
    w.uvarint(s.tag);
    w.uvarint(bytes.length);
    w.bytes(bytes);
  }
}

const cache = new WeakMap<MessageSchema, Map<number, Codec>>();

/**
 * The compiled codec of `schema` at `version`; the caller has checked that
 * the version is valid.
 */
export function messageCodec(schema: MessageSchema, version: number): Codec {
  let byVersion = cache.get(schema);
  if (!byVersion) {
    byVersion = new Map();
    cache.set(schema, byVersion);
  }
  let codec = byVersion.get(version);
  if (!codec) {
    codec = compileStruct(schema.fields, {
      version,
      flexible: inRange(schema.flexibleVersions, version),
    });
    byVersion.set(version, codec);
  }
  return codec;
}
