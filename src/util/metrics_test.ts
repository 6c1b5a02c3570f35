/**
 * The registry's page must be what Prometheus reads: each test renders a
 * page and parses it back with parse-prometheus-text-format, an
 * independent parser of the text format.
 */
import assert from "node:assert/strict";
import parsePrometheusTextFormat from "parse-prometheus-text-format";
import { Registry } from "./metrics.ts";

interface ParsedFamily {
  name: string;
  help: string;
  type: string;
  metrics: {
    labels?: Record<string, string>;
    value?: string;
    buckets?: Record<string, string>;
    count?: string;
    sum?: string;
  }[];
}

function parse(page: string): Map<string, ParsedFamily> {
  const families = parsePrometheusTextFormat(page) as ParsedFamily[];
  return new Map(families.map((f) => [f.name, f]));
}

Deno.test("Registry.render counters and gauges parse with their labels and values", () => {
  const r = new Registry();
  const requests = r.counter("raftq_test_requests_total", "Requests", [
    "api",
  ]);
  const produce = requests.labels("Produce");
  produce.inc();
  produce.inc(2);
  requests.labels('we"ird\\name\n').inc();
  r.gauge("raftq_test_open", "Open things").labels().set(-4.5);
  const page = parse(r.render());
  const req = page.get("raftq_test_requests_total")!;
  assert.equal(req.type, "COUNTER");
  assert.equal(req.help, "Requests");
  assert.deepEqual(
    req.metrics.map((m) => [m.labels?.api, m.value]),
    [["Produce", "3"], ['we"ird\\name\n', "1"]],
  );
  assert.equal(page.get("raftq_test_open")!.metrics[0]!.value, "-4.5");
});

Deno.test("Registry.histogram buckets are cumulative and count every observation", () => {
  const r = new Registry();
  // Unlabelled: the parser folds the children of a labelled histogram into one.
  const h = r.histogram("raftq_test_seconds", "Latency", {
    buckets: [0.01, 0.1, 1],
  }).labels();
  for (const v of [0.005, 0.05, 0.05, 0.5, 7]) h.observe(v);
  const [m] = parse(r.render()).get("raftq_test_seconds")!.metrics;
  assert.deepEqual(m!.buckets, {
    "0.01": "1",
    "0.1": "3",
    "1": "4",
    "+Inf": "5",
  });
  assert.equal(m!.count, "5");
  assert.equal(Number(m!.sum), 0.005 + 0.05 + 0.05 + 0.5 + 7);
});

Deno.test("Registry.collected yields samples from the callback at each render", () => {
  const r = new Registry();
  let size = 10;
  r.collected("raftq_test_log_bytes", {
    help: "Log size",
    type: "gauge",
    labelNames: ["topic", "partition"],
    collect: (emit) => {
      emit(["a", "0"], size);
      emit(["a", "1"], size * 2);
    },
  });
  assert.equal(
    parse(r.render()).get("raftq_test_log_bytes")!.metrics[1]!.value,
    "20",
  );
  size = 11;
  assert.equal(
    parse(r.render()).get("raftq_test_log_bytes")!.metrics[0]!.value,
    "11",
  );
});

Deno.test("Registry refuses a duplicate name, a bad name and a wrong label count", () => {
  const r = new Registry();
  const c = r.counter("raftq_x_total", "x", ["a"]);
  assert.throws(() => r.gauge("raftq_x_total", "again"), RangeError);
  assert.throws(() => r.gauge("raftq-bad", "dash"), RangeError);
  assert.throws(
    () => r.gauge("raftq_le", "reserved label", ["le"]),
    RangeError,
  );
  assert.throws(() => c.labels(), RangeError);
  assert.throws(() => c.labels("v").inc(-1), RangeError);
});
