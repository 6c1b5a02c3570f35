/**
 * The shape of the compact message schemas that scripts/gen_protocol.ts
 * writes into messages_gen.ts, and that codec.ts compiles into readers and
 * writers.
 */

/** Highest version a "N+" range may reach; the wire field is an int16. */
export const VERSION_MAX = 0x7fff;

/** Inclusive [min, max] version range. */
export type VersionRange = readonly [number, number];

export type PrimitiveType =
  | "int8"
  | "int16"
  | "int32"
  | "uint16"
  | "int64"
  | "float64"
  | "bool"
  | "string"
  | "bytes"
  | "records"
  | "uuid";

export type DefaultValue = number | bigint | boolean | string | null;

export interface FieldSchema {
  /** camelCase of the spec's Name. */
  readonly name: string;
  /** "struct" when the field (or each array element) has nested fields. */
  readonly type: PrimitiveType | "struct";
  readonly array?: true;
  readonly versions: VersionRange;
  readonly nullableVersions?: VersionRange;
  readonly taggedVersions?: VersionRange;
  readonly tag?: number;
  /** Only when the spec gives one; otherwise the type's zero value. */
  readonly default?: DefaultValue;
  readonly fields?: readonly FieldSchema[];
}

export interface MessageSchema {
  readonly name: string;
  readonly validVersions: VersionRange;
  /** Absent when no version is flexible. */
  readonly flexibleVersions?: VersionRange;
  readonly fields: readonly FieldSchema[];
}

export interface ApiSchema {
  readonly request: MessageSchema;
  readonly response: MessageSchema;
}

/** True when `version` lies in `range` (false for an absent range). */
export function inRange(
  range: VersionRange | undefined,
  version: number,
): boolean {
  return range !== undefined && version >= range[0] && version <= range[1];
}
