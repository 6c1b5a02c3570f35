/**
 * Bounds-checked big-endian readers and writers for Kafka's primitive types,
 * classic and compact (KIP-482) forms. Every read checks the bytes left
 * before it touches them, so a hostile length can neither read past the
 * frame nor make us allocate for it.
 */

/** Where decoding was when it failed; filled in as the error unwinds. */
export interface DecodeContext {
  apiKey: number;
  apiVersion: number;
}

/** Malformed or truncated input. The broker closes the connection on it. */
export class DecodeError extends Error {
  override name = "DecodeError";
  readonly apiKey: number;
  readonly apiVersion: number;
  /** Byte offset into the decoded buffer where the failing read started. */
  readonly offset: number;
  /** e.g. "topicData[0].partitionData[2].records"; "" for the header. */
  fieldPath = "";
  readonly detail: string;

  constructor(
    detail: string,
    where: DecodeContext & { offset: number },
  ) {
    super(detail);
    this.detail = detail;
    this.apiKey = where.apiKey;
    this.apiVersion = where.apiVersion;
    this.offset = where.offset;
    this.#render();
  }

  /** Adds an outer path segment ("name" or "[3]") as the error unwinds. */
  prependPath(segment: string): void {
    this.fieldPath = joinPath(segment, this.fieldPath);
    this.#render();
  }

  #render() {
    const at = this.fieldPath === "" ? "" : ` field ${this.fieldPath}`;
    this.message =
      `Cannot decode api key ${this.apiKey} v${this.apiVersion}${at} at byte ${this.offset}: ${this.detail}`;
  }
}

/** A value that cannot be written as its schema type. */
export class EncodeError extends TypeError {
  override name = "EncodeError";
  fieldPath = "";
  readonly detail: string;

  constructor(detail: string) {
    super(detail);
    this.detail = detail;
  }

  prependPath(segment: string): void {
    this.fieldPath = joinPath(segment, this.fieldPath);
    this.message = `Cannot encode field ${this.fieldPath}: ${this.detail}`;
  }
}

function joinPath(segment: string, path: string): string {
  return path === "" || path.startsWith("[")
    ? segment + path
    : `${segment}.${path}`;
}

const utf8Decoder = new TextDecoder("utf-8", { fatal: true });
const utf8Encoder = new TextEncoder();
const HEX = Array.from(
  { length: 256 },
  (_, i) => i.toString(16).padStart(2, "0"),
);
/** Length prefix meaning null, as returned by the *Length readers. */
export const NULL_LENGTH = -1;

export class Reader {
  readonly bytes: Uint8Array;
  pos: number;
  /** Names the message in DecodeErrors; set by whoever drives the read. */
  context: DecodeContext = { apiKey: -1, apiVersion: -1 };
  readonly #view: DataView;

  constructor(bytes: Uint8Array, pos = 0) {
    this.bytes = bytes;
    this.pos = pos;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  get remaining(): number {
    return this.bytes.length - this.pos;
  }

  error(detail: string, offset = this.pos): DecodeError {
    return new DecodeError(detail, { ...this.context, offset });
  }

  #need(n: number): number {
    const at = this.pos;
    if (this.bytes.length - at < n) {
      throw this.error(`needs ${n} bytes but ${this.bytes.length - at} remain`);
    }
    this.pos = at + n;
    return at;
  }

  int8(): number {
    return this.#view.getInt8(this.#need(1));
  }
  int16(): number {
    return this.#view.getInt16(this.#need(2));
  }
  uint16(): number {
    return this.#view.getUint16(this.#need(2));
  }
  int32(): number {
    return this.#view.getInt32(this.#need(4));
  }
  uint32(): number {
    return this.#view.getUint32(this.#need(4));
  }
  int64(): bigint {
    return this.#view.getBigInt64(this.#need(8));
  }
  float64(): number {
    return this.#view.getFloat64(this.#need(8));
  }
  bool(): boolean {
    return this.#view.getInt8(this.#need(1)) !== 0;
  }

  /** Unsigned LEB128 of at most 32 bits. */
  uvarint(): number {
    const start = this.pos;
    let result = 0;
    for (let shift = 0; shift < 35; shift += 7) {
      if (this.pos >= this.bytes.length) {
        throw this.error("varint runs past the end", start);
      }
      const b = this.bytes[this.pos++]!;
      result += (b & 0x7f) * 2 ** shift;
      if ((b & 0x80) === 0) {
        if (result > 0xffffffff) break;
        return result;
      }
    }
    throw this.error("varint is longer than 32 bits", start);
  }

