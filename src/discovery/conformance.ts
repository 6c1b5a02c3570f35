/**
 * The behaviour every Discovery must show, as one suite run against each
 * implementation (memory and a real etcd). Each step opens brokers in a fresh
 * namespace, so steps do not see each other's brokers.
 */
import assert from "node:assert/strict";
import {
  type BrokerInfo,
  type Discovery,
  type DiscoveryEvent,
  DiscoveryStateError,
} from "./types.ts";

export interface ConformanceBackend {
  /** An opener of brokers that all see each other, and no one else. */
  namespace(): () => Discovery;
  close(): Promise<void>;
}

const EVENT_TIMEOUT_MS = 5_000;

export function brokerInfo(
  nodeId: number,
  fields: Partial<BrokerInfo> = {},
): BrokerInfo {
  return {
    nodeId,
    host: "127.0.0.1",
    kafkaPort: 9000 + nodeId,
    raftHost: "127.0.0.1",
    raftPort: 19000 + nodeId,
    status: "online",
    startedAtMs: 1_700_000_000_000 + nodeId,
    ...fields,
  };
}

/** Everything a Discovery reports, with a way to wait for one event. */
export class EventLog {
  readonly events: DiscoveryEvent[] = [];
  #wakeups = new Set<() => void>();
  readonly unsubscribe: () => void;

