/**
 * One TCP connection to one broker, pipelined: requests are written as they
 * come, many stay in flight, and responses are matched to them by
 * correlation id (Kafka answers in order per connection, but matching by id
 * keeps a stray or late answer from being given to the wrong caller).
 */
import {
  ApiKey,
  type ApiKeyNum,
  decodeResponse,
  encodeRequest,
  FrameDecoder,
  type RequestInput,
  type ResponseBodies,
  SCRAM_HASHES,
  ScramClient,
  writeFrames,
} from "../protocol/mod.ts";
import { ConnectionError, KafkaError, RequestTimeoutError } from "./errors.ts";

/** The versions this client can speak, per api it uses. */
export const CLIENT_VERSIONS = {
  [ApiKey.ApiVersions]: { min: 0, max: 3 },
  [ApiKey.Metadata]: { min: 4, max: 10 },
  [ApiKey.Produce]: { min: 3, max: 8 },
  [ApiKey.Fetch]: { min: 4, max: 12 },
  [ApiKey.ListOffsets]: { min: 1, max: 5 },
  [ApiKey.CreateTopics]: { min: 2, max: 7 },
  [ApiKey.DeleteTopics]: { min: 1, max: 6 },
  [ApiKey.CreatePartitions]: { min: 0, max: 3 },
  [ApiKey.DescribeConfigs]: { min: 1, max: 4 },
  [ApiKey.IncrementalAlterConfigs]: { min: 0, max: 1 },
  [ApiKey.DeleteRecords]: { min: 0, max: 2 },
  [ApiKey.FindCoordinator]: { min: 0, max: 4 },
  [ApiKey.JoinGroup]: { min: 0, max: 6 },
  [ApiKey.SyncGroup]: { min: 0, max: 4 },
  [ApiKey.Heartbeat]: { min: 0, max: 4 },
  [ApiKey.LeaveGroup]: { min: 0, max: 4 },
  [ApiKey.OffsetCommit]: { min: 2, max: 8 },
  [ApiKey.OffsetFetch]: { min: 1, max: 8 },
  [ApiKey.DescribeGroups]: { min: 0, max: 5 },
  [ApiKey.ListGroups]: { min: 0, max: 4 },
  [ApiKey.DeleteGroups]: { min: 0, max: 2 },
  [ApiKey.ElectLeaders]: { min: 1, max: 2 },
  [ApiKey.AlterPartitionReassignments]: { min: 0, max: 0 },
  [ApiKey.ListPartitionReassignments]: { min: 0, max: 0 },
  [ApiKey.DescribeQuorum]: { min: 0, max: 1 },
  [ApiKey.OffsetDelete]: { min: 0, max: 0 },
  [ApiKey.DescribeCluster]: { min: 0, max: 1 },
  [ApiKey.DescribeProducers]: { min: 0, max: 0 },
  [ApiKey.DescribeTransactions]: { min: 0, max: 0 },
  [ApiKey.ListTransactions]: { min: 0, max: 1 },
  // v1: the tokens travel inside SaslAuthenticate, not bare.
  [ApiKey.SaslHandshake]: { min: 1, max: 1 },
  [ApiKey.SaslAuthenticate]: { min: 0, max: 2 },
  [ApiKey.DescribeUserScramCredentials]: { min: 0, max: 0 },
  [ApiKey.AlterUserScramCredentials]: { min: 0, max: 0 },
  // v1 is the first with pattern types (KIP-290).
  [ApiKey.DescribeAcls]: { min: 1, max: 3 },
  [ApiKey.CreateAcls]: { min: 1, max: 3 },
  [ApiKey.DeleteAcls]: { min: 1, max: 3 },
} as const;
export type ClientApi = keyof typeof CLIENT_VERSIONS;

const UNSUPPORTED_VERSION = 35;
// Responses to the client are small except fetches, which the caller bounds
// with maxBytes; this only stops a corrupt size prefix from allocating GBs.
const MAX_RESPONSE_BYTES = 1 << 30;

