import { assert } from "../../util/mod.ts";
import { encodeConfChange } from "./conf_change.ts";
import { RaftConfigError } from "./errors.ts";
import { newMessage, Raft } from "./raft.ts";
import type {
  ConfChange,
  ConfState,
  HardState,
  Message,
  NodeId,
  RaftOptions,
  RaftStorage,
  Ready,
  SoftState,
  Status,
} from "./types.ts";
import { EntryType, MAX_WIRE_MESSAGE_TYPE, MessageType } from "./types.ts";

/**
 * The application's handle on one Raft replica. Synchronous and pure: feed it
 * tick()/step()/propose(), then take ready(), and after persisting, sending
 * and applying it (in that order) call advance(ready).
 */
export class RawNode {
  readonly #raft: Raft;
  #prevSoftState: SoftState;
  #prevHardState: HardState;
  /** The last HardState known to be on disk (see advance). */
  #durableHardState: HardState;
  /** A Ready handed out and not yet advanced. */
  #outstanding: Ready | null = null;

  constructor(storage: RaftStorage, options: RaftOptions) {
    this.#raft = new Raft(storage, options);
    this.#prevSoftState = this.#raft.softState();
    this.#prevHardState = storage.initialState().hardState;
    this.#durableHardState = this.#prevHardState;
  }

  /** The current term: what propose() stamps on entries (status() costs more). */
  get term(): number {
    return this.#raft.term;
  }

  tick(): void {
    this.#raft.tick();
  }

  /** This node stops starting elections for good (it still votes). */
  holdCampaigns(): void {
    this.#raft.holdCampaigns();
  }

  /** Starts an election now (skipping the timeout). */
  campaign(): void {
    this.#raft.hup({ transfer: false });
  }

  /** Feeds a message from a peer, or a host report (SnapStatus, Unreachable). */
  step(m: Message): void {
    const local = m.type === MessageType.SnapStatus ||
      m.type === MessageType.Unreachable;
    if (!local && (m.type < 1 || m.type > MAX_WIRE_MESSAGE_TYPE)) {
      throw new RaftConfigError(
        `Cannot step message: type ${m.type} is not a peer message type`,
      );
    }
    this.#raft.step(m);
  }

  /**
   * Appends `data` to the leader's log and returns the entry's index.
   * Throws NotLeaderError (with leaderHint) on a non-leader.
   */
  propose(data: Uint8Array): number {
    this.#raft.propose([{ term: 0, index: 0, type: EntryType.Normal, data }]);
    return this.#raft.log.lastIndex();
  }

