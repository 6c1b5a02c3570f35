/**
 * The records the group coordinator writes to `__consumer_offsets`: a
 * committed offset (key: group, topic, partition) or a group's metadata
 * (key: group). Keys open with a kind byte and values with a version, so
 * later formats can be told apart; a null value is a tombstone. The format
 * is raftq's own: no client reads this topic's records.
 */
import { Reader, Writer } from "../../protocol/mod.ts";

const KEY_OFFSET = 0;
const KEY_GROUP = 1;
const VALUE_VERSION = 0;

export type OffsetsKey =
  | { kind: "offset"; groupId: string; topic: string; partition: number }
  | { kind: "group"; groupId: string };

export interface CommittedOffset {
  readonly offset: bigint;
  readonly leaderEpoch: number;
  readonly metadata: string | null;
  readonly commitTimestampMs: bigint;
}

export interface StoredMember {
  readonly memberId: string;
  readonly groupInstanceId: string | null;
  readonly clientId: string;
  readonly clientHost: string;
  readonly sessionTimeoutMs: number;
  readonly rebalanceTimeoutMs: number;
  /** The member's metadata for the group's chosen protocol. */
  readonly metadata: Uint8Array;
  readonly assignment: Uint8Array;
}

export interface StoredGroup {
  readonly protocolType: string;
  readonly generationId: number;
  readonly protocolName: string | null;
  readonly leaderId: string | null;
  readonly members: readonly StoredMember[];
}

export class OffsetsRecordError extends Error {
  override name = "OffsetsRecordError";
}

const NULL = -1;
const utf8 = new TextEncoder();

function writeString(w: Writer, s: string | null): void {
  if (s === null) w.int16(NULL);
  else w.int16String(s);
}

function readString(r: Reader): string | null {
  const n = r.int16Length();
  return n === NULL ? null : r.text(n);
}

function readText(r: Reader, what: string): string {
  const s = readString(r);
  if (s === null) throw new OffsetsRecordError(`${what} is null`);
  return s;
}

function writeBytes(w: Writer, b: Uint8Array): void {
  w.int32(b.length);
  w.bytes(b);
}

function readBytes(r: Reader): Uint8Array {
  return r.view(Math.max(0, r.int32Length())).slice();
}

export function encodeKey(key: OffsetsKey): Uint8Array {
  const w = new Writer(64 + utf8.encode(key.groupId).length);
  w.int8(key.kind === "offset" ? KEY_OFFSET : KEY_GROUP);
  w.int16String(key.groupId);
  if (key.kind === "offset") {
    w.int16String(key.topic);
    w.int32(key.partition);
  }
  return w.finish();
}

export function decodeKey(bytes: Uint8Array): OffsetsKey {
  const r = new Reader(bytes);
  const kind = r.int8();
  const groupId = readText(r, "Group id");
  if (kind === KEY_GROUP) return { kind: "group", groupId };
  if (kind === KEY_OFFSET) {
    const topic = readText(r, "Topic");
    return { kind: "offset", groupId, topic, partition: r.int32() };
  }
  throw new OffsetsRecordError(`Offsets record key kind ${kind} is unknown`);
}

/** The map key of an OffsetsKey: equal for records that replace each other. */
export function keyId(key: OffsetsKey): string {
  return key.kind === "group"
    ? `g\u0000${key.groupId}`
    : `o\u0000${key.groupId}\u0000${key.topic}\u0000${key.partition}`;
}

export function encodeOffset(value: CommittedOffset): Uint8Array {
  const w = new Writer(64);
  w.int16(VALUE_VERSION);
  w.int64(value.offset);
  w.int32(value.leaderEpoch);
  writeString(w, value.metadata);
  w.int64(value.commitTimestampMs);
  return w.finish();
}

function checkVersion(r: Reader): void {
  const version = r.int16();
  if (version !== VALUE_VERSION) {
    throw new OffsetsRecordError(
      `Offsets record value version ${version} is unknown`,
    );
  }
}

export function decodeOffset(bytes: Uint8Array): CommittedOffset {
  const r = new Reader(bytes);
  checkVersion(r);
  return {
    offset: r.int64(),
    leaderEpoch: r.int32(),
    metadata: readString(r),
    commitTimestampMs: r.int64(),
  };
}

export function encodeGroup(group: StoredGroup): Uint8Array {
  const w = new Writer(256);
  w.int16(VALUE_VERSION);
  w.int16String(group.protocolType);
  w.int32(group.generationId);
  writeString(w, group.protocolName);
  writeString(w, group.leaderId);
  w.int32(group.members.length);
  for (const m of group.members) {
    w.int16String(m.memberId);
    writeString(w, m.groupInstanceId);
    w.int16String(m.clientId);
    w.int16String(m.clientHost);
    w.int32(m.sessionTimeoutMs);
    w.int32(m.rebalanceTimeoutMs);
    writeBytes(w, m.metadata);
    writeBytes(w, m.assignment);
  }
  return w.finish();
}

export function decodeGroup(bytes: Uint8Array): StoredGroup {
  const r = new Reader(bytes);
  checkVersion(r);
  const protocolType = readText(r, "Protocol type");
  const generationId = r.int32();
  const protocolName = readString(r);
  const leaderId = readString(r);
  const count = r.int32();
  const members: StoredMember[] = [];
  for (let i = 0; i < count; i++) {
    members.push({
      memberId: readText(r, "Member id"),
      groupInstanceId: readString(r),
      clientId: readText(r, "Client id"),
      clientHost: readText(r, "Client host"),
      sessionTimeoutMs: r.int32(),
      rebalanceTimeoutMs: r.int32(),
      metadata: readBytes(r),
      assignment: readBytes(r),
    });
  }
  return { protocolType, generationId, protocolName, leaderId, members };
}
