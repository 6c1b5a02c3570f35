/**
 * DescribeUserScramCredentials (v0) and AlterUserScramCredentials (v0):
 * SASL/SCRAM users in the controller state (KIP-554). The client salts and
 * hashes the password, so the broker only sees the salted password, and
 * keeps just StoredKey and ServerKey from it. Until the first user exists,
 * a client on the loopback address may manage users without
 * authenticating: that is how a secured cluster gets its first admin.
 */
import {
  type AlterUserScramCredentialsRequest,
  type AlterUserScramCredentialsResponseInput,
  credentialOf,
  type DescribeUserScramCredentialsRequest,
  type DescribeUserScramCredentialsResponseInput,
  ErrorCode,
  SCRAM_HASHES,
  SCRAM_ITERATIONS_MAX,
  SCRAM_ITERATIONS_MIN,
} from "../../protocol/mod.ts";
import {
  type Command,
  SCRAM_MECHANISM_NAMES,
  type ScramMechanismName,
} from "../controller/mod.ts";
import { isLoopback } from "../security/session.ts";
import { allowsOnCluster } from "./authorize.ts";
import type { BrokerContext, RequestInfo } from "./context.ts";

/** Kafka's ScramMechanism type ids: 1 is SCRAM-SHA-256, 2 SCRAM-SHA-512. */
function mechanismOf(type: number): ScramMechanismName | undefined {
  return SCRAM_MECHANISM_NAMES[type - 1];
}

function typeOf(mechanism: ScramMechanismName): number {
  return SCRAM_MECHANISM_NAMES.indexOf(mechanism) + 1;
}

/**
 * Anyone on loopback may manage users while no user exists. Past that, an
 * authenticated client may, and with authorization on it also needs
 * DESCRIBE (to list) or ALTER (to change) on the cluster, as in Kafka.
 */
export function mayManageUsers(
  ctx: BrokerContext,
  request: RequestInfo,
  operation: "describe" | "alter",
): boolean {
  const session = request.session;
  if (ctx.cluster.scramUsers().length === 0 && isLoopback(session.remoteHost)) {
    return true;
  }
  return session.principal !== null &&
    allowsOnCluster(ctx, request, operation);
}

const NOT_ALLOWED =
  "Managing users needs an authenticated connection (or, before the first user exists, one from loopback) and, with authorization on, DESCRIBE or ALTER on the cluster";

export function handleDescribeUserScramCredentials(
  ctx: BrokerContext,
  req: DescribeUserScramCredentialsRequest,
  request: RequestInfo,
): DescribeUserScramCredentialsResponseInput {
  if (!mayManageUsers(ctx, request, "describe")) {
    return {
      throttleTimeMs: 0,
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      errorMessage: NOT_ALLOWED,
      results: [],
    };
  }
  const names = req.users === null
    ? ctx.cluster.scramUsers()
    : [...new Set(req.users.map((u) => u.name))];
  return {
    throttleTimeMs: 0,
    errorCode: ErrorCode.NONE,
    errorMessage: null,
    results: names.map((user) => {
      const credentials = [...ctx.cluster.scramCredentials(user)];
      return {
        user,
        errorCode: credentials.length === 0
          ? ErrorCode.RESOURCE_NOT_FOUND
          : ErrorCode.NONE,
        errorMessage: credentials.length === 0
          ? `User "${user}" has no SCRAM credential`
          : null,
        credentialInfos: credentials.map(([mechanism, stored]) => ({
          mechanism: typeOf(mechanism),
          iterations: stored.iterations,
        })),
      };
    }),
  };
}

type Change = Omit<Extract<Command, { type: "alterScramCredentials" }>, "type">;

function base64(bytes: Uint8Array): string {
  return btoa(String.fromCharCode(...bytes));
}

