/**
 * Cuts a Kafka byte stream into frames (int32 size prefix + payload) as the
 * socket delivers it, whatever the read boundaries. The size is checked
 * against the limit before any byte of the frame is buffered for it.
 */
import { writeAll } from "../util/mod.ts";

/** A frame announced a size over the limit; the connection must close. */
export class FrameTooLargeError extends RangeError {
  override name = "FrameTooLargeError";
  constructor(readonly sizeBytes: number, readonly maxFrameBytes: number) {
    super(
      `Frame of ${sizeBytes} bytes exceeds the limit: maxFrameBytes is ${maxFrameBytes}`,
    );
  }
}

const PREFIX_BYTES = 4;

export class FrameDecoder {
  readonly #maxFrameBytes: number;
  readonly #chunkBytes: number;
  #buf = new Uint8Array(0);
  /** Bytes in #buf before #start were handed out and stay untouched. */
  #start = 0;
  #end = 0;
  /** Whole-frame size announced by the header being waited on, else 0. */
  #wantBytes = 0;

  /**
   * `chunkBytes`: the size of each new buffer (more when a frame needs it).
   * Without it a new buffer is twice what writable() was asked for.
   */
  constructor(opts: { maxFrameBytes: number; chunkBytes?: number }) {
    if (!Number.isInteger(opts.maxFrameBytes) || opts.maxFrameBytes < 0) {
      throw new RangeError(
        `Cannot create FrameDecoder: maxFrameBytes ${opts.maxFrameBytes} is not a size`,
      );
    }
    this.#maxFrameBytes = opts.maxFrameBytes;
    this.#chunkBytes = opts.chunkBytes ?? 0;
  }

  /** Bytes received but not yet returned as a frame. */
  get pendingBytes(): number {
    return this.#end - this.#start;
  }

  /**
   * Space for at least `n` more bytes; fill it, then call commit. Frames
   * already returned are views that must stay valid, so the buffer is
   * replaced rather than compacted in place.
   */
  writable(n: number): Uint8Array {
    if (this.#buf.length - this.#end < n) {
      const pending = this.pendingBytes;
      const size = Math.max(
        pending + n,
        this.#wantBytes,
        this.#chunkBytes || 2 * n,
      );
      const next = new Uint8Array(size);
      next.set(this.#buf.subarray(this.#start, this.#end));
      this.#buf = next;
      this.#start = 0;
      this.#end = pending;
    }
    return this.#buf.subarray(this.#end);
  }

  /** Records that `n` bytes were written into the last writable() space. */
  commit(n: number): void {
    if (n < 0 || this.#end + n > this.#buf.length) {
      throw new RangeError(
        `Cannot commit ${n} bytes: beyond the writable space`,
      );
    }
    this.#end += n;
  }

  /** The next whole frame's payload (a view, no prefix), or null. */
  next(): Uint8Array | null {
    if (this.pendingBytes < PREFIX_BYTES) return null;
    const b = this.#buf;
    const s = this.#start;
    const size = (b[s]! << 24) | (b[s + 1]! << 16) | (b[s + 2]! << 8) |
      b[s + 3]!;
    if (size < 0) throw new RangeError(`Frame has negative size ${size}`);
    if (size > this.#maxFrameBytes) {
      throw new FrameTooLargeError(size, this.#maxFrameBytes);
    }
    if (this.pendingBytes < PREFIX_BYTES + size) {
      this.#wantBytes = PREFIX_BYTES + size;
      return null;
    }
    this.#wantBytes = 0;
    this.#start = s + PREFIX_BYTES + size;
    return b.subarray(s + PREFIX_BYTES, this.#start);
  }
}

/** Where frames are written: a Deno.Conn, or anything with its write. */
export interface FrameSink {
  write(bytes: Uint8Array): Promise<number>;
}

/**
 * Frames up to this size that are written together are copied into one
 * write; bigger ones (produce requests, fetch responses) go out on their
 * own rather than be copied again, and into a buffer big enough to be
 * page-faulted in afresh.
 */
const COALESCE_MAX_BYTES = 64 * 1024;

/** Writes `frames` in order, small neighbours joined into one write. */
export async function writeFrames(
  sink: FrameSink,
  frames: readonly Uint8Array[],
): Promise<void> {
  let group: Uint8Array[] = [];
  let groupBytes = 0;
  const flush = async () => {
    if (group.length === 0) return;
    let bytes = group[0]!;
    if (group.length > 1) {
      bytes = new Uint8Array(groupBytes);
      let at = 0;
      for (const part of group) {
        bytes.set(part, at);
        at += part.length;
      }
    }
    group = [];
    groupBytes = 0;
    await writeAll(sink, bytes);
  };
  for (const frame of frames) {
    if (frame.length > COALESCE_MAX_BYTES) {
      await flush();
      await writeAll(sink, frame);
    } else {
      group.push(frame);
      groupBytes += frame.length;
    }
  }
  await flush();
}
