/** Polls `cond` until it holds, for tests of real sockets and timers. */
export async function until(
  what: string,
  cond: () => boolean,
  timeoutMs = 5000,
): Promise<void> {
  const deadline = performance.now() + timeoutMs;
  while (!cond()) {
    if (performance.now() > deadline) {
      throw new Error(`Timed out waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 5));
  }
}
