// Goal: every generated message codes and decodes losslessly at every valid
// version, the generated file matches the spec, and hostile input only ever
// raises DecodeError. Method: schema-driven random bodies from a fixed seed;
// truncation and byte-flip fuzzing of valid encodings.
import assert from "node:assert/strict";
import { generate } from "../../scripts/gen_protocol.ts";
import { DecodeError, Reader, Writer } from "./codec.ts";
import { messageCodec } from "./message_codec.ts";
import { API_SCHEMAS } from "./messages_gen.ts";
import type { MessageSchema } from "./schema.ts";
import { randomStruct, seededRng, versionsOf } from "./testing.ts";

const MESSAGES: MessageSchema[] = Object.values(API_SCHEMAS).flatMap((
  api,
) => [api.request, api.response]);

function encode(message: MessageSchema, version: number, body: unknown) {
  const w = new Writer(64);
  messageCodec(message, version).write(w, body);
  return w.finish().slice();
}

function decode(message: MessageSchema, version: number, bytes: Uint8Array) {
  const r = new Reader(bytes);
  const body = messageCodec(message, version).read(r) as Record<
    string,
    unknown
  >;
  return { body, rest: r.remaining };
}

Deno.test("messageCodec round-trips every message at every valid version", () => {
  const rng = seededRng(482);
  let cases = 0;
  for (const message of MESSAGES) {
    for (const version of versionsOf(message)) {
      for (let i = 0; i < 3; i++) {
        const body = randomStruct(message.fields, { version, rng });
        const bytes = encode(message, version, body);
        const { body: back, rest } = decode(message, version, bytes);
        assert.equal(rest, 0, `${message.name} v${version} left bytes`);
        assert.deepEqual(back, body, `${message.name} v${version}`);
        cases++;
      }
    }
  }
  assert.ok(cases > 500);
});

Deno.test("messageCodec fills fields a version lacks with their defaults", () => {
  const produce = API_SCHEMAS[0].request;
  const bytes = encode(produce, 2, { acks: 1, timeoutMs: 5, topicData: [] });
  const { body } = decode(produce, 2, bytes);
  assert.deepEqual(body, {
    transactionalId: null,
    acks: 1,
    timeoutMs: 5,
    topicData: [],
  });
});

Deno.test("messageCodec writes tagged fields only when not default", () => {
  const fetch = API_SCHEMAS[1].request;
  const body = randomStruct(fetch.fields, { version: 12, rng: null });
  const plain = encode(fetch, 12, body);
  const tagged = encode(fetch, 12, { ...body, clusterId: "c1" });
  // tag 0, size 3, compact string "c1" = 4 bytes more than an empty section.
  assert.equal(tagged.length, plain.length + 5);
  assert.equal(decode(fetch, 12, tagged).body.clusterId, "c1");
  assert.equal(decode(fetch, 12, plain).body.clusterId, null);
});

Deno.test("messageCodec skips unknown tagged fields", () => {
  const heartbeat = API_SCHEMAS[12].response;
  const known = encode(heartbeat, 4, { throttleTimeMs: 7, errorCode: 0 });
  // Replace the empty tagged section with one unknown tag 9 of 2 bytes.
  const withUnknown = new Uint8Array([
    ...known.subarray(0, -1),
    1,
    9,
    2,
    0xab,
    0xcd,
  ]);
  const { body, rest } = decode(heartbeat, 4, withUnknown);
  assert.deepEqual(body, { throttleTimeMs: 7, errorCode: 0 });
  assert.equal(rest, 0);
});

Deno.test("messageCodec names the field path of a bad value on encode", () => {
  const produce = API_SCHEMAS[0].request;
  assert.throws(
    () =>
      encode(produce, 7, {
        acks: 1,
        timeoutMs: 5,
        topicData: [{
          name: "t",
          partitionData: [{ index: 2 ** 40, records: null }],
        }],
      }),
    /topicData\[0\]\.partitionData\[0\]\.index/,
  );
});

Deno.test("messages_gen.ts is what scripts/gen_protocol.ts generates", async () => {
  const dir = new URL(
    "../../../shared/kafka-protocol/messages/",
    import.meta.url,
  );
  try {
    await Deno.stat(dir);
  } catch {
    console.log(`skipped: ${dir.pathname} is not there to regenerate from`);
    return;
  }
  const expected = generate((file) =>
    Deno.readTextFileSync(new URL(file, dir))
  );
  const actual = await Deno.readTextFile(
    new URL("./messages_gen.ts", import.meta.url),
  );
  assert.ok(
    expected === actual,
    "messages_gen.ts is stale: run deno task gen:protocol",
  );
});

Deno.test("messageCodec decoders throw only DecodeError on truncated or mangled input", () => {
  const rng = seededRng(7);
  for (const message of MESSAGES) {
    for (const version of versionsOf(message)) {
      const body = randomStruct(message.fields, { version, rng });
      const bytes = encode(message, version, body);
      // An empty body (ListGroups v0) has nothing to cut or mangle.
      for (let k = 0; k < 4 && bytes.length > 0; k++) {
        const cut = Math.floor(rng() * bytes.length);
        assert.throws(
          () => decode(message, version, bytes.subarray(0, cut)),
          DecodeError,
          `${message.name} v${version} cut at ${cut}`,
        );
        const mangled = bytes.slice();
        for (let f = 0; f < 3; f++) {
          mangled[Math.floor(rng() * mangled.length)] = Math.floor(rng() * 256);
        }
        const random = Uint8Array.from(
          { length: 1 + Math.floor(rng() * 64) },
          () => Math.floor(rng() * 256),
        );
        for (const input of [mangled, random]) {
          try {
            decode(message, version, input);
          } catch (e) {
            assert.ok(
              e instanceof DecodeError,
              `${message.name} v${version}: ${e}`,
            );
          }
        }
      }
    }
  }
});

Deno.test("DecodeError carries api, version, field path and offset", () => {
  const produce = API_SCHEMAS[0].request;
  const bytes = encode(produce, 7, {
    acks: 1,
    timeoutMs: 5,
    topicData: [{
      name: "t",
      partitionData: [{ index: 0, records: new Uint8Array(9) }],
    }],
  });
  const r = new Reader(bytes.subarray(0, bytes.length - 3));
  r.context = { apiKey: 0, apiVersion: 7 };
  assert.throws(() => messageCodec(produce, 7).read(r), (e) => {
    assert.ok(e instanceof DecodeError);
    assert.equal(e.apiKey, 0);
    assert.equal(e.apiVersion, 7);
    assert.equal(e.fieldPath, "topicData[0].partitionData[0].records");
    // The bytes' payload would start after transactionalId(2) acks(2)
    // timeoutMs(4) count(4) name(3) count(4) index(4) length(4).
    assert.equal(e.offset, 27);
    assert.match(e.message, /length 9 exceeds the 6 bytes left/);
    return true;
  });
});
