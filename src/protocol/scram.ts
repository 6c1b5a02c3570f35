/**
 * SASL SCRAM (RFC 5802, with SHA-256 and SHA-512 as RFC 7677 and Kafka's KIP-84
 * use them), beside the wire codecs since broker and client both speak it:
 * the credential a server keeps (salt, iterations, StoredKey,
 * ServerKey: never the password) and both sides of the exchange. raftq's
 * broker runs the server side; its own client (the CLI) the client side.
 * The hash is a parameter so the RFC's own test vectors, SHA-1 among them,
 * check this code.
 */
import {
  createHash,
  createHmac,
  pbkdf2Sync,
  randomBytes,
  timingSafeEqual,
} from "node:crypto";
import { Buffer } from "node:buffer";

export interface ScramHash {
  /** node:crypto's digest name. */
  readonly digest: string;
  readonly bytes: number;
}

export type ScramMechanism = "SCRAM-SHA-256" | "SCRAM-SHA-512";

export const SCRAM_HASHES: Readonly<Record<ScramMechanism, ScramHash>> = {
  "SCRAM-SHA-256": { digest: "sha256", bytes: 32 },
  "SCRAM-SHA-512": { digest: "sha512", bytes: 64 },
};

/** Kafka's lower bound for SCRAM iterations (ScramMechanism.minIterations). */
export const SCRAM_ITERATIONS_MIN = 4096;
export const SCRAM_ITERATIONS_MAX = 16384;

/** What the server stores for one user and mechanism. */
export interface ScramCredential {
  readonly salt: Uint8Array;
  readonly iterations: number;
  readonly storedKey: Uint8Array;
  readonly serverKey: Uint8Array;
}

export class ScramError extends Error {
  override name = "ScramError";
}

function hmac(hash: ScramHash, key: Uint8Array, text: string): Uint8Array {
  return createHmac(hash.digest, key).update(text).digest();
}

function h(hash: ScramHash, data: Uint8Array): Uint8Array {
  return createHash(hash.digest).update(data).digest();
}

function xor(a: Uint8Array, b: Uint8Array): Uint8Array {
  return a.map((x, i) => x ^ b[i]!);
}

function b64(bytes: Uint8Array): string {
  return Buffer.from(bytes).toString("base64");
}

function unb64(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64"));
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Hi() of RFC 5802: PBKDF2 with HMAC of the hash. */
export function saltPassword(
  hash: ScramHash,
  secret: { password: string; salt: Uint8Array; iterations: number },
): Uint8Array {
  return new Uint8Array(
    pbkdf2Sync(
      secret.password.normalize("NFKC"),
      secret.salt,
      secret.iterations,
      hash.bytes,
      hash.digest,
    ),
  );
}

/** The stored form of a salted password (what AlterUserScramCredentials sends). */
export function credentialOf(
  hash: ScramHash,
  salted: { saltedPassword: Uint8Array; salt: Uint8Array; iterations: number },
): ScramCredential {
  const clientKey = hmac(hash, salted.saltedPassword, "Client Key");
  return {
    salt: salted.salt,
    iterations: salted.iterations,
    storedKey: h(hash, clientKey),
    serverKey: hmac(hash, salted.saltedPassword, "Server Key"),
  };
}

/** True when `password` is the one the credential was made from (SASL/PLAIN). */
export function passwordMatches(
  hash: ScramHash,
  credential: ScramCredential,
  password: string,
): boolean {
  const saltedPassword = saltPassword(hash, {
    password,
    salt: credential.salt,
    iterations: credential.iterations,
  });
  const made = credentialOf(hash, { ...credential, saltedPassword });
  return sameBytes(made.storedKey, credential.storedKey);
}

/** A fresh printable nonce (no comma, as RFC 5802 requires). */
export function newNonce(): string {
  return b64(randomBytes(24));
}

/** Attributes of a SCRAM message ("r=...,s=...,i=..."), in order. */
function attributes(message: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of message.split(",")) {
    if (!/^[A-Za-z]=/.test(part)) {
      // The text is not echoed: a client that mixed up mechanisms may have
      // sent its password here.
      throw new ScramError("Malformed SCRAM attribute");
    }
    out.set(part[0]!, part.slice(2));
  }
  return out;
}

function required(attrs: Map<string, string>, name: string): string {
  const value = attrs.get(name);
  if (value === undefined || value === "") {
    throw new ScramError(`SCRAM message lacks its "${name}" attribute`);
  }
  return value;
}

/** saslname of RFC 5802: "=2C" and "=3D" stand for "," and "=". */
function decodeName(name: string): string {
  if (/=(?!2C|3D)/.test(name)) {
    throw new ScramError("Malformed SCRAM user name");
  }
  return name.replaceAll("=2C", ",").replaceAll("=3D", "=");
}

function encodeName(name: string): string {
  return name.replaceAll("=", "=3D").replaceAll(",", "=2C");
}

/** The server's state between the client's first and final message. */
export interface ScramExchange {
  readonly user: string;
  readonly gs2Header: string;
  readonly nonce: string;
  readonly clientFirstBare: string;
  readonly serverFirst: string;
}

