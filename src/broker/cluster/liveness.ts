/**
 * A quick test of whether a broker process is gone: a host whose port
 * refuses connections has no process listening there (a kill -9 closes
 * the socket at once), while a busy or paused broker still has the kernel
 * accept for it. Silence alone cannot tell those apart; a refusal can.
 */
export async function refusesConnections(
  address: { host: string; port: number },
  opts: { timeoutMs: number },
): Promise<boolean> {
  const timer = new AbortController();
  const deadline = setTimeout(() => timer.abort(), opts.timeoutMs);
  try {
    const conn = await Deno.connect({
      hostname: address.host,
      port: address.port,
      signal: timer.signal,
    });
    conn.close();
    return false;
  } catch (err) {
    // A timeout or an unreachable network says nothing about the process.
    return err instanceof Deno.errors.ConnectionRefused;
  } finally {
    clearTimeout(deadline);
  }
}
