/**
 * Scenario tests of the Raft core, driven by hand through TestCluster: each
 * test sets up logs or faults, runs the cluster to quiescence and checks the
 * outcome the Raft paper (or etcd's design) requires.
 */
import assert from "node:assert/strict";
import { TestCluster } from "../testing/cluster.ts";
import { encodePayload } from "../testing/replica.ts";
import {
  type Entry,
  EntryType,
  MemoryStorage,
  MessageType,
  newMessage,
  NotLeaderError,
  ProposalDroppedError,
  RaftConfigError,
  RawNode,
  type Ready,
} from "./mod.ts";

function entriesWithTerms(terms: number[]): Entry[] {
  return terms.map((term, i) => ({
    term,
    index: i + 1,
    type: EntryType.Normal,
    data: encodePayload(`t${term}i${i + 1}`),
  }));
}

function termsOf(storage: MemoryStorage): number[] {
  const out: number[] = [];
  for (let i = storage.firstIndex(); i <= storage.lastIndex(); i++) {
    out.push(storage.term(i));
  }
  return out;
}

function storageWith(
  terms: number[],
  options: { voters: number[]; term: number },
): MemoryStorage {
  const storage = new MemoryStorage({ voters: options.voters, learners: [] });
  storage.append(entriesWithTerms(terms));
  storage.setHardState({ term: options.term, vote: 0, commit: 0 });
  return storage;
}

Deno.test("RawNode elects the first node to campaign and all follow it", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.tick(1, 20);
  c.stabilize();
  assert.equal(c.leader(), 1);
  for (const id of [1, 2, 3]) {
    const st = c.get(id).node.status();
    assert.equal(st.hardState.term, 1);
    assert.equal(st.softState.leader, 1);
  }
});

Deno.test("RawNode replicates and applies proposals on every replica in order", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  for (const p of ["a", "b", "c"]) c.get(1).node.propose(encodePayload(p));
  c.stabilize();
  for (const id of [1, 2, 3]) {
    assert.deepEqual(c.get(id).applied, ["a", "b", "c"]);
  }
});

Deno.test("RawNode.propose on a follower throws NotLeaderError with the leader hint", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(2);
  assert.throws(
    () => c.get(3).node.propose(encodePayload("x")),
    (e) => e instanceof NotLeaderError && e.leaderHint === 2,
  );
});

