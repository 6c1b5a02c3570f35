import { RaftConfigError } from "./errors.ts";
import type { ConfChange } from "./types.ts";

/** Wire form of a ConfChange entry: version byte, type byte, node id (u32 BE). */
const CONF_CHANGE_VERSION = 1;
const TYPE_CODES = ["addVoter", "removeVoter", "addLearner"] as const;

/** Thrown for a ConfChange that cannot be encoded or a payload that is not one. */
export class ConfChangeError extends RaftConfigError {
  override name = "ConfChangeError";
}

export function validateConfChange(cc: ConfChange): void {
  if (!TYPE_CODES.includes(cc.type)) {
    throw new ConfChangeError(`Invalid conf change type: "${cc.type}"`);
  }
  if (
    !Number.isInteger(cc.nodeId) || cc.nodeId <= 0 || cc.nodeId > 0xffffffff
  ) {
    throw new ConfChangeError(
      `Invalid conf change node id: ${cc.nodeId} is not a positive 32-bit integer`,
    );
  }
}

export function encodeConfChange(cc: ConfChange): Uint8Array {
  validateConfChange(cc);
  const out = new Uint8Array(6);
  const view = new DataView(out.buffer);
  view.setUint8(0, CONF_CHANGE_VERSION);
  view.setUint8(1, TYPE_CODES.indexOf(cc.type));
  view.setUint32(2, cc.nodeId);
  return out;
}

export function decodeConfChange(data: Uint8Array): ConfChange {
  if (data.byteLength !== 6) {
    throw new ConfChangeError(
      `Cannot decode conf change: length is ${data.byteLength}, expected 6`,
    );
  }
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const version = view.getUint8(0);
  if (version !== CONF_CHANGE_VERSION) {
    throw new ConfChangeError(
      `Cannot decode conf change: unknown version ${version}`,
    );
  }
  const type = TYPE_CODES[view.getUint8(1)];
  if (type === undefined) {
    throw new ConfChangeError(
      `Cannot decode conf change: unknown type code ${view.getUint8(1)}`,
    );
  }
  const cc = { type, nodeId: view.getUint32(2) };
  validateConfChange(cc);
  return cc;
}
