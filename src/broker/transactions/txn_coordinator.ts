/**
 * The transaction coordinator: InitProducerId with a transactional id,
 * AddPartitionsToTxn, AddOffsetsToTxn and EndTxn, for the transactional
 * ids that hash to a `__transaction_state` partition this broker leads, as
 * the group coordinator serves the groups of its `__consumer_offsets`
 * partitions (and through the same kind of log).
 *
 * The state of each id lives in that partition: a change is written first
 * and taken as current only once durable, and a partition's ids are read
 * back from its log when this broker takes it over. While a change of an id
 * is in flight, or its markers are being written, other requests for it are
 * answered CONCURRENT_TRANSACTIONS, which clients retry. EndTxn writes
 * PrepareCommit or PrepareAbort, then a marker into every partition of the
 * transaction, then CompleteCommit or CompleteAbort; once the Prepare state
 * is durable the outcome is decided, so markers that cannot be written yet
 * are retried until they are (or another broker takes over the partition,
 * and finishes the transaction when it loads it).
 */
import { ErrorCode } from "../../protocol/mod.ts";
import { partitionForGroup, type Timers } from "../groups/coordinator.ts";
import {
  OFFSETS_TOPIC,
  type OffsetsLog,
  OffsetsLogError,
} from "../groups/offsets_log.ts";
import type { ProducerIdSource } from "../producers/producer_ids.ts";
import { encodeMarkerBatch } from "./marker_batch.ts";
import type { MarkerWriter } from "./txn_markers.ts";
import {
  abortFenced,
  addPartitions,
  type ChangeDecision,
  completeTxn,
  endTxn,
  fenceProducerEpoch,
  initProducerId,
  isOpen,
  isTimedOut,
  mergePartitions,
  newTxn,
  preparedResult,
  rotateProducerId,
  type TxnResult,
} from "./txn_metadata.ts";
import {
  decodeTxnKey,
  decodeTxnValue,
  encodeTxnKey,
  encodeTxnValue,
  type StoredTxn,
  TXN_STATE_TOPIC,
  txnTombstone,
  type TxnTopicPartitions,
} from "./txn_records.ts";

export { TXN_STATE_TOPIC };

/** How long a marker that could not be written waits for its next try. */
const MARKER_RETRY_MS = 500;

export interface TxnCoordinatorOptions {
  /** The log of TXN_STATE_TOPIC. */
  log: OffsetsLog;
  markers: MarkerWriter;
  producerIds: ProducerIdSource;
  timers: Timers;
  /** Kafka's transaction.max.timeout.ms: longer timeouts are refused. */
  maxTimeoutMs: number;
  /**
   * Transactions open at once on this broker (transactions.max_open) and
   * partitions in one transaction (transactions.max_partitions): past
   * either, AddPartitionsToTxn is refused with POLICY_VIOLATION.
   */
  limits: { maxOpen: number; maxPartitions: number };
  /**
   * Kafka's transactional.id.expiration.ms: an id with no open transaction
   * and no change for this long is forgotten.
   */
  idExpirationMs: number;
  /** The `__consumer_offsets` partition of a group (AddOffsetsToTxn). */
  offsetsPartitionFor(groupId: string): number;
  /**
   * The leader epoch of a state partition, which its markers carry so a
   * partition can tell a deposed coordinator's markers (Kafka's
   * coordinator epoch).
   */
  coordinatorEpoch(partition: number): number;
  /** Whether this broker leads a state partition. Absent: always (tests). */
  owns?(partition: number): boolean;
  warn(message: string): void;
}

/** A request naming the producer that holds a transactional id. */
export interface TxnRequest {
  readonly transactionalId: string;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

export interface InitAnswer {
  readonly errorCode: number;
  readonly producerId: bigint;
  readonly producerEpoch: number;
}

function initError(errorCode: number): InitAnswer {
  return { errorCode, producerId: -1n, producerEpoch: -1 };
}

/** DescribeTransactions of one id: its state, or why there is none. */
export type TxnDescription =
  | { readonly errorCode: 0; readonly txn: StoredTxn }
  | { readonly errorCode: number; readonly txn: null };

/** ListTransactions' filters; an empty set or a negative duration: any. */
export interface TxnFilter {
  readonly states: ReadonlySet<string>;
  readonly producerIds: ReadonlySet<bigint>;
  /** Only transactions open for longer than this. */
  readonly durationMs: number;
}

interface TxnPartition {
  readonly topic: string;
  readonly index: number;
}

export class TxnCoordinator {
  readonly #opts: TxnCoordinatorOptions;
  readonly #txns = new Map<string, StoredTxn>();
  /** Ids with a write or markers in flight. */
  readonly #busy = new Set<string>();
  /**
   * Loaded partitions, each with the number of its load: a write begun
   * under an earlier load (before this broker lost and regained the
   * partition) must not change what the new load read back.
   */
  readonly #loads = new Map<number, number>();
  #loadCount = 0;
  /** Marker retries waiting on their timer, by transactional id. */
  readonly #retries = new Map<string, number>();
  /** The partitions of a prepared transaction still without its marker. */
  readonly #unmarked = new Map<string, readonly TxnPartition[]>();
  /** How many of #txns are open, plus the openings being written. */
  #open = 0;
  #opening = 0;
  readonly #ended = { commit: 0, abort: 0 };

