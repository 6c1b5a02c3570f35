import {
  type BrokerInfo,
  checkBrokerInfo,
  copyBrokerInfo,
  DiscoveryStateError,
} from "./types.ts";

/**
 * The calling broker's own registration, with the ordering rules every
 * implementation shares: register before update, one node id per
 * Discovery, nothing after close.
 */
export class SelfSlot {
  #self: BrokerInfo | undefined;
  #closed = false;

  get current(): BrokerInfo | undefined {
    return this.#self;
  }

  get closed(): boolean {
    return this.#closed;
  }

  /** Registering again under the same id acts as an update. */
  register(self: BrokerInfo): BrokerInfo {
    this.checkOpen("register");
    checkBrokerInfo(self);
    if (this.#self !== undefined && this.#self.nodeId !== self.nodeId) {
      throw new DiscoveryStateError(
        `Cannot register node ${self.nodeId}: this discovery already registered node ${this.#self.nodeId}`,
      );
    }
    this.#self = copyBrokerInfo(self);
    return this.#self;
  }

  update(self: BrokerInfo): BrokerInfo {
    this.checkOpen("update");
    if (this.#self === undefined) {
      throw new DiscoveryStateError(
        `Cannot update node ${self.nodeId}: it is not registered`,
      );
    }
    return this.register(self);
  }

  /** The registration that was dropped, if there was one. */
  deregister(): BrokerInfo | undefined {
    const self = this.#self;
    this.#self = undefined;
    return self;
  }

  close(): void {
    this.#closed = true;
  }

  checkOpen(action: string): void {
    if (this.#closed) {
      throw new DiscoveryStateError(`Cannot ${action}: discovery is closed`);
    }
  }
}

/** Runs a synchronous step, turning a throw into a rejection as a remote call would. */
export function settled<T>(step: () => T): Promise<T> {
  try {
    return Promise.resolve(step());
  } catch (err) {
    return Promise.reject(err);
  }
}