// Raft paper figure 7: whatever a follower's log holds, the new leader of
// term 8 brings it in line with its own.
const FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6];
const FIGURE_7_FOLLOWERS: Record<string, number[]> = {
  a: [1, 1, 1, 4, 4, 5, 5, 6, 6],
  b: [1, 1, 1, 4],
  c: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
  d: [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
  e: [1, 1, 1, 4, 4, 4, 4],
  f: [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
};
for (const [name, followerTerms] of Object.entries(FIGURE_7_FOLLOWERS)) {
  Deno.test(`RawNode leader repairs figure 7 follower (${name}) with few round trips`, () => {
    const voters = [1, 2, 3];
    const c = new TestCluster({ voters });
    c.addReplica(1, storageWith(FIGURE_7_LEADER, { voters, term: 7 }));
    c.addReplica(2, storageWith(followerTerms, { voters, term: 7 }));
    c.addReplica(3, storageWith([], { voters, term: 7 }));
    let rejections = 0;
    c.dropIf = (m) => {
      if (m.type === MessageType.AppResp && m.reject && m.from === 2) {
        rejections++;
      }
      return false;
    };
    c.elect(1);
    assert.equal(c.leader(), 1);
    const expected = [...FIGURE_7_LEADER, 8];
    for (const id of voters) {
      assert.deepEqual(termsOf(c.get(id).storage), expected);
    }
    // Fast backtracking skips a whole term per rejection.
    assert.ok(rejections <= 3, `${rejections} rejections`);
  });
}

Deno.test("RawNode leader does not commit an earlier-term entry by counting (figure 8)", () => {
  const voters = [1, 2, 3];
  const build = (unsafe: boolean) => {
    const c = new TestCluster({
      voters,
      raft: {
        maxSizePerMsg: 1,
        unsafeTestingFaults: { commitPreviousTerm: unsafe },
      },
    });
    c.addReplica(1, storageWith([1, 2], { voters, term: 2 }));
    c.addReplica(2, storageWith([1], { voters, term: 2 }));
    c.addReplica(3, storageWith([1], { voters, term: 2 }));
    // Once a follower holds the term-2 entry, deny it the term-3 no-op.
    c.dropIf = (m) =>
      m.entries.some((e) => e.term === 3) &&
      c.get(m.to).storage.lastIndex() >= 2;
    c.elect(1);
    assert.equal(c.get(2).storage.lastIndex(), 2);
    return c.get(1).node.status().hardState.commit;
  };
  assert.equal(build(false), 0);
  assert.equal(build(true), 2, "the test-only fault commits it");
});

Deno.test("RawNode with PreVote: a rejoining partitioned node does not disrupt the leader", () => {
  for (const preVote of [true, false]) {
    const c = new TestCluster({ voters: [1, 2, 3], raft: { preVote } });
    c.elect(1);
    c.isolate(3);
    for (let i = 0; i < 10; i++) {
      c.tick(3, 30);
      c.stabilize();
    }
    c.heal();
    c.tick(1, 2); // a follower sent an App since the last round skips one heartbeat
    c.stabilize();
    const st = c.get(1).node.status();
    if (preVote) {
      assert.equal(st.softState.role, "leader");
      assert.equal(st.hardState.term, 1);
    } else {
      // The contrast: without PreVote the rejoining node's term deposes the leader.
      assert.notEqual(st.hardState.term, 1);
    }
  }
});

Deno.test("RawNode that holds campaigns still grants votes once its leader is silent", () => {
  for (const preVote of [true, false]) {
    for (let seed = 1; seed <= 20; seed++) {
      const c = new TestCluster({ voters: [1, 2, 3], raft: { preVote }, seed });
      c.elect(1);
      c.get(2).node.holdCampaigns();
      c.isolate(1);
      for (
        let t = 0;
        t < 200 && c.get(3).node.status().softState.role !== "leader";
        t++
      ) {
        c.tick(2, 1);
        c.tick(3, 1);
        c.stabilize();
      }
      assert.equal(
        c.get(3).node.status().softState.role,
        "leader",
        `preVote ${preVote}, seed ${seed}: node 3 never won node 2's vote`,
      );
    }
  }
});

Deno.test("RawNode with CheckQuorum: a leader that lost its quorum steps down", () => {
  const c = new TestCluster({ voters: [1, 2, 3], raft: { checkQuorum: true } });
  c.elect(1);
  c.isolate(1);
  c.tick(1, 25);
  c.stabilize();
  assert.equal(c.get(1).node.status().softState.role, "follower");
});

Deno.test("RawNode with CheckQuorum: a leader that hears its quorum stays", () => {
  const c = new TestCluster({ voters: [1, 2, 3], raft: { checkQuorum: true } });
  c.elect(1);
  for (let i = 0; i < 25; i++) {
    c.tick(1, 1);
    c.stabilize();
  }
  assert.equal(c.get(1).node.status().softState.role, "leader");
});

Deno.test("RawNode.transferLeadership hands over to a lagging follower after catching it up", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.isolate(3);
  c.get(1).node.propose(encodePayload("a"));
  c.stabilize();
  c.heal();
  c.get(1).node.transferLeadership(3);
  assert.throws(
    () => c.get(1).node.propose(encodePayload("b")),
    ProposalDroppedError,
  );
  c.stabilize();
  assert.equal(c.leader(), 3);
  assert.equal(c.get(3).node.status().hardState.term, 2);
  assert.deepEqual(c.get(3).applied, ["a"]);
});

Deno.test("RawNode.readIndex yields a ReadState at the commit index after a heartbeat quorum", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.get(1).node.propose(encodePayload("a"));
  c.stabilize();
  const commit = c.get(1).node.status().hardState.commit;
  const ctx = encodePayload("read-1");
  c.get(1).node.readIndex(ctx);
  c.get(2).node.readIndex(encodePayload("read-2"));
  c.stabilize();
  assert.deepEqual(c.get(1).readStates, [{ index: commit, context: ctx }]);
  assert.equal(c.get(2).readStates[0]?.index, commit);
});

Deno.test("RawNode.readIndex on an isolated leader yields nothing", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.isolate(1);
  c.get(1).node.readIndex(encodePayload("r"));
  c.tick(1, 3);
  c.stabilize();
  assert.deepEqual(c.get(1).readStates, []);
});

Deno.test("RawNode sends a snapshot to a follower that needs compacted entries", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.isolate(3);
  for (const p of ["a", "b", "c"]) c.get(1).node.propose(encodePayload(p));
  c.stabilize();
  assert.ok(c.get(1).compact());
  c.heal();
  c.tick(1, 2); // a follower sent an App since the last round skips one heartbeat
  c.stabilize();
  const three = c.get(3);
  assert.deepEqual(three.applied, ["a", "b", "c"]);
  assert.equal(
    three.storage.snapshot().meta.index,
    c.get(1).storage.snapshot().meta.index,
  );
  c.get(1).node.propose(encodePayload("d"));
  c.stabilize();
  assert.deepEqual(three.applied, ["a", "b", "c", "d"]);
});

