/**
 * The group, cluster and top commands, and consume --group, against one real
 * broker process (tests/harness.ts). Commands run in-process through
 * runCli with captured output; each consumer is its own KafkaClient and
 * group member, as separate processes would be. The broker skips the
 * initial rebalance delay so that joins complete at once.
 */
import assert from "node:assert/strict";
import { startBroker } from "../../tests/harness.ts";
import { KafkaClient } from "../client/mod.ts";
import { type CliIo, runCli } from "./mod.ts";

interface Run {
  code: Promise<number>;
  out(): string;
  err(): string;
  /** Interrupts the command, as Ctrl-C does. */
  stop(): void;
}

function start(bootstrap: string, args: string[], stdin = ""): Run {
  const out: string[] = [];
  const err: string[] = [];
  const interrupt = new AbortController();
  const io: CliIo = {
    stdin: ReadableStream.from([new TextEncoder().encode(stdin)]),
    stdout: (t) => out.push(t),
    stderr: (t) => err.push(t),
    env: { RAFTQ_BOOTSTRAP: bootstrap },
    interrupt: interrupt.signal,
  };
  return {
    code: runCli(args, io),
    out: () => out.join(""),
    err: () => err.join(""),
    stop: () => interrupt.abort(),
  };
}

async function waitFor(
  what: string,
  condition: () => Promise<boolean> | boolean,
): Promise<void> {
  const deadline = Date.now() + 15_000;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting: ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

Deno.test("group, cluster and top commands against a live broker", async (t) => {
  const broker = await startBroker({
    set: [
      "groups.initial_rebalance_delay=0",
      "groups.offsets_partitions=1",
    ],
  });
  const client = await KafkaClient.connect(broker.bootstrap);
  const cli = async (args: string[], stdin = "") => {
    const run = start(broker.bootstrap, args, stdin);
    return { code: await run.code, out: run.out(), err: run.err() };
  };
  try {
    assert.equal(
      (await cli(["topic", "create", "events", "--partitions", "1"])).code,
      0,
    );
    assert.equal(
      (await cli(["produce", "events"], "e0\ne1\ne2\ne3\ne4\n")).code,
      0,
    );

    await t.step(
      "consume --group commits what it printed; list and describe show it",
      async () => {
        const consumed = await cli([
          "consume",
          "events",
          "--group",
          "ga",
          "--from-beginning",
          "--max-messages",
          "3",
        ]);
        assert.equal(consumed.code, 0, consumed.err);
        assert.equal(consumed.out, "e0\ne1\ne2\n");
        const list = await cli(["group", "list"]);
        assert.match(list.out, /^ga\s+Empty\s+consumer$/m);
        const described = await cli(["group", "describe", "ga"]);
        assert.equal(described.code, 0, described.err);
        // It left on exit: no members, and 2 of 5 messages left to read.
        assert.match(described.out, /State: Empty .* Members: 0/);
        assert.match(described.out, /^events\s+0\s+3\s+5\s+2\s+-\s+-\s+-$/m);
      },
    );

    await t.step(
      "reset-offsets moves the group, and consume resumes there",
      async () => {
        const reset = await cli([
          "group",
          "reset-offsets",
          "ga",
          "--topic",
          "events",
          "--to-offset",
          "1",
        ]);
        assert.equal(reset.code, 0, reset.err);
        assert.match(reset.out, /^events\s+0\s+1$/m);
        // Without --from-beginning: the committed offset decides.
        const consumed = await cli([
          "consume",
          "events",
          "--group",
          "ga",
          "--max-messages",
          "2",
        ]);
        assert.equal(consumed.out, "e1\ne2\n");
        const latest = await cli([
          "group",
          "reset-offsets",
          "ga",
          "--topic",
          "events",
          "--to-latest",
        ]);
        assert.match(latest.out, /^events\s+0\s+5$/m);
      },
    );

    await t.step(
      "reset-offsets is refused while the group has a member",
      async () => {
        const consumer = start(broker.bootstrap, [
          "consume",
          "events",
          "--group",
          "gb",
        ]);
        try {
          await waitFor(
            "gb has a member",
            async () => (await client.describeGroup("gb")).members.length === 1,
          );
          const reset = await cli([
            "group",
            "reset-offsets",
            "gb",
            "--topic",
            "events",
            "--to-earliest",
          ]);
          assert.equal(reset.code, 1);
          assert.match(
            reset.err,
            /Cannot reset the offsets of group "gb": it has 1 active member/,
          );
        } finally {
          consumer.stop();
        }
        assert.equal(await consumer.code, 0, consumer.err());
        assert.equal((await client.describeGroup("gb")).members.length, 0);
      },
    );

    await t.step(
      "two consumers of one group split a 2-partition topic",
      async () => {
        assert.equal(
          (await cli(["topic", "create", "pairs", "--partitions", "2"])).code,
          0,
        );
        const args = ["consume", "pairs", "--group", "gp", "--from-beginning"];
        const first = start(broker.bootstrap, args);
        let second: Run | undefined;
        try {
          await waitFor("the first member owns both partitions", async () => {
            const g = await client.describeGroup("gp");
            return g.state === "Stable" &&
              g.members[0]?.assignment[0]?.partitions.length === 2;
          });
          // The first member learns of the rebalance by its heartbeat.
          second = start(broker.bootstrap, args);
          await waitFor("both members own one partition", async () => {
            const g = await client.describeGroup("gp");
            return g.state === "Stable" && g.members.length === 2 &&
              g.members.every((m) => m.assignment[0]?.partitions.length === 1);
          });
          for (const partition of ["0", "1"]) {
            const produced = await cli(
              ["produce", "pairs", "--partition", partition],
              `to-${partition}\n`,
            );
            assert.equal(produced.code, 0, produced.err);
          }
          await waitFor(
            "both messages printed",
            () => (first.out() + second!.out()).split("\n").length === 3,
          );
          assert.deepEqual(
            [first.out(), second.out()].sort(),
            ["to-0\n", "to-1\n"],
          );
        } finally {
          first.stop();
          second?.stop();
        }
        assert.equal(await first.code, 0, first.err());
        assert.equal(await second.code, 0, second.err());
      },
    );

    await t.step("group delete removes an empty group", async () => {
      assert.equal((await cli(["group", "delete", "ga"])).code, 0);
      assert.doesNotMatch((await cli(["group", "list"])).out, /^ga\s/m);
      const described = await cli(["group", "describe", "ga"]);
      assert.equal(described.code, 1);
      assert.match(described.err, /Group "ga" does not exist/);
    });

    await t.step(
      "cluster status shows the broker as controller with its partitions",
      async () => {
        const status = await cli(["cluster", "status"]);
        assert.equal(status.code, 0, status.err);
        assert.match(
          status.out,
          new RegExp(`^1\\s+127\\.0\\.0\\.1:${broker.port}\\s+\\*$`, "m"),
        );
        // LAG: the one replica is the leader, 0 behind itself.
        assert.match(status.out, /^events\s+0\s+1\s+1\s+1\s+1:0$/m);
        assert.match(status.out, /^pairs\s+1\s+1\s+1\s+1\s+1:0$/m);
      },
    );
    await t.step(
      "top --once shows each topic's partitions, end offsets and a 0 rate when idle; live top redraws with the rate of new records until interrupted",
      async () => {
        const once = await cli(["top", "--once", "--interval-ms", "300"]);
        assert.equal(once.code, 0, once.err);
        assert.match(
          once.out,
          /^TOPIC\s+PARTITIONS\s+RECORDS\/S\s+END OFFSETS$/m,
        );
        assert.match(once.out, /^events\s+1\s+0\.0\s+5$/m);
        assert.doesNotMatch(once.out, /__consumer_offsets/);
        const live = start(broker.bootstrap, ["top", "--interval-ms", "200"]);
        let sent = 0;
        await waitFor("a non-zero rate for events", async () => {
          await cli(["produce", "events"], "more\n");
          sent++;
          return /^events\s+1\s+[1-9][\d.]*\s+\d+$/m.test(live.out());
        });
        assert.ok(
          live.out().includes("\x1b[H\x1b[2Jraftq top, every 200 ms"),
          "redrawn in place",
        );
        live.stop();
        assert.equal(await live.code, 0, live.err());
        assert.ok(sent > 0);
      },
    );
  } finally {
    await client.close();
    await broker.stop();
    await Deno.remove(broker.dataDir, { recursive: true });
  }
});
