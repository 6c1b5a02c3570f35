import type { NodeId } from "../core/mod.ts";
import type { ReadyEffects, SimReplica } from "./replica.ts";

/** A safety property broken in a simulation. */
export class SimViolationError extends Error {
  override name = "SimViolationError";
}

const decoder = new TextDecoder();

interface LeaderMark {
  term: number;
  lastIndex: number;
  lastTerm: number;
}

/** Per-group record of what every replica has shown so far. */
class GroupHistory {
  /** term → leader id (election safety). */
  leaders = new Map<number, NodeId>();
  /** "index:term" → what that entry is (log matching). */
  entries = new Map<string, string>();
  /** index → "term:data" of committed entries (leader completeness). */
  committed = new Map<number, string>();
  /** The one applied history every replica's must be a prefix of. */
  canonical: string[] = [];
  canonicalPosition = new Map<string, number>();
  /** node → leader mark in its current term (leader append-only). */
  leaderMarks = new Map<NodeId, LeaderMark>();
  /** node → commit index seen since its last restart. */
  commits = new Map<NodeId, number>();
  /** Highest index seen committed anywhere. */
  commitIndexMax = 0;
  /** read context → commitIndexMax when the read was issued. */
  reads = new Map<string, number>();
}

/**
 * Checks Raft's safety properties incrementally, after each Ready a replica
 * processes: election safety, leader append-only, log matching, leader
 * completeness, state-machine safety (one canonical applied history, each
 * payload once), commit monotonicity and linearizable ReadIndex answers.
 */
export class SafetyChecker {
  readonly #groups = new Map<number, GroupHistory>();

