/**
 * End to end: three Raft host processes (tests/raft_node_main.ts) on
 * loopback with 16 groups. Proposals flow while one host is killed with
 * SIGKILL and restarted on its data dir. Afterwards every host must hold,
 * per group, the same applied sequence with no duplicates, containing every
 * proposal that was acknowledged (committed and applied on its leader).
 */
import assert from "node:assert/strict";
import { freePort, NodeProcess, sleep } from "./raft_node_process.ts";

const GROUPS = 16;

Deno.test("Raft hosts in 3 processes apply every acknowledged proposal exactly once, in one order, across a SIGKILL", async () => {
  const ids = [1, 2, 3];
  const ports = new Map(ids.map((id) => [id, freePort()]));
  const peersArg = ids.map((id) => `${id}=127.0.0.1:${ports.get(id)}`).join(
    ",",
  );
  const root = Deno.makeTempDirSync({ prefix: "raft-e2e-" });
  const acked = new Map<number, Set<string>>();
  const onLine = (line: string) => {
    const [kind, group, payload] = line.split(" ");
    if (kind !== "ack") return;
    const set = acked.get(Number(group)) ?? new Set();
    set.add(payload!);
    acked.set(Number(group), set);
  };
  const spawn = (id: number) =>
    new NodeProcess(
      [
        "--id",
        String(id),
        "--dir",
        `${root}/n${id}`,
        "--peers",
        peersArg,
        "--groups",
        String(GROUPS),
      ],
      { onLine },
    );
  const nodes = new Map(ids.map((id) => [id, spawn(id)]));
  try {
    for (const n of nodes.values()) await n.waitFor((l) => l === "ready");
    for (const n of nodes.values()) await n.send("propose on");
    await sleep(2000);

    // Kill the host that leads the most groups, so leadership must move.
    const led = new Map(ids.map((id) => [id, 0]));
    const first = nodes.get(1)!;
    const leaders: Record<string, number> = JSON.parse(
      await first.ask("leaders", "leaders"),
    );
    for (const l of Object.values(leaders)) led.set(l, (led.get(l) ?? 0) + 1);
    const victim = [...led].sort((a, b) => b[1] - a[1])[0]![0];
    assert.ok(led.get(victim)! > 0, "no leaders elected before the kill");
    await nodes.get(victim)!.kill();
    await sleep(1500);
    nodes.set(victim, spawn(victim));
    await nodes.get(victim)!.waitFor((l) => l === "ready");
    await nodes.get(victim)!.send("propose on");
    await sleep(2500);
    for (const n of nodes.values()) await n.send("propose off");

    // Let the last proposals settle and every replica catch up, then compare.
    let dumps: Record<string, string[]>[] = [];
    const deadline = performance.now() + 20000;
    for (;;) {
      await sleep(500);
      dumps = [];
      for (const [id, n] of nodes) {
        const path = `${root}/dump-${id}.json`;
        await n.send(`dump ${path}`);
        await n.waitFor((l) => l === "dumped");
        dumps.push(JSON.parse(Deno.readTextFileSync(path)));
      }
      const same = dumps.every((d) =>
        JSON.stringify(d) === JSON.stringify(dumps[0])
      );
      if (same || performance.now() > deadline) break;
    }

    let totalAcked = 0;
    for (let g = 1; g <= GROUPS; g++) {
      const lists = dumps.map((d) => d[g] ?? []);
      for (const list of lists) {
        assert.deepEqual(list, lists[0], `group ${g} differs between hosts`);
      }
      const applied = lists[0]!;
      assert.equal(
        new Set(applied).size,
        applied.length,
        `group ${g} applied a proposal twice`,
      );
      const appliedSet = new Set(applied);
      for (const p of acked.get(g) ?? []) {
        assert.ok(appliedSet.has(p), `group ${g} lost acknowledged ${p}`);
      }
      totalAcked += acked.get(g)?.size ?? 0;
    }
    // The run must have done real work, including after the restart.
    assert.ok(totalAcked > 500, `only ${totalAcked} proposals acknowledged`);
    console.log(
      `acknowledged ${totalAcked}, victim ${victim} led ${
        led.get(victim)
      } groups`,
    );
  } finally {
    for (const n of nodes.values()) await n.kill();
    Deno.removeSync(root, { recursive: true });
  }
});
