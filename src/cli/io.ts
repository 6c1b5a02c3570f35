/**
 * What a command touches of the outside world, passed in so that tests run
 * the real commands in-process with their own input, output and interrupt.
 */
import { writeAllSync } from "../util/mod.ts";

export interface CliIo {
  stdin: ReadableStream<Uint8Array>;
  stdout(text: string): void;
  stderr(text: string): void;
  env: Record<string, string>;
  /** Aborts when the user interrupts (SIGINT, SIGTERM). */
  interrupt: AbortSignal;
}

/** Thrown by commands for a failure its message explains to the user. */
export class CommandError extends Error {
  override name = "CommandError";
}

/** Where client commands connect when --bootstrap is not given. */
export const BOOTSTRAP_ENV = "RAFTQ_BOOTSTRAP";

const encoder = new TextEncoder();

/** Exit code of a process ended by a second interrupt (128 + SIGINT). */
const EXIT_INTERRUPTED = 130;

/**
 * The process's own streams and environment, with an interrupt signal wired
 * to SIGINT/SIGTERM until `dispose` is called. The first signal asks the
 * command to finish (a broker stops cleanly, consume and produce end); a
 * second one exits at once, for a command stuck waiting on the network.
 */
export function processIo(): CliIo & { dispose(): void } {
  const controller = new AbortController();
  const signals = ["SIGINT", "SIGTERM"] as const;
  const onSignal = () => {
    if (controller.signal.aborted) Deno.exit(EXIT_INTERRUPTED);
    controller.abort();
  };
  for (const s of signals) Deno.addSignalListener(s, onSignal);
  return {
    stdin: Deno.stdin.readable,
    stdout: (text) => writeAllSync(Deno.stdout, encoder.encode(text)),
    stderr: (text) => writeAllSync(Deno.stderr, encoder.encode(text)),
    env: Deno.env.toObject(),
    interrupt: controller.signal,
    dispose: () => {
      for (const s of signals) Deno.removeSignalListener(s, onSignal);
    },
  };
}

/** Resolves when `signal` aborts. */
export function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}