  constructor(discovery: Discovery) {
    this.unsubscribe = discovery.watch((e) => {
      this.events.push(e);
      for (const wake of [...this.#wakeups]) wake();
    });
  }

  /** The first event so far or to come that matches, else a failure. */
  async waitFor(
    what: string,
    match: (e: DiscoveryEvent) => boolean,
    timeoutMs = EVENT_TIMEOUT_MS,
  ): Promise<DiscoveryEvent> {
    const found = () => this.events.find(match);
    let wake = () => {};
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      return await new Promise<DiscoveryEvent>((resolve, reject) => {
        wake = () => {
          const e = found();
          if (e !== undefined) resolve(e);
        };
        this.#wakeups.add(wake);
        timer = setTimeout(
          () =>
            reject(
              new Error(
                `No ${what} within ${timeoutMs} ms; saw ${
                  JSON.stringify(this.events)
                }`,
              ),
            ),
          timeoutMs,
        );
        wake();
      });
    } finally {
      clearTimeout(timer);
      this.#wakeups.delete(wake);
    }
  }
}

export const isUp = (nodeId: number) => (e: DiscoveryEvent) =>
  e.type === "up" && e.broker.nodeId === nodeId;
export const isDown = (nodeId: number) => (e: DiscoveryEvent) =>
  e.type === "down" && e.nodeId === nodeId;

/** Registers one Deno.test running the suite against `setup`'s backend. */
export function discoveryConformance(
  name: string,
  setup: () => Promise<ConformanceBackend>,
  opts: { ignore?: boolean } = {},
): void {
  Deno.test({
    name: `${name} passes the Discovery conformance suite`,
    ignore: opts.ignore ?? false,
    fn: async (t) => {
      const backend = await setup();
      const step = (
        stepName: string,
        body: (open: () => Discovery, opened: Discovery[]) => Promise<void>,
      ) =>
        t.step(stepName, async () => {
          const open = backend.namespace();
          const opened: Discovery[] = [];
          try {
            await body(() => {
              const d = open();
              opened.push(d);
              return d;
            }, opened);
          } finally {
            await Promise.all(opened.map((d) => d.close()));
          }
        });
      try {
        await step(
          "Discovery.list contains self after register",
          async (open) => {
            const d = open();
            await d.register(brokerInfo(1));
            assert.deepEqual(await d.list(), [brokerInfo(1)]);
          },
        );

        await step(
          "Discovery.watch sees up when a second broker registers",
          async (open) => {
            const first = open();
            await first.register(brokerInfo(1));
            const log = new EventLog(first);
            const second = open();
            await second.register(brokerInfo(2));
            const e = await log.waitFor("up of node 2", isUp(2));
            assert.deepEqual(e, { type: "up", broker: brokerInfo(2) });
            assert.deepEqual(
              (await second.list()).map((b) => b.nodeId).sort(),
              [1, 2],
            );
          },
        );

        await step(
          "Discovery.watch sees down when a broker deregisters",
          async (open) => {
            const first = open();
            await first.register(brokerInfo(1));
            const log = new EventLog(first);
            const second = open();
            await second.register(brokerInfo(2));
            await log.waitFor("up of node 2", isUp(2));
            await second.deregister();
            await log.waitFor("down of node 2", isDown(2));
            assert.deepEqual(
              (await first.list()).map((b) => b.nodeId),
              [1],
            );
          },
        );

        await step(
          "Discovery.update shows the new status and load in list",
          async (open) => {
            const first = open();
            await first.register(brokerInfo(1, { status: "starting" }));
            const log = new EventLog(first);
            const draining = brokerInfo(1, {
              status: "draining",
              load: { partitions: 12, leaders: 4 },
            });
            await first.update(draining);
            assert.deepEqual(await first.list(), [draining]);
            await log.waitFor(
              "up with the new status",
              (e) => e.type === "up" && e.broker.status === "draining",
            );
          },
        );

        await step(
          "Discovery.watch stops delivering after unsubscribe",
          async (open) => {
            const first = open();
            const kept = new EventLog(first);
            const dropped = new EventLog(first);
            dropped.unsubscribe();
            await first.register(brokerInfo(1));
            await kept.waitFor("up of node 1", isUp(1));
            assert.deepEqual(dropped.events, []);
          },
        );

        await step(
          "Discovery.update rejects with DiscoveryStateError before register",
          async (open) => {
            const d = open();
            await assert.rejects(
              d.update(brokerInfo(1)),
              DiscoveryStateError,
            );
            assert.deepEqual(await d.list(), []);
          },
        );

        await step(
          "Discovery.register rejects a bad port with a TypeError naming it",
          async (open) => {
            const d = open();
            await assert.rejects(
              d.register(brokerInfo(1, { raftPort: 70000 })),
              (err: Error) =>
                err instanceof TypeError && /raftPort: 70000/.test(err.message),
            );
          },
        );

        await step(
          "Discovery.claimFounding records the first proposal and returns it to every later one",
          async (open) => {
            const first = open();
            const second = open();
            const won = { voters: [1, 2, 3], founder: 1 };
            assert.deepEqual(await first.claimFounding(won), won);
            assert.deepEqual(
              await second.claimFounding({ voters: [2, 4], founder: 4 }),
              won,
            );
            assert.deepEqual(
              await first.claimFounding({ voters: [1], founder: 1 }),
              won,
            );
          },
        );

        await step(
          "Discovery.claimFounding gives concurrent claimants the same record",
          async (open) => {
            const proposals = [
              { voters: [1, 2], founder: 1 },
              { voters: [2, 3], founder: 2 },
            ];
            const [a, b] = await Promise.all(
              proposals.map((p) => open().claimFounding(p)),
            );
            assert.deepEqual(a, b);
            assert.ok(
              proposals.some((p) => JSON.stringify(p) === JSON.stringify(a)),
              `recorded ${JSON.stringify(a)} was nobody's proposal`,
            );
          },
        );

        await step(
          "Discovery.claimFounding rejects a founder outside the voters with a TypeError naming it",
          async (open) => {
            const d = open();
            await assert.rejects(
              d.claimFounding({ voters: [1, 2], founder: 3 }),
              (err: Error) =>
                err instanceof TypeError && /founder 3/.test(err.message),
            );
            const later = { voters: [2], founder: 2 };
            assert.deepEqual(await d.claimFounding(later), later);
          },
        );

        await step(
          "Discovery.register rejects with DiscoveryStateError after close",
          async (open) => {
            const d = open();
            await d.close();
            await assert.rejects(
              d.register(brokerInfo(1)),
              DiscoveryStateError,
            );
            await assert.rejects(
              d.claimFounding({ voters: [1], founder: 1 }),
              DiscoveryStateError,
            );
          },
        );
      } finally {
        await backend.close();
      }
    },
  });
}
