// Goal: frames carry the header form each api version needs, and our
// decoders read what a real client (kafkajs) encodes. Method: round-trips
// through whole frames, hand-built headers, and kafkajs' own request
// encoders loaded from node_modules.
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import {
  decodeRequest,
  decodeRequestHeader,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  versionRange,
} from "./api.ts";
import { DecodeError } from "./codec.ts";
import { ApiKey } from "./messages_gen.ts";
import { decodeRecordBatches } from "./records.ts";

const require = createRequire(import.meta.url);
const KAFKAJS = "../../node_modules/kafkajs/src/protocol/";

/** Runs a kafkajs request encoder and returns the frame without its prefix. */
async function kafkajsFrame(
  path: string,
  args: unknown,
): Promise<Uint8Array> {
  const build = require(KAFKAJS + path);
  const encodeFrame = require(KAFKAJS + "request.js");
  const encoder = await encodeFrame({
    correlationId: 42,
    clientId: "kjs",
    request: build(args),
  });
  return new Uint8Array(encoder.buffer).subarray(4);
}

function withoutPrefix(frame: Uint8Array): Uint8Array {
  const size = new DataView(frame.buffer, frame.byteOffset).getInt32(0);
  assert.equal(size, frame.length - 4);
  return frame.subarray(4);
}

Deno.test("encodeRequest and decodeRequest round-trip a flexible Metadata v12", () => {
  const frame = encodeRequest(ApiKey.Metadata, 12, {
    correlationId: 9,
    clientId: "raftq",
  }, {
    topics: [{ topicId: "0123456789abcdef0123456789abcdef", name: "orders" }],
    allowAutoTopicCreation: false,
  });
  const bare = withoutPrefix(frame);
  const { header, bodyOffset } = decodeRequestHeader(bare);
  assert.deepEqual(header, {
    apiKey: 3,
    apiVersion: 12,
    correlationId: 9,
    clientId: "raftq",
  });
  // int16 key, int16 version, int32 id, int16 + "raftq", empty tag section.
  assert.equal(bodyOffset, 2 + 2 + 4 + 2 + 5 + 1);
  const body = decodeRequest(ApiKey.Metadata, 12, bare, bodyOffset);
  assert.deepEqual(body, {
    topics: [{ topicId: "0123456789abcdef0123456789abcdef", name: "orders" }],
    allowAutoTopicCreation: false,
    includeClusterAuthorizedOperations: false,
    includeTopicAuthorizedOperations: false,
  });
});

Deno.test("decodeRequestHeader gives bodyOffset -1 for an unknown api or version", () => {
  const frame = new Uint8Array([0, 77, 0, 1, 0, 0, 0, 5, 0xff, 0xff]);
  assert.deepEqual(decodeRequestHeader(frame), {
    header: { apiKey: 77, apiVersion: 1, correlationId: 5, clientId: null },
    bodyOffset: -1,
  });
  const future = new Uint8Array([0, 18, 0, 99, 0, 0, 0, 6, 0, 1, 0x61, 0]);
  const got = decodeRequestHeader(future);
  assert.equal(got.bodyOffset, -1);
  assert.equal(got.header.clientId, "a");
});

Deno.test("decodeRequestHeader throws DecodeError on a frame too short for a header", () => {
  assert.throws(
    () => decodeRequestHeader(new Uint8Array([0, 3, 0])),
    DecodeError,
  );
});

Deno.test("encodeResponse keeps header v0 for ApiVersions v3 but v1 for other flexible apis", () => {
  const apiVersions = encodeResponse(ApiKey.ApiVersions, 3, 77, {
    errorCode: 0,
    apiKeys: [{ apiKey: 0, minVersion: 3, maxVersion: 8 }],
  });
  // prefix, correlation id, then the body at once: errorCode int16 = 0.
  assert.deepEqual([...apiVersions.subarray(4, 10)], [0, 0, 0, 77, 0, 0]);
  const decoded = decodeResponse(
    ApiKey.ApiVersions,
    3,
    withoutPrefix(apiVersions),
  );
  assert.equal(decoded.correlationId, 77);
  assert.deepEqual(decoded.body.apiKeys, [{
    apiKey: 0,
    minVersion: 3,
    maxVersion: 8,
  }]);

  const heartbeat = encodeResponse(ApiKey.Heartbeat, 4, 78, { errorCode: 27 });
  // correlation id, empty header tag section, throttle, error, body tags.
  assert.deepEqual(
    [...heartbeat.subarray(4)],
    [0, 0, 0, 78, 0, 0, 0, 0, 0, 0, 27, 0],
  );
  assert.equal(
    decodeResponse(ApiKey.Heartbeat, 4, heartbeat.subarray(4)).body.errorCode,
    27,
  );
});

Deno.test("encodeResponse refuses a version outside validVersions", () => {
  assert.throws(
    () => encodeResponse(ApiKey.Heartbeat, 9, 1, { errorCode: 0 }),
    /Unsupported response version: api key 12 v9/,
  );
});

Deno.test("versionRange gives the spec's validVersions", () => {
  assert.deepEqual(versionRange(ApiKey.Produce), { min: 0, max: 11 });
  assert.deepEqual(versionRange(ApiKey.ApiVersions), { min: 0, max: 4 });
});