/** Why one upsertion is refused, or null. */
function upsertionProblem(
  u: AlterUserScramCredentialsRequest["upsertions"][number],
): { errorCode: number; errorMessage: string } | null {
  const mechanism = mechanismOf(u.mechanism);
  if (mechanism === undefined) {
    return {
      errorCode: ErrorCode.UNSUPPORTED_SASL_MECHANISM,
      errorMessage:
        `Unknown SCRAM mechanism ${u.mechanism}: use 1 (SCRAM-SHA-256) or 2 (SCRAM-SHA-512)`,
    };
  }
  const problem = u.name === ""
    ? "the user name is empty"
    : u.iterations < SCRAM_ITERATIONS_MIN || u.iterations > SCRAM_ITERATIONS_MAX
    ? `iterations ${u.iterations} are outside ${SCRAM_ITERATIONS_MIN} to ${SCRAM_ITERATIONS_MAX}`
    : u.salt.length === 0
    ? "the salt is empty"
    : u.saltedPassword.length !== SCRAM_HASHES[mechanism].bytes
    ? `the salted password is not a ${mechanism} digest`
    : null;
  return problem === null ? null : {
    errorCode: ErrorCode.UNACCEPTABLE_CREDENTIAL,
    errorMessage: `Credential of user "${u.name}" refused: ${problem}`,
  };
}

export async function handleAlterUserScramCredentials(
  ctx: BrokerContext,
  req: AlterUserScramCredentialsRequest,
  request: RequestInfo,
): Promise<AlterUserScramCredentialsResponseInput> {
  const users = [
    ...new Set([...req.deletions, ...req.upsertions].map((u) => u.name)),
  ];
  const answer = (
    errorOf: (
      user: string,
    ) => { errorCode: number; errorMessage: string | null },
  ): AlterUserScramCredentialsResponseInput => ({
    throttleTimeMs: 0,
    results: users.map((user) => ({ user, ...errorOf(user) })),
  });
  if (!mayManageUsers(ctx, request, "alter")) {
    return answer(() => ({
      errorCode: ErrorCode.CLUSTER_AUTHORIZATION_FAILED,
      errorMessage: NOT_ALLOWED,
    }));
  }
  const refused = new Map<
    string,
    { errorCode: number; errorMessage: string }
  >();
  const seen = new Set<string>();
  for (const u of [...req.deletions, ...req.upsertions]) {
    const key = `${u.name}\u0000${u.mechanism}`;
    if (seen.has(key)) {
      refused.set(u.name, {
        errorCode: ErrorCode.DUPLICATE_RESOURCE,
        errorMessage: `User "${u.name}" names mechanism ${u.mechanism} twice`,
      });
    }
    seen.add(key);
  }
  const change: Change = { upsertions: [], deletions: [] };
  for (const d of req.deletions) {
    const mechanism = mechanismOf(d.mechanism);
    if (
      mechanism === undefined ||
      !ctx.cluster.scramCredentials(d.name).has(mechanism)
    ) {
      refused.set(d.name, {
        errorCode: ErrorCode.RESOURCE_NOT_FOUND,
        errorMessage:
          `User "${d.name}" has no credential of mechanism ${d.mechanism}`,
      });
    } else change.deletions.push({ user: d.name, mechanism });
  }
  for (const u of req.upsertions) {
    const problem = upsertionProblem(u);
    if (problem !== null) {
      refused.set(u.name, problem);
      continue;
    }
    const mechanism = mechanismOf(u.mechanism)!;
    const credential = credentialOf(SCRAM_HASHES[mechanism], u);
    change.upsertions.push({
      user: u.name,
      mechanism,
      salt: base64(credential.salt),
      iterations: credential.iterations,
      storedKey: base64(credential.storedKey),
      serverKey: base64(credential.serverKey),
    });
  }
  // A user with any refused part changes in no part (as Kafka does).
  change.upsertions = change.upsertions.filter((u) => !refused.has(u.user));
  change.deletions = change.deletions.filter((d) => !refused.has(d.user));
  const outcome = change.upsertions.length + change.deletions.length === 0
    ? { errorCode: ErrorCode.NONE, errorMessage: null }
    : await ctx.cluster.alterScramCredentials(change);
  if (outcome.errorCode === ErrorCode.NONE) {
    ctx.log(
      `SCRAM credentials changed for ${
        users.filter((u) => !refused.has(u)).map((u) => `"${u}"`).join(", ")
      } by ${
        request.session.principal ?? `a loopback client (${request.clientHost})`
      }`,
    );
  }
  return answer((user) => refused.get(user) ?? outcome);
}
