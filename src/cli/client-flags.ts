import type { ParseArgsConfig } from 'node:util';
import { COMMON_FLAGS } from './parse-flags.js';

/** The flags of `natprox client`; `natprox check` takes exactly the same ones. */
export const CLIENT_FLAGS = {
  ...COMMON_FLAGS,
  'proxy-url': { type: 'string', multiple: true },
  'connect-all-addresses': { type: 'boolean' },
  transport: { type: 'string' },
  name: { type: 'string', multiple: true },
  allow: { type: 'string', multiple: true },
  label: { type: 'string', multiple: true },
  config: { type: 'string' },
  'token-file': { type: 'string' },
  'ca-file': { type: 'string' },
  'tls-fingerprint': { type: 'string' },
  'cert-file': { type: 'string' },
  'key-file': { type: 'string' },
  'metrics-listen': { type: 'string' },
  'shutdown-grace': { type: 'string' },
  'heartbeat-interval': { type: 'string' },
} as const satisfies NonNullable<ParseArgsConfig['options']>;