Deno.test("decodeRequest reads a kafkajs Produce v7 and its record batch", async () => {
  const frame = await kafkajsFrame("requests/produce/v7/request.js", {
    acks: -1,
    timeout: 30000,
    topicData: [{
      topic: "orders",
      partitions: [{
        partition: 2,
        messages: [
          {
            key: "k1",
            value: "v1",
            timestamp: 1700000000000,
            headers: { h: "x" },
          },
          { key: null, value: "v2", timestamp: 1700000000005 },
        ],
      }],
    }],
  });
  const { header, bodyOffset } = decodeRequestHeader(frame);
  assert.deepEqual(header, {
    apiKey: 0,
    apiVersion: 7,
    correlationId: 42,
    clientId: "kjs",
  });
  const body = decodeRequest(ApiKey.Produce, 7, frame, bodyOffset);
  assert.equal(body.acks, -1);
  assert.equal(body.timeoutMs, 30000);
  assert.equal(body.transactionalId, null);
  const partition = body.topicData[0]!.partitionData[0]!;
  assert.equal(body.topicData[0]!.name, "orders");
  assert.equal(partition.index, 2);
  // The records are a view into the frame, not a copy.
  assert.equal(partition.records!.buffer, frame.buffer);
  const records = decodeRecordBatches(partition.records!);
  const text = new TextDecoder();
  assert.deepEqual(
    records.map((r) => [
      r.offset,
      r.timestamp,
      r.key && text.decode(r.key),
      r.value && text.decode(r.value),
      r.headers.map((h) => [h.key, h.value && text.decode(h.value)]),
    ]),
    [
      [0n, 1700000000000n, "k1", "v1", [["h", "x"]]],
      [1n, 1700000000005n, null, "v2", []],
    ],
  );
});

Deno.test("decodeRequest reads a kafkajs Fetch v11", async () => {
  const frame = await kafkajsFrame("requests/fetch/v11/request.js", {
    replicaId: -1,
    maxWaitTime: 500,
    minBytes: 1,
    maxBytes: 1048576,
    isolationLevel: 0,
    rackId: "rack-a",
    topics: [{
      topic: "orders",
      partitions: [{
        partition: 1,
        fetchOffset: "12345678901",
        maxBytes: 65536,
      }],
    }],
  });
  const { bodyOffset } = decodeRequestHeader(frame);
  const body = decodeRequest(ApiKey.Fetch, 11, frame, bodyOffset);
  assert.equal(body.replicaId, -1);
  assert.equal(body.maxWaitMs, 500);
  assert.equal(body.minBytes, 1);
  assert.equal(body.maxBytes, 1048576);
  assert.equal(body.isolationLevel, 0);
  assert.equal(body.sessionEpoch, -1);
  assert.equal(body.rackId, "rack-a");
  assert.deepEqual(body.topics, [{
    topic: "orders",
    topicId: "00000000000000000000000000000000",
    partitions: [{
      partition: 1,
      currentLeaderEpoch: -1,
      fetchOffset: 12345678901n,
      lastFetchedEpoch: -1,
      logStartOffset: -1n,
      partitionMaxBytes: 65536,
      replicaDirectoryId: "00000000000000000000000000000000",
    }],
  }]);
  assert.deepEqual(body.forgottenTopicsData, []);
});

Deno.test("decodeRequest reads a kafkajs Metadata v6", async () => {
  const frame = await kafkajsFrame("requests/metadata/v6/request.js", {
    topics: ["a", "b"],
    allowAutoTopicCreation: true,
  });
  const { bodyOffset } = decodeRequestHeader(frame);
  const body = decodeRequest(ApiKey.Metadata, 6, frame, bodyOffset);
  assert.deepEqual(body.topics!.map((t) => t.name), ["a", "b"]);
  assert.equal(body.allowAutoTopicCreation, true);
});

Deno.test("decodeRequest reads a kafkajs ListOffsets v3", async () => {
  const frame = await kafkajsFrame("requests/listOffsets/v3/request.js", {
    replicaId: -1,
    isolationLevel: 1,
    topics: [{
      topic: "orders",
      partitions: [{ partition: 0, timestamp: -2 }],
    }],
  });
  const { bodyOffset } = decodeRequestHeader(frame);
  const body = decodeRequest(ApiKey.ListOffsets, 3, frame, bodyOffset);
  assert.equal(body.isolationLevel, 1);
  assert.equal(body.topics[0]!.name, "orders");
  assert.equal(body.topics[0]!.partitions[0]!.partitionIndex, 0);
  assert.equal(body.topics[0]!.partitions[0]!.timestamp, -2n);
});

Deno.test("decodeRequest reads a kafkajs CreateTopics v3", async () => {
  const frame = await kafkajsFrame("requests/createTopics/v3/request.js", {
    topics: [{
      topic: "t1",
      numPartitions: 3,
      replicationFactor: 2,
      configEntries: [{ name: "cleanup.policy", value: "compact" }],
    }],
    validateOnly: true,
    timeout: 5000,
  });
  const { bodyOffset } = decodeRequestHeader(frame);
  const body = decodeRequest(ApiKey.CreateTopics, 3, frame, bodyOffset);
  assert.equal(body.timeoutMs, 5000);
  assert.equal(body.validateOnly, true);
  assert.deepEqual(body.topics, [{
    name: "t1",
    numPartitions: 3,
    replicationFactor: 2,
    assignments: [],
    configs: [{ name: "cleanup.policy", value: "compact" }],
  }]);
});
