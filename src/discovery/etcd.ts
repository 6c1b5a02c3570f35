import {
  Etcd3,
  type IKeyValue,
  type IOptions,
  type Lease,
  type Watcher,
} from "etcd3";
import { SelfSlot } from "./self_slot.ts";
import {
  type BrokerInfo,
  brokerInfoProblem,
  checkFounding,
  copyBrokerInfo,
  copyFounding,
  type Discovery,
  type DiscoveryConfig,
  type DiscoveryListener,
  type DiscoveryOptions,
  DiscoveryUnavailableError,
  foundingProblem,
  type FoundingRecord,
  Listeners,
} from "./types.ts";

export const LEASE_TTL_SECONDS_DEFAULT = 10;
const RECONNECT_DELAY_MIN_MS = 100;
const RECONNECT_DELAY_MAX_MS = 3_000;

type HostPolicy = ReturnType<
  NonNullable<NonNullable<IOptions["faultHandling"]>["host"]>
>;
/**
 * etcd3's default per-host circuit breaker stays open for 5 s after three
 * failures, which would hold back our reconnect after etcd returns. Our own
 * loop already backs off, so each call goes straight through.
 */
const PASS_THROUGH = {
  // Async: etcd3 relies on a throwing call becoming a rejection.
  execute: async (call: () => unknown) => await call(),
} as unknown as HostPolicy;

/**
 * One connection to etcd: a client, the prefix watch and, while this broker
 * is registered, its lease. Any failure ends the session; the reconnect loop
 * then builds a fresh one, so no half-broken client state survives.
 */
class Session {
  readonly client: Etcd3;
  watcher: Watcher | undefined;
  lease: Lease | undefined;
  /** The node whose key is bound to `lease`. */
  nodeId: number | undefined;
  readonly ended: Promise<string>;
  #end: (reason: string) => void;
  #isEnded = false;

  constructor(client: Etcd3) {
    this.client = client;
    const { promise, resolve } = Promise.withResolvers<string>();
    this.ended = promise;
    this.#end = resolve;
  }

  get isEnded(): boolean {
    return this.#isEnded;
  }

  end(reason: string): void {
    this.#isEnded = true;
    this.#end(reason);
  }
}

/**
 * Registration under `<prefix>/brokers/<id>` bound to a kept-alive lease, and
 * a cache of every broker kept current by a watch on that prefix. When etcd
 * is unreachable the cache keeps serving list(), the loss is logged once, and
 * a loop reconnects with backoff, relists (emitting what changed meanwhile)
 * and registers this broker again.
 *
 * The founding record lives under `<prefix>/cluster/founding`, leaseless so
 * that it outlives every broker, written once by a create-if-absent
 * transaction.
 */
export class EtcdDiscovery implements Discovery {
  #config: DiscoveryConfig;
  #log: (msg: string) => void;
  #leaseTtlSeconds: number;
  #brokersPrefix: string;
  #foundingKey: string;
  #self = new SelfSlot();
  #listeners: Listeners;
  #cache = new Map<number, BrokerInfo>();
  /** The live session, undefined while etcd is unreachable. */
  #session: Session | undefined;
  #online = Promise.withResolvers<Session>();
  /** Undefined before the first attempt, so that it is logged too. */
  #reachable: boolean | undefined;
  #abort = new AbortController();
  /** Writes of this broker's key, one at a time, in call order. */
  #writes: Promise<unknown> = Promise.resolve();
  #loop: Promise<void>;

  constructor(
    config: DiscoveryConfig,
    opts: DiscoveryOptions = {},
  ) {
    if (config.endpoints.length === 0) {
      throw new TypeError(
        "Cannot use etcd discovery: discovery.endpoints is empty",
      );
    }
    const ttl = opts.leaseTtlSeconds ?? LEASE_TTL_SECONDS_DEFAULT;
    if (!Number.isInteger(ttl) || ttl < 1) {
      throw new RangeError(
        `Cannot use etcd discovery: leaseTtlSeconds must be an integer of at least 1, got ${ttl}`,
      );
    }
    this.#config = config;
    this.#log = opts.log ?? console.error;
    this.#leaseTtlSeconds = ttl;
    const prefix = config.prefix.replace(/\/+$/, "");
    this.#brokersPrefix = `${prefix}/brokers/`;
    this.#foundingKey = `${prefix}/cluster/founding`;
    this.#listeners = new Listeners(this.#log);
    this.#loop = this.#run();
  }

