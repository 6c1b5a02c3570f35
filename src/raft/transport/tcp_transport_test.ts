/**
 * TcpTransport over real loopback sockets: batches and chunked snapshots
 * arrive intact, a peer that restarts is reconnected after backoff, and
 * application messages go out at once, within the queue bound, to the
 * right node only; with tls, only to nodes whose certificate the cluster's
 * CA issued.
 */
import assert from "node:assert/strict";
import {
  type Message,
  MessageType,
  newMessage,
  type NodeId,
} from "../core/mod.ts";
import { until } from "../testing/mod.ts";
import type { Envelope } from "./codec.ts";
import { makeCerts } from "../../../tests/tls_certs.ts";
import { PeerCredentials } from "./peer_proof.ts";
import { TcpTransport, type TcpTransportOptions } from "./tcp_transport.ts";
import type { Address, InboundHandlers } from "./transport.ts";

const ignoreInbound: InboundHandlers = { messages: () => {}, app: () => {} };

function collect(got: [NodeId, Envelope][]): InboundHandlers {
  return {
    messages: (from, envs) => envs.forEach((e) => got.push([from, e])),
    app: () => {},
  };
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = l.addr.port;
  l.close();
  return port;
}

function heartbeat(from: NodeId, to: NodeId, term: number): Message {
  return newMessage({ type: MessageType.Heartbeat, from, to, term });
}

/** Sends until the connection is up: the first sends only trigger the connect. */
async function sendUntilDelivered(
  t: TcpTransport,
  to: NodeId,
  env: Envelope,
  delivered: () => boolean,
): Promise<void> {
  await until("delivery", () => {
    if (delivered()) return true;
    t.send(to, env);
    t.flush(performance.now());
    return false;
  });
}

/**
 * Node 1 (options `aOptions`) connected to node 2 over loopback, a first
 * message delivered; what node 2 receives from then on lands in `got`.
 */
async function connectedPair(
  aOptions: Partial<TcpTransportOptions> = {},
): Promise<{
  peers: Map<NodeId, Address>;
  a: TcpTransport;
  b: TcpTransport;
  got: [NodeId, Envelope][];
}> {
  const peers = new Map<NodeId, Address>([
    [1, { hostname: "127.0.0.1", port: freePort() }],
    [2, { hostname: "127.0.0.1", port: freePort() }],
  ]);
  const got: [NodeId, Envelope][] = [];
  const a = new TcpTransport({
    nodeId: 1,
    listen: peers.get(1)!,
    peers,
    backoffMinMs: 10,
    ...aOptions,
  });
  const b = new TcpTransport({ nodeId: 2, listen: peers.get(2)!, peers });
  await a.start(ignoreInbound);
  await b.start(collect(got));
  await sendUntilDelivered(
    a,
    2,
    { groupId: 1, message: heartbeat(1, 2, 1) },
    () => got.length > 0,
  );
  got.length = 0;
  return { peers, a, b, got };
}

