/**
 * Small files replaced whole (a topic registry, a reserved id, a log start
 * offset): the new content is written to a temporary file and synced, then
 * renamed over the old one and the directory synced, so a crash leaves
 * either the old content or the new, never a torn mix.
 */

/** Syncs a directory, which makes a file created or renamed in it durable. */
export function syncDirectory(dir: string): void {
  const handle = Deno.openSync(dir, { read: true });
  try {
    handle.syncSync();
  } finally {
    handle.close();
  }
}

export function writeFileAtomic(path: string, text: string): void {
  const tmp = `${path}.tmp`;
  const file = Deno.openSync(tmp, {
    write: true,
    create: true,
    truncate: true,
  });
  try {
    const bytes = new TextEncoder().encode(text);
    let written = 0;
    while (written < bytes.length) {
      written += file.writeSync(bytes.subarray(written));
    }
    file.syncSync();
  } finally {
    file.close();
  }
  Deno.renameSync(tmp, path);
  const slash = path.lastIndexOf("/");
  syncDirectory(slash > 0 ? path.slice(0, slash) : ".");
}
