/**
 * Hands out producer ids for InitProducerId. Ids are reserved in blocks and
 * the end of the reserved block is persisted before any id of it is given
 * out, so a restart (even kill -9) continues past every id ever handed out
 * and never gives one to two producers.
 */
import { writeFileAtomic } from "../../storage/mod.ts";

const DEFAULT_BLOCK_SIZE = 1000n;
/** Producer epochs are int16; Kafka hands out a new id when one runs out. */
export const PRODUCER_EPOCH_MAX = 32_766;

/** Where InitProducerId gets ids no producer has had before. */
export interface ProducerIdSource {
  next(): Promise<bigint>;
}

/** A single broker's ids, reserved in blocks in its data directory. */
export class ProducerIdAllocator implements ProducerIdSource {
  readonly #file: string;
  readonly #blockSize: bigint;
  #next: bigint;
  /** Ids below this are reserved on disk. Invariant: next <= reservedEnd. */
  #reservedEnd: bigint;

  private constructor(file: string, start: bigint, blockSize: bigint) {
    this.#file = file;
    this.#blockSize = blockSize;
    this.#next = start;
    this.#reservedEnd = start;
  }

  static open(
    dataDir: string,
    options: { blockSize?: bigint } = {},
  ): ProducerIdAllocator {
    const file = `${dataDir}/producer_ids.json`;
    let start = 0n;
    try {
      const parsed = JSON.parse(Deno.readTextFileSync(file)) as {
        reservedEnd: string;
      };
      start = BigInt(parsed.reservedEnd);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    return new ProducerIdAllocator(
      file,
      start,
      options.blockSize ?? DEFAULT_BLOCK_SIZE,
    );
  }

  /** A producer id never handed out before, by this broker or an earlier run. */
  next(): Promise<bigint> {
    if (this.#next === this.#reservedEnd) {
      this.#reserve(this.#reservedEnd + this.#blockSize);
    }
    return Promise.resolve(this.#next++);
  }

  #reserve(end: bigint): void {
    writeFileAtomic(
      this.#file,
      JSON.stringify({ reservedEnd: end.toString() }),
    );
    this.#reservedEnd = end;
  }
}
