import { readFileSync } from 'node:fs';
import { parseDocument } from 'yaml';
import type * as z from 'zod/mini';
import { ConfigError } from '../errors.js';

/** Renders a zod issue path as `clients[2].token_sha256`. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

/**
 * Reads a YAML file and validates it against `schema`. Any problem becomes one
 * ConfigError naming the file, the field and what is expected.
 */
export function loadYamlFile<S extends z.ZodMiniType>(file: string, schema: S): z.output<S> {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`${file}: cannot read the config file: ${(err as Error).message}`);
  }
  const document = parseDocument(text, { prettyErrors: true });
  if (document.errors.length > 0) {
    const first = document.errors[0];
    throw new ConfigError(`${file}: not valid YAML: ${first?.message ?? 'parse error'}`);
  }
  const value: unknown = document.toJS() ?? {};
  const result = schema.safeParse(value);
  if (!result.success) {
    const lines = result.error.issues.map((issue) => {
      const message =
        issue.code === 'unrecognized_keys'
          ? `unknown field${issue.keys.length > 1 ? 's' : ''} ${issue.keys.map((k) => `"${k}"`).join(', ')}: check the spelling against the documented settings`
          : issue.message;
      return `${file}: ${formatPath(issue.path)}: ${message}`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  return result.data;
}