  /** Zigzag varint of at most 32 bits. */
  varint(): number {
    const u = this.uvarint();
    return (u % 2 === 0 ? u / 2 : -(u + 1) / 2);
  }

  /** Zigzag varint of at most 64 bits. */
  varlong(): bigint {
    const start = this.pos;
    let result = 0n;
    for (let shift = 0n; shift < 70n; shift += 7n) {
      if (this.pos >= this.bytes.length) {
        throw this.error("varlong runs past the end", start);
      }
      const b = this.bytes[this.pos++]!;
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) {
        if (result >> 64n !== 0n) break;
        return (result >> 1n) ^ -(result & 1n);
      }
    }
    throw this.error("varlong is longer than 64 bits", start);
  }

  /** int16 length of a classic string; NULL_LENGTH for null. */
  int16Length(): number {
    return this.#checkLength(this.int16());
  }
  /** int32 length of classic bytes or arrays; NULL_LENGTH for null. */
  int32Length(): number {
    return this.#checkLength(this.int32());
  }
  /** uvarint length+1 of a compact string, bytes or array. */
  compactLength(): number {
    return this.#checkLength(this.uvarint() - 1);
  }

  /**
   * Every string, bytes or array element takes at least one byte, so a
   * length beyond what remains is corrupt: refuse it before allocating.
   */
  #checkLength(n: number): number {
    if (n < NULL_LENGTH) throw this.error(`negative length ${n}`);
    if (n > this.bytes.length - this.pos) {
      throw this.error(
        `length ${n} exceeds the ${this.bytes.length - this.pos} bytes left`,
      );
    }
    return n;
  }

  /** `n` bytes as a view into the input, not a copy. */
  view(n: number): Uint8Array {
    const at = this.#need(n);
    return this.bytes.subarray(at, at + n);
  }

  /** UTF-8 text of `n` bytes. */
  text(n: number): string {
    const at = this.#need(n);
    const b = this.bytes;
    if (n <= 32) {
      let s = "";
      for (let i = at; i < at + n; i++) {
        const c = b[i]!;
        if (c >= 0x80) return this.#utf8(at, n);
        s += String.fromCharCode(c);
      }
      return s;
    }
    return this.#utf8(at, n);
  }

  #utf8(at: number, n: number): string {
    try {
      return utf8Decoder.decode(this.bytes.subarray(at, at + n));
    } catch {
      throw this.error("string is not valid UTF-8", at);
    }
  }

  /** A UUID as 32 lowercase hex characters. */
  uuid(): string {
    const at = this.#need(16);
    let s = "";
    for (let i = at; i < at + 16; i++) s += HEX[this.bytes[i]!];
    return s;
  }

  skip(n: number): void {
    this.#need(n);
  }
}

/** The least room a Writer leaves after a write that made it grow. */
const GROW_SLACK_BYTES = 4096;

export class Writer {
  #buf: Uint8Array;
  #view: DataView;
  pos = 0;

  constructor(capacityBytes = 256) {
    this.#buf = new Uint8Array(capacityBytes);
    this.#view = new DataView(this.#buf.buffer);
  }

  /**
   * Reserves `n` bytes and returns where they start. It may replace #buf
   * and #view, so callers read those only after calling it.
   */
  #ensure(n: number): number {
    const at = this.pos;
    if (at + n > this.#buf.length) {
      // Room for this write plus half of what came before it (at least
      // GROW_SLACK_BYTES): after a big write (a produce request's or a
      // fetch's records) the small fields that follow must fit without
      // copying those bytes again, yet the slack must not grow with the
      // big write itself, which every request would pay for in zeroed
      // memory.
      const next = new Uint8Array(
        Math.max(
          this.#buf.length * 2,
          at + n + Math.max(GROW_SLACK_BYTES, at >>> 1),
        ),
      );
      next.set(this.#buf.subarray(0, at));
      this.#buf = next;
      this.#view = new DataView(next.buffer);
    }
    this.pos = at + n;
    return at;
  }

  /** The bytes written so far, as a view (no copy). */
  finish(): Uint8Array {
    return this.#buf.subarray(0, this.pos);
  }

