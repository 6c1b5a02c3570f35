/**
 * The dashboard served at `/`: one self-contained page (no script, style or
 * font from elsewhere, so it is inside the compiled executable and works
 * offline) that polls the admin JSON API and /metrics of the broker that
 * served it. Names from the cluster are put in the page as text nodes,
 * never as markup.
 *
 * Cells carry `data-field` (and rows `data-topic`, `data-broker`,
 * `data-group`) so that a browser test can read what is shown.
 */

/** Milliseconds between two polls of the page. */
export const DASHBOARD_POLL_MS = 2000;

const SCRIPT = String.raw`
const POLL_MS = ${DASHBOARD_POLL_MS};
const HISTORY = 60;
const history = new Map(); // topic -> [{t, bytes, records}]

async function get(path) {
  const res = await fetch(path);
  if (path === "/metrics") return res.text();
  return res.json();
}

/** Sums raftq_partition_<name> samples per topic from the Prometheus page. */
function perTopic(page, name) {
  const sums = new Map();
  const re = new RegExp("^raftq_partition_" + name + '\\{topic="((?:[^"\\\\]|\\\\.)*)",partition="\\d+"\\} (\\S+)$', "gm");
  for (const m of page.matchAll(re)) {
    const topic = JSON.parse('"' + m[1] + '"');
    sums.set(topic, (sums.get(topic) ?? 0) + Number(m[2]));
  }
  return sums;
}

function cell(row, field, value) {
  const td = document.createElement("td");
  td.dataset.field = field;
  td.textContent = String(value);
  row.appendChild(td);
  return td;
}

function fill(id, rows) {
  const body = document.getElementById(id);
  body.replaceChildren(...rows);
}

function rate(points, key) {
  if (points.length < 2) return 0;
  const a = points[points.length - 2];
  const b = points[points.length - 1];
  return Math.max(0, (b[key] - a[key]) / ((b.t - a.t) / 1000));
}

function spark(points) {
  const ns = "http://www.w3.org/2000/svg";
  const svg = document.createElementNS(ns, "svg");
  svg.setAttribute("width", "120");
  svg.setAttribute("height", "24");
  const rates = [];
  for (let i = 1; i < points.length; i++) {
    rates.push(Math.max(0, (points[i].bytes - points[i - 1].bytes) / ((points[i].t - points[i - 1].t) / 1000)));
  }
  const max = Math.max(1, ...rates);
  const line = document.createElementNS(ns, "polyline");
  line.setAttribute("fill", "none");
  line.setAttribute("stroke", "#2b7bb9");
  line.setAttribute("points", rates.map((r, i) => (i * 120 / (HISTORY - 1)).toFixed(1) + "," + (23 - r / max * 22).toFixed(1)).join(" "));
  svg.appendChild(line);
  return svg;
}

function human(n) {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let i = 0;
  while (n >= 1024 && i < units.length - 1) { n /= 1024; i++; }
  return (i === 0 ? String(Math.round(n)) : n.toFixed(1)) + " " + units[i];
}

async function poll() {
  try {
    const [brokers, topics, groups, page, ready] = await Promise.all([
      get("/v1/brokers"), get("/v1/topics"), get("/v1/groups"), get("/metrics"), get("/v1/health/ready"),
    ]);
    document.getElementById("node").textContent = String(ready.nodeId);
    document.getElementById("controller").textContent = String(ready.controllerId);
    const readyEl = document.getElementById("ready");
    readyEl.textContent = ready.status + (ready.unavailable.length ? ": " + ready.unavailable.join(", ") : "");
    readyEl.className = ready.status === "ready" ? "ok" : "bad";

    fill("brokers", brokers.map((b) => {
      const tr = document.createElement("tr");
      tr.dataset.broker = String(b.nodeId);
      cell(tr, "nodeId", b.nodeId);
      cell(tr, "address", b.host + ":" + b.kafkaPort);
      cell(tr, "status", b.status);
      cell(tr, "controller", b.isController ? "yes" : "");
      return tr;
    }));

    const bytesIn = perTopic(page, "bytes_in_total");
    const recordsIn = perTopic(page, "records_in_total");
    const size = perTopic(page, "log_bytes");
    const now = Date.now();
    const visible = topics.filter((t) => !t.internal);
    const details = await Promise.all(visible.map((t) => get("/v1/topics/" + encodeURIComponent(t.name))));
    fill("topics", visible.map((t) => {
      const points = history.get(t.name) ?? [];
      points.push({ t: now, bytes: bytesIn.get(t.name) ?? 0, records: recordsIn.get(t.name) ?? 0 });
      if (points.length > HISTORY) points.shift();
      history.set(t.name, points);
      const tr = document.createElement("tr");
      tr.dataset.topic = t.name;
      cell(tr, "name", t.name);
      cell(tr, "partitions", t.partitions);
      cell(tr, "replicationFactor", t.replicationFactor);
      cell(tr, "recordsIn", recordsIn.get(t.name) ?? 0);
      cell(tr, "bytesInPerSec", human(rate(points, "bytes")) + "/s");
      cell(tr, "size", human(size.get(t.name) ?? 0));
      cell(tr, "chart", "").appendChild(spark(points));
      return tr;
    }));
    fill("partitions", details.flatMap((d) => d.partitionDetails.map((p) => {
      const tr = document.createElement("tr");
      tr.dataset.topic = p.topic;
      tr.dataset.partition = String(p.partition);
      cell(tr, "topic", p.topic);
      cell(tr, "partition", p.partition);
      cell(tr, "leader", p.leader);
      cell(tr, "replicas", p.replicas.join(","));
      cell(tr, "isr", p.isr.join(","));
      cell(tr, "offline", p.offline.join(","));
      return tr;
    })));
    const groupDetails = await Promise.all(groups.map((g) => get("/v1/groups/" + encodeURIComponent(g.groupId))));
    fill("groups", groupDetails.filter((g) => g.groupId !== undefined).map((g) => {
      const tr = document.createElement("tr");
      tr.dataset.group = g.groupId;
      cell(tr, "groupId", g.groupId);
      cell(tr, "state", g.state);
      cell(tr, "members", g.members.length);
      cell(tr, "lag", g.offsets.reduce((s, o) => s + (o.lag ?? 0), 0));
      return tr;
    }));
    document.getElementById("updated").textContent = new Date(now).toISOString();
    document.getElementById("error").textContent = "";
  } catch (err) {
    document.getElementById("error").textContent = "Polling failed: " + err;
  } finally {
    setTimeout(poll, POLL_MS);
  }
}
poll();
`;

