/**
 * Deterministic simulation of Raft groups for tests and `deno task sim`:
 * a seeded network with drops, delays, duplicates, reordering and partitions,
 * crash/restart with simulated durable storage, and safety/liveness checkers.
 * A hand-driven TestCluster serves scenario tests.
 *
 * Never imported by production code.
 */
export { SafetyChecker, SimViolationError } from "./checker.ts";
export { TestCluster, type TestClusterOptions } from "./cluster.ts";
export {
  hostReplayCommand,
  HostSimFailure,
  type HostSimOptions,
  hostSimOptionsFromSeed,
  type HostSimResult,
  runHostSimulation,
} from "./host_sim.ts";
export { encodePayload, type ReadyEffects, SimReplica } from "./replica.ts";
export { SeededRng } from "./rng.ts";
export { SimClock } from "./sim_clock.ts";
export { until } from "./until.ts";
export {
  replayCommand,
  runSimulation,
  SimFailure,
  type SimOptions,
  simOptionsFromSeed,
  type SimResult,
} from "./sim.ts";