Deno.test("RawNode adds a learner, which never campaigns, then promotes it", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.get(1).node.propose(encodePayload("a"));
  // A joining node starts from the group's bootstrap membership.
  c.addReplica(4, new MemoryStorage({ voters: [1, 2, 3], learners: [] }));
  c.get(1).node.proposeConfChange({ type: "addLearner", nodeId: 4 });
  assert.throws(
    () => c.get(1).node.proposeConfChange({ type: "addVoter", nodeId: 4 }),
    ProposalDroppedError,
    "one change at a time",
  );
  c.stabilize();
  const four = c.get(4);
  assert.deepEqual(four.applied, ["a"]);
  assert.deepEqual(four.confState, { voters: [1, 2, 3], learners: [4] });
  c.tick(4, 50);
  c.stabilize();
  assert.equal(four.node.status().softState.role, "follower");
  assert.equal(c.leader(), 1);

  c.get(1).node.proposeConfChange({ type: "addVoter", nodeId: 4 });
  c.stabilize();
  for (const id of [1, 2, 3, 4]) {
    assert.deepEqual(c.get(id).confState, {
      voters: [1, 2, 3, 4],
      learners: [],
    });
  }
  // With 4 voters, 2 and 3 down leaves no quorum; 4 counts now.
  c.isolate(2);
  c.isolate(3);
  c.get(1).node.propose(encodePayload("b"));
  c.stabilize();
  assert.deepEqual(c.get(4).applied, ["a"], "1 and 4 are not a quorum of 4");
});

Deno.test("RawNode removes a voter and the rest keep committing", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.get(1).node.proposeConfChange({ type: "removeVoter", nodeId: 3 });
  c.stabilize();
  c.isolate(3);
  c.get(1).node.propose(encodePayload("a"));
  c.stabilize();
  assert.deepEqual(c.get(2).applied, ["a"]);
  assert.deepEqual(c.get(1).confState, { voters: [1, 2], learners: [] });
});

Deno.test("RawNode keeps at most maxInflightMsgs unacknowledged appends per follower", () => {
  const c = new TestCluster({ voters: [1, 2], raft: { maxInflightMsgs: 2 } });
  c.elect(1);
  c.dropIf = (m) => m.type === MessageType.AppResp;
  let appsTo2 = 0;
  for (let i = 0; i < 6; i++) {
    c.get(1).node.propose(encodePayload(`p${i}`));
    c.processReadies();
    appsTo2 += c.queue.filter((m) =>
      m.type === MessageType.App && m.to === 2 && m.entries.length > 0
    ).length;
    c.deliverQueued();
  }
  assert.equal(appsTo2, 2);
});

Deno.test("RawNode batches proposals taken in one Ready into one append message", () => {
  const c = new TestCluster({ voters: [1, 2] });
  c.elect(1);
  for (let i = 0; i < 5; i++) c.get(1).node.propose(encodePayload(`p${i}`));
  c.processReadies();
  const apps = c.queue.filter((m) => m.type === MessageType.App && m.to === 2);
  assert.equal(apps.length, 1);
  assert.equal(apps[0]?.entries.length, 5);
});

Deno.test("RawNode restarts from storage with its term, vote and log", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.get(1).node.propose(encodePayload("a"));
  c.stabilize();
  const two = c.get(2);
  two.crashAndRestart();
  const st = two.node.status();
  assert.equal(st.hardState.term, 1);
  assert.equal(st.hardState.vote, 1);
  c.tick(1, 2); // a follower sent an App since the last round skips one heartbeat
  c.stabilize();
  assert.deepEqual(two.applied, ["a"]);
});

Deno.test("RawNode rejects options that cannot work, naming the field", () => {
  const storage = new MemoryStorage({ voters: [1], learners: [] });
  const base = {
    id: 1,
    electionTicks: 10,
    heartbeatTicks: 1,
    checkQuorum: false,
    preVote: false,
    maxSizePerMsg: 1024,
    maxInflightMsgs: 4,
    rng: { nextInt: () => 0 },
  };
  assert.throws(
    () => new RawNode(storage, { ...base, id: 0 }),
    (e) => e instanceof RaftConfigError && /option id/.test(e.message),
  );
  assert.throws(
    () => new RawNode(storage, { ...base, heartbeatTicks: 10 }),
    (e) => e instanceof RaftConfigError && /electionTicks/.test(e.message),
  );
});

Deno.test("RawNode.step refuses a message type that peers never send", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  assert.throws(
    () =>
      c.get(1).node.step(
        newMessage({ type: MessageType.Prop, from: 2, to: 1, term: 1 }),
      ),
    RaftConfigError,
  );
});

Deno.test("RawNode single voter commits and answers reads alone", () => {
  const c = new TestCluster({ voters: [1] });
  c.elect(1);
  c.get(1).node.propose(encodePayload("a"));
  c.stabilize();
  c.get(1).node.readIndex(encodePayload("r"));
  c.stabilize();
  assert.deepEqual(c.get(1).applied, ["a"]);
  assert.equal(c.get(1).readStates[0]?.index, 2);
});

