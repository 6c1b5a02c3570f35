/**
 * The wire format between Raft hosts. A connection carries frames:
 * u32 length (of kind + payload), u8 kind, payload. The connecting side
 * opens with Hello (its node id); Messages frames carry any number of
 * messages of any groups for one peer (a loop turn's, in frames of at most
 * about MESSAGES_FRAME_BYTES); a snapshot
 * message travels alone, cut into SnapChunk frames so that it never needs
 * one huge frame and other traffic can interleave; Ping keeps an idle
 * connection's liveness visible; App carries one opaque application message
 * between hosts (u64 target node id, then the bytes), outside every group.
 *
 * A message: u8 type, u32 group id, u16 presence flags, u64 from, u64 to,
 * then only the fields whose flag is set. Heartbeats thus cost ~40 bytes.
 */
import {
  MAX_WIRE_MESSAGE_TYPE,
  type Message,
  type NodeId,
} from "../core/mod.ts";
import {
  ByteReader,
  ByteWriter,
  DecodeError,
  entriesBytes,
  readEntries,
  readSnapshot,
  writeEntries,
  writeSnapshot,
} from "../wal/mod.ts";

/** A message of one group. */
export interface Envelope {
  groupId: number;
  message: Message;
}

/**
 * Host-level message types, above the core's wire types: handled by the
 * host, never stepped into a RawNode.
 */
export const HostMessageType = {
  /** The leader tells a follower that the group goes idle: stop ticking until a message arrives. */
  Quiesce: 64,
} as const;

export const FrameKind = {
  Hello: 1,
  Messages: 2,
  SnapChunk: 3,
  Ping: 4,
  App: 5,
  /** raft.tls: the connecting node's certificate and signed challenge, before Hello. */
  Proof: 6,
} as const;

/** Frames above this are refused before any allocation (a corrupt or hostile length). */
export const FRAME_BYTES_MAX = 64 * 1024 * 1024;
/**
 * Messages frames are cut at about this size, so that a turn that sends a
 * peer many appends (a follower catching up) never needs one frame above
 * FRAME_BYTES_MAX, and the receiver decodes it piece by piece.
 */
export const MESSAGES_FRAME_BYTES = 4 * 1024 * 1024;
/** Snapshot bytes per SnapChunk frame. */
export const SNAP_CHUNK_BYTES = 1024 * 1024;
/** A reassembled snapshot message above this is refused. */
export const SNAPSHOT_BYTES_MAX = 1024 * 1024 * 1024;
/** Application messages are small requests and replies; anything bigger is a bug at the caller. */
export const APP_MESSAGE_BYTES_MAX = 16 * 1024 * 1024;

const F_TERM = 1;
const F_LOG_TERM = 2;
const F_INDEX = 4;
const F_ENTRIES = 8;
const F_COMMIT = 16;
const F_REJECT = 32;
const F_REJECT_HINT = 64;
const F_SNAPSHOT = 128;
const F_CONTEXT = 256;

export function writeEnvelope(w: ByteWriter, env: Envelope): void {
  const m = env.message;
  let flags = 0;
  if (m.term !== 0) flags |= F_TERM;
  if (m.logTerm !== 0) flags |= F_LOG_TERM;
  if (m.index !== 0) flags |= F_INDEX;
  if (m.entries.length > 0) flags |= F_ENTRIES;
  if (m.commit !== 0) flags |= F_COMMIT;
  if (m.reject) flags |= F_REJECT;
  if (m.rejectHint !== 0) flags |= F_REJECT_HINT;
  if (m.snapshot !== null) flags |= F_SNAPSHOT;
  if (m.context !== null) flags |= F_CONTEXT;
  w.u8(m.type);
  w.u32(env.groupId);
  w.u8(flags >>> 8);
  w.u8(flags & 0xff);
  w.u64(m.from);
  w.u64(m.to);
  if (flags & F_TERM) w.u64(m.term);
  if (flags & F_LOG_TERM) w.u64(m.logTerm);
  if (flags & F_INDEX) w.u64(m.index);
  if (flags & F_ENTRIES) writeEntries(w, m.entries);
  if (flags & F_COMMIT) w.u64(m.commit);
  if (flags & F_REJECT_HINT) w.u64(m.rejectHint);
  if (m.snapshot !== null) writeSnapshot(w, m.snapshot);
  if (m.context !== null) w.bytes(m.context);
}

export function readEnvelope(r: ByteReader): Envelope {
  const type = r.u8("message type");
  if (
    (type < 1 || type > MAX_WIRE_MESSAGE_TYPE) &&
    type !== HostMessageType.Quiesce
  ) {
    throw new DecodeError(`Invalid message type ${type}`, r.position - 1);
  }
  const groupId = r.u32("group id");
  const flags = (r.u8("flags") << 8) | r.u8("flags");
  const message: Message = {
    type,
    from: r.u64("from"),
    to: r.u64("to"),
    term: flags & F_TERM ? r.u64("term") : 0,
    logTerm: flags & F_LOG_TERM ? r.u64("logTerm") : 0,
    index: flags & F_INDEX ? r.u64("index") : 0,
    entries: flags & F_ENTRIES ? readEntries(r) : [],
    commit: flags & F_COMMIT ? r.u64("commit") : 0,
    reject: (flags & F_REJECT) !== 0,
    rejectHint: flags & F_REJECT_HINT ? r.u64("rejectHint") : 0,
    snapshot: flags & F_SNAPSHOT ? readSnapshot(r) : null,
    context: flags & F_CONTEXT ? r.bytes("context") : null,
  };
  return { groupId, message };
}

