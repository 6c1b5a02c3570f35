/**
 * A small metrics registry rendered in the Prometheus text exposition
 * format (version 0.0.4). Two kinds of family:
 *
 * - pushed families (counter, gauge, histogram) whose children are looked
 *   up once by label values and then kept by the caller, so that a hot
 *   path pays one method call and no string building per event;
 * - collected families, whose samples a callback yields at scrape time from
 *   state the program keeps anyway (log sizes, Raft positions), so that
 *   nothing at all is spent between scrapes.
 *
 * Families render in registration order, children in creation order.
 */

type Labels = readonly string[];

/** Upper bounds in seconds from 0.5 ms to 10 s, for request and disk latencies. */
export const LATENCY_BUCKETS_SECONDS: readonly number[] = [
  0.0005,
  0.001,
  0.0025,
  0.005,
  0.01,
  0.025,
  0.05,
  0.1,
  0.25,
  0.5,
  1,
  2.5,
  5,
  10,
];

export class CounterChild {
  value = 0;
  /** Counters only rise: a negative step is a bug in the caller. */
  inc(by = 1): void {
    if (by < 0) throw new RangeError(`Counter step ${by} is negative`);
    this.value += by;
  }
}

export class GaugeChild {
  value = 0;
  set(value: number): void {
    this.value = value;
  }
  inc(by = 1): void {
    this.value += by;
  }
}

export class HistogramChild {
  readonly #bounds: readonly number[];
  /** Per bucket, not cumulative: cumulated at render. */
  readonly counts: number[];
  sum = 0;
  count = 0;

  constructor(bounds: readonly number[]) {
    this.#bounds = bounds;
    this.counts = new Array(bounds.length).fill(0);
  }

  observe(value: number): void {
    this.sum += value;
    this.count++;
    const bounds = this.#bounds;
    for (let i = 0; i < bounds.length; i++) {
      if (value <= bounds[i]!) {
        this.counts[i]!++;
        return;
      }
    }
  }
}

/** One sample of a collected family: label values in the family's order. */
export type Emit = (labels: Labels, value: number) => void;

interface Family {
  readonly name: string;
  readonly help: string;
  readonly type: "counter" | "gauge" | "histogram";
  readonly labelNames: Labels;
  render(out: string[]): void;
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/\n/g, "\\n").replace(
    /"/g,
    '\\"',
  );
}

function labelText(names: Labels, values: Labels, extra = ""): string {
  const parts = names.map((n, i) => `${n}="${escapeLabel(values[i] ?? "")}"`);
  if (extra !== "") parts.push(extra);
  return parts.length === 0 ? "" : `{${parts.join(",")}}`;
}

function formatValue(v: number): string {
  if (Number.isNaN(v)) return "NaN";
  if (v === Infinity) return "+Inf";
  if (v === -Infinity) return "-Inf";
  return String(v);
}

const NAME = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const LABEL = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A pushed family: children by label values, kept by the callers. */
export class PushedFamily<C> implements Family {
  readonly #children = new Map<string, { values: Labels; child: C }>();
  readonly #make: () => C;
  readonly #renderChild: (
    out: string[],
    name: string,
    labels: { names: Labels; values: Labels },
    child: C,
  ) => void;

  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: Family["type"],
    readonly labelNames: Labels,
    opts: {
      make: () => C;
      render: (
        out: string[],
        name: string,
        labels: { names: Labels; values: Labels },
        child: C,
      ) => void;
    },
  ) {
    this.#make = opts.make;
    this.#renderChild = opts.render;
  }

  /** The child for these label values, created on first use. Look it up once, not per event. */
  labels(...values: string[]): C {
    if (values.length !== this.labelNames.length) {
      throw new RangeError(
        `Metric ${this.name} takes ${this.labelNames.length} label value(s), got ${values.length}`,
      );
    }
    const key = values.join("\u0000");
    let entry = this.#children.get(key);
    if (entry === undefined) {
      entry = { values, child: this.#make() };
      this.#children.set(key, entry);
    }
    return entry.child;
  }

  render(out: string[]): void {
    for (const { values, child } of this.#children.values()) {
      this.#renderChild(out, this.name, {
        names: this.labelNames,
        values,
      }, child);
    }
  }
}

