/**
 * Whole Kafka frames: the request and response headers in the form each
 * api version uses, around a body coded by message_codec.ts.
 */
import { NULL_LENGTH, Reader, Writer } from "./codec.ts";
import { messageCodec } from "./message_codec.ts";
import {
  API_SCHEMAS,
  ApiKey,
  type ApiKeyNum,
  type RequestBodies,
  type RequestInput,
  type ResponseBodies,
  type ResponseInput,
} from "./messages_gen.ts";
import { type ApiSchema, inRange, type MessageSchema } from "./schema.ts";

export interface RequestHeader {
  apiKey: number;
  apiVersion: number;
  correlationId: number;
  clientId: string | null;
}

const SIZE_PREFIX_BYTES = 4;

function apiSchema(apiKey: number): ApiSchema | undefined {
  return (API_SCHEMAS as Record<number, ApiSchema | undefined>)[apiKey];
}

/** True when raftq has a schema for this api key at this version. */
export function isSupported(apiKey: number, apiVersion: number): boolean {
  const api = apiSchema(apiKey);
  return api !== undefined && inRange(api.request.validVersions, apiVersion);
}

/** The validVersions of an api, as the spec gives them. */
export function versionRange(apiKey: ApiKeyNum): { min: number; max: number } {
  const api = apiSchema(apiKey);
  if (!api) throw new RangeError(`Unknown api key ${apiKey}`);
  const [min, max] = api.request.validVersions;
  return { min, max };
}

function schemaFor(
  apiKey: number,
  apiVersion: number,
  kind: "request" | "response",
): MessageSchema {
  const message = apiSchema(apiKey)?.[kind];
  if (!message || !inRange(message.validVersions, apiVersion)) {
    throw new RangeError(
      `Unsupported ${kind} version: api key ${apiKey} v${apiVersion}`,
    );
  }
  return message;
}

function isFlexible(message: MessageSchema, apiVersion: number): boolean {
  return inRange(message.flexibleVersions, apiVersion);
}

/** Flexible responses use header v1, except ApiVersions (KIP-511): always v0. */
function responseHeaderTagged(apiKey: number, flexible: boolean): boolean {
  return flexible && apiKey !== ApiKey.ApiVersions;
}

function readerFor(
  frame: Uint8Array,
  where: { apiKey: number; apiVersion: number; pos: number },
): Reader {
  const r = new Reader(frame, where.pos);
  r.context = { apiKey: where.apiKey, apiVersion: where.apiVersion };
  return r;
}

/** Skips a tagged-field section; the headers define no tags we use. */
function skipTaggedFields(r: Reader) {
  const count = r.uvarint();
  for (let i = 0; i < count; i++) {
    r.uvarint();
    r.skip(r.uvarint());
  }
}

/**
 * Reads a request header from a frame (the bytes after the size prefix).
 * For an api key or version raftq has no schema for, the body's position is
 * unknowable and `bodyOffset` is -1; the client id is still read, since
 * headers v1 and v2 both start with it.
 */
export function decodeRequestHeader(
  frame: Uint8Array,
): { header: RequestHeader; bodyOffset: number } {
  const r = readerFor(frame, { apiKey: -1, apiVersion: -1, pos: 0 });
  const apiKey = r.int16();
  const apiVersion = r.int16();
  r.context = { apiKey, apiVersion };
  const correlationId = r.int32();
  const n = r.int16Length();
  const clientId = n === NULL_LENGTH ? null : r.text(n);
  const header = { apiKey, apiVersion, correlationId, clientId };
  if (!isSupported(apiKey, apiVersion)) return { header, bodyOffset: -1 };
  if (isFlexible(schemaFor(apiKey, apiVersion, "request"), apiVersion)) {
    skipTaggedFields(r);
  }
  return { header, bodyOffset: r.pos };
}

/** Decodes the body of a request whose header decodeRequestHeader read. */
export function decodeRequest<K extends ApiKeyNum>(
  apiKey: K,
  apiVersion: number,
  frame: Uint8Array,
  bodyOffset: number,
): RequestBodies[K] {
  const message = schemaFor(apiKey, apiVersion, "request");
  const r = readerFor(frame, { apiKey, apiVersion, pos: bodyOffset });
  return messageCodec(message, apiVersion).read(r) as RequestBodies[K];
}

/** A size-prefixed response frame with the header its version needs. */
export function encodeResponse<K extends ApiKeyNum>(
  apiKey: K,
  apiVersion: number,
  correlationId: number,
  body: ResponseInput[K],
): Uint8Array {
  const message = schemaFor(apiKey, apiVersion, "response");
  const w = new Writer(1024);
  w.int32(0);
  w.int32(correlationId);
  if (responseHeaderTagged(apiKey, isFlexible(message, apiVersion))) {
    w.uvarint(0);
  }
  messageCodec(message, apiVersion).write(w, body);
  w.int32At(0, w.pos - SIZE_PREFIX_BYTES);
  return w.finish();
}

/** A size-prefixed request frame: header v1, or v2 for flexible versions. */
export function encodeRequest<K extends ApiKeyNum>(
  apiKey: K,
  apiVersion: number,
  header: { correlationId: number; clientId: string | null },
  body: RequestInput[K],
): Uint8Array {
  const message = schemaFor(apiKey, apiVersion, "request");
  const w = new Writer(256);
  w.int32(0);
  w.int16(apiKey);
  w.int16(apiVersion);
  w.int32(header.correlationId);
  if (header.clientId === null) w.int16(-1);
  else w.int16String(header.clientId);
  if (isFlexible(message, apiVersion)) w.uvarint(0);
  messageCodec(message, apiVersion).write(w, body);
  w.int32At(0, w.pos - SIZE_PREFIX_BYTES);
  return w.finish();
}

/** Decodes a response frame (without its size prefix). */
export function decodeResponse<K extends ApiKeyNum>(
  apiKey: K,
  apiVersion: number,
  frame: Uint8Array,
): { correlationId: number; body: ResponseBodies[K] } {
  const message = schemaFor(apiKey, apiVersion, "response");
  const r = readerFor(frame, { apiKey, apiVersion, pos: 0 });
  const correlationId = r.int32();
  if (responseHeaderTagged(apiKey, isFlexible(message, apiVersion))) {
    skipTaggedFields(r);
  }
  const body = messageCodec(message, apiVersion).read(r) as ResponseBodies[K];
  return { correlationId, body };
}
