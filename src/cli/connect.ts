/** How client commands reach the cluster. */
import {
  KafkaClient,
  type SaslMechanism,
  type SecurityOptions,
} from "../client/mod.ts";
import { CommandError } from "./io.ts";

export interface ClientCommandOptions {
  bootstrap: string;
  /** A Kafka client properties file (security.protocol, sasl.*, ssl.*). */
  commandConfig?: string;
}

const PROTOCOLS = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];
const MECHANISMS: readonly SaslMechanism[] = [
  "PLAIN",
  "SCRAM-SHA-256",
  "SCRAM-SHA-512",
];

/** Java properties as Kafka's scripts read them: key=value or key: value, # comments. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith("!")) continue;
    const at = line.search(/[=:]/);
    if (at <= 0) continue;
    out.set(line.slice(0, at).trim(), line.slice(at + 1).trim());
  }
  return out;
}

/**
 * The connection security a --command-config file asks for. Problems name
 * the file and key, never a password.
 */
export async function securityFrom(file: string): Promise<SecurityOptions> {
  const props = parseProperties(await Deno.readTextFile(file));
  const problem = (what: string) =>
    new CommandError(`Invalid --command-config ${file}: ${what}`);
  const protocol = props.get("security.protocol") ?? "PLAINTEXT";
  if (!PROTOCOLS.includes(protocol)) {
    throw problem(
      `security.protocol "${protocol}" is not one of ${PROTOCOLS.join(", ")}`,
    );
  }
  const security: {
    -readonly [K in keyof SecurityOptions]: SecurityOptions[K];
  } = {};
  if (protocol.endsWith("SSL")) {
    const ca = props.get("ssl.ca.location");
    const cert = props.get("ssl.certificate.location");
    const key = props.get("ssl.key.location");
    if ((cert === undefined) !== (key === undefined)) {
      throw problem(
        "ssl.certificate.location and ssl.key.location go together",
      );
    }
    security.tls = {
      caCerts: ca === undefined ? [] : [await Deno.readTextFile(ca)],
      ...(cert === undefined || key === undefined ? {} : {
        clientCert: {
          cert: await Deno.readTextFile(cert),
          key: await Deno.readTextFile(key),
        },
      }),
    };
  }
  if (protocol.startsWith("SASL")) {
    const mechanism = MECHANISMS.find((m) =>
      m === (props.get("sasl.mechanism") ?? "PLAIN")
    );
    if (mechanism === undefined) {
      throw problem(
        `sasl.mechanism "${props.get("sasl.mechanism")}" is not one of ${
          MECHANISMS.join(", ")
        }`,
      );
    }
    const username = props.get("sasl.username");
    const password = props.get("sasl.password");
    if (username === undefined || password === undefined) {
      throw problem(`${protocol} needs sasl.username and sasl.password`);
    }
    security.sasl = { mechanism, username, password };
  }
  return security;
}

/** Runs `body` with a connected client and always closes it. */
export async function withClient<T>(
  opts: ClientCommandOptions,
  body: (client: KafkaClient) => Promise<T>,
): Promise<T> {
  const security = opts.commandConfig === undefined
    ? undefined
    : await securityFrom(opts.commandConfig);
  const client = await KafkaClient.connect(opts.bootstrap, {
    clientId: "raftq-cli",
    ...(security === undefined ? {} : { security }),
  });
  try {
    return await body(client);
  } finally {
    await client.close();
  }
}