  async register(self: BrokerInfo): Promise<void> {
    this.#self.register(self);
    await this.#publishSelf();
  }

  async update(self: BrokerInfo): Promise<void> {
    this.#self.update(self);
    await this.#publishSelf();
  }

  /** Revokes the lease, so the key goes at once (later, if etcd is away). */
  async deregister(): Promise<void> {
    if (this.#self.deregister() === undefined) return;
    await this.#publishSelf();
  }

  list(): Promise<BrokerInfo[]> {
    return Promise.resolve(
      [...this.#cache.values()].map(copyBrokerInfo).sort((a, b) =>
        a.nodeId - b.nodeId
      ),
    );
  }

  /**
   * Retries while etcd is unreachable, up to timeoutMs in all, then rejects
   * with DiscoveryUnavailableError. A retry after a write whose reply was
   * lost finds our own record, so it still reports the win.
   */
  async claimFounding(proposal: FoundingRecord): Promise<FoundingRecord> {
    this.#self.checkOpen("claim founding");
    checkFounding(proposal);
    const json = JSON.stringify(copyFounding(proposal));
    const { timeoutMs, endpoints } = this.#config;
    const deadlineMs = Date.now() + timeoutMs;
    let delayMs = RECONNECT_DELAY_MIN_MS;
    let lastError = "not connected";
    while (true) {
      const session = this.#session ??
        await waitMs(this.#online.promise, deadlineMs - Date.now(), {
          signal: this.#abort.signal,
        });
      this.#self.checkOpen("claim founding");
      if (session !== undefined) {
        let recorded: string | undefined;
        try {
          recorded = await this.#claim(session, json, deadlineMs);
        } catch (err) {
          lastError = message(err);
        }
        if (recorded !== undefined) return this.#parseFounding(recorded);
      }
      const leftMs = deadlineMs - Date.now();
      if (leftMs <= 0) {
        throw new DiscoveryUnavailableError(
          `Cannot claim founding: etcd at ${
            endpoints.join(",")
          } unreachable for ${timeoutMs} ms: ${lastError}`,
        );
      }
      await sleepMs(Math.min(delayMs, leftMs), this.#abort.signal);
      delayMs = Math.min(delayMs * 2, RECONNECT_DELAY_MAX_MS);
    }
  }

  /** One attempt; the recorded JSON, `json` itself if it won. */
  async #claim(
    session: Session,
    json: string,
    deadlineMs: number,
  ): Promise<string> {
    const { client } = session;
    const key = this.#foundingKey;
    const txn = await client.if(key, "Create", "==", 0)
      .then(client.put(key).value(json))
      .else(client.get(key))
      .options({ deadline: deadlineMs })
      .commit();
    if (txn.succeeded) return json;
    const kv = txn.responses[0]?.response_range.kvs[0];
    // Deleted in between by an outsider: the retry may record ours.
    if (kv === undefined) throw new Error(`${key} vanished while read`);
    return kv.value.toString();
  }