/** Reads client-first-message and names the user whose credential is needed. */
export function readClientFirst(
  message: string,
): { user: string; gs2Header: string; clientNonce: string; bare: string } {
  // gs2-header: no channel binding ("n" or "y"), an optional authzid.
  const match = /^([ny]),(a=[^,]*)?,(.*)$/.exec(message);
  if (match === null) {
    throw new ScramError("Malformed SCRAM client-first-message");
  }
  const bare = match[3]!;
  const attrs = attributes(bare);
  return {
    user: decodeName(required(attrs, "n")),
    gs2Header: `${match[1]},${match[2] ?? ""},`,
    clientNonce: required(attrs, "r"),
    bare,
  };
}

export function serverFirst(
  client: {
    user: string;
    gs2Header: string;
    clientNonce: string;
    bare: string;
  },
  opts: { credential: ScramCredential; serverNonce: string },
): ScramExchange {
  const nonce = client.clientNonce + opts.serverNonce;
  return {
    user: client.user,
    gs2Header: client.gs2Header,
    nonce,
    clientFirstBare: client.bare,
    serverFirst: `r=${nonce},s=${
      b64(opts.credential.salt)
    },i=${opts.credential.iterations}`,
  };
}

/**
 * Checks client-final-message against the credential and answers the
 * server-final-message; throws ScramError when the proof is wrong.
 */
export function serverFinal(
  hash: ScramHash,
  exchange: ScramExchange,
  opts: { message: string; credential: ScramCredential },
): string {
  const proofAt = opts.message.lastIndexOf(",p=");
  if (proofAt < 0) throw new ScramError("SCRAM client-final-message lacks p");
  const withoutProof = opts.message.slice(0, proofAt);
  const attrs = attributes(withoutProof);
  if (
    required(attrs, "c") !== b64(new TextEncoder().encode(exchange.gs2Header))
  ) {
    throw new ScramError("SCRAM channel binding does not match");
  }
  // librdkafka 2.0 sends its own nonce again in front of the combined one;
  // Kafka's broker accepts that (it checks that the nonce ends with the
  // one it sent), and so must raftq. The proof covers the text as sent.
  if (!required(attrs, "r").endsWith(exchange.nonce)) {
    throw new ScramError("SCRAM nonce does not match");
  }
  const proof = unb64(opts.message.slice(proofAt + 3));
  const authMessage =
    `${exchange.clientFirstBare},${exchange.serverFirst},${withoutProof}`;
  const signature = hmac(hash, opts.credential.storedKey, authMessage);
  if (proof.length !== signature.length) {
    throw new ScramError("SCRAM proof has the wrong length");
  }
  const clientKey = xor(proof, signature);
  if (!sameBytes(h(hash, clientKey), opts.credential.storedKey)) {
    throw new ScramError("SCRAM proof is wrong");
  }
  return `v=${b64(hmac(hash, opts.credential.serverKey, authMessage))}`;
}

/** The client side, for raftq's own client. */
export class ScramClient {
  readonly #hash: ScramHash;
  readonly #password: string;
  readonly #firstBare: string;
  readonly #nonce: string;
  #expectedServerSignature: string | null = null;

  constructor(
    hash: ScramHash,
    opts: { user: string; password: string; nonce?: string },
  ) {
    this.#hash = hash;
    this.#password = opts.password;
    this.#nonce = opts.nonce ?? newNonce();
    this.#firstBare = `n=${encodeName(opts.user)},r=${this.#nonce}`;
  }

  first(): string {
    return `n,,${this.#firstBare}`;
  }

  final(serverFirstMessage: string): string {
    const attrs = attributes(serverFirstMessage);
    const nonce = required(attrs, "r");
    if (!nonce.startsWith(this.#nonce)) {
      throw new ScramError("Server's SCRAM nonce does not extend ours");
    }
    const iterations = Number(required(attrs, "i"));
    if (!Number.isSafeInteger(iterations) || iterations < 1) {
      throw new ScramError("Server's SCRAM iteration count is invalid");
    }
    const saltedPassword = saltPassword(this.#hash, {
      password: this.#password,
      salt: unb64(required(attrs, "s")),
      iterations,
    });
    const withoutProof = `c=${b64(new TextEncoder().encode("n,,"))},r=${nonce}`;
    const authMessage =
      `${this.#firstBare},${serverFirstMessage},${withoutProof}`;
    const clientKey = hmac(this.#hash, saltedPassword, "Client Key");
    const signature = hmac(this.#hash, h(this.#hash, clientKey), authMessage);
    const serverKey = hmac(this.#hash, saltedPassword, "Server Key");
    this.#expectedServerSignature = b64(
      hmac(this.#hash, serverKey, authMessage),
    );
    return `${withoutProof},p=${b64(xor(clientKey, signature))}`;
  }

  /** Throws unless the server proved it knows the credential too. */
  verify(serverFinalMessage: string): void {
    const attrs = attributes(serverFinalMessage);
    const error = attrs.get("e");
    if (error !== undefined) throw new ScramError(`Server refused: ${error}`);
    if (required(attrs, "v") !== this.#expectedServerSignature) {
      throw new ScramError("Server's SCRAM signature is wrong");
    }
  }
}
