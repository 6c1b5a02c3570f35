/**
 * The wire codec: every Message field survives a round trip, frames are cut
 * correctly whatever the read boundaries, snapshots reassemble from chunks,
 * application messages travel in their own frame kind within a size bound,
 * and malformed bytes throw DecodeError instead of allocating or hanging.
 */
import assert from "node:assert/strict";
import { type Message, MessageType, newMessage } from "../core/mod.ts";
import { ByteReader, ByteWriter, DecodeError } from "../wal/mod.ts";
import {
  APP_MESSAGE_BYTES_MAX,
  type Envelope,
  envelopeBytes,
  FrameDecoder,
  FrameKind,
  messagesFrameLength,
  readAppPayload,
  readEnvelope,
  readMessagesPayload,
  SNAP_CHUNK_BYTES,
  SnapshotAssembler,
  writeAppFrame,
  writeEnvelope,
  writeMessagesFrame,
  writeMessagesFrames,
  writeSnapshotFrames,
} from "./codec.ts";

function message(fields: Partial<Message>): Message {
  return newMessage({ type: MessageType.App, from: 1, to: 2, ...fields });
}

const full: Message = message({
  type: MessageType.AppResp,
  from: 3,
  to: 2 ** 40,
  term: 7,
  logTerm: 6,
  index: 2 ** 53 - 1,
  entries: [
    { index: 11, term: 6, type: 0, data: new Uint8Array([1, 2, 3]) },
    { index: 12, term: 7, type: 1, data: new Uint8Array(0) },
  ],
  commit: 10,
  reject: true,
  rejectHint: 9,
  snapshot: {
    meta: {
      index: 5,
      term: 2,
      confState: { voters: [1, 2, 3], learners: [9] },
    },
    data: new Uint8Array([42]),
  },
  context: new Uint8Array([0xde, 0xad]),
});

function roundTrip(env: Envelope): Envelope {
  const w = new ByteWriter(8);
  writeEnvelope(w, env);
  const r = new ByteReader(w.view());
  const out = readEnvelope(r);
  assert.equal(r.remaining, 0);
  return out;
}

Deno.test("writeEnvelope/readEnvelope round-trip every Message field", () => {
  assert.deepEqual(roundTrip({ groupId: 0xfffffffe, message: full }), {
    groupId: 0xfffffffe,
    message: full,
  });
  const heartbeat = message({
    type: MessageType.Heartbeat,
    term: 3,
    commit: 4,
  });
  assert.deepEqual(
    roundTrip({ groupId: 1, message: heartbeat }).message,
    heartbeat,
  );
});

Deno.test("writeEnvelope keeps a heartbeat under 48 bytes", () => {
  const w = new ByteWriter();
  writeEnvelope(w, {
    groupId: 5,
    message: message({ type: MessageType.Heartbeat, term: 3, commit: 4 }),
  });
  assert.ok(w.length < 48, `heartbeat took ${w.length} bytes`);
});

Deno.test("readEnvelope throws DecodeError on truncated or invalid input", () => {
  const w = new ByteWriter();
  writeEnvelope(w, { groupId: 1, message: full });
  const bytes = w.view().slice();
  for (const cut of [1, 10, 30, bytes.length - 1]) {
    assert.throws(
      () => readEnvelope(new ByteReader(bytes.subarray(0, cut))),
      DecodeError,
    );
  }
  const badType = bytes.slice();
  badType[0] = 200;
  assert.throws(() => readEnvelope(new ByteReader(badType)), DecodeError);
});

Deno.test("FrameDecoder yields the same frames whatever the read boundaries", () => {
  const w = new ByteWriter();
  const batches = [0, 1, 2].map((i): Envelope[] => [
    { groupId: i, message: full },
    {
      groupId: i + 100,
      message: message({ type: MessageType.Heartbeat, term: i }),
    },
  ]);
  for (const b of batches) writeMessagesFrame(w, b);
  const stream = w.view().slice();
  for (const step of [1, 7, 64, stream.length]) {
    const decoder = new FrameDecoder();
    const got: Envelope[][] = [];
    for (let at = 0; at < stream.length; at += step) {
      for (const f of decoder.push(stream.subarray(at, at + step))) {
        assert.equal(f.kind, FrameKind.Messages);
        got.push(readMessagesPayload(f.payload));
      }
    }
    assert.deepEqual(got, batches);
  }
});

Deno.test("FrameDecoder refuses a frame length above the limit before reading it", () => {
  const bytes = new Uint8Array([0xff, 0xff, 0xff, 0xff, 2]);
  assert.throws(() => new FrameDecoder().push(bytes), DecodeError);
});

