/**
 * The one place that imports the YAML library, so replacing it touches only
 * this file.
 */
import { parse } from "yaml";

/** Parses YAML text; a syntax error comes back as text with its position. */
export function readYaml(
  text: string,
): { ok: true; value: unknown } | { ok: false; error: string } {
  try {
    return { ok: true, value: parse(text, { prettyErrors: true }) };
  } catch (error) {
    if (error instanceof Error && error.name.startsWith("YAML")) {
      return { ok: false, error: error.message };
    }
    throw error;
  }
}
