// Runs the Python client scripts in tests/python with Debian's interpreter
// (scripts/setup_test_deps.sh installs the client packages there).
import { run, type RunResult } from "./harness.ts";

const PYTHON = "/usr/bin/python3";

/** Whether /usr/bin/python3 can import `module`. */
export async function hasPythonModule(module: string): Promise<boolean> {
  try {
    return (await run(PYTHON, ["-c", `import ${module}`])).code === 0;
  } catch {
    return false;
  }
}

/** Runs tests/python/`script` with `args`. */
export function runPython(
  script: string,
  args: string[],
  opts: { timeoutMs?: number } = {},
): Promise<RunResult> {
  return run(PYTHON, [`tests/python/${script}`, ...args], opts);
}