  #parseFounding(text: string): FoundingRecord {
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      value = err;
    }
    const problem = foundingProblem(value);
    if (problem !== undefined) {
      throw new TypeError(
        `Cannot claim founding: etcd key ${this.#foundingKey} holds no founding record: ${problem}`,
      );
    }
    return copyFounding(value as FoundingRecord);
  }

  watch(listener: DiscoveryListener): () => void {
    this.#self.checkOpen("watch");
    return this.#listeners.add(listener);
  }

  async close(): Promise<void> {
    if (this.#self.closed) return;
    this.#self.close();
    this.#abort.abort();
    await this.#loop;
    this.#listeners.clear();
  }

  /**
   * Brings etcd in line with this broker's registration. Waits up to
   * timeoutMs for a connection; past that it returns without error and the
   * loop syncs on reconnect (the outage is already logged), since a broker
   * must keep serving without etcd.
   */
  async #publishSelf(): Promise<void> {
    const session = this.#session ??
      await waitMs(this.#online.promise, this.#config.timeoutMs);
    if (session !== undefined) {
      await this.#serially(() => this.#syncSelf(session));
    }
  }

  #serially(write: () => Promise<void>): Promise<void> {
    const next = this.#writes.then(write);
    this.#writes = next.catch(() => undefined);
    return next;
  }

  async #syncSelf(session: Session): Promise<void> {
    if (session.isEnded) return;
    const self = this.#self.current;
    try {
      if (self === undefined) {
        const { lease, nodeId } = session;
        session.lease = undefined;
        session.nodeId = undefined;
        await lease?.revoke();
        if (nodeId !== undefined) this.#forget(nodeId);
        return;
      }
      if (session.lease === undefined) {
        const lease = session.client.lease(this.#leaseTtlSeconds);
        // etcd3 keeps it alive, and gives up only once it must have expired.
        lease.on("lost", (err) => session.end(`lease lost: ${err.message}`));
        session.lease = lease;
        await lease.grant();
      }
      session.nodeId = self.nodeId;
      await session.lease.put(this.#key(self.nodeId))
        .value(JSON.stringify(self)).exec();
      // Read-your-writes: list() shows it before the watch echoes it back.
      this.#remember(self);
    } catch (err) {
      // The reconnect loop retries the whole registration.
      session.end(`registration failed: ${message(err)}`);
    }
  }

  async #run(): Promise<void> {
    const signal = this.#abort.signal;
    let delayMs = RECONNECT_DELAY_MIN_MS;
    while (!signal.aborted) {
      const session = new Session(this.#newClient());
      const onAbort = () => session.end("closing");
      signal.addEventListener("abort", onAbort);
      try {
        await this.#open(session);
        delayMs = RECONNECT_DELAY_MIN_MS;
        const reason = await session.ended;
        if (!signal.aborted) this.#markReachable(false, reason);
      } catch (err) {
        if (!signal.aborted) this.#markReachable(false, message(err));
      } finally {
        signal.removeEventListener("abort", onAbort);
        session.end("torn down");
        if (this.#session === session) {
          this.#session = undefined;
          this.#online = Promise.withResolvers<Session>();
        }
        await this.#serially(() =>
          this.#teardown(session, { revoke: signal.aborted })
        );
      }
      if (!signal.aborted) {
        await sleepMs(delayMs, signal);
        delayMs = Math.min(delayMs * 2, RECONNECT_DELAY_MAX_MS);
      }
    }
  }

  async #open(session: Session): Promise<void> {
    const listing = await session.client.getAll()
      .prefix(this.#brokersPrefix).exec();
    this.#reconcile(listing.kvs);
    // From the revision after the listing: nothing is missed in between.
    const watcher = session.client.watch().prefix(this.#brokersPrefix)
      .startRevision(String(BigInt(listing.header.revision) + 1n)).watcher();
    session.watcher = watcher;
    const connected = new Promise<void>((resolve) => {
      watcher.on("connected", () => resolve());
    });
    // Listeners stay until the end: etcd3 throws watcher errors nobody hears.
    watcher.on("put", (kv) => {
      if (!session.isEnded) this.#applyPut(kv);
    });
    watcher.on("delete", (kv) => {
      if (!session.isEnded) this.#applyDelete(kv);
    });
    watcher.on(
      "disconnected",
      (err) => session.end(`watch disconnected: ${err.message}`),
    );
    watcher.on("error", (err) => session.end(`watch failed: ${err.message}`));
    const outcome = await waitMs(
      Promise.race([connected.then(() => "connected"), session.ended]),
      this.#config.timeoutMs,
    );
    if (outcome !== "connected") {
      throw new Error(outcome ?? "watch not set up in time");
    }
    await this.#serially(() => this.#syncSelf(session));
    if (session.isEnded) return;
    this.#session = session;
    this.#online.resolve(session);
    this.#markReachable(true, "");
  }

  async #teardown(session: Session, opts: { revoke: boolean }): Promise<void> {
    const { watcher, lease } = session;
    session.watcher = undefined;
    session.lease = undefined;
    // Cancelling detaches the watcher, else etcd3 would keep reconnecting it.
    await waitMs(
      watcher?.cancel().catch(() => undefined),
      this.#config.timeoutMs,
    );
    if (lease !== undefined) {
      if (opts.revoke) {
        await lease.revoke().catch((err) =>
          this.#log(
            `Discovery: lease revoke failed (the key expires with its lease): ${
              message(err)
            }`,
          )
        );
      } else {
        // Stops keep-alives only: the key outlives us until the lease expires.
        lease.release();
      }
    }
    session.client.close();
  }

  #markReachable(reachable: boolean, detail: string): void {
    if (this.#reachable === reachable) return;
    this.#reachable = reachable;
    const at = this.#config.endpoints.join(",");
    this.#log(
      reachable
        ? `Discovery: connected to etcd at ${at}, ${this.#cache.size} brokers known`
        : `Discovery: etcd at ${at} unreachable (${detail}); serving ${this.#cache.size} cached brokers, retrying`,
    );
  }

  #newClient(): Etcd3 {
    const { endpoints, username, password, timeoutMs } = this.#config;
    return new Etcd3({
      hosts: [...endpoints],
      dialTimeout: timeoutMs,
      defaultCallOptions: (context) =>
        context.isStream ? {} : { deadline: Date.now() + timeoutMs },
      faultHandling: { host: () => PASS_THROUGH },
      ...(username === "" ? {} : { auth: { username, password } }),
    });
  }

  #key(nodeId: number): string {
    return `${this.#brokersPrefix}${nodeId}`;
  }

  #nodeIdOf(kv: IKeyValue): number | undefined {
    const tail = kv.key.toString().slice(this.#brokersPrefix.length);
    return /^[1-9]\d*$/.test(tail) ? Number(tail) : undefined;
  }

  /** Another broker's entry; bad entries are logged and skipped. */
  #parse(kv: IKeyValue): BrokerInfo | undefined {
    const nodeId = this.#nodeIdOf(kv);
    let value: unknown;
    try {
      value = JSON.parse(kv.value.toString());
    } catch (err) {
      value = err;
    }
    const problem = nodeId === undefined
      ? "key does not end in a node id"
      : brokerInfoProblem(value) ??
        ((value as BrokerInfo).nodeId === nodeId
          ? undefined
          : "nodeId differs from the key");
    if (problem === undefined) return value as BrokerInfo;
    this.#log(
      `Discovery: skipping etcd key ${kv.key.toString()}: ${problem}`,
    );
    return undefined;
  }

  #applyPut(kv: IKeyValue): void {
    const broker = this.#parse(kv);
    if (broker !== undefined) this.#remember(broker);
  }

  #applyDelete(kv: IKeyValue): void {
    const nodeId = this.#nodeIdOf(kv);
    if (nodeId !== undefined) this.#forget(nodeId);
  }

  /** Events only for changes, so our own writes' echoes are not repeated. */
  #remember(broker: BrokerInfo): void {
    const old = this.#cache.get(broker.nodeId);
    if (old !== undefined && sameBroker(old, broker)) return;
    this.#cache.set(broker.nodeId, copyBrokerInfo(broker));
    this.#listeners.emit({ type: "up", broker });
  }

  #forget(nodeId: number): void {
    if (this.#cache.delete(nodeId)) {
      this.#listeners.emit({ type: "down", nodeId });
    }
  }

  /** Replaces the cache by a fresh listing, emitting what changed. */
  #reconcile(kvs: readonly IKeyValue[]): void {
    const fresh = new Map<number, BrokerInfo>();
    for (const kv of kvs) {
      const broker = this.#parse(kv);
      if (broker !== undefined) fresh.set(broker.nodeId, broker);
    }
    const before = this.#cache;
    this.#cache = fresh;
    for (const nodeId of before.keys()) {
      if (!fresh.has(nodeId)) this.#listeners.emit({ type: "down", nodeId });
    }
    for (const [nodeId, broker] of fresh) {
      const old = before.get(nodeId);
      if (old === undefined || !sameBroker(old, broker)) {
        this.#listeners.emit({ type: "up", broker });
      }
    }
  }
}

