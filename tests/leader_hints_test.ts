// KIP-951 on a 3-broker cluster: a broker that does not lead a partition
// answers Produce v11 and Fetch v16 with NOT_LEADER_OR_FOLLOWER, the leader
// it knows of and that leader's address; after the leader is killed with
// -9, a surviving follower names the newly elected leader at once. Older
// versions get the bare error, as their clients expect.
import assert from "node:assert/strict";
import {
  ApiKey,
  buildRecordBatch,
  decodeResponse,
  encodeRequest,
  ErrorCode,
} from "../src/protocol/mod.ts";
import { Cluster, waitFor } from "./cluster_harness.ts";
import { exchange } from "./harness.ts";

const utf8 = new TextEncoder();

async function produceTo(port: number, version: number, topic: string) {
  const reply = await exchange(
    port,
    encodeRequest(ApiKey.Produce, version, {
      correlationId: 1,
      clientId: "raftq-e2e",
    }, {
      transactionalId: null,
      acks: -1,
      timeoutMs: 5_000,
      topicData: [{
        name: topic,
        partitionData: [{
          index: 0,
          records: buildRecordBatch([{ value: utf8.encode("hinted") }]),
        }],
      }],
    }),
  );
  const { body } = decodeResponse(ApiKey.Produce, version, reply);
  return { body, partition: body.responses[0]!.partitionResponses[0]! };
}

async function fetchFrom(port: number, topicId: string) {
  const version = 16;
  const reply = await exchange(
    port,
    encodeRequest(ApiKey.Fetch, version, {
      correlationId: 2,
      clientId: "raftq-e2e",
    }, {
      maxWaitMs: 0,
      minBytes: 1,
      maxBytes: 1 << 20,
      isolationLevel: 0,
      topics: [{
        topic: "",
        topicId,
        partitions: [{
          partition: 0,
          fetchOffset: 0n,
          partitionMaxBytes: 1 << 20,
        }],
      }],
    }),
  );
  const { body } = decodeResponse(ApiKey.Fetch, version, reply);
  return { body, partition: body.responses[0]!.partitions[0]! };
}

Deno.test({
  name:
    "a broker that does not lead a partition names its leader and the leader's address in Produce v11 and Fetch v16, also right after the leader is killed",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const topic = "hinted";
    const cluster = await Cluster.start();
    const client = await cluster.client();
    try {
      await client.createTopic(topic, { partitions: 1, replicationFactor: 3 });
      const md = await cluster.waitForLeaders(client, topic, {
        preferred: true,
      });
      const leader = md.partitions[0]!.leader;
      const follower = md.partitions[0]!.replicas.find((r) => r !== leader)!;
      const followerPort = cluster.member(follower).kafkaPort;

      const produced = await produceTo(followerPort, 11, topic);
      assert.equal(
        produced.partition.errorCode,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
      );
      assert.equal(produced.partition.currentLeader.leaderId, leader);
      assert.ok(produced.partition.currentLeader.leaderEpoch >= 0);
      assert.deepEqual(
        produced.body.nodeEndpoints.map((e) => [e.nodeId, e.port]),
        [[leader, cluster.member(leader).kafkaPort]],
      );

      const fetched = await fetchFrom(followerPort, md.topicId);
      assert.equal(
        fetched.partition.errorCode,
        ErrorCode.NOT_LEADER_OR_FOLLOWER,
      );
      assert.equal(fetched.partition.currentLeader.leaderId, leader);
      assert.deepEqual(
        fetched.body.nodeEndpoints.map((e) => e.nodeId),
        [leader],
      );

      // Produce v9 has neither field: the answer is the bare error.
      const old = await produceTo(followerPort, 9, topic);
      assert.equal(old.partition.errorCode, ErrorCode.NOT_LEADER_OR_FOLLOWER);
      assert.equal(old.body.nodeEndpoints.length, 0);

      await cluster.kill9(leader);
      const survivor = md.partitions[0]!.replicas.find((r) =>
        r !== leader && r !== follower
      )!;
      // Whichever survivor won the election, the other one points at it.
      const hinted = await waitFor(
        "a survivor to name the new leader",
        async () => {
          for (
            const [asked, other] of [[follower, survivor], [survivor, follower]]
          ) {
            const r = await produceTo(
              cluster.member(asked!).kafkaPort,
              11,
              topic,
            );
            if (r.partition.currentLeader.leaderId === other) {
              return { r, other: other! };
            }
          }
          return undefined;
        },
        { timeoutMs: 10_000, intervalMs: 50 },
      );
      assert.deepEqual(
        hinted.r.body.nodeEndpoints.map((e) => [e.nodeId, e.port]),
        [[hinted.other, cluster.member(hinted.other).kafkaPort]],
      );
      const accepted = await produceTo(
        cluster.member(hinted.other).kafkaPort,
        11,
        topic,
      );
      assert.equal(accepted.partition.errorCode, ErrorCode.NONE);
    } finally {
      await client.close();
      await cluster.destroy();
    }
  },
});
