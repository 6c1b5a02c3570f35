/**
 * What a topic is to the handlers (name, id, partition count, configs) and
 * the rules a new one must follow; the topics themselves live in the
 * controller group's replicated state.
 */
import { ErrorCode } from "../protocol/mod.ts";
import { OFFSETS_TOPIC } from "./groups/offsets_log.ts";
import { TXN_STATE_TOPIC } from "./transactions/txn_records.ts";

/**
 * The topics the coordinators keep their state in: made by the broker,
 * never written by clients nor deleted.
 */
export const INTERNAL_TOPICS: ReadonlySet<string> = new Set([
  OFFSETS_TOPIC,
  TXN_STATE_TOPIC,
]);

export interface TopicInfo {
  readonly name: string;
  /** 32 lowercase hex chars, as the protocol codecs carry uuids. */
  readonly topicId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

export class TopicError extends Error {
  override name = "TopicError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

const LEGAL_NAME = /^[a-zA-Z0-9._-]+$/;
const MAX_NAME_LENGTH = 249;
export const MAX_PARTITIONS = 10_000;

/** Throws TopicError(INVALID_TOPIC_EXCEPTION) naming what is wrong. */
export function validateTopicName(name: string): void {
  const bad = (why: string) => {
    throw new TopicError(
      ErrorCode.INVALID_TOPIC_EXCEPTION,
      `Topic name "${name}" is invalid: ${why}`,
    );
  };
  if (name.length === 0) bad("it is empty");
  if (name === "." || name === "..") bad("it cannot be '.' or '..'");
  if (name.length > MAX_NAME_LENGTH) {
    bad(`it is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (!LEGAL_NAME.test(name)) {
    bad("only ASCII letters, digits, '.', '_' and '-' are allowed");
  }
}