Deno.test("TcpTransport delivers batches and chunked snapshots, and reconnects to a restarted peer", async () => {
  const pair = await connectedPair({ backoffMaxMs: 50 });
  const { peers, a, got } = pair;
  let b = pair.b;
  try {
    // One flush, many groups: one frame, every message in order.
    for (let g = 0; g < 100; g++) {
      assert.ok(a.send(2, { groupId: g, message: heartbeat(1, 2, g + 1) }));
    }
    a.flush(performance.now());
    await until("batch", () => got.length === 100);
    assert.deepEqual(
      got.map(([from, e]) => [from, e.groupId, e.message.term]),
      got.map((_, g) => [1, g, g + 1]),
    );
    assert.ok(b.lastHeardMs(1) > 0);

    const data = new Uint8Array(3 * 1024 * 1024 + 7).map((_, i) => i % 253);
    const snap: Message = {
      ...heartbeat(1, 2, 9),
      type: MessageType.Snap,
      snapshot: {
        meta: {
          index: 50,
          term: 9,
          confState: { voters: [1, 2], learners: [] },
        },
        data,
      },
    };
    got.length = 0;
    assert.ok(a.send(2, { groupId: 4, message: snap }));
    a.flush(performance.now());
    await until("snapshot", () => got.length === 1);
    assert.deepEqual(got[0]![1].message, snap);

    await b.close();
    b = new TcpTransport({ nodeId: 2, listen: peers.get(2)!, peers });
    got.length = 0;
    await b.start(collect(got));
    await sendUntilDelivered(
      a,
      2,
      { groupId: 8, message: heartbeat(1, 2, 3) },
      () => got.length > 0,
    );
    assert.equal(got[0]![1].groupId, 8);
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("TcpTransport sends a turn of appends larger than one frame may be, and refuses at send what passes its queue bound", async () => {
  const { a, b, got } = await connectedPair({
    sendQueueBytesMax: 96 * 1024 * 1024,
  });
  const append = (g: number, i: number): Envelope => ({
    groupId: g,
    message: newMessage({
      type: MessageType.App,
      from: 1,
      to: 2,
      term: 2,
      index: i,
      entries: [{
        index: i + 1,
        term: 2,
        type: 0,
        data: new Uint8Array(1024 * 1024).fill(i % 251),
      }],
    }),
  });
  try {
    // 8 groups catching a follower up: 80 MiB in one turn, above the 64
    // MiB frame limit, within the 96 MiB queue; the rest is refused.
    const accepted: Envelope[] = [];
    const refused: Envelope[] = [];
    for (let i = 0; i < 100; i++) {
      const env = append(i % 8, i);
      (a.send(2, env) ? accepted : refused).push(env);
    }
    assert.equal(accepted.length, 95);
    assert.equal(refused.length, 5);
    a.flush(performance.now());
    await until("every accepted append", () => got.length === 95, 20_000);
    assert.deepEqual(
      got.map((
        [, e],
      ) => [e.groupId, e.message.index, e.message.entries[0]!.data[7]]),
      accepted.map((e) => [e.groupId, e.message.index, e.message.index % 251]),
    );
  } finally {
    await a.close();
    await b.close();
  }
});

Deno.test("TcpTransport.sendApp delivers without a flush, bounded by the send queue, only to the addressed node", async () => {
  const addr1 = { hostname: "127.0.0.1", port: freePort() };
  const addr2 = { hostname: "127.0.0.1", port: freePort() };
  // Node 1 believes node 3 lives at node 2's address: a stale address book.
  const a = new TcpTransport({
    nodeId: 1,
    listen: addr1,
    peers: new Map([[2, addr2], [3, addr2]]),
    sendQueueBytesMax: 1024,
    backoffMinMs: 5,
  });
  const b = new TcpTransport({
    nodeId: 2,
    listen: addr2,
    peers: new Map([[1, addr1]]),
  });
  const gotByB: [NodeId, string][] = [];
  const gotByA: [NodeId, string][] = [];
  const dec = new TextDecoder();
  const enc = new TextEncoder();
  await a.start({
    messages: () => {},
    app: (from, data) => gotByA.push([from, dec.decode(data)]),
  });
  await b.start({
    messages: () => {},
    app: (from, data) => gotByB.push([from, dec.decode(data)]),
  });
  try {
    assert.equal(a.sendApp(9, enc.encode("nobody")), false, "unknown peer");
    // The first sends only open the connection; flush() is never called.
    await until("a connected to 2", () => a.sendApp(2, enc.encode("hi 2")));
    await until("b received", () => gotByB.length === 1);
    assert.deepEqual(gotByB, [[1, "hi 2"]]);

    await until("b connected to 1", () => b.sendApp(1, enc.encode("hi 1")));
    await until("a received", () => gotByA.length === 1);
    assert.deepEqual(gotByA, [[2, "hi 1"]]);

    assert.equal(
      a.sendApp(2, new Uint8Array(2048)),
      false,
      "over the 1 KiB send queue",
    );
    assert.throws(
      () => a.sendApp(2, new Uint8Array(16 * 1024 * 1024 + 1)),
      RangeError,
    );

    // Node 2 hears from the connection meant for node 3 but drops what is addressed to 3.
    const heardBefore = b.lastHeardMs(1);
    await until("misrouted frame arrived", () => {
      if (b.lastHeardMs(1) > heardBefore) return true;
      a.sendApp(3, enc.encode("for 3"));
      return false;
    });
    assert.deepEqual(gotByB, [[1, "hi 2"]]);
  } finally {
    await a.close();
    await b.close();
  }
});

/**
 * Forwards connections to `target` until cut; then every open connection
 * carries nothing more, in either direction, and raises no error, as over
 * a link that went dark, and new ones fail. Connections opened after
 * heal() forward again.
 */
class DarkLink {
  readonly port: number;
  readonly #listener: Deno.TcpListener;
  readonly #open = new Set<{ live: boolean; conns: Deno.TcpConn[] }>();
  #cut = false;

  constructor(target: number) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#listener = listener;
    this.port = listener.addr.port;
    (async () => {
      for await (const inbound of listener) {
        if (this.#cut) {
          inbound.close();
          continue;
        }
        const outbound = await Deno.connect({
          hostname: "127.0.0.1",
          port: target,
        });
        const link = { live: true, conns: [inbound, outbound] };
        this.#open.add(link);
        this.#pipe(link, inbound, outbound);
        this.#pipe(link, outbound, inbound);
      }
    })().catch(() => {});
  }

  async #pipe(
    link: { live: boolean },
    from: Deno.TcpConn,
    to: Deno.TcpConn,
  ): Promise<void> {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        if (link.live) await to.write(buf.subarray(0, n));
      }
    } catch {
      // Closed by close().
    }
  }

  cut(): void {
    this.#cut = true;
    for (const link of this.#open) link.live = false;
  }

  heal(): void {
    this.#cut = false;
  }

  close(): void {
    this.#listener.close();
    for (const link of this.#open) {
      for (const c of link.conns) {
        try {
          c.close();
        } catch {
          // Already closed.
        }
      }
    }
  }
}

