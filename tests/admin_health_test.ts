/**
 * Readiness follows partition leadership in a real 3-broker cluster. A
 * topic with 3 replicas keeps quorum when one broker is killed with
 * SIGKILL, so its partitions regain leaders; a topic with 2 replicas loses
 * quorum in every partition the killed broker held, so the survivors that
 * host those partitions answer 503 and name exactly them as unavailable,
 * until the broker comes back and /v1/health/ready is 200 everywhere again.
 * On the way, /v1/groups/{id} is answered by the group's coordinator and
 * misdirected (421, naming it) by the others.
 */
import assert from "node:assert/strict";
import { Cluster, waitFor } from "./cluster_harness.ts";

interface Readiness {
  status: number;
  unavailable: string[];
}

async function readiness(adminUrl: string): Promise<Readiness> {
  const res = await fetch(`${adminUrl}/v1/health/ready`);
  const body = await res.json();
  return { status: res.status, unavailable: body.unavailable };
}

Deno.test("/v1/health/ready is 503 naming the partitions a kill -9 left without quorum and 200 once they have it again; /v1/groups/{id} is answered by the coordinator and 421 elsewhere", async () => {
  const cluster = await Cluster.start({ size: 3 });
  try {
    const client = await cluster.client();
    try {
      await client.createTopic("trio", { partitions: 3, replicationFactor: 3 });
      await client.createTopic("pairs", {
        partitions: 3,
        replicationFactor: 2,
      });
      await cluster.waitForLeaders(client, "trio");
      await cluster.waitForLeaders(client, "pairs");
      await client.commitOffsets("probed", [
        { topic: "trio", partition: 0, offset: 0n },
      ]);
    } finally {
      await client.close();
    }
    for (const m of cluster.members) {
      await waitFor(`broker ${m.nodeId} ready`, async () => {
        const r = await readiness(m.adminUrl);
        return r.status === 200 ? r : undefined;
      });
      const live = await fetch(`${m.adminUrl}/v1/health/live`);
      assert.equal(live.status, 200);
      await live.body?.cancel();
    }

    // One broker coordinates the group; the others point to it.
    const answers = await Promise.all(cluster.members.map(async (m) => {
      const res = await fetch(`${m.adminUrl}/v1/groups/probed`);
      return { nodeId: m.nodeId, status: res.status, body: await res.json() };
    }));
    const coordinating = answers.filter((a) => a.status === 200);
    assert.equal(coordinating.length, 1, JSON.stringify(answers));
    assert.deepEqual(coordinating[0]!.body.offsets, [
      { topic: "trio", partition: 0, committedOffset: "0", lag: 0 },
    ]);
    for (const a of answers.filter((x) => x.status !== 200)) {
      assert.equal(a.status, 421);
      assert.equal(a.body.coordinator, coordinating[0]!.nodeId);
    }

    const topic = await (await fetch(
      `${cluster.member(1).adminUrl}/v1/topics/pairs`,
    )).json() as {
      partitionDetails: { partition: number; replicas: number[] }[];
    };
    const victim = 3;
    /** The "pairs" partitions a survivor shares with the victim: no quorum left. */
    const stranded = (nodeId: number) =>
      topic.partitionDetails.filter((p) =>
        p.replicas.includes(nodeId) && p.replicas.includes(victim)
      ).map((p) => `pairs-${p.partition}`).sort();
    assert.ok(
      stranded(1).length + stranded(2).length > 0,
      "some pair partition includes the victim",
    );

    await cluster.kill9(victim);
    for (const nodeId of [1, 2]) {
      const { adminUrl } = cluster.member(nodeId);
      const expected = stranded(nodeId);
      // "trio" partitions that the victim led are unavailable only until an
      // election among the two survivors: wait for exactly the stranded set.
      const settled = await waitFor(
        `broker ${nodeId} to name ${expected} as unavailable`,
        async () => {
          const r = await readiness(adminUrl);
          return JSON.stringify(r.unavailable) === JSON.stringify(expected)
            ? r
            : undefined;
        },
        { timeoutMs: 60_000 },
      );
      assert.equal(settled.status, expected.length === 0 ? 200 : 503);
    }

    await cluster.restart(victim);
    for (const m of cluster.members) {
      await waitFor(`broker ${m.nodeId} ready again`, async () => {
        const r = await readiness(m.adminUrl);
        return r.status === 200 && r.unavailable.length === 0 ? r : undefined;
      }, { timeoutMs: 60_000 });
    }
  } finally {
    await cluster.destroy();
  }
});
