import type { Rng } from "../core/mod.ts";

/**
 * Mulberry32: the production election-timeout randomness. Seeded from the
 * OS per group so that replicas of a group do not time out in lockstep.
 */
export class Mulberry32 implements Rng {
  #state: number;

  constructor(seed: number = crypto.getRandomValues(new Uint32Array(1))[0]!) {
    this.#state = seed >>> 0;
  }

  nextInt(bound: number): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    const u = ((t ^ (t >>> 14)) >>> 0) / 4294967296;
    return Math.floor(u * bound);
  }
}
