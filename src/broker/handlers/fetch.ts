/**
 * Fetch (v4-16). Reads whole batches below the high watermark, or below the
 * last stable offset for read_committed consumers, who also get the aborted
 * transactions in what they read so they can drop their records (KIP-98);
 * honours the request's and each partition's byte limits (at least one
 * batch for the first partition with data, as KIP-74 asks), and long-polls:
 * an answer with fewer than min_bytes waits for new data or max_wait_ms,
 * whichever is first.
 */
import {
  ErrorCode,
  type FetchRequest,
  type FetchResponseInput,
  type FetchResponsePartitionsInput,
} from "../../protocol/mod.ts";
import { OffsetOutOfRangeError } from "../../storage/mod.ts";
import { countRecords, type Partition } from "../partitions.ts";
import { allows } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";
import { LeaderHints } from "./leader_hints.ts";

const EMPTY = new Uint8Array(0);
const READ_COMMITTED = 1;

interface Target {
  topic: string;
  topicId: string;
  partition: Partition | undefined;
  errorCode: number;
  currentLeader: { leaderId: number; leaderEpoch: number };
  index: number;
  fetchOffset: bigint;
  partitionMaxBytes: number;
}

function resolveTargets(
  ctx: BrokerContext,
  req: FetchRequest,
  request: RequestInfo,
  hints: LeaderHints,
): Target[] {
  const version = request.version;
  const targets: Target[] = [];
  for (const t of req.topics) {
    const info = version >= 13
      ? ctx.cluster.topicById(t.topicId)
      : ctx.cluster.topic(t.topic);
    // Unknown names are checked too, so a refusal does not tell whether the
    // topic exists; an unknown id has no name to check.
    const refused = (version < 13 || info !== undefined) &&
        !allows(ctx, request, {
          type: "topic",
          name: info?.name ?? t.topic,
          operation: "read",
        })
      ? ErrorCode.TOPIC_AUTHORIZATION_FAILED
      : null;
    const missing = version >= 13
      ? ErrorCode.UNKNOWN_TOPIC_ID
      : ErrorCode.UNKNOWN_TOPIC_OR_PARTITION;
    for (const p of t.partitions) {
      const leading = refused !== null
        ? { ok: false as const, errorCode: refused }
        : info === undefined
        ? { ok: false as const, errorCode: missing }
        : ctx.cluster.leading(info.name, p.partition);
      targets.push({
        topic: info?.name ?? t.topic,
        topicId: info?.topicId ?? t.topicId,
        partition: leading.ok ? leading.partition : undefined,
        errorCode: leading.ok ? ErrorCode.NONE : leading.errorCode,
        currentLeader: hints.currentLeader(leading),
        index: p.partition,
        fetchOffset: p.fetchOffset,
        partitionMaxBytes: p.partitionMaxBytes,
      });
    }
  }
  return targets;
}

function readAll(
  targets: Target[],
  opts: { maxBytes: number; committed: boolean },
) {
  const maxBytes = opts.maxBytes;
  let budget = maxBytes;
  let total = 0;
  let anyError = false;
  const parts = targets.map((t): FetchResponsePartitionsInput => {
    const p = t.partition;
    if (p === undefined) {
      anyError = true;
      return {
        partitionIndex: t.index,
        errorCode: t.errorCode,
        currentLeader: t.currentLeader,
        highWatermark: -1n,
        lastStableOffset: -1n,
        logStartOffset: -1n,
        records: EMPTY,
      };
    }
    const hwm = p.highWatermark;
    const lso = p.lastStableOffset;
    const end = opts.committed ? lso : hwm;
    const base = {
      partitionIndex: t.index,
      highWatermark: hwm,
      lastStableOffset: lso,
      logStartOffset: p.log.logStartOffset,
      abortedTransactions: [] as { producerId: bigint; firstOffset: bigint }[],
      preferredReadReplica: -1,
    };
    if (t.fetchOffset > hwm || t.fetchOffset < p.log.logStartOffset) {
      anyError = true;
      return {
        ...base,
        errorCode: ErrorCode.OFFSET_OUT_OF_RANGE,
        records: EMPTY,
      };
    }
    let records: Uint8Array = EMPTY;
    if (t.fetchOffset < end && (budget > 0 || total === 0)) {
      try {
        records = p.log.read(t.fetchOffset, {
          maxBytes: Math.max(0, Math.min(t.partitionMaxBytes, budget)),
          maxOffset: end,
        });
        if (opts.committed) {
          base.abortedTransactions = p.producers.abortedIn(t.fetchOffset, end)
            .map((a) => ({
              producerId: a.producerId,
              firstOffset: a.firstOffset,
            }));
        }
      } catch (err) {
        if (!(err instanceof OffsetOutOfRangeError)) throw err;
        // Retention moved the log start between the check and the read.
        anyError = true;
        return {
          ...base,
          errorCode: ErrorCode.OFFSET_OUT_OF_RANGE,
          records: EMPTY,
        };
      }
      budget -= records.length;
      total += records.length;
    }
    return { ...base, errorCode: ErrorCode.NONE, records };
  });
  return { parts, total, anyError };
}

function waitForData(
  targets: Target[],
  timeoutMs: number,
  stopping: AbortSignal,
): Promise<void> {
  return new Promise((resolve) => {
    const cancels: (() => void)[] = [];
    const done = () => {
      clearTimeout(timer);
      stopping.removeEventListener("abort", done);
      for (const cancel of cancels) cancel();
      resolve();
    };
    const timer = setTimeout(done, timeoutMs);
    stopping.addEventListener("abort", done);
    for (const t of targets) {
      if (t.partition !== undefined) cancels.push(t.partition.onData(done));
    }
  });
}

export async function handleFetch(
  ctx: BrokerContext,
  req: FetchRequest,
  request: RequestInfo,
): Promise<FetchResponseInput> {
  const version = request.version;
  const hints = new LeaderHints();
  const targets = resolveTargets(ctx, req, request, hints);
  const read = {
    maxBytes: version >= 3 ? req.maxBytes : Number.MAX_SAFE_INTEGER,
    committed: req.isolationLevel === READ_COMMITTED,
  };
  const deadline = Date.now() + req.maxWaitMs;
  let result = readAll(targets, read);
  while (
    result.total < req.minBytes && !result.anyError && !ctx.stopping.aborted
  ) {
    const left = deadline - Date.now();
    if (left <= 0) break;
    await waitForData(targets, left, ctx.stopping);
    result = readAll(targets, read);
  }
  result.parts.forEach((part, n) => {
    const p = targets[n]?.partition;
    const records = part.records;
    if (p === undefined || records === null || records.length === 0) return;
    p.traffic.bytesOut += records.length;
    p.traffic.recordsOut += countRecords(records);
  });
  // Group the per-partition answers back under their topics, in request order.
  const responses: FetchResponseInput["responses"] = [];
  let i = 0;
  for (const t of req.topics) {
    const first = t.partitions.length > 0 ? targets[i] : undefined;
    const partitions = result.parts.slice(i, i + t.partitions.length);
    i += t.partitions.length;
    responses.push({
      topic: first?.topic ?? t.topic,
      topicId: first?.topicId ?? t.topicId,
      partitions,
    });
  }
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    sessionId: 0,
    responses,
    nodeEndpoints: hints.nodeEndpoints(ctx, request.listener.name),
  };
}