  constructor(opts: TxnCoordinatorOptions) {
    this.#opts = opts;
  }

  /** Kafka's: the id's Java hash code modulo the state partitions. */
  partitionFor(transactionalId: string): number {
    return partitionForGroup(transactionalId, this.#opts.log.partitionCount);
  }

  /** What /metrics shows of this broker's transactions. */
  stats(): {
    ids: number;
    open: number;
    ended: Readonly<Record<TxnResult, number>>;
  } {
    return { ids: this.#txns.size, open: this.#open, ended: this.#ended };
  }

  /** The state this broker holds for an id, once durable. */
  state(transactionalId: string): StoredTxn | undefined {
    return this.#txns.get(transactionalId);
  }

  /**
   * DescribeTransactions: an id's durable state; while its markers are
   * being written, its partitions are those still without one (as Kafka
   * reports them).
   */
  describe(transactionalId: string): TxnDescription {
    const away = this.#unavailable(transactionalId);
    if (away !== null) return { errorCode: away, txn: null };
    const txn = this.#txns.get(transactionalId);
    if (txn === undefined) {
      return { errorCode: ErrorCode.TRANSACTIONAL_ID_NOT_FOUND, txn: null };
    }
    const unmarked = this.#unmarked.get(transactionalId);
    if (unmarked === undefined) return { errorCode: ErrorCode.NONE, txn };
    const partitions = mergePartitions(
      [],
      unmarked.map((p) => ({ topic: p.topic, partitions: [p.index] })),
    );
    return { errorCode: ErrorCode.NONE, txn: { ...txn, partitions } };
  }

  /**
   * ListTransactions: the ids this broker coordinates that pass `filter`,
   * or COORDINATOR_LOAD_IN_PROGRESS while one of its state partitions is
   * still being read back, since the answer would miss its ids.
   */
  list(filter: TxnFilter): {
    errorCode: number;
    transactions: { transactionalId: string; txn: StoredTxn }[];
  } {
    const { owns } = this.#opts;
    for (let p = 0; p < this.#opts.log.partitionCount; p++) {
      if (owns !== undefined && owns(p) && !this.#loads.has(p)) {
        return {
          errorCode: ErrorCode.COORDINATOR_LOAD_IN_PROGRESS,
          transactions: [],
        };
      }
    }
    const nowMs = this.#nowMs();
    const passes = (txn: StoredTxn) =>
      (filter.states.size === 0 || filter.states.has(txn.state)) &&
      (filter.producerIds.size === 0 ||
        filter.producerIds.has(txn.producerId)) &&
      (filter.durationMs < 0 ||
        (isOpen(txn) &&
          nowMs - txn.startTimestampMs > BigInt(filter.durationMs)));
    return {
      errorCode: ErrorCode.NONE,
      transactions: [...this.#txns]
        .filter(([id, txn]) => passes(txn) && this.#unavailable(id) === null)
        .map(([transactionalId, txn]) => ({ transactionalId, txn })),
    };
  }

  #unavailable(transactionalId: string): number | null {
    const partition = this.partitionFor(transactionalId);
    if (this.#opts.owns !== undefined && !this.#opts.owns(partition)) {
      return ErrorCode.NOT_COORDINATOR;
    }
    return this.#loads.has(partition)
      ? null
      : ErrorCode.COORDINATOR_LOAD_IN_PROGRESS;
  }

  #nowMs(): bigint {
    return BigInt(this.#opts.timers.now());
  }

  /**
   * Reads one state partition back (latest record per id wins) and
   * finishes the transactions its previous coordinator had decided but
   * not completed.
   */
  load(partition: number): void {
    const latest = new Map<string, StoredTxn>();
    for (const entry of this.#opts.log.read(partition)) {
      if (entry.kind !== "record") continue;
      const { record } = entry;
      if (record.key === null) continue;
      const id = decodeTxnKey(record.key);
      if (record.value === null) latest.delete(id);
      else latest.set(id, decodeTxnValue(record.value));
    }
    this.#loads.set(partition, ++this.#loadCount);
    for (const [id, txn] of latest) {
      this.#put(id, txn);
      if (txn.state === "PrepareCommit" || txn.state === "PrepareAbort") {
        this.#busy.add(id);
        this.#finish(id, txn).catch((err) =>
          this.#opts.warn(`finishing the transaction of "${id}": ${err}`)
        );
      }
    }
  }

  /** Forgets one state partition's ids (this broker stopped leading it). */
  unload(partition: number): void {
    this.#loads.delete(partition);
    for (const id of [...this.#txns.keys()]) {
      if (this.partitionFor(id) !== partition) continue;
      this.#put(id, null);
      this.#busy.delete(id);
      this.#unmarked.delete(id);
      this.#cancelRetry(id);
    }
  }

  async initProducerId(req: {
    transactionalId: string;
    timeoutMs: number;
    /** The producer's id and epoch (KIP-360), null for a new producer. */
    expected: { producerId: bigint; producerEpoch: number } | null;
  }): Promise<InitAnswer> {
    const id = req.transactionalId;
    if (id === "") return initError(ErrorCode.INVALID_REQUEST);
    if (req.timeoutMs <= 0 || req.timeoutMs > this.#opts.maxTimeoutMs) {
      return initError(ErrorCode.INVALID_TRANSACTION_TIMEOUT);
    }
    const away = this.#unavailable(id);
    if (away !== null) return initError(away);
    let txn = this.#txns.get(id);
    if (txn === undefined) {
      const producerId = await this.#allocate();
      if (producerId === null) {
        return initError(ErrorCode.COORDINATOR_NOT_AVAILABLE);
      }
      const gone = this.#unavailable(id);
      if (gone !== null) return initError(gone);
      txn = this.#txns.get(id) ??
        newTxn({ producerId, timeoutMs: req.timeoutMs, nowMs: this.#nowMs() });
    }
    const decision = initProducerId(txn, {
      timeoutMs: req.timeoutMs,
      expected: req.expected,
      nowMs: this.#nowMs(),
      pending: this.#busy.has(id),
    });
    if (decision.kind === "refused") return initError(decision.errorCode);
    this.#busy.add(id);
    if (decision.kind === "fence") {
      // The producer retries once the open transaction is aborted.
      const errorCode = await this.#prepare(
        id,
        abortFenced(decision.next, this.#nowMs()),
      );
      return initError(
        errorCode === ErrorCode.NONE
          ? ErrorCode.CONCURRENT_TRANSACTIONS
          : errorCode,
      );
    }
    let next = decision.kind === "write" ? decision.next : null;
    if (next === null) {
      const producerId = await this.#allocate();
      if (producerId === null) {
        this.#busy.delete(id);
        return initError(ErrorCode.COORDINATOR_NOT_AVAILABLE);
      }
      next = rotateProducerId(txn, {
        producerId,
        timeoutMs: req.timeoutMs,
        nowMs: this.#nowMs(),
        retriable: req.expected !== null,
      });
    }
    const errorCode = await this.#change(id, next);
    return errorCode === ErrorCode.NONE
      ? {
        errorCode,
        producerId: next.producerId,
        producerEpoch: next.producerEpoch,
      }
      : initError(errorCode);
  }

  /** AddPartitionsToTxn: one error code for all the partitions named. */
  async addPartitions(
    req: TxnRequest & { partitions: readonly TxnTopicPartitions[] },
  ): Promise<number> {
    let opens = false;
    return await this.#decide(req, (txn, pending) => {
      const decision = addPartitions(txn, {
        producerId: req.producerId,
        producerEpoch: req.producerEpoch,
        partitions: req.partitions,
        nowMs: this.#nowMs(),
        pending,
      });
      if (decision.kind !== "write") return decision;
      const over = this.#overLimit(req.transactionalId, txn, decision.next);
      if (over !== null) {
        this.#opts.warn(over);
        return { kind: "refused", errorCode: ErrorCode.POLICY_VIOLATION };
      }
      opens = !isOpen(txn);
      return decision;
    }, async (id, next) => {
      // Counted from the decision on, so concurrent openings cannot all
      // pass the limit before any is written.
      if (opens) this.#opening++;
      try {
        return await this.#change(id, next);
      } finally {
        if (opens) this.#opening--;
      }
    });
  }

  /**
   * AddOffsetsToTxn: the group's offsets partition joins the transaction,
   * so that its TxnOffsetCommit records get the transaction's marker.
   */
  addOffsets(req: TxnRequest & { groupId: string }): Promise<number> {
    return this.addPartitions({
      ...req,
      partitions: [{
        topic: OFFSETS_TOPIC,
        partitions: [this.#opts.offsetsPartitionFor(req.groupId)],
      }],
    });
  }

  /**
   * EndTxn: answers once the outcome is durable and its markers had a
   * first try.
   */
  async endTxn(req: TxnRequest & { result: TxnResult }): Promise<number> {
    return await this.#decide(req, (txn, pending) =>
      endTxn(txn, {
        producerId: req.producerId,
        producerEpoch: req.producerEpoch,
        result: req.result,
        nowMs: this.#nowMs(),
        pending,
      }), (id, next) => this.#prepare(id, next));
  }

  /**
   * What AddPartitionsToTxn and EndTxn share: find the id's transaction
   * here, let the state machine decide, and carry out a change with `act`
   * while the id is busy.
   */
  async #decide(
    req: TxnRequest,
    decide: (txn: StoredTxn, pending: boolean) => ChangeDecision,
    act: (id: string, next: StoredTxn) => Promise<number>,
  ): Promise<number> {
    const id = req.transactionalId;
    if (id === "") return ErrorCode.INVALID_REQUEST;
    const away = this.#unavailable(id);
    if (away !== null) return away;
    const txn = this.#txns.get(id);
    if (txn === undefined) return ErrorCode.INVALID_PRODUCER_ID_MAPPING;
    const decision = decide(txn, this.#busy.has(id));
    if (decision.kind === "refused") return decision.errorCode;
    if (decision.kind === "done") return ErrorCode.NONE;
    this.#busy.add(id);
    return await act(id, decision.next);
  }

  /**
   * Aborts the open transactions past their timeout, fencing their
   * producers first so that a producer that merely stalled cannot go on
   * writing into the aborted transaction. Answers how many it aborted.
   */
  async abortTimedOut(): Promise<number> {
    const nowMs = this.#nowMs();
    const due = [...this.#txns].filter(([id, txn]) =>
      !this.#busy.has(id) && isTimedOut(txn, nowMs)
    );
    let aborted = 0;
    for (const [id, txn] of due) {
      this.#busy.add(id);
      const prepared = abortFenced(fenceProducerEpoch(txn, nowMs), nowMs);
      const errorCode = await this.#prepare(id, prepared);
      if (errorCode === ErrorCode.NONE) aborted++;
      else this.#opts.warn(`aborting timed-out "${id}" failed: ${errorCode}`);
    }
    return aborted;
  }

  /**
   * Forgets the ids idle past idExpirationMs with no transaction open,
   * writing a tombstone for each so that compaction drops them from the
   * state partition too. Answers how many it forgot.
   */
  async expireIds(): Promise<number> {
    const cutoff = this.#nowMs() - BigInt(this.#opts.idExpirationMs);
    const due = [...this.#txns].filter(([, txn]) =>
      !isOpen(txn) && txn.lastUpdateTimestampMs <= cutoff
    );
    let expired = 0;
    for (const [id, txn] of due) {
      // A producer may have come back while earlier tombstones were written.
      if (this.#busy.has(id) || this.#txns.get(id) !== txn) continue;
      this.#busy.add(id);
      const errorCode = await this.#change(id, null);
      if (errorCode === ErrorCode.NONE) expired++;
    }
    return expired;
  }

  /** Stops every marker retry (broker shutdown). */
  close(): void {
    for (const id of [...this.#retries.keys()]) this.#cancelRetry(id);
  }

  async #allocate(): Promise<bigint | null> {
    try {
      return await this.#opts.producerIds.next();
    } catch (err) {
      // In a cluster ids come from the controller, which may be electing.
      this.#opts.warn(`no producer id to hand out: ${err}`);
      return null;
    }
  }

  /**
   * Writes an id's next state (null: forgets it) and takes it as current
   * once durable, unless the partition was unloaded meanwhile. The caller
   * marked the id busy.
   */
  async #write(id: string, next: StoredTxn | null): Promise<number> {
    const partition = this.partitionFor(id);
    const load = this.#loads.get(partition);
    try {
      await this.#opts.log.append(partition, [
        next === null
          ? txnTombstone(id)
          : { key: encodeTxnKey(id), value: encodeTxnValue(next) },
      ]);
    } catch (err) {
      if (!(err instanceof OffsetsLogError)) throw err;
      return ErrorCode.COORDINATOR_NOT_AVAILABLE;
    }
    if (this.#loads.get(partition) !== load) return ErrorCode.NOT_COORDINATOR;
    this.#put(id, next);
    return ErrorCode.NONE;
  }

  /** Sets (or with null forgets) an id's state, counting open ones. */
  #put(id: string, txn: StoredTxn | null): void {
    const before = this.#txns.get(id);
    if (before !== undefined && isOpen(before)) this.#open--;
    if (txn === null) {
      this.#txns.delete(id);
      return;
    }
    if (isOpen(txn)) this.#open++;
    this.#txns.set(id, txn);
  }

  /** The limit an addition to `txn` making it `next` would pass, if any. */
  #overLimit(id: string, txn: StoredTxn, next: StoredTxn): string | null {
    const { maxOpen, maxPartitions } = this.#opts.limits;
    const count = next.partitions.reduce((n, t) => n + t.partitions.length, 0);
    if (count > maxPartitions) {
      return `"${id}" would have ${count} partitions in one transaction, more than transactions.max_partitions (${maxPartitions})`;
    }
    if (!isOpen(txn) && this.#open + this.#opening >= maxOpen) {
      return `"${id}" cannot begin a transaction: ${maxOpen} are open on this broker (transactions.max_open)`;
    }
    return null;
  }

  async #change(id: string, next: StoredTxn | null): Promise<number> {
    try {
      return await this.#write(id, next);
    } finally {
      this.#busy.delete(id);
    }
  }

  /** Writes a PrepareCommit or PrepareAbort, then goes on to its markers. */
  async #prepare(id: string, prepared: StoredTxn): Promise<number> {
    const errorCode = await this.#write(id, prepared);
    if (errorCode !== ErrorCode.NONE) {
      this.#busy.delete(id);
      return errorCode;
    }
    await this.#finish(id, prepared);
    return ErrorCode.NONE;
  }

