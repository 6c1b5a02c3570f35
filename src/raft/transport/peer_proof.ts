/**
 * raft.tls: who is on the other end of a Raft connection. TLS proves the
 * receiving node to the connecting one (its certificate is checked against
 * the cluster's CA), but Deno.listenTls neither asks for nor verifies
 * client certificates, so the receiver cannot learn who connected. It
 * sends a random challenge instead, and the connecting node answers with
 * its certificate and a signature of the challenge by that certificate's
 * key: without a certificate the cluster's CA issued, and its key, a
 * process gets no Raft message through.
 */
import {
  createPrivateKey,
  type KeyObject,
  randomBytes,
  sign,
  verify,
  X509Certificate,
} from "node:crypto";
import type { PeerProof } from "./codec.ts";

export const CHALLENGE_BYTES = 32;
/** Keeps a signature made here from being good for anything else. */
const CONTEXT = new TextEncoder().encode("raftq raft peer proof v1\u0000");

/** PEM text of this node's certificate chain and key, and of the cluster's CA. */
export interface PeerTlsFiles {
  readonly cert: string;
  readonly key: string;
  readonly ca: string;
}

function signed(challenge: Uint8Array): Uint8Array {
  const data = new Uint8Array(CONTEXT.length + challenge.length);
  data.set(CONTEXT);
  data.set(challenge, CONTEXT.length);
  return data;
}

/** Ed25519 and Ed448 sign the message itself; RSA and EC keys a SHA-256 of it. */
function digestFor(key: KeyObject): string | null {
  const type = key.asymmetricKeyType;
  return type === "ed25519" || type === "ed448" ? null : "sha256";
}

export class PeerCredentials {
  /** For Deno.listenTls and Deno.startTls. */
  readonly cert: string;
  readonly key: string;
  readonly caCerts: readonly string[];
  readonly #ca: X509Certificate;
  readonly #certificate: Uint8Array;
  readonly #privateKey: KeyObject;

  /** Throws when a PEM does not parse or the key is not the certificate's. */
  constructor(files: PeerTlsFiles) {
    this.cert = files.cert;
    this.key = files.key;
    this.caCerts = [files.ca];
    this.#ca = new X509Certificate(files.ca);
    const own = new X509Certificate(files.cert);
    this.#certificate = new Uint8Array(own.raw);
    this.#privateKey = createPrivateKey(files.key);
    if (!own.checkPrivateKey(this.#privateKey)) {
      throw new Error("the key is not the certificate's");
    }
  }

  static challenge(): Uint8Array {
    return new Uint8Array(randomBytes(CHALLENGE_BYTES));
  }

  prove(challenge: Uint8Array): PeerProof {
    return {
      certificate: this.#certificate,
      signature: new Uint8Array(
        sign(digestFor(this.#privateKey), signed(challenge), this.#privateKey),
      ),
    };
  }

  /** Why the proof fails, or null when it holds now. */
  check(
    challenge: Uint8Array,
    proof: PeerProof,
    now = new Date(),
  ): string | null {
    let certificate: X509Certificate;
    try {
      certificate = new X509Certificate(proof.certificate);
    } catch {
      return "the certificate does not parse";
    }
    if (
      certificate.checkIssued(this.#ca) === false ||
      !certificate.verify(this.#ca.publicKey)
    ) {
      return `the certificate of "${certificate.subject}" is not issued by the cluster's CA`;
    }
    if (
      now < new Date(certificate.validFrom) ||
      now > new Date(certificate.validTo)
    ) {
      return `the certificate of "${certificate.subject}" is not valid now`;
    }
    const key = certificate.publicKey;
    const good = verify(
      digestFor(key),
      signed(challenge),
      key,
      proof.signature,
    );
    return good
      ? null
      : "the challenge's signature does not match the certificate";
  }
}