function sameBroker(a: BrokerInfo, b: BrokerInfo): boolean {
  return a.nodeId === b.nodeId && a.host === b.host &&
    a.kafkaPort === b.kafkaPort && a.raftHost === b.raftHost &&
    a.raftPort === b.raftPort && a.status === b.status &&
    a.startedAtMs === b.startedAtMs &&
    a.load?.partitions === b.load?.partitions &&
    a.load?.leaders === b.load?.leaders;
}

function message(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** Resolves after ms, or early (without rejecting) when signal aborts. */
function sleepMs(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    const done = () => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", done);
      resolve();
    };
    const timer = setTimeout(done, ms);
    signal?.addEventListener("abort", done);
  });
}

/**
 * The promise's value, or undefined if it takes longer than ms or `signal`
 * aborts first.
 */
async function waitMs<T>(
  promise: Promise<T> | undefined,
  ms: number,
  opts: { signal?: AbortSignal } = {},
): Promise<T | undefined> {
  if (promise === undefined) return undefined;
  const abort = new AbortController();
  const signals = opts.signal === undefined
    ? [abort.signal]
    : [abort.signal, opts.signal];
  try {
    return await Promise.race([
      promise,
      sleepMs(ms, AbortSignal.any(signals)).then(() => undefined),
    ]);
  } finally {
    abort.abort();
  }
}