Deno.test("writeSnapshotFrames cuts a big snapshot into chunks that reassemble", () => {
  const data = new Uint8Array(SNAP_CHUNK_BYTES * 2 + 12345);
  for (let i = 0; i < data.length; i++) data[i] = i % 251;
  const env: Envelope = {
    groupId: 9,
    message: message({
      type: MessageType.Snap,
      term: 4,
      snapshot: {
        meta: {
          index: 100,
          term: 4,
          confState: { voters: [1, 2], learners: [] },
        },
        data,
      },
    }),
  };
  const w = new ByteWriter();
  writeSnapshotFrames(w, env, 77);
  const frames = new FrameDecoder().push(w.view());
  assert.equal(frames.length, 3);
  const assembler = new SnapshotAssembler();
  const results = frames.map((f) => {
    assert.equal(f.kind, FrameKind.SnapChunk);
    return assembler.add(f.payload);
  });
  assert.equal(results[0], null);
  assert.equal(results[1], null);
  assert.deepEqual(results[2], env);
});

Deno.test("writeAppFrame/readAppPayload round-trip an application message in its own frame kind", () => {
  const w = new ByteWriter();
  const data = new Uint8Array([7, 0, 255, 42]);
  writeAppFrame(w, { to: 2 ** 40, data });
  writeAppFrame(w, { to: 3, data: new Uint8Array(0) });
  const frames = new FrameDecoder().push(w.view());
  assert.deepEqual(frames.map((f) => f.kind), [FrameKind.App, FrameKind.App]);
  assert.deepEqual(readAppPayload(frames[0]!.payload), { to: 2 ** 40, data });
  assert.deepEqual(readAppPayload(frames[1]!.payload), {
    to: 3,
    data: new Uint8Array(0),
  });
});

Deno.test("writeAppFrame refuses data above APP_MESSAGE_BYTES_MAX and readAppPayload a payload above it", () => {
  const w = new ByteWriter();
  const big = new Uint8Array(APP_MESSAGE_BYTES_MAX + 1);
  assert.throws(
    () => writeAppFrame(w, { to: 2, data: big }),
    (err: unknown) =>
      err instanceof RangeError && !(err instanceof DecodeError) &&
      err.message.includes(`${APP_MESSAGE_BYTES_MAX + 1} bytes`),
  );
  assert.equal(w.length, 0, "nothing was written");
  writeAppFrame(w, { to: 2, data: big.subarray(1) });
  const payload = new Uint8Array(8 + big.length);
  payload.set(w.view().subarray(5, 13));
  assert.throws(() => readAppPayload(payload), DecodeError);
  assert.throws(() => readAppPayload(new Uint8Array(7)), DecodeError);
});

function append(groupId: number, index: number, dataBytes: number): Envelope {
  return {
    groupId,
    message: message({
      type: MessageType.App,
      term: 3,
      index,
      commit: index - 1,
      entries: [{
        index: index + 1,
        term: 3,
        type: 0,
        data: new Uint8Array(dataBytes).fill(index % 251),
      }],
    }),
  };
}

Deno.test("envelopeBytes is the length writeEnvelope writes, for every field a message may leave out", () => {
  const { snapshot: _, ...noSnapshot } = full;
  const samples: Envelope[] = [
    { groupId: 1, message: { ...noSnapshot, snapshot: null } },
    { groupId: 2, message: message({ type: MessageType.Heartbeat }) },
    { groupId: 3, message: message({ term: 1, context: new Uint8Array(5) }) },
    append(4, 9, 1000),
  ];
  for (const env of samples) {
    const w = new ByteWriter(8);
    writeEnvelope(w, env);
    assert.equal(envelopeBytes(env), w.length);
  }
  assert.throws(() => envelopeBytes({ groupId: 1, message: full }), RangeError);
});

Deno.test("writeMessagesFrames cuts a turn's messages into frames within the limit, in order, one too big alone", () => {
  const envelopes = [
    ...Array.from({ length: 30 }, (_, i) => append(i % 4, i + 1, 900)),
    append(9, 100, 5000),
    append(9, 101, 10),
  ];
  const limit = 4096;
  const w = new ByteWriter();
  writeMessagesFrames(w, envelopes, envelopes.map(envelopeBytes), limit);
  const frames = new FrameDecoder().push(w.view().slice());
  const lengths = frames.map((f) => messagesFrameLength(f.payload.length - 4));
  const decoded = frames.map((f) => readMessagesPayload(f.payload));
  assert.deepEqual(decoded.flat(), envelopes);
  const alone = decoded.findIndex((d) => d[0]!.message.index === 100);
  assert.equal(decoded[alone]!.length, 1);
  lengths.forEach((length, i) => {
    if (i !== alone) assert.ok(length <= limit, `frame ${i}: ${length}`);
  });
  // Each frame was cut only where the next message would not fit.
  for (let i = 0; i + 1 < decoded.length; i++) {
    const next = envelopeBytes(decoded[i + 1]![0]!);
    assert.ok(lengths[i]! + next > limit, `frame ${i} cut early`);
  }
});
