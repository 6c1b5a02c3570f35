/**
 * raftq's command line: `serve` runs a broker; `topic`, `produce`,
 * `consume`, `group` and `cluster` drive a cluster through raftq's own
 * Kafka client. Exit codes are 0 (ok), 1 (error) and 2 (usage). The
 * argument parser (commander) is imported only in program.ts.
 */
import { type CliIo, processIo } from "./io.ts";
import { runCli as runWith } from "./program.ts";

export type { CliIo } from "./io.ts";
export { EXIT_ERROR, EXIT_OK, EXIT_USAGE } from "./program.ts";

/**
 * Runs a command line (`args` without the program name) and returns the
 * exit code. Without `io`, uses the process's streams, environment and
 * signals.
 */
export async function runCli(
  args: readonly string[],
  io?: CliIo,
): Promise<number> {
  if (io !== undefined) return await runWith(args, io);
  const own = processIo();
  try {
    return await runWith(args, own);
  } finally {
    own.dispose();
  }
}
