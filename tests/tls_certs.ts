/**
 * Test certificates made with openssl into a temporary directory: a CA and
 * a server certificate it signs for localhost and 127.0.0.1, as a TLS
 * listener needs them.
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
  await openssl([
    "req",
    "-newkey",
    "rsa:2048",
    "-nodes",
    "-subj",
    "/CN=localhost",
    "-keyout",
    at("server.key"),
    "-out",
    at("server.csr"),
  ], dir);
  await Deno.writeTextFile(
    at("san.ext"),
    "subjectAltName=DNS:localhost,IP:127.0.0.1\n",
  );
  await openssl([
    "x509",
    "-req",
    "-in",
    at("server.csr"),
    "-CA",
    at("ca.pem"),
    "-CAkey",
    at("ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    at("san.ext"),
    "-out",
    at("server.pem"),
  ], dir);
  return {
    dir,
    caFile: at("ca.pem"),
    certFile: at("server.pem"),
    keyFile: at("server.key"),
  };
}
