/**
 * The dashboard in a real headless Chromium (Debian's `chromium`, installed
 * by scripts/setup_test_deps.sh) against a running 3-broker cluster: the
 * page loaded from a broker that is not the controller shows the brokers,
 * the controller and each partition's leader and replicas as the Kafka
 * Metadata API reports them, and a screenshot of it is kept.
 *
 * Chromium runs with --dump-dom and a virtual time budget, which lets the
 * page's first poll finish before the DOM is printed; cells are read by
 * their data-field attributes.
 */
import assert from "node:assert/strict";
import { Cluster, waitFor } from "./cluster_harness.ts";
import { removeDir, run } from "./harness.ts";

const CHROMIUM = "/usr/bin/chromium";
const hasChromium = await Deno.stat(CHROMIUM).then(() => true, () => false);
if (!hasChromium) {
  console.error(
    `dashboard_test: skipped, ${CHROMIUM} is absent (scripts/setup_test_deps.sh installs Debian's chromium)`,
  );
}

/** Flags for a root, offline machine: no sandbox, no calls home. */
const FLAGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--virtual-time-budget=5000",
  "--window-size=1200,900",
];

async function chromium(args: string[]): Promise<string> {
  const profile = await Deno.makeTempDir({ prefix: "raftq-chromium-" });
  try {
    const out = await run(CHROMIUM, [
      ...FLAGS,
      `--user-data-dir=${profile}`,
      ...args,
    ], { timeoutMs: 60_000 });
    assert.equal(out.code, 0, out.stderr);
    return new TextDecoder().decode(out.stdout);
  } finally {
    await removeDir(profile);
  }
}

/** The text of every `data-field` cell of the rows matching `rowAttr`. */
function rows(
  dom: string,
  rowAttr: string,
): Map<string, Record<string, string>> {
  const out = new Map<string, Record<string, string>>();
  const rowRe = new RegExp(`<tr ${rowAttr}="([^"]*)"([^>]*)>(.*?)</tr>`, "g");
  for (const [, key, rest, cells] of dom.matchAll(rowRe)) {
    const fields: Record<string, string> = {};
    for (const [, f, v] of cells!.matchAll(/data-field="(\w+)">([^<]*)/g)) {
      fields[f!] = v!;
    }
    const partition = /data-partition="(\d+)"/.exec(rest!)?.[1];
    out.set(partition === undefined ? key! : `${key}-${partition}`, fields);
  }
  return out;
}

Deno.test({
  name:
    "the dashboard served by any broker shows the brokers, controller and partition leaders the Kafka API reports",
  ignore: !hasChromium,
  fn: async () => {
    const cluster = await Cluster.start({ size: 3 });
    const shots = await Deno.makeTempDir({ prefix: "raftq-dashboard-" });
    try {
      const client = await cluster.client();
      let md;
      try {
        await client.createTopic("shown", {
          partitions: 3,
          replicationFactor: 3,
        });
        await cluster.waitForLeaders(client, "shown", { preferred: true });
        md = await client.metadata(["shown"]);
      } finally {
        await client.close();
      }
      const viewer = cluster.members.find((m) => m.nodeId !== md.controllerId)!;
      // Another broker's view settles on the same leaders a moment later.
      const dom = await waitFor(
        "the dashboard to show every leader",
        async () => {
          const page = await chromium(["--dump-dom", `${viewer.adminUrl}/`]);
          const shown = rows(page, "data-topic");
          return [0, 1, 2].every((p) =>
              shown.get(`shown-${p}`)?.leader ===
                String(
                  md.topics[0]!.partitions.find((x) => x.partition === p)!
                    .leader,
                )
            )
            ? page
            : undefined;
        },
        { timeoutMs: 60_000, intervalMs: 500 },
      );

      assert.match(dom, new RegExp(`<span id="node">${viewer.nodeId}<`));
      assert.match(
        dom,
        new RegExp(`<span id="controller">${md.controllerId}<`),
      );
      const brokers = rows(dom, "data-broker");
      assert.deepEqual(
        [...brokers.keys()].sort(),
        md.brokers.map((b) => String(b.nodeId)).sort(),
      );
      assert.equal(brokers.get(String(md.controllerId))?.controller, "yes");
      const partitions = rows(dom, "data-topic");
      for (const p of md.topics[0]!.partitions) {
        const row = partitions.get(`shown-${p.partition}`)!;
        assert.equal(row.replicas, p.replicas.join(","));
      }
      assert.equal(rows(dom, "data-topic").get("shown")?.partitions, "3");

      const png = `${shots}/dashboard.png`;
      await chromium([`--screenshot=${png}`, `${viewer.adminUrl}/`]);
      assert.ok((await Deno.stat(png)).size > 10_000, "a screenshot was taken");
      // RAFTQ_* names are broker config: this one must not start so.
      const keep = Deno.env.get("DASHBOARD_SCREENSHOT_PATH");
      if (keep !== undefined) await Deno.copyFile(png, keep);
    } finally {
      await cluster.destroy();
      await removeDir(shots);
    }
  },
});
