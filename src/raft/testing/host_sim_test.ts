/**
 * Seed sweeps of the host simulator: three real RaftHosts with WALs on disk
 * under a SimClock, with leader crashes, restarts and partitions; safety
 * after every event, liveness after healing. Plus proof that a seed replays
 * identically and that a failure names its seed.
 */
import assert from "node:assert/strict";
import {
  hostReplayCommand,
  HostSimFailure,
  hostSimOptionsFromSeed,
  runHostSimulation,
} from "./mod.ts";

Deno.test("runHostSimulation keeps safety and liveness for 8 seeds of 3 real hosts", async () => {
  for (let seed = 1; seed <= 8; seed++) {
    const result = await runHostSimulation(hostSimOptionsFromSeed(seed));
    assert.ok(result.history.length >= 1, `seed ${seed} applied nothing`);
  }
});

Deno.test("runHostSimulation replays a seed identically", async () => {
  const options = hostSimOptionsFromSeed(3, { crashRate: 0.08 });
  const first = await runHostSimulation(options);
  assert.ok(first.crashes > 0, "the seed should crash a host");
  assert.deepEqual(await runHostSimulation(options), first);
});

Deno.test("runHostSimulation reports the seed and replay command of a failure", async () => {
  // A liveness budget that has run out before healing completes fails every seed.
  const options = hostSimOptionsFromSeed(11, { livenessMs: -1 });
  await assert.rejects(
    () => runHostSimulation(options),
    (e: unknown) => {
      assert.ok(e instanceof HostSimFailure);
      assert.match(e.message, /^Host simulation seed 11 failed/);
      assert.ok(e.message.includes(hostReplayCommand(options)));
      assert.ok(e.trace.length > 0);
      return true;
    },
  );
});
