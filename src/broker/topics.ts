/**
 * The topic registry of a single broker: names, ids, partition counts and
 * topic configs, persisted in `<data_dir>/topics.json`. The cluster issue
 * replaces this with the controller group's replicated state behind the same
 * methods, so handlers never learn where metadata lives.
 */
import { writeFileAtomic } from "../storage/mod.ts";
import { newTopicId } from "./ids.ts";

export interface TopicInfo {
  readonly name: string;
  /** 32 lowercase hex chars, as the protocol codecs carry uuids. */
  readonly topicId: string;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly configs: Readonly<Record<string, string>>;
}

/** Topic configs raftq honours; anything else is refused with INVALID_CONFIG. */
export const TOPIC_CONFIG_KEYS = [
  "cleanup.policy",
  "retention.ms",
  "retention.bytes",
  "segment.bytes",
  "segment.ms",
  "max.message.bytes",
] as const;

export class TopicError extends Error {
  override name = "TopicError";
  constructor(readonly code: number, message: string) {
    super(message);
  }
}

// Kafka error codes used by the registry; the protocol module has the table.
const INVALID_TOPIC_EXCEPTION = 17;
const TOPIC_ALREADY_EXISTS = 36;
const INVALID_PARTITIONS = 37;
const INVALID_REPLICATION_FACTOR = 38;
const INVALID_CONFIG = 40;
const UNKNOWN_TOPIC_OR_PARTITION = 3;

const LEGAL_NAME = /^[a-zA-Z0-9._-]+$/;
const MAX_NAME_LENGTH = 249;
export const MAX_PARTITIONS = 10_000;

/** Throws TopicError(INVALID_TOPIC_EXCEPTION) naming what is wrong. */
export function validateTopicName(name: string): void {
  const bad = (why: string) => {
    throw new TopicError(
      INVALID_TOPIC_EXCEPTION,
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

/** Throws TopicError(INVALID_CONFIG) for a config raftq does not honour. */
export function validateTopicConfigs(configs: Record<string, string>): void {
  for (const [key, value] of Object.entries(configs)) {
    if (!(TOPIC_CONFIG_KEYS as readonly string[]).includes(key)) {
      throw new TopicError(
        INVALID_CONFIG,
        `Topic config "${key}" is not supported: use one of ${
          TOPIC_CONFIG_KEYS.join(", ")
        }`,
      );
    }
    if (key === "cleanup.policy") {
      if (value !== "delete") {
        throw new TopicError(
          INVALID_CONFIG,
          `Topic config cleanup.policy="${value}" is not supported: only "delete"`,
        );
      }
    } else if (!/^-?\d+$/.test(value)) {
      throw new TopicError(
        INVALID_CONFIG,
        `Topic config ${key}="${value}" is not an integer`,
      );
    }
  }
}

export class TopicStore {
  readonly #file: string;
  readonly #topics = new Map<string, TopicInfo>();
  readonly #byId = new Map<string, TopicInfo>();

  private constructor(file: string) {
    this.#file = file;
  }

  static open(dataDir: string): TopicStore {
    Deno.mkdirSync(dataDir, { recursive: true });
    const store = new TopicStore(`${dataDir}/topics.json`);
    let text: string | null = null;
    try {
      text = Deno.readTextFileSync(store.#file);
    } catch (err) {
      if (!(err instanceof Deno.errors.NotFound)) throw err;
    }
    if (text !== null) {
      const parsed = JSON.parse(text) as { topics: TopicInfo[] };
      for (const t of parsed.topics) store.#index(t);
    }
    return store;
  }

  #index(t: TopicInfo): void {
    this.#topics.set(t.name, t);
    this.#byId.set(t.topicId, t);
  }

  get(name: string): TopicInfo | undefined {
    return this.#topics.get(name);
  }

  byId(topicId: string): TopicInfo | undefined {
    return this.#byId.get(topicId);
  }

  list(): TopicInfo[] {
    return [...this.#topics.values()].sort((a, b) =>
      a.name < b.name ? -1 : a.name > b.name ? 1 : 0
    );
  }

  /**
   * Checks a creation without performing it (CreateTopics validate_only uses
   * this too). Throws TopicError with the Kafka code to answer.
   */
  check(spec: {
    name: string;
    partitions: number;
    replicationFactor: number;
    configs: Record<string, string>;
    liveBrokers: number;
  }): void {
    validateTopicName(spec.name);
    if (this.#topics.has(spec.name)) {
      throw new TopicError(
        TOPIC_ALREADY_EXISTS,
        `Topic "${spec.name}" already exists`,
      );
    }
    if (
      !Number.isInteger(spec.partitions) || spec.partitions < 1 ||
      spec.partitions > MAX_PARTITIONS
    ) {
      throw new TopicError(
        INVALID_PARTITIONS,
        `Number of partitions ${spec.partitions} is invalid: use 1 to ${MAX_PARTITIONS}`,
      );
    }
    if (spec.replicationFactor < 1) {
      throw new TopicError(
        INVALID_REPLICATION_FACTOR,
        `Replication factor ${spec.replicationFactor} is invalid: it must be at least 1`,
      );
    }
    if (spec.replicationFactor > spec.liveBrokers) {
      throw new TopicError(
        INVALID_REPLICATION_FACTOR,
        `Replication factor ${spec.replicationFactor} is larger than the ${spec.liveBrokers} available broker(s)`,
      );
    }
    validateTopicConfigs(spec.configs);
  }

  create(spec: {
    name: string;
    partitions: number;
    replicationFactor: number;
    configs: Record<string, string>;
    liveBrokers: number;
  }): TopicInfo {
    this.check(spec);
    const info: TopicInfo = Object.freeze({
      name: spec.name,
      topicId: newTopicId(),
      partitions: spec.partitions,
      replicationFactor: spec.replicationFactor,
      configs: Object.freeze({ ...spec.configs }),
    });
    this.#index(info);
    this.#persist();
    return info;
  }

  delete(name: string): TopicInfo {
    const info = this.#topics.get(name);
    if (info === undefined) {
      throw new TopicError(
        UNKNOWN_TOPIC_OR_PARTITION,
        `Topic "${name}" does not exist`,
      );
    }
    this.#topics.delete(name);
    this.#byId.delete(info.topicId);
    this.#persist();
    return info;
  }

  #persist(): void {
    writeFileAtomic(
      this.#file,
      JSON.stringify({ topics: this.list() }, null, 2),
    );
  }
}
