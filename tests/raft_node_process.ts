/**
 * Drives one tests/raft_node_main.ts process: commands on stdin, lines
 * from stdout. Shared by tests/raft_e2e_test.ts and scripts/bench_raft.ts.
 */

export function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

export const sleep = (ms: number): Promise<void> =>
  new Promise((r) => setTimeout(r, ms));

export class NodeProcess {
  readonly #child: Deno.ChildProcess;
  readonly #writer: WritableStreamDefaultWriter<Uint8Array>;
  /** Lines not yet consumed by waitFor(); kept only when `keepLines` (the default). */
  readonly lines: string[] = [];
  readonly done: Promise<void>;

  constructor(
    args: string[],
    options: {
      onLine?: (line: string) => void;
      /** Extra flags for `deno run` (a profiler, say). */
      denoFlags?: string[];
    } = {},
  ) {
    const child = new Deno.Command(Deno.execPath(), {
      args: [
        "run",
        "-A",
        ...(options.denoFlags ?? []),
        new URL("./raft_node_main.ts", import.meta.url).pathname,
        ...args,
      ],
      stdin: "piped",
      stdout: "piped",
      stderr: "inherit",
    }).spawn();
    this.#child = child;
    this.#writer = child.stdin.getWriter();
    this.done = (async () => {
      let buffered = "";
      for await (
        const chunk of child.stdout.pipeThrough(new TextDecoderStream())
      ) {
        buffered += chunk;
        let nl: number;
        while ((nl = buffered.indexOf("\n")) >= 0) {
          const line = buffered.slice(0, nl);
          buffered = buffered.slice(nl + 1);
          options.onLine?.(line);
          if (!line.startsWith("ack ")) this.lines.push(line);
        }
      }
      await child.status;
    })();
  }

  get pid(): number {
    return this.#child.pid;
  }

  async send(command: string): Promise<void> {
    await this.#writer.write(new TextEncoder().encode(command + "\n"));
  }

  /** The first unread line matching `pred` (lines before it are dropped). */
  async waitFor(
    pred: (line: string) => boolean,
    timeoutMs = 15000,
  ): Promise<string> {
    const deadline = performance.now() + timeoutMs;
    for (;;) {
      const at = this.lines.findIndex(pred);
      if (at >= 0) {
        const line = this.lines[at]!;
        this.lines.splice(0, at + 1);
        return line;
      }
      if (performance.now() > deadline) {
        throw new Error("Timed out waiting for node output");
      }
      await sleep(10);
    }
  }

  /** Sends a command and returns the payload of the answer line starting with `reply `. */
  async ask(command: string, reply: string): Promise<string> {
    await this.send(command);
    const line = await this.waitFor((l) => l.startsWith(reply + " "));
    return line.slice(reply.length + 1);
  }

  async kill(): Promise<void> {
    try {
      this.#child.kill("SIGKILL");
    } catch (err) {
      // Already exited: nothing to kill.
      if (!(err instanceof TypeError)) throw err;
    }
    await this.#writer.close().catch(
      () => {/* the pipe died with the process */},
    );
    await this.done;
  }
}
