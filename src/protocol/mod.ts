/**
 * Kafka wire protocol: request/response codecs for the APIs raftq speaks
 * (generated from Kafka's message definitions), request framing, error
 * codes, record batches and compression.
 *
 * Seams: none. The broker feeds frames from FrameDecoder to
 * decodeRequestHeader/decodeRequest and writes encodeResponse's frames; the
 * client does the reverse with encodeRequest/decodeResponse. This module
 * imports nothing from raftq but src/util (for CRC-32C), so storage can use
 * its batch header helpers freely.
 */
export {
  decodeRequest,
  decodeRequestHeader,
  decodeResponse,
  encodeRequest,
  encodeResponse,
  isSupported,
  type RequestHeader,
  versionRange,
} from "./api.ts";
export { DecodeError, EncodeError, Reader, Writer } from "./codec.ts";
export {
  CONSUMER_PROTOCOL_TYPE,
  decodeAssignment,
  decodeSubscription,
  encodeAssignment,
  encodeSubscription,
  type TopicPartitions,
} from "./consumer_protocol.ts";
export { ErrorCode, errorInfo, type ErrorName } from "./error_codes.ts";
export {
  FrameDecoder,
  type FrameSink,
  FrameTooLargeError,
  writeFrames,
} from "./frames.ts";
export * from "./messages_gen.ts";
export type {
  RequestInput as RequestInputs,
  ResponseInput as ResponseInputs,
} from "./messages_gen.ts";
export {
  type BuildBatchOptions,
  buildRecordBatch,
  decodeBatches,
  decodeRecordBatches,
  recompressRecordSet,
  type Record,
  type RecordHeader,
  type RecordInput,
} from "./records.ts";
export { compress, CompressionError, decompress } from "./compression.ts";
export * from "./record_batch.ts";
export {
  credentialOf,
  newNonce,
  passwordMatches,
  readClientFirst,
  saltPassword,
  SCRAM_HASHES,
  SCRAM_ITERATIONS_MAX,
  SCRAM_ITERATIONS_MIN,
  ScramClient,
  type ScramCredential,
  ScramError,
  type ScramExchange,
  type ScramHash,
  type ScramMechanism,
  serverFinal,
  serverFirst,
} from "./scram.ts";
export {
  ACL_OPERATIONS,
  ACL_PATTERN_TYPES,
  ACL_PERMISSIONS,
  ACL_RESOURCE_TYPES,
  type AclBinding,
  aclBindingCodes,
  aclCode,
  aclCodeName,
  AclOperationCode,
  type AclOperationName,
  type AclPatternType,
  AclPatternTypeCode,
  type AclPermission,
  AclPermissionCode,
  type AclResourceType,
  AclResourceTypeCode,
  CLUSTER_RESOURCE_NAME,
} from "./acl_codes.ts";