Deno.test("RawNode leader counts its own entry toward commit only after advance", () => {
  const c = new TestCluster({ voters: [1] });
  c.elect(1);
  const leader = c.get(1);
  const index = leader.node.propose(encodePayload("a"));
  const rd = leader.startReady()!;
  assert.deepEqual(rd.entries.map((e) => e.index), [index]);
  assert.deepEqual(rd.committedEntries, []);
  assert.equal(leader.node.status().hardState.commit, index - 1);
  leader.finishReady();
  const next = leader.startReady()!;
  assert.deepEqual(next.committedEntries.map((e) => e.index), [index]);
});

Deno.test("RawNode hands a leader's appends out as early messages and acknowledgements as late ones", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  c.get(1).node.propose(encodePayload("a"));
  const leaderReady = c.get(1).startReady()!;
  assert.deepEqual(
    leaderReady.earlyMessages.map((m) => [m.type, m.to]),
    [[MessageType.App, 2], [MessageType.App, 3]],
  );
  assert.deepEqual(leaderReady.messages, []);
  const follower = c.get(2);
  follower.deliver(leaderReady.earlyMessages[0]!);
  const followerReady = follower.startReady()!;
  assert.deepEqual(followerReady.earlyMessages, []);
  assert.deepEqual(
    followerReady.messages.map((m) => m.type),
    [MessageType.AppResp],
  );
});

Deno.test("RawNode holds a new leader's appends back until its term is durable", () => {
  // A lone voter wins at once: its learner must not hear of the new term before it is on disk.
  const c = new TestCluster({ voters: [1], learners: [2] });
  c.get(1).node.campaign();
  const rd = c.get(1).startReady()!;
  assert.equal(rd.softState?.role, "leader");
  assert.ok(rd.hardState !== null && rd.mustSync);
  assert.deepEqual(rd.earlyMessages, []);
  assert.deepEqual(rd.messages.map((m) => m.type), [MessageType.App]);
});

Deno.test("RawNode skips a heartbeat to a follower sent an App since the last round, unless a read needs it", () => {
  const c = new TestCluster({ voters: [1, 2, 3] });
  c.elect(1);
  const heartbeatsTo = () =>
    c.queue.filter((m) => m.type === MessageType.Heartbeat).map((m) => m.to);
  c.get(1).node.propose(encodePayload("a"));
  c.processReadies();
  c.tick(1, 1);
  c.processReadies();
  assert.deepEqual(heartbeatsTo(), []);
  c.tick(1, 1);
  c.processReadies();
  assert.deepEqual(heartbeatsTo(), [2, 3]);
  c.stabilize();
  c.get(1).node.propose(encodePayload("b"));
  c.processReadies();
  c.get(1).node.readIndex(encodePayload("r"));
  c.processReadies();
  assert.deepEqual(heartbeatsTo(), [2, 3]);
});

Deno.test("RawNode advanced unpersisted: a sole voter commits only once persisted() says the Ready is durable", () => {
  const c = new TestCluster({ voters: [1] });
  c.elect(1);
  const { node, storage } = c.get(1);
  const index = node.propose(encodePayload("a"));
  const rd = node.ready();
  storage.append(rd.entries);
  node.advance(rd, { persisted: false });
  assert.equal(node.hasReady(), false);
  assert.equal(node.status().hardState.commit, index - 1);
  node.persisted(rd);
  const next = node.ready();
  assert.deepEqual(next.committedEntries.map((e) => e.index), [index]);
});

Deno.test("RawNode advanced unpersisted: a new leader's appends stay late until its term is durable", () => {
  const c = new TestCluster({ voters: [1], learners: [2] });
  const { node, storage } = c.get(1);
  const learner = c.get(2);
  const write = (rd: Ready) => {
    storage.append(rd.entries);
    if (rd.hardState !== null) storage.setHardState(rd.hardState);
    node.advance(rd, { persisted: false });
  };
  // The learner answers, so that the leader replicates to it without probing.
  const answer = (rd: Ready) => {
    for (const m of [...rd.earlyMessages, ...rd.messages]) learner.deliver(m);
    for (const m of learner.processReady()?.ready.messages ?? []) {
      node.step(m);
    }
  };
  node.campaign();
  const won = node.ready();
  assert.equal(won.softState?.role, "leader");
  write(won);
  answer(won);
  node.propose(encodePayload("a"));
  const before = node.ready();
  assert.deepEqual(before.earlyMessages, []);
  assert.ok(before.messages.some((m) => m.type === MessageType.App));
  write(before);
  node.persisted(won);
  node.persisted(before);
  answer(before);
  node.propose(encodePayload("b"));
  const after = node.ready();
  assert.ok(after.earlyMessages.some((m) => m.type === MessageType.App));
});