interface Pending {
  apiKey: ApiKeyNum;
  apiVersion: number;
  resolve(body: unknown): void;
  reject(error: Error): void;
  timer: ReturnType<typeof setTimeout>;
}

export type SaslMechanism = "PLAIN" | "SCRAM-SHA-256" | "SCRAM-SHA-512";

/** How a connection proves who it talks to and who it is (Kafka's client properties). */
export interface SecurityOptions {
  /**
   * TLS, trusting these PEM CA certificates (the system's when empty), and
   * presenting a client certificate when the broker asks for one.
   */
  readonly tls?: {
    readonly caCerts: readonly string[];
    readonly clientCert?: { readonly cert: string; readonly key: string };
  };
  readonly sasl?: {
    readonly mechanism: SaslMechanism;
    readonly username: string;
    readonly password: string;
  };
}

export interface ConnectionOptions {
  clientId: string;
  requestTimeoutMs: number;
  security?: SecurityOptions;
}

export class BrokerConnection {
  readonly address: string;
  readonly #conn: Deno.Conn;
  readonly #opts: ConnectionOptions;
  readonly #pending = new Map<number, Pending>();
  readonly #frames = new FrameDecoder({ maxFrameBytes: MAX_RESPONSE_BYTES });
  #versions = new Map<number, number>();
  #nextCorrelationId = 0;
  #writeQueue: Uint8Array[] = [];
  #writing = false;
  #failure: Error | undefined;
  readonly closed: Promise<void>;

  private constructor(
    address: string,
    conn: Deno.Conn,
    opts: ConnectionOptions,
  ) {
    this.address = address;
    this.#conn = conn;
    this.#opts = opts;
    this.closed = this.#readLoop();
  }

  /** Connects and negotiates api versions with ApiVersions. */
  static async open(
    address: string,
    opts: ConnectionOptions,
  ): Promise<BrokerConnection> {
    const { hostname, port } = parseAddress(address);
    const tls = opts.security?.tls;
    let conn: Deno.Conn;
    try {
      const trust = tls !== undefined && tls.caCerts.length > 0
        ? { caCerts: [...tls.caCerts] }
        : {};
      if (tls?.clientCert !== undefined) {
        // Only connectTls presents a client certificate, and it leaves no
        // way to turn Nagle off: fine for the admin commands that use one.
        const secured = await Deno.connectTls({
          hostname,
          port,
          ...trust,
          ...tls.clientCert,
        });
        conn = secured;
        await secured.handshake();
      } else {
        const tcp = await Deno.connect({ hostname, port });
        tcp.setNoDelay(true);
        conn = tcp;
        if (tls !== undefined) {
          const secured = await Deno.startTls(tcp, { hostname, ...trust });
          conn = secured;
          await secured.handshake();
        }
      }
    } catch (error) {
      throw new ConnectionError(`Cannot connect to broker ${address}`, {
        cause: error,
      });
    }
    const connection = new BrokerConnection(address, conn, opts);
    try {
      await connection.#negotiate();
      const sasl = opts.security?.sasl;
      if (sasl !== undefined) await connection.#authenticate(sasl);
    } catch (error) {
      connection.close();
      throw error;
    }
    return connection;
  }

  get isOpen(): boolean {
    return this.#failure === undefined;
  }

  /** The version to use for `apiKey`: the highest both sides support. */
  version(apiKey: ClientApi): number {
    const version = this.#versions.get(apiKey);
    if (version === undefined) {
      throw new KafkaError(
        UNSUPPORTED_VERSION,
        `broker ${this.address} supports no version of api ${apiKey} in ${
          CLIENT_VERSIONS[apiKey].min
        }..${CLIENT_VERSIONS[apiKey].max}`,
      );
    }
    return version;
  }

