import { errorInfo } from "../protocol/mod.ts";

/**
 * A Kafka error code returned by a broker. `name` is the code's Kafka name
 * (NOT_LEADER_OR_FOLLOWER), so `String(error)` reads as Kafka tools print it.
 */
export class KafkaError extends Error {
  readonly code: number;
  readonly retriable: boolean;
  constructor(code: number, detail?: string | null) {
    const info = errorInfo(code);
    // Kafka's names are already the best short description; the broker's
    // own message, when it sent one, says what it was about.
    const readable = info.name.toLowerCase().replaceAll("_", " ");
    super(detail ? `${readable}: ${detail}` : readable);
    this.name = info.name;
    this.code = code;
    this.retriable = info.retriable;
  }
}

/** The connection to a broker failed or closed while a request was pending. */
export class ConnectionError extends Error {
  override name = "ConnectionError";
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
  }
}

/** No answer within the request timeout. */
export class RequestTimeoutError extends Error {
  override name = "RequestTimeoutError";
}

/** Throws KafkaError unless `code` is NONE. */
export function throwIfError(code: number, detail?: string | null): void {
  if (code !== 0) throw new KafkaError(code, detail);
}
