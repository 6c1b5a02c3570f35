/**
 * Invariant checks that stay on in production. A failed assertion is a bug in
 * raftq, never bad input: bad input is rejected where it enters with its own
 * error type.
 */
export class AssertionError extends Error {
  override name = "AssertionError";
  readonly context: Record<string, unknown> | undefined;
  constructor(message: string, context?: Record<string, unknown>) {
    super(
      context === undefined ? message : `${message}: ${safeJson(context)}`,
    );
    this.context = context;
  }
}

function safeJson(value: unknown): string {
  return JSON.stringify(
    value,
    (_k, v) => typeof v === "bigint" ? v.toString() : v,
  );
}

export function assert(
  condition: unknown,
  message: string,
  context?: Record<string, unknown>,
): asserts condition {
  if (!condition) throw new AssertionError(message, context);
}
