/**
 * A real etcd for tests: one member on free loopback ports with a temporary
 * data dir. Test-only; production code never imports src/discovery/testing.
 */
export const ETCD_BIN = "/usr/bin/etcd";

export function etcdAvailable(): boolean {
  try {
    return Deno.statSync(ETCD_BIN).isFile;
  } catch {
    return false;
  }
}

function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

const START_TIMEOUT_MS = 10_000;

export class EtcdServer {
  readonly clientPort = freePort();
  readonly peerPort = freePort();
  #dataDir = "";
  #child: Deno.ChildProcess | undefined;

  get endpoint(): string {
    return `http://127.0.0.1:${this.clientPort}`;
  }

  static async start(): Promise<EtcdServer> {
    const server = new EtcdServer();
    await server.restart({ freshData: true });
    return server;
  }

  /**
   * Starts etcd again on the same ports. A fresh data dir stands for an etcd
   * that lost its state, so nothing registered before survives.
   */
  async restart(opts: { freshData: boolean }): Promise<void> {
    await this.stop();
    if (opts.freshData || this.#dataDir === "") {
      await this.#removeData();
      this.#dataDir = await Deno.makeTempDir({ prefix: "raftq-etcd-" });
    }
    const peerUrl = `http://127.0.0.1:${this.peerPort}`;
    this.#child = new Deno.Command(ETCD_BIN, {
      args: [
        "--name=test",
        `--data-dir=${this.#dataDir}`,
        `--listen-client-urls=${this.endpoint}`,
        `--advertise-client-urls=${this.endpoint}`,
        `--listen-peer-urls=${peerUrl}`,
        `--initial-advertise-peer-urls=${peerUrl}`,
        `--initial-cluster=test=${peerUrl}`,
      ],
      stdout: "null",
      stderr: "null",
    }).spawn();
    await this.#waitHealthy();
  }

  async stop(): Promise<void> {
    const child = this.#child;
    if (child === undefined) return;
    this.#child = undefined;
    child.kill("SIGTERM");
    await child.status;
  }

  async close(): Promise<void> {
    await this.stop();
    await this.#removeData();
  }

  async #removeData(): Promise<void> {
    if (this.#dataDir !== "") {
      await Deno.remove(this.#dataDir, { recursive: true });
      this.#dataDir = "";
    }
  }

  async #waitHealthy(): Promise<void> {
    const deadline = Date.now() + START_TIMEOUT_MS;
    let last = "";
    while (Date.now() < deadline) {
      try {
        const res = await fetch(`${this.endpoint}/health`);
        const body = await res.text();
        if (res.ok && /"health":\s*"true"/.test(body)) return;
        last = body;
      } catch (err) {
        last = String(err);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(
      `etcd did not become healthy within ${START_TIMEOUT_MS} ms: ${last}`,
    );
  }
}