/** The whole page. */
export const DASHBOARD_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>raftq</title>
<style>
body { font: 14px system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.3em; } h2 { font-size: 1.05em; margin-top: 1.5em; }
table { border-collapse: collapse; }
th, td { padding: 3px 10px; border-bottom: 1px solid #ddd; text-align: left; }
th { background: #f3f3f3; }
.ok { color: #17803d; } .bad { color: #b3261e; }
#error { color: #b3261e; }
</style>
</head>
<body>
<h1>raftq broker <span id="node">?</span></h1>
<p>Controller: broker <span id="controller">?</span> · Readiness:
<span id="ready">?</span> · Updated <span id="updated">never</span></p>
<p id="error"></p>
<h2>Brokers</h2>
<table><thead><tr><th>Id</th><th>Kafka address</th><th>Status</th><th>Controller</th></tr></thead>
<tbody id="brokers"></tbody></table>
<h2>Topics</h2>
<p>Traffic and size are those of the replicas on this broker.</p>
<table><thead><tr><th>Name</th><th>Partitions</th><th>Replicas</th><th>Records in</th><th>Bytes in</th><th>Size</th><th>Throughput</th></tr></thead>
<tbody id="topics"></tbody></table>
<h2>Partitions</h2>
<table><thead><tr><th>Topic</th><th>Partition</th><th>Leader</th><th>Replicas</th><th>In sync</th><th>Offline</th></tr></thead>
<tbody id="partitions"></tbody></table>
<h2>Consumer groups coordinated here</h2>
<table><thead><tr><th>Group</th><th>State</th><th>Members</th><th>Lag</th></tr></thead>
<tbody id="groups"></tbody></table>
<script>${SCRIPT}</script>
</body>
</html>
`;
