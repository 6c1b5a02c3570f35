/**
 * SCRAM against the published examples: RFC 5802 section 5 (SHA-1) and
 * RFC 7677 section 3 (SHA-256), played through both the client and the
 * server side with the RFCs' nonces, then the failures a broker must spot.
 */
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import {
  credentialOf,
  passwordMatches,
  readClientFirst,
  saltPassword,
  SCRAM_HASHES,
  ScramClient,
  ScramError,
  type ScramHash,
  serverFinal,
  serverFirst,
} from "./scram.ts";

interface Vector {
  hash: ScramHash;
  clientNonce: string;
  serverNonce: string;
  salt: string;
  clientFirst: string;
  serverFirst: string;
  clientFinal: string;
  serverFinal: string;
}

const RFC_5802: Vector = {
  hash: { digest: "sha1", bytes: 20 },
  clientNonce: "fyko+d2lbbFgONRv9qkxdawL",
  serverNonce: "3rfcNHYJY1ZVvWVs7j",
  salt: "QSXCR+Q6sek8bf92",
  clientFirst: "n,,n=user,r=fyko+d2lbbFgONRv9qkxdawL",
  serverFirst:
    "r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,s=QSXCR+Q6sek8bf92,i=4096",
  clientFinal:
    "c=biws,r=fyko+d2lbbFgONRv9qkxdawL3rfcNHYJY1ZVvWVs7j,p=v0X8v3Bz2T0CJGbJQyF0X+HI4Ts=",
  serverFinal: "v=rmF9pqV8S7suAoZWja4dJRkFsKQ=",
};

const RFC_7677: Vector = {
  hash: SCRAM_HASHES["SCRAM-SHA-256"],
  clientNonce: "rOprNGfwEbeRWgbNEkqO",
  serverNonce: "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0",
  salt: "W22ZaJ0SNY7soEsUEjb6gQ==",
  clientFirst: "n,,n=user,r=rOprNGfwEbeRWgbNEkqO",
  serverFirst:
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",
  clientFinal:
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=",
  serverFinal: "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=",
};

function credential(v: Vector) {
  const salt = new Uint8Array(Buffer.from(v.salt, "base64"));
  const saltedPassword = saltPassword(v.hash, {
    password: "pencil",
    salt,
    iterations: 4096,
  });
  return credentialOf(v.hash, { saltedPassword, salt, iterations: 4096 });
}

for (
  const [name, v] of [["RFC 5802", RFC_5802], ["RFC 7677", RFC_7677]] as const
) {
  Deno.test(`ScramClient produces the messages of ${name}'s example`, () => {
    const client = new ScramClient(v.hash, {
      user: "user",
      password: "pencil",
      nonce: v.clientNonce,
    });
    assert.equal(client.first(), v.clientFirst);
    assert.equal(client.final(v.serverFirst), v.clientFinal);
    client.verify(v.serverFinal);
  });

  Deno.test(`serverFinal accepts ${name}'s client proof and answers its signature`, () => {
    const cred = credential(v);
    const exchange = serverFirst(readClientFirst(v.clientFirst), {
      credential: cred,
      serverNonce: v.serverNonce,
    });
    assert.equal(exchange.serverFirst, v.serverFirst);
    assert.equal(
      serverFinal(v.hash, exchange, {
        message: v.clientFinal,
        credential: cred,
      }),
      v.serverFinal,
    );
  });
}

Deno.test("serverFinal refuses a proof made with another password", () => {
  const cred = credential(RFC_7677);
  const exchange = serverFirst(readClientFirst(RFC_7677.clientFirst), {
    credential: cred,
    serverNonce: RFC_7677.serverNonce,
  });
  const client = new ScramClient(RFC_7677.hash, {
    user: "user",
    password: "pen",
    nonce: RFC_7677.clientNonce,
  });
  client.first();
  const wrong = client.final(exchange.serverFirst);
  assert.throws(
    () =>
      serverFinal(RFC_7677.hash, exchange, {
        message: wrong,
        credential: cred,
      }),
    ScramError,
  );
});

Deno.test("serverFinal refuses a replayed nonce and a missing proof", () => {
  const cred = credential(RFC_7677);
  const exchange = serverFirst(readClientFirst(RFC_7677.clientFirst), {
    credential: cred,
    serverNonce: "another-server-nonce",
  });
  assert.throws(
    () =>
      serverFinal(RFC_7677.hash, exchange, {
        message: RFC_7677.clientFinal,
        credential: cred,
      }),
    /nonce does not match/,
  );
  assert.throws(
    () =>
      serverFinal(RFC_7677.hash, exchange, {
        message: "c=biws",
        credential: cred,
      }),
    ScramError,
  );
});

Deno.test("readClientFirst refuses malformed messages with ScramError only", () => {
  for (
    const bad of ["", "p=tls,,n=u,r=x", "n,,r=x", "n,,n=a=b,r=x", "n,,garbage"]
  ) {
    assert.throws(() => readClientFirst(bad), ScramError, bad);
  }
  assert.equal(readClientFirst("n,,n=a=2Cb=3D,r=x").user, "a,b=");
});

Deno.test("passwordMatches checks a SASL/PLAIN password against a SCRAM credential", () => {
  const cred = credential(RFC_7677);
  assert.equal(passwordMatches(RFC_7677.hash, cred, "pencil"), true);
  assert.equal(passwordMatches(RFC_7677.hash, cred, "pencil2"), false);
});