/** Appends one frame to `w`; `payload` writes its body. */
export function writeFrame(
  w: ByteWriter,
  kind: number,
  payload: (w: ByteWriter) => void,
): void {
  const start = w.length;
  w.u32(0);
  w.u8(kind);
  payload(w);
  const length = w.length - start - 4;
  if (length > FRAME_BYTES_MAX) {
    throw new RangeError(
      `Cannot send frame of ${length} bytes: exceeds ${FRAME_BYTES_MAX}`,
    );
  }
  w.u32At(start, length);
}

/** type, group id, flags, from, to: what every message carries. */
const ENVELOPE_HEADER_BYTES = 1 + 4 + 2 + 8 + 8;

/** The length of writeEnvelope's encoding of a message that carries no snapshot. */
export function envelopeBytes(env: Envelope): number {
  const m = env.message;
  if (m.snapshot !== null) {
    throw new RangeError("A snapshot message is sized as SnapChunk frames");
  }
  // Every message of a turn is sized on its way out: no array per message.
  let n = ENVELOPE_HEADER_BYTES;
  if (m.term !== 0) n += 8;
  if (m.logTerm !== 0) n += 8;
  if (m.index !== 0) n += 8;
  if (m.commit !== 0) n += 8;
  if (m.rejectHint !== 0) n += 8;
  if (m.entries.length > 0) n += entriesBytes(m.entries);
  if (m.context !== null) n += 4 + m.context.length;
  return n;
}

/** The length field of a Messages frame holding envelopes of `bytes` in all. */
export function messagesFrameLength(bytes: number): number {
  return 1 + 4 + bytes;
}

/**
 * Appends `envelopes` (no snapshots) as Messages frames, in order, a new
 * frame begun before one would pass `frameBytes`; an envelope larger than
 * that travels in a frame of its own. `sizes[i]` is envelopeBytes of
 * `envelopes[i]`, which the sender has already counted.
 */
export function writeMessagesFrames(
  w: ByteWriter,
  envelopes: readonly Envelope[],
  sizes: readonly number[],
  frameBytes = MESSAGES_FRAME_BYTES,
): void {
  let from = 0;
  let bytes = 0;
  for (let i = 0; i < envelopes.length; i++) {
    const size = sizes[i]!;
    if (i > from && messagesFrameLength(bytes + size) > frameBytes) {
      writeMessagesFrame(w, envelopes.slice(from, i));
      from = i;
      bytes = 0;
    }
    bytes += size;
  }
  if (from < envelopes.length) writeMessagesFrame(w, envelopes.slice(from));
}

export function writeMessagesFrame(
  w: ByteWriter,
  envelopes: readonly Envelope[],
): void {
  writeFrame(w, FrameKind.Messages, (fw) => {
    fw.u32(envelopes.length);
    for (const env of envelopes) writeEnvelope(fw, env);
  });
}

/** Decodes a Messages frame; entry data and contexts are views of `payload`, which they own from now on. */
export function readMessagesPayload(payload: Uint8Array): Envelope[] {
  const r = new ByteReader(payload, { shareBytes: true });
  const count = r.u32("message count");
  if (count * 23 > r.remaining) {
    throw new DecodeError(`Message count ${count} exceeds the frame`, 0);
  }
  const out: Envelope[] = [];
  for (let i = 0; i < count; i++) out.push(readEnvelope(r));
  if (r.remaining !== 0) {
    throw new DecodeError(
      `${r.remaining} stray bytes after messages`,
      r.position,
    );
  }
  return out;
}

export function writeHelloFrame(w: ByteWriter, nodeId: NodeId): void {
  writeFrame(w, FrameKind.Hello, (fw) => fw.u64(nodeId));
}

/** A node's answer to a receiver's challenge: its certificate (DER) and signature. */
export interface PeerProof {
  certificate: Uint8Array;
  signature: Uint8Array;
}

export function writeProofFrame(w: ByteWriter, proof: PeerProof): void {
  writeFrame(w, FrameKind.Proof, (fw) => {
    fw.bytes(proof.certificate);
    fw.bytes(proof.signature);
  });
}

export function readProofPayload(payload: Uint8Array): PeerProof {
  const r = new ByteReader(payload);
  return {
    certificate: r.bytes("proof certificate"),
    signature: r.bytes("proof signature"),
  };
}

export function readHelloPayload(payload: Uint8Array): NodeId {
  const id = new ByteReader(payload).u64("hello node id");
  if (id === 0) throw new DecodeError("Hello with node id 0", 0);
  return id;
}

/** An application message as it travels: `to` guards against a stale address book. */
export interface AppMessage {
  to: NodeId;
  data: Uint8Array;
}