class CollectedFamily implements Family {
  constructor(
    readonly name: string,
    readonly help: string,
    readonly type: "counter" | "gauge",
    readonly labelNames: Labels,
    readonly collect: (emit: Emit) => void,
  ) {}

  render(out: string[]): void {
    this.collect((values, value) => {
      out.push(
        `${this.name}${labelText(this.labelNames, values)} ${
          formatValue(value)
        }`,
      );
    });
  }
}

function renderScalar(
  out: string[],
  name: string,
  labels: { names: Labels; values: Labels },
  child: { value: number },
): void {
  out.push(
    `${name}${labelText(labels.names, labels.values)} ${
      formatValue(child.value)
    }`,
  );
}

export class Registry {
  readonly #families: Family[] = [];

  #add<F extends Family>(family: F): F {
    if (!NAME.test(family.name)) {
      throw new RangeError(`Metric name "${family.name}" is not valid`);
    }
    for (const l of family.labelNames) {
      if (!LABEL.test(l) || l === "le") {
        throw new RangeError(
          `Label name "${l}" of ${family.name} is not valid`,
        );
      }
    }
    if (this.#families.some((f) => f.name === family.name)) {
      throw new RangeError(`Metric ${family.name} is registered twice`);
    }
    this.#families.push(family);
    return family;
  }

  counter(
    name: string,
    help: string,
    labelNames: Labels = [],
  ): PushedFamily<CounterChild> {
    return this.#add(
      new PushedFamily(name, help, "counter", labelNames, {
        make: () => new CounterChild(),
        render: renderScalar,
      }),
    );
  }

  gauge(
    name: string,
    help: string,
    labelNames: Labels = [],
  ): PushedFamily<GaugeChild> {
    return this.#add(
      new PushedFamily(name, help, "gauge", labelNames, {
        make: () => new GaugeChild(),
        render: renderScalar,
      }),
    );
  }

  histogram(
    name: string,
    help: string,
    opts: { labelNames?: Labels; buckets?: readonly number[] } = {},
  ): PushedFamily<HistogramChild> {
    const bounds = opts.buckets ?? LATENCY_BUCKETS_SECONDS;
    for (let i = 1; i < bounds.length; i++) {
      if (!(bounds[i]! > bounds[i - 1]!)) {
        throw new RangeError(`Buckets of ${name} do not rise: ${bounds}`);
      }
    }
    return this.#add(
      new PushedFamily(name, help, "histogram", opts.labelNames ?? [], {
        make: () => new HistogramChild(bounds),
        render: (out, family, labels, child) => {
          let cumulative = 0;
          for (let i = 0; i < bounds.length; i++) {
            cumulative += child.counts[i]!;
            const le = `le="${formatValue(bounds[i]!)}"`;
            out.push(
              `${family}_bucket${
                labelText(labels.names, labels.values, le)
              } ${cumulative}`,
            );
          }
          const all = labelText(labels.names, labels.values);
          out.push(
            `${family}_bucket${
              labelText(labels.names, labels.values, 'le="+Inf"')
            } ${child.count}`,
          );
          out.push(`${family}_sum${all} ${formatValue(child.sum)}`);
          out.push(`${family}_count${all} ${child.count}`);
        },
      }),
    );
  }

  /** A family whose samples `collect` yields at each scrape. */
  collected(
    name: string,
    opts: {
      help: string;
      type: "counter" | "gauge";
      labelNames?: Labels;
      collect: (emit: Emit) => void;
    },
  ): void {
    this.#add(
      new CollectedFamily(
        name,
        opts.help,
        opts.type,
        opts.labelNames ?? [],
        opts.collect,
      ),
    );
  }

  /** The whole page, in the text exposition format. */
  render(): string {
    const out: string[] = [];
    for (const f of this.#families) {
      out.push(
        `# HELP ${f.name} ${
          f.help.replace(/\\/g, "\\\\").replace(/\n/g, "\\n")
        }`,
      );
      out.push(`# TYPE ${f.name} ${f.type}`);
      f.render(out);
    }
    out.push("");
    return out.join("\n");
  }
}