Deno.test("TcpTransport reopens a connection that went silent without an error, so a healed link carries messages again", async () => {
  const ports = { a: freePort(), b: freePort() };
  const toB = new DarkLink(ports.b);
  const toA = new DarkLink(ports.a);
  const options = { silenceMs: 300, backoffMinMs: 10, backoffMaxMs: 50 };
  const got: [NodeId, Envelope][] = [];
  const a = new TcpTransport({
    nodeId: 1,
    listen: { hostname: "127.0.0.1", port: ports.a },
    peers: new Map([[2, { hostname: "127.0.0.1", port: toB.port }]]),
    ...options,
  });
  const b = new TcpTransport({
    nodeId: 2,
    listen: { hostname: "127.0.0.1", port: ports.b },
    peers: new Map([[1, { hostname: "127.0.0.1", port: toA.port }]]),
    ...options,
  });
  await a.start(ignoreInbound);
  await b.start(collect(got));
  // The hosts' loop: every turn flushes, which pings an idle peer.
  const turns = setInterval(() => {
    a.flush(performance.now());
    b.flush(performance.now());
  }, 20);
  try {
    const env = (term: number) => ({
      groupId: 1,
      message: heartbeat(1, 2, term),
    });
    await sendUntilDelivered(a, 2, env(1), () => got.length > 0);
    await until("each heard the other", () => a.lastHeardMs(2) > 0);
    toB.cut();
    toA.cut();
    got.length = 0;
    a.send(2, env(2));
    await new Promise((r) => setTimeout(r, 500));
    assert.equal(got.length, 0);
    toB.heal();
    toA.heal();
    await sendUntilDelivered(
      a,
      2,
      env(3),
      () => got.some(([, e]) => e.message.term === 3),
    );
  } finally {
    clearInterval(turns);
    await a.close();
    await b.close();
    toA.close();
    toB.close();
  }
});

