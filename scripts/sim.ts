/**
 * Runs the deterministic Raft simulator.
 *
 *   deno task sim --seed 42                 replay one seed (prints the trace on failure)
 *   deno task sim --seeds 1000 [--seed-start 1]   sweep seeds, stop at the first failure
 *   options: --nodes N --groups M --fault-ticks T
 *            --unsafe skipVoteLogCheck|commitPreviousTerm (test-only broken rules)
 *   deno task sim --host [--seed 42 | --seeds 50] [--proposals N]
 *            three real RaftHosts with WALs on disk under a simulated clock
 */
import { parseArgs } from "node:util";
import {
  HostSimFailure,
  hostSimOptionsFromSeed,
  runHostSimulation,
  runSimulation,
  SimFailure,
  type SimOptions,
  simOptionsFromSeed,
} from "../src/raft/testing/mod.ts";

const UNSAFE_FAULTS = ["skipVoteLogCheck", "commitPreviousTerm"] as const;

function nonNegativeInt(
  name: string,
  text: string | undefined,
): number | undefined {
  if (text === undefined) return undefined;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 0) {
    throw new TypeError(
      `Invalid --${name}: "${text}" is not a non-negative integer`,
    );
  }
  return n;
}

async function mainHost(
  seeds: { start: number; count: number; single: boolean },
  proposals: number | undefined,
): Promise<number> {
  const startedMs = performance.now();
  for (let seed = seeds.start; seed < seeds.start + seeds.count; seed++) {
    try {
      const result = await runHostSimulation(
        hostSimOptionsFromSeed(
          seed,
          proposals === undefined ? {} : { proposals },
        ),
      );
      if (seeds.single) {
        console.log(`host seed ${seed} ok: ${JSON.stringify(result)}`);
      }
    } catch (e) {
      if (!(e instanceof HostSimFailure)) throw e;
      console.error(e.message);
      return 1;
    }
  }
  const elapsedMs = Math.round(performance.now() - startedMs);
  console.log(
    `${seeds.count} host seed(s) from ${seeds.start} passed in ${elapsedMs} ms`,
  );
  return 0;
}

async function main(): Promise<number> {
  const { values } = parseArgs({
    args: Deno.args,
    options: {
      seed: { type: "string" },
      seeds: { type: "string" },
      "seed-start": { type: "string" },
      nodes: { type: "string" },
      groups: { type: "string" },
      "fault-ticks": { type: "string" },
      unsafe: { type: "string" },
      host: { type: "boolean" },
      proposals: { type: "string" },
    },
    strict: true,
  });
  const overrides: Partial<Omit<SimOptions, "seed">> = {};
  const nodes = nonNegativeInt("nodes", values.nodes);
  if (nodes !== undefined) overrides.nodes = nodes;
  const groups = nonNegativeInt("groups", values.groups);
  if (groups !== undefined) overrides.groups = groups;
  const faultTicks = nonNegativeInt("fault-ticks", values["fault-ticks"]);
  if (faultTicks !== undefined) overrides.faultTicks = faultTicks;
  if (values.unsafe !== undefined) {
    const fault = UNSAFE_FAULTS.find((f) => f === values.unsafe);
    if (fault === undefined) {
      throw new TypeError(
        `Invalid --unsafe: "${values.unsafe}", expected one of ${
          UNSAFE_FAULTS.join(", ")
        }`,
      );
    }
    overrides.unsafeTestingFaults = { [fault]: true };
  }

  const single = nonNegativeInt("seed", values.seed);
  const start = single ?? nonNegativeInt("seed-start", values["seed-start"]) ??
    1;
  const count = single !== undefined
    ? 1
    : nonNegativeInt("seeds", values.seeds) ?? 100;
  if (values.host === true) {
    return await mainHost(
      { start, count, single: single !== undefined },
      nonNegativeInt("proposals", values.proposals),
    );
  }
  const startedMs = performance.now();
  for (let seed = start; seed < start + count; seed++) {
    try {
      const result = runSimulation(simOptionsFromSeed(seed, overrides));
      if (single !== undefined) {
        console.log(`seed ${seed} ok: ${JSON.stringify(result)}`);
      }
    } catch (e) {
      if (!(e instanceof SimFailure)) throw e;
      console.error(e.message);
      return 1;
    }
  }
  const elapsedMs = Math.round(performance.now() - startedMs);
  console.log(`${count} seed(s) from ${start} passed in ${elapsedMs} ms`);
  return 0;
}

Deno.exit(await main());
