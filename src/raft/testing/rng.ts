import type { Rng } from "../core/mod.ts";

/**
 * Mulberry32: a tiny seeded PRNG. One instance drives a whole simulation, so
 * one seed replays it exactly.
 */
export class SeededRng implements Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  #next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [0, bound). */
  nextInt(bound: number): number {
    return Math.floor(this.#next() * bound);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.#next() < p;
  }

  /** An integer in [lo, hi]. */
  between(lo: number, hi: number): number {
    return lo + this.nextInt(hi - lo + 1);
  }

  pick<T>(items: readonly T[]): T {
    const item = items[this.nextInt(items.length)];
    if (item === undefined) {
      throw new RangeError("Cannot pick from an empty list");
    }
    return item;
  }

  /** An independent stream derived from this one (e.g. one per replica). */
  fork(): SeededRng {
    return new SeededRng(this.nextInt(4294967296));
  }
}
