/**
 * --command-config: Kafka client properties files read as Kafka's scripts
 * read them, and turned into the connection's TLS and SASL options.
 */
import assert from "node:assert/strict";
import { parseProperties, securityFrom } from "./connect.ts";
import { CommandError } from "./io.ts";

async function propertiesFile(lines: string[]): Promise<string> {
  const file = await Deno.makeTempFile({ suffix: ".properties" });
  await Deno.writeTextFile(file, lines.join("\n"));
  return file;
}

Deno.test("parseProperties reads key=value and key: value, skipping comments", () => {
  assert.deepEqual(
    [...parseProperties("# c\n! c\na=1\n b : two words \n\nc=x=y\n")],
    [["a", "1"], ["b", "two words"], ["c", "x=y"]],
  );
});

Deno.test("securityFrom turns SASL_SSL properties into TLS with the CA and SASL", async () => {
  const ca = await Deno.makeTempFile();
  await Deno.writeTextFile(ca, "PEM");
  const file = await propertiesFile([
    "security.protocol=SASL_SSL",
    "sasl.mechanism=SCRAM-SHA-512",
    "sasl.username=admin",
    "sasl.password=p=w",
    `ssl.ca.location=${ca}`,
  ]);
  assert.deepEqual(await securityFrom(file), {
    tls: { caCerts: ["PEM"] },
    sasl: { mechanism: "SCRAM-SHA-512", username: "admin", password: "p=w" },
  });
});

Deno.test("securityFrom refuses an unknown protocol or a SASL file without a password, never echoing it", async () => {
  await assert.rejects(
    securityFrom(await propertiesFile(["security.protocol=TLS"])),
    CommandError,
  );
  const noPassword = await propertiesFile([
    "security.protocol=SASL_PLAINTEXT",
    "sasl.username=admin",
  ]);
  await assert.rejects(
    securityFrom(noPassword),
    /SASL_PLAINTEXT needs sasl.username and sasl.password/,
  );
  assert.deepEqual(
    await securityFrom(await propertiesFile(["security.protocol=PLAINTEXT"])),
    {},
  );
});

Deno.test("securityFrom reads a client certificate and key for mutual TLS, and asks for both", async () => {
  const pem = async (text: string) => {
    const file = await Deno.makeTempFile();
    await Deno.writeTextFile(file, text);
    return file;
  };
  const cert = await pem("CERT");
  const key = await pem("KEY");
  assert.deepEqual(
    await securityFrom(
      await propertiesFile([
        "security.protocol=SSL",
        `ssl.certificate.location=${cert}`,
        `ssl.key.location=${key}`,
      ]),
    ),
    { tls: { caCerts: [], clientCert: { cert: "CERT", key: "KEY" } } },
  );
  await assert.rejects(
    securityFrom(
      await propertiesFile([
        "security.protocol=SSL",
        `ssl.certificate.location=${cert}`,
      ]),
    ),
    /ssl.certificate.location and ssl.key.location go together/,
  );
});