  /** Sends a request at the negotiated version and waits for its response. */
  request<K extends ClientApi>(
    apiKey: K,
    body: RequestInput[K],
    opts: { extraTimeoutMs?: number } = {},
  ): Promise<ResponseBodies[K]> {
    return this.#request(apiKey, this.version(apiKey), {
      body,
      timeoutMs: this.#opts.requestTimeoutMs + (opts.extraTimeoutMs ?? 0),
    });
  }

  /** Sends a request that the broker does not answer (produce, acks=0). */
  send<K extends ClientApi>(apiKey: K, body: RequestInput[K]): void {
    this.#throwIfFailed();
    this.#write(this.#encode(apiKey, this.version(apiKey), body).frame);
  }

  close(): void {
    this.#fail(new ConnectionError(`Connection to ${this.address} closed`));
  }

  async #negotiate(): Promise<void> {
    const { min, max } = CLIENT_VERSIONS[ApiKey.ApiVersions];
    let apiVersion: number = max;
    for (;;) {
      const response = await this.#request(ApiKey.ApiVersions, apiVersion, {
        body: { clientSoftwareName: "raftq", clientSoftwareVersion: "0.1.0" },
        timeoutMs: this.#opts.requestTimeoutMs,
      });
      const brokerMax = response.apiKeys.find((k) =>
        k.apiKey === ApiKey.ApiVersions
      )?.maxVersion;
      // An older broker answers a too-new ApiVersions with its own range
      // (in a v0 body, which v0..v3 all start with) and UNSUPPORTED_VERSION.
      if (
        response.errorCode === UNSUPPORTED_VERSION && brokerMax !== undefined &&
        brokerMax < apiVersion && brokerMax >= min
      ) {
        apiVersion = brokerMax;
        continue;
      }
      if (response.errorCode !== 0) {
        throw new KafkaError(response.errorCode, "in ApiVersions");
      }
      for (const [key, ours] of Object.entries(CLIENT_VERSIONS)) {
        const theirs = response.apiKeys.find((k) => k.apiKey === Number(key));
        if (theirs === undefined) continue;
        const best = Math.min(ours.max, theirs.maxVersion);
        if (best >= Math.max(ours.min, theirs.minVersion)) {
          this.#versions.set(Number(key), best);
        }
      }
      return;
    }
  }

  /** SaslHandshake v1, then the mechanism's exchange in SaslAuthenticate. */
  async #authenticate(
    sasl: NonNullable<SecurityOptions["sasl"]>,
  ): Promise<void> {
    const handshake = await this.request(ApiKey.SaslHandshake, {
      mechanism: sasl.mechanism,
    });
    if (handshake.errorCode !== 0) {
      throw new KafkaError(
        handshake.errorCode,
        `broker ${this.address} refused SASL mechanism ${sasl.mechanism} (it offers ${
          handshake.mechanisms.join(", ") || "none"
        })`,
      );
    }
    const step = async (token: Uint8Array) => {
      const answer = await this.request(ApiKey.SaslAuthenticate, {
        authBytes: token,
      });
      if (answer.errorCode !== 0) {
        throw new KafkaError(
          answer.errorCode,
          answer.errorMessage ?? "SASL authentication failed",
        );
      }
      return answer.authBytes;
    };
    const encoder = new TextEncoder();
    const decoder = new TextDecoder();
    if (sasl.mechanism === "PLAIN") {
      await step(
        encoder.encode(`\u0000${sasl.username}\u0000${sasl.password}`),
      );
      return;
    }
    const scram = new ScramClient(SCRAM_HASHES[sasl.mechanism], {
      user: sasl.username,
      password: sasl.password,
    });
    const serverFirst = decoder.decode(
      await step(encoder.encode(scram.first())),
    );
    const serverFinal = await step(encoder.encode(scram.final(serverFirst)));
    scram.verify(decoder.decode(serverFinal));
  }

  #encode<K extends ApiKeyNum>(
    apiKey: K,
    apiVersion: number,
    body: RequestInput[K],
  ): { frame: Uint8Array; correlationId: number } {
    const correlationId = this.#nextCorrelationId;
    this.#nextCorrelationId = (correlationId + 1) & 0x7fffffff;
    const frame = encodeRequest(apiKey, apiVersion, {
      correlationId,
      clientId: this.#opts.clientId,
    }, body);
    return { frame, correlationId };
  }

  #request<K extends ApiKeyNum>(
    apiKey: K,
    apiVersion: number,
    req: { body: RequestInput[K]; timeoutMs: number },
  ): Promise<ResponseBodies[K]> {
    this.#throwIfFailed();
    const { frame, correlationId } = this.#encode(apiKey, apiVersion, req.body);
    const response = new Promise<ResponseBodies[K]>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(correlationId);
        reject(
          new RequestTimeoutError(
            `Request (api ${apiKey} v${apiVersion}) to ${this.address} got no answer within ${req.timeoutMs} ms`,
          ),
        );
      }, req.timeoutMs);
      this.#pending.set(correlationId, {
        apiKey,
        apiVersion,
        resolve: resolve as (body: unknown) => void,
        reject,
        timer,
      });
    });
    this.#write(frame);
    return response;
  }

  #throwIfFailed(): void {
    if (this.#failure !== undefined) throw this.#failure;
  }

  #write(frame: Uint8Array): void {
    this.#writeQueue.push(frame);
    if (!this.#writing) this.#flush();
  }

  /**
   * Drains the queue: frames queued while a write was in progress go out
   * together, small pipelined requests joined into one syscall, big ones
   * (produce) each written as they are rather than copied into one buffer.
   */
  async #flush(): Promise<void> {
    this.#writing = true;
    try {
      while (this.#writeQueue.length > 0 && this.#failure === undefined) {
        const frames = this.#writeQueue;
        this.#writeQueue = [];
        await writeFrames(this.#conn, frames);
      }
    } catch (error) {
      this.#fail(
        new ConnectionError(`Write to broker ${this.address} failed`, {
          cause: error,
        }),
      );
    } finally {
      this.#writing = false;
    }
  }

  async #readLoop(): Promise<void> {
    try {
      for (;;) {
        const n = await this.#conn.read(this.#frames.writable(4096));
        if (n === null) break;
        this.#frames.commit(n);
        for (
          let frame = this.#frames.next();
          frame !== null;
          frame = this.#frames.next()
        ) {
          this.#dispatch(frame);
        }
      }
      this.#fail(
        new ConnectionError(`Broker ${this.address} closed the connection`),
      );
    } catch (error) {
      this.#fail(
        error instanceof ConnectionError ? error : new ConnectionError(
          `Connection to broker ${this.address} failed`,
          { cause: error },
        ),
      );
    }
  }

  #dispatch(frame: Uint8Array): void {
    if (frame.length < 4) {
      throw new ConnectionError(
        `Broker ${this.address} sent a ${frame.length}-byte frame`,
      );
    }
    const correlationId = new DataView(frame.buffer, frame.byteOffset, 4)
      .getInt32(0);
    const pending = this.#pending.get(correlationId);
    // A late answer to a request that already timed out: nobody waits.
    if (pending === undefined) return;
    this.#pending.delete(correlationId);
    clearTimeout(pending.timer);
    try {
      pending.resolve(
        decodeResponse(pending.apiKey, pending.apiVersion, frame).body,
      );
    } catch (error) {
      pending.reject(error as Error);
    }
  }

  #fail(error: Error): void {
    if (this.#failure !== undefined) return;
    this.#failure = error;
    for (const pending of this.#pending.values()) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.#pending.clear();
    try {
      this.#conn.close();
    } catch (closeError) {
      // Already closed by the peer: nothing left to release.
      if (!(closeError instanceof Deno.errors.BadResource)) throw closeError;
    }
  }
}

/** "host:port" or "[v6addr]:port". */
export function parseAddress(address: string): {
  hostname: string;
  port: number;
} {
  const match = /^(\[[^\]]+\]|[^:\s]+):(\d{1,5})$/.exec(address.trim());
  const port = Number(match?.[2]);
  if (match === null || port < 1 || port > 65535) {
    throw new TypeError(
      `Invalid broker address "${address}": expected host:port`,
    );
  }
  return { hostname: match[1]!.replace(/^\[|\]$/g, ""), port };
}
