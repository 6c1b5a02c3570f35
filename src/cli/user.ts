/**
 * raftq user create|delete|list: SASL/SCRAM users, kept in the controller
 * state. The password is read from stdin (never an argument, which `ps`
 * and shell history would show), salted and hashed by the client.
 */
import type { ScramMechanism } from "../protocol/mod.ts";
import { type ClientCommandOptions, withClient } from "./connect.ts";
import { type CliIo, CommandError } from "./io.ts";
import { formatTable } from "./table.ts";

export interface UserCreateOptions extends ClientCommandOptions {
  mechanism: ScramMechanism;
  passwordStdin?: boolean;
}

async function readPassword(
  stdin: ReadableStream<Uint8Array>,
): Promise<string> {
  const text = await new Response(stdin).text();
  // Only the line end goes: a password may start or end with spaces.
  const password = text.replace(/\r?\n$/, "");
  if (password === "") throw new CommandError("The password on stdin is empty");
  return password;
}

export async function createUser(
  io: CliIo,
  name: string,
  opts: UserCreateOptions,
): Promise<void> {
  if (opts.passwordStdin !== true) {
    throw new CommandError(
      "Give the password on stdin with --password-stdin (never as an argument)",
    );
  }
  const password = await readPassword(io.stdin);
  await withClient(
    opts,
    (client) =>
      client.upsertUser(name, { mechanism: opts.mechanism, password }),
  );
  io.stdout(`User "${name}" has a ${opts.mechanism} credential\n`);
}

export async function deleteUser(
  io: CliIo,
  name: string,
  opts: ClientCommandOptions & { mechanism?: ScramMechanism },
): Promise<void> {
  await withClient(opts, (client) => client.deleteUser(name, opts.mechanism));
  io.stdout(`User "${name}" deleted\n`);
}

export async function listUsers(
  io: CliIo,
  opts: ClientCommandOptions,
): Promise<void> {
  const users = await withClient(opts, (client) => client.describeUsers(null));
  io.stdout(formatTable(
    ["USER", "MECHANISM", "ITERATIONS"],
    users.flatMap((u) =>
      u.credentials.map((c) => [u.user, c.mechanism, c.iterations])
    ),
  ));
}