/** Throws RangeError when `data` is too big to be sent as an application message. */
export function checkAppMessageSize(data: Uint8Array): void {
  if (data.length > APP_MESSAGE_BYTES_MAX) {
    throw new RangeError(
      `Cannot send application message of ${data.length} bytes: exceeds ${APP_MESSAGE_BYTES_MAX}`,
    );
  }
}

export function writeAppFrame(w: ByteWriter, message: AppMessage): void {
  checkAppMessageSize(message.data);
  writeFrame(w, FrameKind.App, (fw) => {
    fw.u64(message.to);
    fw.raw(message.data);
  });
}

/** Decodes an App frame's payload; `data` is a view of `payload`. */
export function readAppPayload(payload: Uint8Array): AppMessage {
  const r = new ByteReader(payload);
  const to = r.u64("app message target");
  if (r.remaining > APP_MESSAGE_BYTES_MAX) {
    throw new DecodeError(
      `Application message of ${r.remaining} bytes exceeds ${APP_MESSAGE_BYTES_MAX}`,
      r.position,
    );
  }
  return { to, data: r.raw(r.remaining, "app message data") };
}

/**
 * Frames one snapshot-carrying envelope as a stream of SnapChunk frames:
 * u32 stream id, u8 last, then a slice of the encoded envelope.
 */
export function writeSnapshotFrames(
  w: ByteWriter,
  env: Envelope,
  streamId: number,
): void {
  const body = new ByteWriter(SNAP_CHUNK_BYTES);
  writeEnvelope(body, env);
  const bytes = body.view();
  let at = 0;
  do {
    const end = Math.min(at + SNAP_CHUNK_BYTES, bytes.length);
    const chunk = bytes.subarray(at, end);
    writeFrame(w, FrameKind.SnapChunk, (fw) => {
      fw.u32(streamId);
      fw.u8(end === bytes.length ? 1 : 0);
      fw.raw(chunk);
    });
    at = end;
  } while (at < bytes.length);
}

/** Reassembles SnapChunk frames per stream, bounded by SNAPSHOT_BYTES_MAX. */
export class SnapshotAssembler {
  readonly #streams = new Map<number, { parts: Uint8Array[]; bytes: number }>();

  /** Takes one chunk; returns the envelope when its stream is complete. */
  add(payload: Uint8Array): Envelope | null {
    const r = new ByteReader(payload);
    const streamId = r.u32("stream id");
    const last = r.u8("last flag") === 1;
    const part = r.raw(r.remaining).slice();
    let stream = this.#streams.get(streamId);
    if (stream === undefined) {
      stream = { parts: [], bytes: 0 };
      this.#streams.set(streamId, stream);
    }
    stream.parts.push(part);
    stream.bytes += part.length;
    if (stream.bytes > SNAPSHOT_BYTES_MAX) {
      this.#streams.delete(streamId);
      throw new DecodeError(
        `Snapshot stream ${streamId} exceeds ${SNAPSHOT_BYTES_MAX} bytes`,
        0,
      );
    }
    if (!last) return null;
    this.#streams.delete(streamId);
    const whole = new Uint8Array(stream.bytes);
    let at = 0;
    for (const p of stream.parts) {
      whole.set(p, at);
      at += p.length;
    }
    const r2 = new ByteReader(whole);
    const env = readEnvelope(r2);
    if (r2.remaining !== 0) {
      throw new DecodeError(
        `${r2.remaining} stray bytes after snapshot`,
        r2.position,
      );
    }
    return env;
  }
}

export interface Frame {
  kind: number;
  payload: Uint8Array;
}

/** Cuts a byte stream into frames, whatever the read boundaries. */
export class FrameDecoder {
  #buf = new Uint8Array(64 * 1024);
  #start = 0;
  #end = 0;

  /** Adds bytes read from the socket; returns the frames now complete (payloads are copies). */
  push(chunk: Uint8Array): Frame[] {
    this.#append(chunk);
    const frames: Frame[] = [];
    const view = new DataView(this.#buf.buffer);
    while (this.#end - this.#start >= 5) {
      const length = view.getUint32(this.#start);
      if (length < 1 || length > FRAME_BYTES_MAX) {
        throw new DecodeError(`Invalid frame length ${length}`, this.#start);
      }
      if (this.#end - this.#start - 4 < length) break;
      const kind = this.#buf[this.#start + 4]!;
      const payload = this.#buf.slice(
        this.#start + 5,
        this.#start + 4 + length,
      );
      frames.push({ kind, payload });
      this.#start += 4 + length;
    }
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return frames;
  }

  #append(chunk: Uint8Array): void {
    if (this.#end + chunk.length > this.#buf.length) {
      const live = this.#end - this.#start;
      const size = Math.max(this.#buf.length, (live + chunk.length) * 2);
      const next = size > this.#buf.length ? new Uint8Array(size) : this.#buf;
      next.set(this.#buf.subarray(this.#start, this.#end), 0);
      this.#buf = next;
      this.#start = 0;
      this.#end = live;
    }
    this.#buf.set(chunk, this.#end);
    this.#end += chunk.length;
  }
}
