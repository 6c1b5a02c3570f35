/** Fresh random identifiers in the forms Kafka clients expect. */

/** A topic id: 16 random bytes as 32 lowercase hex chars (how codecs carry uuids). */
export function newTopicId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** A cluster id: 16 random bytes in URL-safe base64 without padding, as Kafka's. */
export function newClusterId(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return btoa(String.fromCharCode(...bytes)).replaceAll("+", "-")
    .replaceAll("/", "_").replace(/=+$/, "");
}
