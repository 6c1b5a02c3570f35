/**
 * For the groups' unit tests: timers moved by hand, and the JoinGroup and
 * SyncGroup round trips that form a generation, against a Group or a
 * GroupCoordinator alike (both answer join and sync the same way).
 */
import assert from "node:assert/strict";
import type {
  JoinGroupRequest,
  JoinGroupResponseInput,
  SyncGroupRequest,
  SyncGroupResponseInput,
} from "../../protocol/mod.ts";
import type { ClientInfo, Timers } from "./group.ts";
import { GroupError } from "./group_error.ts";

/** Timers that fire only when the test moves time forward. */
export class ManualTimers implements Timers {
  #now = 1_000_000;
  #next = 1;
  readonly #due = new Map<number, { at: number; fn: () => void }>();
  now(): number {
    return this.#now;
  }
  set(fn: () => void, delayMs: number): number {
    const id = this.#next++;
    this.#due.set(id, { at: this.#now + delayMs, fn });
    return id;
  }
  clear(id: number): void {
    this.#due.delete(id);
  }
  async advance(ms: number): Promise<void> {
    const until = this.#now + ms;
    for (;;) {
      const next = [...this.#due].filter(([, t]) => t.at <= until).sort((
        a,
        b,
      ) => a[1].at - b[1].at)[0];
      if (next === undefined) break;
      this.#due.delete(next[0]);
      this.#now = next[1].at;
      next[1].fn();
      await settle();
    }
    this.#now = until;
    await settle();
  }
}

/** Lets resolved promises (durable appends, waiters) run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
}

/** What answers JoinGroup and SyncGroup: a Group or a GroupCoordinator. */
export interface Joinable {
  join(
    req: JoinGroupRequest,
    client: ClientInfo,
  ): Promise<JoinGroupResponseInput>;
  sync(req: SyncGroupRequest): Promise<SyncGroupResponseInput>;
}

export const V5: ClientInfo = { clientId: "c", clientHost: "h", version: 5 };

export function joinRequest(
  opts: { memberId?: string; instanceId?: string; protocol?: string },
): JoinGroupRequest {
  return {
    groupId: "g",
    sessionTimeoutMs: 10_000,
    rebalanceTimeoutMs: 30_000,
    memberId: opts.memberId ?? "",
    groupInstanceId: opts.instanceId ?? null,
    protocolType: "consumer",
    protocols: [{
      name: opts.protocol ?? "range",
      metadata: new Uint8Array([1]),
    }],
    reason: null,
  };
}

/** Joins a new dynamic member (with the MEMBER_ID_REQUIRED round trip). */
export async function joinNew(
  g: Joinable,
): Promise<JoinGroupResponseInput> {
  const first = await g.join(joinRequest({}), V5);
  assert.equal(first.errorCode, GroupError.MEMBER_ID_REQUIRED);
  return g.join(joinRequest({ memberId: first.memberId }), V5);
}

/** Syncs a generation's members; the first names the leader. */
export async function syncAll(
  g: Joinable,
  members: { memberId: string; generationId?: number; leader: string }[],
): Promise<SyncGroupResponseInput[]> {
  const generationId = members[0]!.generationId!;
  const leader = members[0]!.leader;
  const answers = members.map((m) =>
    g.sync({
      groupId: "g",
      generationId,
      memberId: m.memberId,
      groupInstanceId: null,
      protocolType: null,
      protocolName: null,
      assignments: m.memberId === leader
        ? members.map((x) => ({
          memberId: x.memberId,
          assignment: new TextEncoder().encode(`for ${x.memberId}`),
        }))
        : [],
    })
  );
  return await Promise.all(answers);
}
