// OffsetDelete, DescribeProducers and DescribeCluster on a replicated
// cluster: requests sent to a broker that does not coordinate the group or
// lead the partition are refused with the codes Kafka clients act on, every
// broker names the same controller, and offsets deleted on one coordinator
// stay deleted once the next leader of the offsets partition takes over.
import assert from "node:assert/strict";
import {
  Connection,
  describeClusterV1,
  describeProducersV0,
  offsetDeleteV0,
} from "@platformatic/kafka";
import { ErrorCode } from "../src/protocol/mod.ts";
import { Cluster, type ClusterMember, waitFor } from "./cluster_harness.ts";

async function connectTo(member: ClusterMember): Promise<Connection> {
  const conn = new Connection("plat-admin");
  await conn.connect("127.0.0.1", member.kafkaPort);
  return conn;
}

/** A @platformatic/kafka answer, or the response its error carries. */
function answerOf<T>(call: Promise<T>): Promise<T> {
  return call.catch((err: { response?: T }) => {
    if (err.response === undefined) throw err;
    return err.response;
  });
}

Deno.test("OffsetDelete and DescribeProducers are refused off the coordinator and leader, and deleted offsets stay deleted on the next coordinator", async () => {
  const cluster = await Cluster.start({
    set: ["groups.initial_rebalance_delay=0", "groups.offsets_partitions=4"],
  });
  const client = await cluster.client();
  const connections: Connection[] = [];
  try {
    await client.createTopic("tracked", {
      partitions: 2,
      replicationFactor: 3,
    });
    await cluster.waitForLeaders(client, "tracked");
    await client.commitOffsets("cg", [
      { topic: "tracked", partition: 0, offset: 1n },
      { topic: "tracked", partition: 1, offset: 2n },
    ]);
    const coordinator = await client.findCoordinator("cg");
    const metadata = await client.metadata(["tracked"]);
    const leader = metadata.topics[0]!.partitions[0]!.leader;

    for (const m of cluster.members) {
      const conn = await connectTo(m);
      connections.push(conn);
      const described = await describeClusterV1.api.async(conn, false, 1);
      assert.equal(described.controllerId, metadata.controllerId);
      assert.deepEqual(
        described.brokers.map((b) => b.brokerId).sort(),
        [1, 2, 3],
      );
      const deleted = await answerOf(
        offsetDeleteV0.api.async(conn, "cg", [{
          name: "tracked",
          partitions: [{ partitionIndex: 0 }],
        }]),
      );
      assert.equal(
        deleted.errorCode,
        m.nodeId === coordinator.nodeId
          ? ErrorCode.NONE
          : ErrorCode.NOT_COORDINATOR,
        `OffsetDelete to broker ${m.nodeId}`,
      );
      const producers = await answerOf(
        describeProducersV0.api.async(conn, [{
          name: "tracked",
          partitionIndexes: [0],
        }]),
      );
      assert.equal(
        producers.topics[0]!.partitions[0]!.errorCode,
        m.nodeId === leader ? ErrorCode.NONE : ErrorCode.NOT_LEADER_OR_FOLLOWER,
        `DescribeProducers to broker ${m.nodeId}`,
      );
    }
    const partitionsOf = async () =>
      (await client.fetchOffsets("cg")).map((o) => o.partition);
    assert.deepEqual(await partitionsOf(), [1]);

    await cluster.kill9(coordinator.nodeId);
    const next = await waitFor("a new coordinator of cg", async () => {
      const c = await client.findCoordinator("cg");
      return c.nodeId === coordinator.nodeId ? undefined : c;
    }, { timeoutMs: 60_000 });
    assert.notEqual(next.nodeId, coordinator.nodeId);
    assert.deepEqual(await partitionsOf(), [1]);
  } finally {
    for (const conn of connections) conn.close();
    await client.close();
    await cluster.destroy();
  }
});