Deno.test("TcpTransport with tls delivers between nodes of the cluster's CA, and reads nothing from a node without TLS or whose certificate another CA issued", async () => {
  const cluster = await makeCerts();
  const stranger = await makeCerts();
  const read = (path: string) => Deno.readTextFile(path);
  const credentials = (certs: typeof cluster, ca: string) =>
    Promise.all([read(certs.certFile), read(certs.keyFile)]).then(
      ([cert, key]) => new PeerCredentials({ cert, key, ca }),
    );
  const clusterCa = await read(cluster.caFile);
  const tls = await credentials(cluster, clusterCa);
  // Trusts the cluster's CA, so TLS works, but proves with another CA's certificate.
  const forged = await credentials(stranger, clusterCa);
  const peers = new Map<NodeId, Address>([
    [1, { hostname: "127.0.0.1", port: freePort() }],
    [2, { hostname: "127.0.0.1", port: freePort() }],
    [3, { hostname: "127.0.0.1", port: freePort() }],
    [4, { hostname: "127.0.0.1", port: freePort() }],
  ]);
  const warnings: string[] = [];
  const got: [NodeId, Envelope][] = [];
  const options = (nodeId: NodeId) => ({
    nodeId,
    listen: peers.get(nodeId)!,
    peers,
    backoffMinMs: 10,
    backoffMaxMs: 50,
  });
  const b = new TcpTransport({
    ...options(2),
    tls,
    logger: { warn: (m: string) => warnings.push(m) },
  });
  const transports = [
    new TcpTransport({ ...options(1), tls }),
    b,
    new TcpTransport({ ...options(3), tls: forged }),
    new TcpTransport(options(4)),
  ];
  await b.start(collect(got));
  for (const t of transports) if (t !== b) await t.start(ignoreInbound);
  try {
    await sendUntilDelivered(
      transports[0]!,
      2,
      { groupId: 1, message: heartbeat(1, 2, 1) },
      () => got.length > 0,
    );
    assert.deepEqual(got.map(([from]) => from), [1]);
    for (const from of [3, 4]) {
      const t = transports[from - 1]!;
      const deadline = performance.now() + 1_000;
      while (performance.now() < deadline) {
        t.send(2, { groupId: 1, message: heartbeat(from, 2, 1) });
        t.flush(performance.now());
        await new Promise((r) => setTimeout(r, 20));
      }
    }
    assert.deepEqual(got.map(([from]) => from), [1], "only node 1 got through");
    assert.ok(
      warnings.some((w) =>
        /Proof refused: .*not issued by the cluster's CA/.test(w)
      ),
      warnings.join("\n"),
    );
  } finally {
    for (const t of transports) await t.close();
    await Deno.remove(cluster.dir, { recursive: true });
    await Deno.remove(stranger.dir, { recursive: true });
  }
});

Deno.test("TcpTransport.reloadTls serves new connections with the new certificate and CA, and keeps the open ones", async () => {
  const before = await makeCerts();
  const after = await makeCerts();
  const read = (path: string) => Deno.readTextFile(path);
  const credentials = async (certs: typeof before) =>
    new PeerCredentials({
      cert: await read(certs.certFile),
      key: await read(certs.keyFile),
      ca: await read(certs.caFile),
    });
  const [oldTls, newTls] = [
    await credentials(before),
    await credentials(after),
  ];
  const peers = new Map<NodeId, Address>(
    [1, 2, 3, 4].map((id) => [id, { hostname: "127.0.0.1", port: freePort() }]),
  );
  const options = (nodeId: NodeId, tls: PeerCredentials) => ({
    nodeId,
    listen: peers.get(nodeId)!,
    peers,
    backoffMinMs: 10,
    backoffMaxMs: 50,
    tls,
  });
  const got: [NodeId, Envelope][] = [];
  const receiver = new TcpTransport(options(2, oldTls));
  const transports = [
    new TcpTransport(options(1, oldTls)),
    receiver,
    new TcpTransport(options(3, oldTls)),
    new TcpTransport(options(4, newTls)),
  ];
  await receiver.start(collect(got));
  for (const t of transports) if (t !== receiver) await t.start(ignoreInbound);
  const from = (id: NodeId) => got.filter(([f]) => f === id).length;
  try {
    await sendUntilDelivered(
      transports[0]!,
      2,
      { groupId: 1, message: heartbeat(1, 2, 1) },
      () => from(1) > 0,
    );
    await receiver.reloadTls(newTls);
    // Node 1's connection was proved before the reload: it carries on.
    const sent = from(1);
    transports[0]!.send(2, { groupId: 1, message: heartbeat(1, 2, 2) });
    transports[0]!.flush(performance.now());
    await until("the open connection delivers", () => from(1) > sent);
    await sendUntilDelivered(
      transports[3]!,
      2,
      { groupId: 1, message: heartbeat(4, 2, 1) },
      () => from(4) > 0,
    );
    const deadline = performance.now() + 1_000;
    while (performance.now() < deadline) {
      transports[2]!.send(2, { groupId: 1, message: heartbeat(3, 2, 1) });
      transports[2]!.flush(performance.now());
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.equal(from(3), 0, "a node of the old CA no longer gets in");
  } finally {
    for (const t of transports) await t.close();
    await Deno.remove(before.dir, { recursive: true });
    await Deno.remove(after.dir, { recursive: true });
  }
});
