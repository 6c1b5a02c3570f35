/**
 * What a client connection has proved about itself. The server makes one
 * per connection; the SASL exchange (sasl.ts) fills it in, and the
 * dispatcher reads it before every request.
 */
import type { SaslMechanism } from "../../config/mod.ts";
import type { ScramExchange } from "../../protocol/mod.ts";

export interface Session {
  /**
   * "User:alice" once SASL succeeded, or "User:CN=alice,O=acme" from a
   * verified client certificate on an SSL listener; null before (or on a
   * plain listener).
   */
  principal: string | null;
  /** The peer's address, for the loopback rule of bootstrapping users. */
  readonly remoteHost: string;
  /** Chosen by SaslHandshake; null until then. */
  mechanism: SaslMechanism | null;
  /**
   * SaslHandshake v0: the tokens that follow come as bare size-prefixed
   * frames, without Kafka request headers (KIP-43).
   */
  rawTokens: boolean;
  /** A SCRAM exchange between its first and its final message. */
  scram: ScramExchange | null;
  /** The last SASL step failed: the connection closes after its answer. */
  failed: boolean;
  /**
   * When the SASL session ends (Date.now() ms, sasl.max_reauth after its
   * last authentication); null: never.
   */
  expiresAt: number | null;
}

export function newSession(remoteHost: string): Session {
  return {
    principal: null,
    remoteHost,
    mechanism: null,
    rawTokens: false,
    scram: null,
    failed: false,
    expiresAt: null,
  };
}

/** 127.0.0.0/8 and ::1, as IPv4, IPv6 or IPv4-mapped IPv6 text. */
export function isLoopback(host: string): boolean {
  const v4 = host.startsWith("::ffff:") ? host.slice(7) : host;
  return v4.startsWith("127.") || host === "::1";
}
