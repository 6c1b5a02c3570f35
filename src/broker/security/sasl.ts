/**
 * The broker's side of SASL (KIP-43, KIP-152): SaslHandshake picks a
 * mechanism the listener allows, then SaslAuthenticate (or, after a v0
 * handshake, bare tokens) carries the exchange. PLAIN checks the password
 * against the user's SCRAM credential, so no password is ever stored.
 * Failures never name the password, and say the same for an unknown user
 * as for a wrong password.
 */
import { createHash } from "node:crypto";
import type { Listener, SaslMechanism } from "../../config/mod.ts";
import {
  ErrorCode,
  newNonce,
  passwordMatches,
  readClientFirst,
  SCRAM_HASHES,
  type ScramCredential,
  ScramError,
  type ScramMechanism,
  serverFinal,
  serverFirst,
} from "../../protocol/mod.ts";
import type {
  ScramMechanismName,
  StoredScramCredential,
} from "../controller/mod.ts";
import type { UsersPort } from "../ports.ts";
import type { Session } from "./session.ts";

export class SaslFailure extends Error {
  override name = "SaslFailure";
}

export interface SaslStep {
  /** The token to answer with; empty once PLAIN succeeds. */
  readonly token: Uint8Array;
}

const decoder = new TextDecoder("utf-8", { fatal: true });
const encoder = new TextEncoder();

function text(token: Uint8Array): string {
  try {
    return decoder.decode(token);
  } catch {
    throw new SaslFailure("SASL token is not UTF-8");
  }
}

function fromBase64(text: string): Uint8Array {
  return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
}

function credentialOfStored(stored: StoredScramCredential): ScramCredential {
  return {
    salt: fromBase64(stored.salt),
    iterations: stored.iterations,
    storedKey: fromBase64(stored.storedKey),
    serverKey: fromBase64(stored.serverKey),
  };
}

/** The answer of SaslHandshake: the error code and the listener's mechanisms. */
export function startHandshake(
  session: Session,
  opts: { listener: Listener; mechanism: string; rawTokens: boolean },
): number {
  if (!opts.listener.protocol.startsWith("SASL")) {
    return ErrorCode.ILLEGAL_SASL_STATE;
  }
  const mechanism = opts.listener.saslMechanisms.find((m) =>
    m === opts.mechanism
  );
  if (mechanism === undefined) return ErrorCode.UNSUPPORTED_SASL_MECHANISM;
  if (
    session.principal !== null &&
    (opts.rawTokens || mechanism !== session.mechanism)
  ) {
    // KIP-368: re-authentication keeps its mechanism and needs v1, since a
    // v0 client's bare tokens cannot be told from requests once it is in.
    session.failed = true;
    return ErrorCode.ILLEGAL_SASL_STATE;
  }
  session.mechanism = mechanism;
  session.scram = null;
  session.rawTokens = opts.rawTokens;
  return ErrorCode.NONE;
}

/**
 * Passwords already accepted, by SHA-256 digest, per credential. A check
 * is a PBKDF2 run (about 4 ms at 4096 iterations) and the admin API's
 * Basic credentials come with every request a dashboard polls; a changed
 * or deleted credential is a new object, so what it accepted goes with it.
 */
const accepted = new WeakMap<StoredScramCredential, Set<string>>();
const REMEMBERED_PER_CREDENTIAL = 16;

function digestOf(password: string): string {
  return createHash("sha256").update(password).digest("base64");
}

/** Is `password` the one some SCRAM credential of `user` was made from? */
export function passwordAccepted(
  users: UsersPort,
  user: string,
  password: string,
): boolean {
  const digest = digestOf(password);
  for (const [mechanism, stored] of users.scramCredentials(user)) {
    const known = accepted.get(stored);
    if (known?.has(digest)) return true;
    if (
      passwordMatches(
        SCRAM_HASHES[mechanism],
        credentialOfStored(stored),
        password,
      )
    ) {
      const set = known ?? new Set();
      if (set.size >= REMEMBERED_PER_CREDENTIAL) set.clear();
      accepted.set(stored, set.add(digest));
      return true;
    }
  }
  return false;
}

function checkPlain(users: UsersPort, token: Uint8Array): string {
  // authzid NUL authcid NUL passwd (RFC 4616).
  const parts = text(token).split("\u0000");
  if (parts.length !== 3) throw new SaslFailure("Malformed SASL/PLAIN token");
  const [authzid, user, password] = parts as [string, string, string];
  if (user === "" || (authzid !== "" && authzid !== user)) {
    throw new SaslFailure("Malformed SASL/PLAIN token");
  }
  if (!passwordAccepted(users, user, password)) {
    throw new SaslFailure(`Authentication failed for user "${user}"`);
  }
  return user;
}

function scramStep(
  users: UsersPort,
  session: Session,
  opts: { mechanism: ScramMechanism; token: Uint8Array },
): Uint8Array {
  const message = text(opts.token);
  const stored = (user: string) =>
    users.scramCredentials(user).get(opts.mechanism as ScramMechanismName);
  try {
    if (session.scram === null) {
      const first = readClientFirst(message);
      const found = stored(first.user);
      if (found === undefined) {
        throw new SaslFailure(`Authentication failed for user "${first.user}"`);
      }
      session.scram = serverFirst(first, {
        credential: credentialOfStored(found),
        serverNonce: newNonce(),
      });
      return encoder.encode(session.scram.serverFirst);
    }
    const exchange = session.scram;
    session.scram = null;
    const found = stored(exchange.user);
    if (found === undefined) {
      throw new SaslFailure(
        `Authentication failed for user "${exchange.user}"`,
      );
    }
    const answer = serverFinal(SCRAM_HASHES[opts.mechanism], exchange, {
      message,
      credential: credentialOfStored(found),
    });
    authenticated(session, `User:${exchange.user}`);
    return encoder.encode(answer);
  } catch (err) {
    if (err instanceof ScramError) {
      throw new SaslFailure(`Authentication failed: ${err.message}`);
    }
    throw err;
  }
}

/** A re-authentication may renew a session, not change whose it is. */
function authenticated(session: Session, principal: string): void {
  if (session.principal !== null && session.principal !== principal) {
    throw new SaslFailure(
      `Re-authentication as ${principal} on a connection of ${session.principal}`,
    );
  }
  session.principal = principal;
}

/**
 * Once an exchange has completed, its session lasts `maxReauthMs` (0:
 * as long as the connection); returns the lifetime SaslAuthenticate v1+
 * reports, 0 while the exchange goes on.
 */
export function renewSession(
  session: Session,
  maxReauthMs: number,
  now: number = Date.now(),
): number {
  if (session.principal === null || session.scram !== null) return 0;
  session.expiresAt = maxReauthMs === 0 ? null : now + maxReauthMs;
  return maxReauthMs;
}

/**
 * Runs one step of the exchange the handshake chose. On success the
 * session's principal is set; a wrong credential or malformed token
 * throws SaslFailure, whose message is safe to log and to send.
 */
export function authenticate(
  users: UsersPort,
  session: Session,
  token: Uint8Array,
): SaslStep {
  const mechanism: SaslMechanism | null = session.mechanism;
  if (mechanism === null) {
    throw new SaslFailure("SaslAuthenticate before SaslHandshake");
  }
  if (mechanism === "PLAIN") {
    authenticated(session, `User:${checkPlain(users, token)}`);
    return { token: new Uint8Array(0) };
  }
  return { token: scramStep(users, session, { mechanism, token }) };
}
