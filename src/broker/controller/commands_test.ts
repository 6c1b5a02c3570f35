/**
 * Goal: the controller log encoding carries every command unchanged and
 * refuses anything malformed with a ControllerDecodeError naming the field.
 * Method: round trip one command of each type; feed hand-made bad bytes.
 */
import assert from "node:assert/strict";
import {
  type Command,
  COMMAND_VERSION,
  ControllerDecodeError,
  decodeCommand,
  encodeCommand,
} from "./mod.ts";

const BINDING = {
  resourceType: "topic",
  patternType: "prefixed",
  resourceName: "orders-",
  principal: "User:alice",
  host: "*",
  operation: "write",
  permission: "allow",
} as const;

const EVERY_TYPE: Command[] = [
  { type: "initCluster", clusterId: "c-1" },
  { type: "createAcls", bindings: [BINDING] },
  { type: "deleteAcls", bindings: [BINDING] },
  {
    type: "registerBroker",
    broker: {
      nodeId: 3,
      kafkaHost: "10.0.0.3",
      kafkaPort: 9092,
      raftHost: "10.0.0.3",
      raftPort: 7000,
    },
    lastSeenMs: 1_700_000_000_000,
  },
  { type: "unregisterBroker", nodeId: 3 },
  { type: "markBrokerFailed", nodeId: 2 },
  {
    type: "createTopic",
    name: "orders",
    topicId: "0123456789abcdef0123456789abcdef",
    partitions: 6,
    replicationFactor: 3,
    configs: { "retention.ms": "60000" },
  },
  { type: "deleteTopic", name: "orders" },
  { type: "createPartitions", name: "orders", count: 12 },
  { type: "reassignPartition", name: "orders", partition: 1, replicas: [2, 1] },
  { type: "allocateProducerIds", count: 1000 },
  { type: "leaderChanged", groupId: 4, leader: 2, term: 7 },
];

const utf8 = new TextEncoder();

function raw(version: number, text: string): Uint8Array {
  return new Uint8Array([version, ...utf8.encode(text)]);
}

Deno.test("encodeCommand/decodeCommand round trip every command type", () => {
  for (const command of EVERY_TYPE) {
    const bytes = encodeCommand(command);
    assert.equal(bytes[0], COMMAND_VERSION);
    assert.deepEqual(decodeCommand(bytes), command);
  }
});

Deno.test("decodeCommand refuses another version", () => {
  const bytes = encodeCommand({ type: "deleteTopic", name: "t" });
  bytes[0] = COMMAND_VERSION + 1;
  assert.throws(() => decodeCommand(bytes), {
    name: "ControllerDecodeError",
    message: /version 2: this broker reads only version 1/,
  });
  assert.throws(() => decodeCommand(new Uint8Array()), ControllerDecodeError);
});

Deno.test("decodeCommand refuses bad JSON and unknown types", () => {
  assert.throws(
    () => decodeCommand(raw(COMMAND_VERSION, "{")),
    /not valid UTF-8 JSON/,
  );
  assert.throws(
    () => decodeCommand(raw(COMMAND_VERSION, '{"type":"dropCluster"}')),
    /Field "command.type" is invalid: expected one of initCluster/,
  );
  assert.throws(
    () => decodeCommand(raw(COMMAND_VERSION, "[]")),
    /Field "command.type"/,
  );
});

Deno.test("decodeCommand names a missing, mistyped or extra field", () => {
  const cases: [string, RegExp][] = [
    ['{"type":"deleteTopic"}', /"command.name" is invalid: expected a string/],
    [
      '{"type":"createPartitions","name":"t","count":1.5}',
      /"command.count" is invalid: expected a safe integer, got 1.5/,
    ],
    [
      '{"type":"reassignPartition","name":"t","partition":0,"replicas":[1,"2"]}',
      /"command.replicas\[1\]"/,
    ],
    [
      '{"type":"createTopic","name":"t","topicId":"x","partitions":1,"replicationFactor":1,"configs":{"a":1}}',
      /"command.configs.a" is invalid: expected a string/,
    ],
    [
      '{"type":"registerBroker","broker":{"nodeId":1},"lastSeenMs":0}',
      /"command.broker.kafkaHost"/,
    ],
    [
      '{"type":"leaderChanged","groupId":4,"leader":2}',
      /"command.term" is invalid: expected a safe integer/,
    ],
    [
      '{"type":"leaderChanged","groupId":"4","leader":2,"term":1}',
      /"command.groupId" is invalid: expected a safe integer/,
    ],
    [
      '{"type":"deleteTopic","name":"t","force":true}',
      /"command.force" is invalid: expected no such field/,
    ],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => decodeCommand(raw(COMMAND_VERSION, text)), {
      name: "ControllerDecodeError",
      message,
    });
  }
});

Deno.test("decodeCommand refuses an ACL binding with an unknown operation, naming the field", () => {
  const text = JSON.stringify({
    type: "createAcls",
    bindings: [{ ...BINDING, operation: "steal" }],
  });
  assert.throws(
    () => decodeCommand(raw(COMMAND_VERSION, text)),
    (err) =>
      err instanceof ControllerDecodeError &&
      err.message.includes("command.bindings[0].operation"),
  );
});
