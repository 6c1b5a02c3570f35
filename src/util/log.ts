/**
 * Structured log lines, one per event, in text for people or JSON for log
 * shippers. Every line carries the time, the level, the broker id, the
 * message and the event's fields (topic, partition, group, peer…). The
 * sink and clock are injected, so that tests read exact lines.
 */

export type LogLevel = "debug" | "info" | "warn" | "error";

export type LogFields = Readonly<
  Record<string, string | number | boolean | bigint | null | undefined>
>;

export interface Logger {
  debug(message: string, fields?: LogFields): void;
  info(message: string, fields?: LogFields): void;
  warn(message: string, fields?: LogFields): void;
  error(message: string, fields?: LogFields): void;
}

const RANK: Readonly<Record<LogLevel, number>> = {
  debug: 0,
  info: 1,
  warn: 2,
  error: 3,
};

/** A text field value: bare when it cannot be misread, else JSON-quoted. */
function textValue(v: string | number | boolean | bigint | null): string {
  if (typeof v !== "string") return String(v);
  return /^[^\s"=]+$/.test(v) ? v : JSON.stringify(v);
}

export interface LoggerOptions {
  format: "text" | "json";
  /** Least severe level written. */
  level: LogLevel;
  nodeId: number;
  /** Receives each line, newline included (default: stderr). */
  write?: (line: string) => void;
  now?: () => Date;
}

const encoder = new TextEncoder();

function writeStderr(line: string): void {
  const bytes = encoder.encode(line);
  // A short write of a pipe is retried until the line is out whole.
  for (let pos = 0; pos < bytes.length;) {
    pos += Deno.stderr.writeSync(bytes.subarray(pos));
  }
}

export function createLogger(opts: LoggerOptions): Logger {
  const write = opts.write ?? writeStderr;
  const now = opts.now ?? (() => new Date());
  const least = RANK[opts.level];
  const line = (level: LogLevel, message: string, fields: LogFields = {}) => {
    if (RANK[level] < least) return;
    const time = now().toISOString();
    const present = Object.entries(fields).filter(([, v]) => v !== undefined);
    if (opts.format === "json") {
      const record: Record<string, unknown> = {
        time,
        level,
        broker: opts.nodeId,
        msg: message,
      };
      for (const [k, v] of present) {
        // Fields never hide the envelope's own keys.
        const key = k in record ? `field_${k}` : k;
        record[key] = typeof v === "bigint" ? String(v) : v;
      }
      write(`${JSON.stringify(record)}\n`);
      return;
    }
    const tail = present.map(([k, v]) => ` ${k}=${textValue(v!)}`).join("");
    const oneLine = message.replace(/\n/g, "\\n");
    write(
      `${time} ${level.toUpperCase()} raftq[${opts.nodeId}]: ${oneLine}${tail}\n`,
    );
  };
  return {
    debug: (m, f) => line("debug", m, f),
    info: (m, f) => line("info", m, f),
    warn: (m, f) => line("warn", m, f),
    error: (m, f) => line("error", m, f),
  };
}