  /**
   * One change at a time: throws ProposalDroppedError while one is pending.
   * Returns the entry's index.
   */
  proposeConfChange(cc: ConfChange): number {
    this.#raft.step(newMessage({
      type: MessageType.Prop,
      from: this.#raft.id,
      to: this.#raft.id,
      entries: [{
        term: 0,
        index: 0,
        type: EntryType.ConfChange,
        data: encodeConfChange(cc),
      }],
    }));
    return this.#raft.log.lastIndex();
  }

  /** Call for each committed ConfChange entry, in log order, when applying it. */
  applyConfChange(cc: ConfChange): ConfState {
    return this.#raft.applyConfChange(cc);
  }

  transferLeadership(to: NodeId): void {
    this.#raft.step(newMessage({
      type: MessageType.TransferLeader,
      from: to,
      to: this.#raft.id,
    }));
  }

  /**
   * Asks for a linearizable read; a ReadState with this context appears in a
   * later Ready. Serve the read once applied ≥ its index.
   */
  readIndex(context: Uint8Array): void {
    this.#raft.step(newMessage({
      type: MessageType.ReadIndex,
      from: this.#raft.id,
      to: this.#raft.id,
      context,
    }));
  }

  /** Host report: sending a snapshot to `to` finished (or failed). */
  reportSnapshot(to: NodeId, options: { failed: boolean }): void {
    this.#raft.step(newMessage({
      type: MessageType.SnapStatus,
      from: to,
      to: this.#raft.id,
      reject: options.failed,
    }));
  }

  /** Host report: `to` could not be reached. */
  reportUnreachable(to: NodeId): void {
    this.#raft.step(newMessage({
      type: MessageType.Unreachable,
      from: to,
      to: this.#raft.id,
    }));
  }

  hasReady(): boolean {
    if (this.#outstanding !== null) return false;
    const r = this.#raft;
    return !sameSoft(r.softState(), this.#prevSoftState) ||
      !sameHard(r.hardState(), this.#prevHardState) ||
      r.messages.length > 0 || r.readStates.length > 0 ||
      r.hasUnsentProposals() ||
      r.log.unstableEntries().length > 0 ||
      r.log.unstableSnapshot() !== null || r.log.hasNextCommitted();
  }

  ready(): Ready {
    assert(this.#outstanding === null, "ready() before advance()", {
      id: this.#raft.id,
    });
    const r = this.#raft;
    r.flushProposals();
    const soft = r.softState();
    const hard = r.hardState();
    const hardChanged = !sameHard(hard, this.#prevHardState);
    // A copy: the log appends in place, and may before advance().
    const entries = r.log.unstableEntries().slice();
    const committedEntries = r.log.nextCommitted();
    const rd: Ready = {
      softState: sameSoft(soft, this.#prevSoftState) ? null : soft,
      hardState: hardChanged ? hard : null,
      readStates: r.readStates,
      entries,
      snapshot: r.log.unstableSnapshot(),
      committedEntries,
      ...splitMessages(r.messages, {
        // Only a term and vote already on disk may be spoken for early.
        termDurable: hard.term === this.#durableHardState.term &&
          hard.vote === this.#durableHardState.vote,
      }),
      // A commit-only change may be lost in a crash: it is learned again.
      mustSync: entries.length > 0 ||
        hard.term !== this.#prevHardState.term ||
        hard.vote !== this.#prevHardState.vote,
    };
    r.readStates = [];
    r.messages = [];
    const lastCommitted = committedEntries[committedEntries.length - 1];
    if (lastCommitted !== undefined) r.log.acceptApplying(lastCommitted.index);
    this.#prevSoftState = soft;
    this.#outstanding = rd;
    return rd;
  }

  /**
   * The Ready was sent and applied, and persisted unless `persisted` is
   * false: then it is written but not yet durable, and the host calls
   * persisted(rd) once it is. Until then the leader does not count its own
   * log toward a commit, and appends of a term not yet durable are not
   * early messages. A Ready with a snapshot must be persisted.
   */
  advance(rd: Ready, opts: { persisted: boolean } = { persisted: true }): void {
    assert(rd === this.#outstanding, "advance() of a Ready not handed out", {
      id: this.#raft.id,
    });
    this.#outstanding = null;
    const log = this.#raft.log;
    if (rd.hardState !== null) this.#prevHardState = rd.hardState;
    if (rd.snapshot !== null) {
      assert(opts.persisted, "advance() of a snapshot not yet durable", {
        id: this.#raft.id,
      });
      log.stableSnapshotTo(rd.snapshot.meta.index);
      log.durableTo(rd.snapshot.meta.index, rd.snapshot.meta.term);
      log.appliedTo(rd.snapshot.meta.index);
    }
    const lastEntry = rd.entries[rd.entries.length - 1];
    if (lastEntry !== undefined) {
      log.stableTo(lastEntry.index, lastEntry.term);
    }
    if (opts.persisted) this.persisted(rd);
    const lastCommitted = rd.committedEntries[rd.committedEntries.length - 1];
    if (lastCommitted !== undefined) log.appliedTo(lastCommitted.index);
  }

  /** A Ready advanced unpersisted, and every one before it, is now durable. */
  persisted(rd: Ready): void {
    if (rd.hardState !== null) this.#durableHardState = rd.hardState;
    const last = rd.entries[rd.entries.length - 1];
    if (last === undefined) return;
    this.#raft.log.durableTo(last.index, last.term);
    this.#raft.persisted(last.index, last.term);
  }

  /** On a leader: how far `id`'s log is known to match; undefined elsewhere. */
  matchIndex(id: NodeId): number | undefined {
    const r = this.#raft;
    return r.role === "leader" ? r.progressOf(id)?.match : undefined;
  }

  status(): Status {
    const r = this.#raft;
    let progress: Status["progress"] = null;
    if (r.role === "leader") {
      progress = new Map();
      for (const id of r.peers()) {
        const pr = r.progressOf(id)!;
        progress.set(id, { match: pr.match, next: pr.next, state: pr.state });
      }
    }
    return {
      id: r.id,
      hardState: r.hardState(),
      softState: r.softState(),
      applied: r.log.applied,
      lastIndex: r.log.lastIndex(),
      confState: r.confState(),
      progress,
    };
  }
}

/**
 * A leader's appends may leave before the Ready's entries are durable
 * (thesis §10.2.1): the leader counts its own copy only once persisted.
 * Everything else (acknowledgements, votes) speaks for durable state and
 * waits. Nothing goes early while the term or vote is still being written.
 */
function splitMessages(
  all: Message[],
  options: { termDurable: boolean },
): { earlyMessages: Message[]; messages: Message[] } {
  if (!options.termDurable) return { earlyMessages: [], messages: all };
  const earlyMessages: Message[] = [];
  const messages: Message[] = [];
  for (const m of all) {
    (m.type === MessageType.App ? earlyMessages : messages).push(m);
  }
  return { earlyMessages, messages };
}

function sameSoft(a: SoftState, b: SoftState): boolean {
  return a.leader === b.leader && a.role === b.role;
}

function sameHard(a: HardState, b: HardState): boolean {
  return a.term === b.term && a.vote === b.vote && a.commit === b.commit;
}