  /**
   * Writes the markers of a prepared transaction, then its completion; the
   * id stays busy until then. Resolves after the first try; partitions
   * whose marker failed are tried again on a timer, until done or until
   * the state partition is unloaded.
   */
  async #finish(id: string, prepared: StoredTxn): Promise<void> {
    const partition = this.partitionFor(id);
    const load = this.#loads.get(partition);
    let remaining: readonly TxnPartition[] = prepared.partitions.flatMap((
      t,
    ) => t.partitions.map((index) => ({ topic: t.topic, index })));
    this.#unmarked.set(id, remaining);
    const attempt = async (): Promise<void> => {
      const marker = encodeMarkerBatch({
        producerId: prepared.producerId,
        producerEpoch: prepared.producerEpoch,
        result: preparedResult(prepared),
        coordinatorEpoch: this.#opts.coordinatorEpoch(partition),
      }, { timestampMs: this.#nowMs() });
      const codes = await Promise.all(
        remaining.map((p) =>
          this.#opts.markers.write(p.topic, p.index, marker)
        ),
      );
      if (this.#loads.get(partition) !== load) return;
      // A deleted partition has no transaction left to end.
      remaining = remaining.filter((_, i) =>
        codes[i] !== ErrorCode.NONE &&
        codes[i] !== ErrorCode.UNKNOWN_TOPIC_OR_PARTITION
      );
      this.#unmarked.set(id, remaining);
      if (remaining.length === 0) {
        const errorCode = await this.#write(
          id,
          completeTxn(prepared, this.#nowMs()),
        );
        if (errorCode === ErrorCode.NONE) {
          this.#ended[preparedResult(prepared)]++;
          this.#unmarked.delete(id);
          this.#busy.delete(id);
          return;
        }
        if (this.#loads.get(partition) !== load) return;
      }
      this.#retries.set(
        id,
        this.#opts.timers.set(() => {
          this.#retries.delete(id);
          attempt().catch((err) =>
            this.#opts.warn(`finishing the transaction of "${id}": ${err}`)
          );
        }, MARKER_RETRY_MS),
      );
    };
    await attempt();
  }

  #cancelRetry(id: string): void {
    const timer = this.#retries.get(id);
    if (timer === undefined) return;
    this.#opts.timers.clear(timer);
    this.#retries.delete(id);
  }
}