  int8(v: number): void {
    checkInt(v, -0x80, 0x7f);
    const at = this.#ensure(1);
    this.#view.setInt8(at, v);
  }
  int16(v: number): void {
    checkInt(v, -0x8000, 0x7fff);
    const at = this.#ensure(2);
    this.#view.setInt16(at, v);
  }
  uint16(v: number): void {
    checkInt(v, 0, 0xffff);
    const at = this.#ensure(2);
    this.#view.setUint16(at, v);
  }
  int32(v: number): void {
    checkInt(v, -0x80000000, 0x7fffffff);
    const at = this.#ensure(4);
    this.#view.setInt32(at, v);
  }
  uint32(v: number): void {
    checkInt(v, 0, 0xffffffff);
    const at = this.#ensure(4);
    this.#view.setUint32(at, v);
  }
  /** Overwrites an int32 already written (size prefixes, CRCs). */
  int32At(pos: number, v: number): void {
    this.#view.setInt32(pos, v);
  }
  int64(v: bigint): void {
    if (typeof v !== "bigint" || BigInt.asIntN(64, v) !== v) {
      throw new EncodeError(`${String(v)} is not an int64 bigint`);
    }
    const at = this.#ensure(8);
    this.#view.setBigInt64(at, v);
  }
  float64(v: number): void {
    if (typeof v !== "number") {
      throw new EncodeError(`${String(v)} is not a number`);
    }
    const at = this.#ensure(8);
    this.#view.setFloat64(at, v);
  }
  bool(v: boolean): void {
    if (typeof v !== "boolean") {
      throw new EncodeError(`${String(v)} is not a boolean`);
    }
    const at = this.#ensure(1);
    this.#buf[at] = v ? 1 : 0;
  }

  uvarint(v: number): void {
    checkInt(v, 0, 0xffffffff);
    while (v >= 0x80) {
      const at = this.#ensure(1);
      this.#buf[at] = (v & 0x7f) | 0x80;
      v = Math.floor(v / 128);
    }
    const at = this.#ensure(1);
    this.#buf[at] = v;
  }
  varint(v: number): void {
    checkInt(v, -0x80000000, 0x7fffffff);
    this.uvarint(v >= 0 ? v * 2 : -v * 2 - 1);
  }
  varlong(v: bigint): void {
    if (typeof v !== "bigint" || BigInt.asIntN(64, v) !== v) {
      throw new EncodeError(`${String(v)} is not an int64 bigint`);
    }
    let u = BigInt.asUintN(64, (v << 1n) ^ (v >> 63n));
    while (u >= 0x80n) {
      const at = this.#ensure(1);
      this.#buf[at] = Number(u & 0x7fn) | 0x80;
      u >>= 7n;
    }
    const at = this.#ensure(1);
    this.#buf[at] = Number(u);
  }

  bytes(v: Uint8Array): void {
    if (!(v instanceof Uint8Array)) {
      throw new EncodeError(`${String(v)} is not a Uint8Array`);
    }
    const at = this.#ensure(v.length);
    this.#buf.set(v, at);
  }

  /** UTF-8 of `s` with an int16 length in front. */
  int16String(s: string): void {
    this.#prefixed(s, { prefixBytes: 2 });
  }
  /** UTF-8 of `s` with a uvarint length+1 in front. */
  compactString(s: string): void {
    if (typeof s === "string" && s.length * 3 + 1 < 0x80) {
      this.#prefixed(s, { prefixBytes: 1 });
    } else {
      const bytes = utf8Encoder.encode(checkString(s));
      this.uvarint(bytes.length + 1);
      this.bytes(bytes);
    }
  }

  /** Encodes in place after a fixed-size prefix, then fills the prefix in. */
  #prefixed(s: string, opts: { prefixBytes: 1 | 2 }): void {
    checkString(s);
    const at = this.#ensure(opts.prefixBytes + s.length * 3);
    const { written } = utf8Encoder.encodeInto(
      s,
      this.#buf.subarray(at + opts.prefixBytes),
    );
    if (opts.prefixBytes === 2) {
      if (written > 0x7fff) {
        throw new EncodeError(`string of ${written} bytes is too long`);
      }
      this.#view.setInt16(at, written);
    } else {
      this.#buf[at] = written + 1;
    }
    this.pos = at + opts.prefixBytes + written;
  }

  uuid(s: string): void {
    if (typeof s !== "string" || !/^[0-9a-f]{32}$/.test(s)) {
      throw new EncodeError(
        `uuid "${String(s)}" is not 32 lowercase hex characters`,
      );
    }
    const at = this.#ensure(16);
    for (let i = 0; i < 16; i++) {
      this.#buf[at + i] = parseInt(s.slice(i * 2, i * 2 + 2), 16);
    }
  }
}

function checkInt(v: number, min: number, max: number): void {
  if (!Number.isInteger(v) || v < min || v > max) {
    throw new EncodeError(`${String(v)} is not an integer in [${min}, ${max}]`);
  }
}

function checkString(s: string): string {
  if (typeof s !== "string") {
    throw new EncodeError(`${String(s)} is not a string`);
  }
  return s;
}
