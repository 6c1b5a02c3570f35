/**
 * Test certificates made with openssl into a temporary directory: a CA, a
 * server certificate it signs for localhost and 127.0.0.1, as a TLS
 * listener needs them, and client certificates on demand.
 */
import { run } from "./harness.ts";

export interface TestCerts {
  readonly dir: string;
  readonly caFile: string;
  readonly certFile: string;
  readonly keyFile: string;
}

async function openssl(args: string[], cwd: string): Promise<void> {
  const out = await run("openssl", args.map((a) => a.replace("{dir}", cwd)));
  if (out.code !== 0) {
    throw new Error(`openssl ${args[0]} failed: ${out.stderr}`);
  }
}

export async function makeCerts(): Promise<TestCerts> {
  const dir = await Deno.makeTempDir({ prefix: "raftq-tls-" });
  const at = (name: string) => `${dir}/${name}`;
  await openssl([
    "req",
    "-x509",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-days",
    "2",
    "-subj",
    "/CN=raftq test CA",
    "-keyout",
    at("ca.key"),
    "-out",
    at("ca.pem"),
  ], dir);
  const server = await signCert(
    { dir, caFile: at("ca.pem") },
    "server",
    "/CN=localhost",
    "subjectAltName=DNS:localhost,IP:127.0.0.1",
  );
  return {
    dir,
    caFile: at("ca.pem"),
    ...server,
  };
}

/**
 * A certificate for `subject` ("/O=acme/CN=alice") and its key, signed by
 * the CA of `ca`, with the X.509 v3 extensions in `extensions` (rustls
 * refuses certificates without any).
 */
export async function signCert(
  ca: { dir: string; caFile: string },
  name: string,
  subject: string,
  extensions = "basicConstraints=CA:FALSE\nextendedKeyUsage=clientAuth",
): Promise<{ certFile: string; keyFile: string }> {
  const at = (file: string) => `${ca.dir}/${file}`;
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    subject,
    "-keyout",
    at(`${name}.key`),
    "-out",
    at(`${name}.csr`),
  ], ca.dir);
  await Deno.writeTextFile(at(`${name}.ext`), `${extensions}\n`);
  await openssl([
    "x509",
    "-req",
    "-in",
    at(`${name}.csr`),
    "-CA",
    ca.caFile,
    "-CAkey",
    ca.caFile.replace(/\.pem$/, ".key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    at(`${name}.ext`),
    "-out",
    at(`${name}.pem`),
  ], ca.dir);
  return { certFile: at(`${name}.pem`), keyFile: at(`${name}.key`) };
}
