/**
 * Seed sweeps of the simulator: safety after every Ready and liveness after
 * healing, across swarms of options drawn from each seed; plus proof that
 * the checkers catch a deliberately broken rule, and that a seed replays.
 */
import assert from "node:assert/strict";
import {
  replayCommand,
  runSimulation,
  SimFailure,
  simOptionsFromSeed,
} from "./mod.ts";

function sweep(
  seeds: { start: number; count: number },
  overrides: Parameters<typeof simOptionsFromSeed>[1] = {},
): void {
  for (let seed = seeds.start; seed < seeds.start + seeds.count; seed++) {
    runSimulation(simOptionsFromSeed(seed, overrides));
  }
}

Deno.test("runSimulation keeps safety and liveness for 500 seeds of 3 nodes × 2 groups", () => {
  sweep({ start: 1, count: 500 });
});

Deno.test("runSimulation keeps safety and liveness for 40 seeds of 5 nodes × 2 groups", () => {
  sweep({ start: 10_001, count: 40 }, { nodes: 5 });
});

Deno.test("runSimulation finds the unsafe skipVoteLogCheck rule within 40 seeds", () => {
  let failure: SimFailure | null = null;
  for (let seed = 1; seed <= 40 && failure === null; seed++) {
    try {
      runSimulation(
        simOptionsFromSeed(seed, {
          unsafeTestingFaults: { skipVoteLogCheck: true },
        }),
      );
    } catch (e) {
      if (!(e instanceof SimFailure)) throw e;
      failure = e;
    }
  }
  assert.ok(failure !== null, "no violation found");
  assert.match(failure.message, /broken/);
  assert.match(failure.message, /--unsafe skipVoteLogCheck/);
  assert.ok(failure.trace.length > 0 && failure.trace.length <= 50);
});

Deno.test("runSimulation replays a seed identically", () => {
  const options = simOptionsFromSeed(77);
  assert.deepEqual(runSimulation(options), runSimulation(options));
});

Deno.test("replayCommand names seed, shape and unsafe faults", () => {
  const options = simOptionsFromSeed(5, {
    nodes: 5,
    unsafeTestingFaults: { commitPreviousTerm: true },
  });
  assert.equal(
    replayCommand(options),
    "deno task sim --seed 5 --nodes 5 --groups 2 --fault-ticks 250 --unsafe commitPreviousTerm",
  );
});
