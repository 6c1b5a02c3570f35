import {
  type ConfState,
  decodeConfChange,
  type Entry,
  EntryType,
  type MemoryStorage,
  type Message,
  type NodeId,
  type RaftOptions,
  RawNode,
  type ReadState,
  type Ready,
} from "../core/mod.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

export function encodePayload(text: string): Uint8Array {
  return encoder.encode(text);
}

/** Everything a replica did in one Ready that the checkers look at. */
export interface ReadyEffects {
  ready: Ready;
  /** Normal entries applied, as payload strings, in order. */
  appliedPayloads: string[];
  /** Set when a snapshot replaced the state machine. */
  restoredFrom: number | null;
}

/**
 * One replica of one group on one simulated node: a RawNode, its "disk" and a
 * toy state machine that appends each payload to a list.
 *
 * The disk is two MemoryStorages: `storage` is what the process sees,
 * `#durable` what survives a crash. A Ready is synced (durable := storage)
 * only when mustSync says so, which is how a wrong mustSync gets caught,
 * and only at finishReady(), so a crash can fall between a leader's early
 * appends and its own sync.
 */
export class SimReplica {
  readonly id: NodeId;
  readonly group: number;
  storage: MemoryStorage;
  node: RawNode;
  /** The state machine: applied payloads, in order. */
  applied: string[] = [];
  appliedIndex = 0;
  confState: ConfState;
  readStates: ReadState[] = [];
  #durable: MemoryStorage;
  /** Taken by startReady(), not yet finished. */
  #pending: Ready | null = null;
  readonly #options: Omit<RaftOptions, "applied">;

  constructor(
    storage: MemoryStorage,
    options: { group: number; raft: Omit<RaftOptions, "applied"> },
  ) {
    this.id = options.raft.id;
    this.group = options.group;
    this.#options = options.raft;
    this.storage = storage;
    this.#durable = storage.clone();
    this.confState = storage.initialState().confState;
    this.node = new RawNode(storage, options.raft);
  }

  /**
   * Takes a Ready and writes it to the volatile disk; the caller may send
   * its earlyMessages now. Until finishReady(), a crash loses the write.
   * Returns null when there is nothing to do.
   */
  startReady(): Ready | null {
    if (this.#pending !== null || !this.node.hasReady()) return null;
    const rd = this.node.ready();
    if (rd.snapshot !== null) this.storage.applySnapshot(rd.snapshot);
    this.storage.append(rd.entries);
    if (rd.hardState !== null) this.storage.setHardState(rd.hardState);
    this.#pending = rd;
    return rd;
  }

  /** Syncs (when mustSync) → (caller sends messages) → apply → advance. */
  finishReady(): ReadyEffects {
    const rd = this.#pending;
    if (rd === null) throw new TypeError("finishReady() without startReady()");
    this.#pending = null;
    if (rd.mustSync || rd.snapshot !== null) {
      this.#durable = this.storage.clone();
    }
    let restoredFrom: number | null = null;
    if (rd.snapshot !== null) {
      this.#restoreStateMachine();
      restoredFrom = rd.snapshot.meta.index;
    }
    const appliedPayloads = this.#apply(rd.committedEntries);
    this.readStates.push(...rd.readStates);
    this.node.advance(rd);
    return { ready: rd, appliedPayloads, restoredFrom };
  }

  /** A Ready written and not yet synced. */
  get syncPending(): boolean {
    return this.#pending !== null;
  }

  /** startReady() and finishReady() at once: the disk is never caught mid-write. */
  processReady(): ReadyEffects | null {
    return this.startReady() === null ? null : this.finishReady();
  }

  #apply(entries: Entry[]): string[] {
    const payloads: string[] = [];
    for (const entry of entries) {
      if (entry.type === EntryType.ConfChange) {
        this.confState = this.node.applyConfChange(
          decodeConfChange(entry.data),
        );
      } else if (entry.data.byteLength > 0) {
        const payload = decoder.decode(entry.data);
        this.applied.push(payload);
        payloads.push(payload);
      }
      this.appliedIndex = entry.index;
    }
    return payloads;
  }

  #restoreStateMachine(): void {
    const snap = this.storage.snapshot();
    this.applied = snap.data.byteLength === 0
      ? []
      : JSON.parse(decoder.decode(snap.data)) as string[];
    this.appliedIndex = snap.meta.index;
    this.confState = snap.meta.confState;
  }

  /** The application's compaction: snapshot at the applied index, drop the log before it. */
  compact(): boolean {
    const index = this.appliedIndex;
    if (index <= this.storage.snapshot().meta.index) return false;
    this.storage.createSnapshot(index, {
      confState: this.confState,
      data: encodePayload(JSON.stringify(this.applied)),
    });
    this.storage.compact(index);
    this.#durable = this.storage.clone();
    return true;
  }

  /** Loses everything not synced and restarts from the durable disk. */
  crashAndRestart(): void {
    this.#pending = null;
    this.storage = this.#durable.clone();
    this.#restoreStateMachine();
    this.readStates = [];
    this.node = new RawNode(this.storage, {
      ...this.#options,
      applied: this.appliedIndex,
    });
  }

  /** Feeds a peer message, deep-copied as a real network would. */
  deliver(m: Message): void {
    this.node.step(structuredClone(m));
  }
}
