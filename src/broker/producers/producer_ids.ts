/**
 * Producer ids for InitProducerId, handed out in blocks by the controller
 * group, so no two brokers (and no restart) ever give one id to two
 * producers.
 */
import type { Command, CommandResult } from "../controller/mod.ts";

/** Producer epochs are int16; Kafka hands out a new id when one runs out. */
export const PRODUCER_EPOCH_MAX = 32_766;

/** Where InitProducerId gets ids no producer has had before. */
export interface ProducerIdSource {
  next(): Promise<bigint>;
}

/** Whatever applies a command on the controller's leader. */
export interface ControllerCommands {
  propose(command: Command): Promise<CommandResult>;
}

const PRODUCER_ID_BLOCK = 1000;

/** Blocks of ids from the controller, one block requested at a time. */
export class ControllerProducerIds implements ProducerIdSource {
  readonly #controller: ControllerCommands;
  #next = 0n;
  #end = 0n;
  #refill: Promise<void> | null = null;

  constructor(controller: ControllerCommands) {
    this.#controller = controller;
  }

  async next(): Promise<bigint> {
    while (this.#next >= this.#end) {
      this.#refill ??= this.#allocate().finally(() => (this.#refill = null));
      await this.#refill;
    }
    return this.#next++;
  }

  async #allocate(): Promise<void> {
    const result = await this.#controller.propose({
      type: "allocateProducerIds",
      count: PRODUCER_ID_BLOCK,
    });
    if (!result.ok || result.firstProducerId === undefined) {
      throw new Error(
        `The controller handed out no producer ids: ${
          result.ok ? "no block in its answer" : result.message
        }`,
      );
    }
    this.#next = result.firstProducerId;
    this.#end = result.firstProducerId + BigInt(PRODUCER_ID_BLOCK);
  }
}
