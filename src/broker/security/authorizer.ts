/**
 * Kafka's ACL authorizer (AclAuthorizer / StandardAuthorizer semantics) as a
 * pure function of the bindings in the controller state: a request is
 * allowed when some ALLOW binding matches it and no DENY binding does.
 * Super users skip the check, and with authorization off everything is
 * allowed. Bindings match by resource (literal name, the literal wildcard
 * "*", or a prefix), principal (or "User:*"), host (or "*") and operation
 * (ALL, or an operation that implies the one asked for: KIP-11's DESCRIBE
 * from READ/WRITE/DELETE/ALTER, DESCRIBE_CONFIGS from ALTER_CONFIGS).
 */
import type {
  AclBinding,
  AclOperationName,
  AclResourceType,
} from "../controller/mod.ts";
import type { Session } from "./session.ts";

/** The principal Kafka gives a client that did not authenticate. */
export const ANONYMOUS = "User:ANONYMOUS";
const WILDCARD = "*";
const ANY_USER = "User:*";

/** What a request asks to do; "all" is only a binding's operation. */
export type Operation = Exclude<AclOperationName, "all">;

export interface Access {
  readonly principal: string;
  /** The client's address, without the port. */
  readonly host: string;
}

export interface AuthorizerOptions {
  readonly enabled: boolean;
  /** Principals such as "User:admin" that every check allows. */
  readonly superUsers: readonly string[];
  /** The current bindings; a new array only when they change. */
  readonly bindings: () => readonly AclBinding[];
}

/** Operations an ALLOW on the key also grants (never a DENY: Kafka's rule). */
const IMPLIED_BY: Partial<Record<Operation, readonly AclOperationName[]>> = {
  describe: ["describe", "read", "write", "delete", "alter"],
  describe_configs: ["describe_configs", "alter_configs"],
};

function denyGrants(binding: AclOperationName, asked: Operation): boolean {
  return binding === "all" || binding === asked;
}

function allowGrants(binding: AclOperationName, asked: Operation): boolean {
  return binding === "all" ||
    (IMPLIED_BY[asked] ?? [asked]).includes(binding);
}

/** Does the binding's resource pattern cover the resource called `name`? */
export function namesMatch(b: AclBinding, name: string): boolean {
  return b.patternType === "prefixed"
    ? name.startsWith(b.resourceName)
    : b.resourceName === name || b.resourceName === WILDCARD;
}

function whoMatches(b: AclBinding, who: Access): boolean {
  return (b.principal === who.principal || b.principal === ANY_USER) &&
    (b.host === who.host || b.host === WILDCARD);
}

/** "User:alice" once SASL succeeded, else User:ANONYMOUS (as Kafka). */
export function principalOf(session: Session): string {
  return session.principal ?? ANONYMOUS;
}

export function accessOf(session: Session): Access {
  return { principal: principalOf(session), host: session.remoteHost };
}

export class Authorizer {
  readonly #options: AuthorizerOptions;
  readonly #superUsers: ReadonlySet<string>;
  #indexedFrom: readonly AclBinding[] | null = null;
  #byType = new Map<AclResourceType, AclBinding[]>();

  constructor(options: AuthorizerOptions) {
    this.#options = options;
    this.#superUsers = new Set(options.superUsers);
  }

  get enabled(): boolean {
    return this.#options.enabled;
  }

  #ofType(type: AclResourceType): readonly AclBinding[] {
    const bindings = this.#options.bindings();
    if (bindings !== this.#indexedFrom) {
      this.#byType = new Map();
      for (const b of bindings) {
        const list = this.#byType.get(b.resourceType) ?? [];
        list.push(b);
        this.#byType.set(b.resourceType, list);
      }
      this.#indexedFrom = bindings;
    }
    return this.#byType.get(type) ?? [];
  }

  #skips(who: Access): boolean {
    return !this.#options.enabled || this.#superUsers.has(who.principal);
  }

  /** May `who` do `operation` on the resource of this type and name? */
  authorize(
    who: Access,
    resource: {
      type: AclResourceType;
      name: string;
      operation: Operation;
    },
  ): boolean {
    if (this.#skips(who)) return true;
    let allowed = false;
    for (const b of this.#ofType(resource.type)) {
      if (!whoMatches(b, who) || !namesMatch(b, resource.name)) continue;
      if (b.permission === "deny") {
        if (denyGrants(b.operation, resource.operation)) return false;
      } else if (allowGrants(b.operation, resource.operation)) {
        allowed = true;
      }
    }
    return allowed;
  }

  /**
   * Could `who` do `operation` on some resource of this type? Kafka's
   * authorizeByResourceType (KIP-679): an ALLOW pattern counts unless a
   * DENY pattern covers every name it matches.
   */
  authorizeAny(
    who: Access,
    resource: { type: AclResourceType; operation: Operation },
  ): boolean {
    if (this.#skips(who)) return true;
    const matching = this.#ofType(resource.type).filter((b) =>
      whoMatches(b, who)
    );
    const denies = matching.filter((b) =>
      b.permission === "deny" && denyGrants(b.operation, resource.operation)
    );
    return matching.some((allow) =>
      allow.permission === "allow" &&
      allowGrants(allow.operation, resource.operation) &&
      !denies.some((deny) => covers(deny, allow))
    );
  }

  /** Which of `candidates` `who` may do on one resource (authorizedOperations). */
  operationsOn(
    who: Access,
    resource: { type: AclResourceType; name: string },
    candidates: readonly Operation[],
  ): Operation[] {
    return candidates.filter((operation) =>
      this.authorize(who, { ...resource, operation })
    );
  }
}

/** Does the DENY pattern match every name the ALLOW pattern matches? */
function covers(deny: AclBinding, allow: AclBinding): boolean {
  if (deny.patternType === "literal") {
    return deny.resourceName === WILDCARD ||
      (allow.patternType === "literal" &&
        allow.resourceName === deny.resourceName);
  }
  return !(allow.patternType === "literal" &&
    allow.resourceName === WILDCARD) &&
    allow.resourceName.startsWith(deny.resourceName);
}