  #group(group: number): GroupHistory {
    let h = this.#groups.get(group);
    if (h === undefined) {
      h = new GroupHistory();
      this.#groups.set(group, h);
    }
    return h;
  }

  /** The canonical applied history of a group. */
  canonical(group: number): readonly string[] {
    return this.#group(group).canonical;
  }

  /**
   * Records a ReadIndex request: its answer must be at least every index
   * known committed now (linearizability).
   */
  onReadIssued(group: number, context: string): void {
    const h = this.#group(group);
    h.reads.set(context, h.commitIndexMax);
  }

  /** A restart loses volatile commit knowledge legitimately. */
  onRestart(replica: SimReplica): void {
    this.#group(replica.group).commits.delete(replica.id);
    this.#group(replica.group).leaderMarks.delete(replica.id);
  }

  onReady(replica: SimReplica, effects: ReadyEffects): void {
    const h = this.#group(replica.group);
    const where = `group ${replica.group} node ${replica.id}`;
    const status = replica.node.status();
    const { term, commit } = status.hardState;
    const storage = replica.storage;
    const termAt = (index: number): number | null => {
      if (index < storage.firstIndex() - 1 || index > storage.lastIndex()) {
        return null;
      }
      return storage.term(index);
    };

    // Log matching: an (index, term) pair names one entry with one predecessor.
    for (const e of effects.ready.entries) {
      const key = `${e.index}:${e.term}`;
      const what = `${termAt(e.index - 1) ?? "?"}|${e.type}|${
        decoder.decode(e.data)
      }`;
      const seen = h.entries.get(key);
      if (seen === undefined) h.entries.set(key, what);
      else if (!sameEntry(seen, what)) {
        throw new SimViolationError(
          `Log matching broken at ${where}: entry ${key} is "${what}", elsewhere "${seen}"`,
        );
      }
    }

    if (status.softState.role === "leader") {
      const other = h.leaders.get(term);
      if (other !== undefined && other !== replica.id) {
        throw new SimViolationError(
          `Election safety broken in group ${replica.group}: term ${term} has leaders ${other} and ${replica.id}`,
        );
      }
      if (other === undefined) {
        h.leaders.set(term, replica.id);
        this.#checkCompleteness(h, {
          where,
          termAt,
          lastIndex: storage.lastIndex(),
        });
      }
      const mark = h.leaderMarks.get(replica.id);
      if (mark !== undefined && mark.term === term) {
        const t = termAt(mark.lastIndex);
        if (
          storage.lastIndex() < mark.lastIndex ||
          (t !== null && t !== mark.lastTerm)
        ) {
          throw new SimViolationError(
            `Leader append-only broken at ${where}: had ${mark.lastIndex}@${mark.lastTerm}, now last ${storage.lastIndex()}`,
          );
        }
      }
      h.leaderMarks.set(replica.id, {
        term,
        lastIndex: storage.lastIndex(),
        lastTerm: storage.term(storage.lastIndex()),
      });
    }

    const before = h.commits.get(replica.id) ?? 0;
    if (commit < before) {
      throw new SimViolationError(
        `Commit regressed at ${where}: ${before} → ${commit}`,
      );
    }
    h.commits.set(replica.id, commit);

    for (const e of effects.ready.committedEntries) {
      const what = `${e.term}:${e.type}:${decoder.decode(e.data)}`;
      const seen = h.committed.get(e.index);
      h.commitIndexMax = Math.max(h.commitIndexMax, e.index);
      if (seen === undefined) h.committed.set(e.index, what);
      else if (seen !== what) {
        throw new SimViolationError(
          `State machine safety broken at ${where}: index ${e.index} committed as "${what}", elsewhere "${seen}"`,
        );
      }
    }

    for (const rs of effects.ready.readStates) {
      const context = decoder.decode(rs.context);
      const floor = h.reads.get(context);
      if (floor === undefined) {
        throw new SimViolationError(`Unknown read "${context}" at ${where}`);
      }
      if (rs.index < floor) {
        throw new SimViolationError(
          `Linearizability broken at ${where}: read "${context}" at index ${rs.index}, but ${floor} was committed before it was issued`,
        );
      }
    }

    if (effects.restoredFrom !== null) {
      this.#checkApplied(h, where, replica.applied, 0);
    } else {
      const start = replica.applied.length - effects.appliedPayloads.length;
      this.#checkApplied(h, where, replica.applied, start);
    }
  }

  /** A new leader's log holds every entry committed so far. */
  #checkCompleteness(
    h: GroupHistory,
    options: {
      where: string;
      termAt: (i: number) => number | null;
      lastIndex: number;
    },
  ): void {
    for (const [index, what] of h.committed) {
      const committedTerm = Number(what.split(":")[0]);
      const t = index > options.lastIndex ? -1 : options.termAt(index);
      if (t !== null && t !== committedTerm) {
        throw new SimViolationError(
          `Leader completeness broken at ${options.where}: committed ${index}@${committedTerm} missing (has ${t})`,
        );
      }
    }
  }

  /** Applied payloads from `start` on must extend the canonical history, each once. */
  #checkApplied(
    h: GroupHistory,
    where: string,
    applied: readonly string[],
    start: number,
  ): void {
    for (let p = start; p < applied.length; p++) {
      const payload = applied[p]!;
      const expected = h.canonical[p];
      if (expected === undefined) {
        const earlier = h.canonicalPosition.get(payload);
        if (earlier !== undefined) {
          throw new SimViolationError(
            `State machine safety broken at ${where}: "${payload}" applied at ${p} and ${earlier}`,
          );
        }
        h.canonical.push(payload);
        h.canonicalPosition.set(payload, p);
      } else if (expected !== payload) {
        throw new SimViolationError(
          `State machine safety broken at ${where}: applied "${payload}" at ${p}, canonical has "${expected}"`,
        );
      }
    }
  }
}

/** The predecessor's term may be unknown ("?") on a replica that compacted it. */
function sameEntry(a: string, b: string): boolean {
  if (a === b) return true;
  const [pa, ...ra] = a.split("|");
  const [pb, ...rb] = b.split("|");
  return (pa === "?" || pb === "?") && ra.join("|") === rb.join("|");
}
