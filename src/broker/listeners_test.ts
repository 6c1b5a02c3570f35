import assert from "node:assert/strict";
import { makeCerts, signCert } from "../../tests/tls_certs.ts";
import { type ClientListener, openListener, rfc2253 } from "./listeners.ts";
import type { ClientAuth } from "../config/mod.ts";

const certs = await makeCerts();
const stranger = await makeCerts();
const alice = await signCert(certs, "alice", "/C=US/O=acme, inc/CN=alice");
const mallory = await signCert(stranger, "mallory", "/CN=mallory");
const read = (file: string) => Deno.readTextFileSync(file);

async function listen(clientAuth: ClientAuth, logs: string[] = []) {
  return await openListener({
    hostname: "127.0.0.1",
    port: 0,
    tls: {
      cert: read(certs.certFile),
      key: read(certs.keyFile),
      ca: read(certs.caFile),
      clientAuth,
    },
    log: (msg) => logs.push(msg),
  });
}

/** Connects with `client`'s certificate (or none), sends "ping", reads the echo. */
async function ping(
  listener: ClientListener,
  client?: { certFile: string; keyFile: string },
  caFile = certs.caFile,
): Promise<string> {
  const conn = await Deno.connectTls({
    hostname: "localhost",
    port: listener.port,
    caCerts: [read(caFile)],
    ...(client === undefined
      ? {}
      : { cert: read(client.certFile), key: read(client.keyFile) }),
  });
  try {
    await conn.write(new TextEncoder().encode("ping"));
    const buf = new Uint8Array(256);
    const n = await conn.read(buf);
    return n === null ? "closed" : new TextDecoder().decode(buf.subarray(0, n));
  } catch {
    return "closed";
  } finally {
    conn.close();
  }
}

/** Answers each connection's first read with its peer's subject, then closes. */
async function echoSubjects(listener: ClientListener): Promise<void> {
  for (;;) {
    let conn;
    try {
      conn = await listener.accept();
    } catch {
      return;
    }
    const buf = new Uint8Array(16);
    if (await conn.read(buf) !== null) {
      await conn.write(
        new TextEncoder().encode(conn.peerSubject ?? "anonymous"),
      );
    }
    conn.close();
  }
}

Deno.test("rfc2253 puts the most specific name first and escapes specials", () => {
  assert.equal(rfc2253("C=US\nO=acme\nCN=alice"), "CN=alice,O=acme,C=US");
  assert.equal(
    rfc2253('O=acme, inc\nCN=a+b "x"'),
    'CN=a\\+b \\"x\\",O=acme\\, inc',
  );
  assert.equal(rfc2253("CN= lead#"), "CN=\\ lead#");
});

Deno.test("client_auth required serves a certificate of the CA and names its subject, and fails the handshake of others", async () => {
  const logs: string[] = [];
  const listener = await listen("required", logs);
  const serving = echoSubjects(listener);
  try {
    assert.equal(await ping(listener, alice), "CN=alice,O=acme\\, inc,C=US");
    assert.equal(await ping(listener), "closed");
    assert.equal(await ping(listener, mallory), "closed");
    assert.equal(
      logs.filter((l) => l.startsWith("TLS handshake with 127.0.0.1")).length,
      2,
      logs.join("\n"),
    );
  } finally {
    listener.close();
    await serving;
  }
});

Deno.test("client_auth requested lets a client without a certificate in, anonymous, but not one of another CA", async () => {
  const logs: string[] = [];
  const listener = await listen("requested", logs);
  const serving = echoSubjects(listener);
  try {
    assert.equal(await ping(listener), "anonymous");
    assert.equal(await ping(listener, alice), "CN=alice,O=acme\\, inc,C=US");
    assert.equal(await ping(listener, mallory), "closed");
  } finally {
    listener.close();
    await serving;
  }
});

Deno.test("a client-certificate listener reloads its certificate for new connections and refuses a broken pair", async () => {
  const listener = await listen("required");
  const serving = echoSubjects(listener);
  try {
    await assert.rejects(
      () => listener.reload({ cert: read(certs.certFile), key: "garbage" }),
    );
    assert.equal(await ping(listener, alice), "CN=alice,O=acme\\, inc,C=US");
    // The server's certificate now comes from the other CA; clients still
    // need one of the first (tls.ca_file is reloaded with it).
    await listener.reload({
      cert: read(stranger.certFile),
      key: read(stranger.keyFile),
      ca: read(certs.caFile),
    });
    assert.equal(await ping(listener, alice), "closed");
    assert.equal(
      await ping(listener, alice, stranger.caFile),
      "CN=alice,O=acme\\, inc,C=US",
    );
  } finally {
    listener.close();
    await serving;
  }
});
