/** Flow control and quorum arithmetic of the leader's progress tracker. */
import assert from "node:assert/strict";
import { committedIndex, Progress, voteResult } from "./progress.ts";

function progress(): Progress {
  return new Progress(1, { maxInflightMsgs: 2, isLearner: false });
}

Deno.test("Progress in replicate pauses when the inflight bound is reached and resumes on ack", () => {
  const pr = progress();
  pr.becomeReplicate();
  pr.sentEntries(3);
  assert.equal(pr.isPaused(), false);
  pr.sentEntries(5);
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.next, 6);
  pr.maybeUpdate(3);
  pr.inflights.freeTo(3);
  assert.equal(pr.isPaused(), false);
});

Deno.test("Progress in probe sends one message until answered", () => {
  const pr = progress();
  pr.sentEntries(0);
  assert.equal(pr.isPaused(), true);
  assert.equal(pr.maybeDecrTo(0, 0), true);
  assert.equal(pr.isPaused(), false);
});

Deno.test("Progress.maybeDecrTo jumps to the hint and ignores stale rejections", () => {
  const pr = new Progress(11, { maxInflightMsgs: 2, isLearner: false });
  assert.equal(pr.maybeDecrTo(7, 3), false, "not the last probe");
  assert.equal(pr.maybeDecrTo(10, 3), true);
  assert.equal(pr.next, 4);
  pr.maybeUpdate(5);
  pr.becomeReplicate();
  assert.equal(pr.maybeDecrTo(4, 0), false, "below match: stale");
});

Deno.test("Progress leaving snapshot state resumes after the snapshot", () => {
  const pr = progress();
  pr.becomeSnapshot(20);
  assert.equal(pr.isPaused(), true);
  pr.becomeProbe();
  assert.equal(pr.next, 21);
});

Deno.test("committedIndex is the highest index a majority holds", () => {
  const match = new Map([[1, 9], [2, 5], [3, 7], [4, 1], [5, 7]]);
  assert.equal(committedIndex([1, 2, 3, 4, 5], (id) => match.get(id)!), 7);
  assert.equal(committedIndex([1, 2, 3, 4], (id) => match.get(id)!), 5);
  assert.equal(committedIndex([1], (id) => match.get(id)!), 9);
});

Deno.test("voteResult wins on a majority of grants and loses once a majority is out of reach", () => {
  const voters = [1, 2, 3, 4];
  assert.equal(voteResult(voters, new Map([[1, true], [2, true]])), "pending");
  assert.equal(
    voteResult(voters, new Map([[1, true], [2, true], [3, true]])),
    "won",
  );
  assert.equal(
    voteResult(voters, new Map([[1, true], [2, false], [3, false]])),
    "lost",
  );
});
