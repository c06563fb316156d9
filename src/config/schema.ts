import * as z from 'zod/mini';
// zod/mini loads no locale and then says only "Invalid input"; English keeps zod's own messages
// (a wrong type, a number below its minimum) what they were with classic zod. One file, not
// zod/locales: that would load all ~45 of them when run from dist/.
import en from 'zod/v4/locales/en.js';
import { validateLabelName, validateLabelValue, validateName } from '../wire/protocol.js';
import { normalizeFingerprint } from '../wire/tls-connect.js';
import { parseByteSize } from '../util/byte-size.js';
import { parseDurationMs } from '../util/duration.js';
import { parseHostPort } from '../util/host-port.js';

z.config(en());

// zod/mini's transform gets the bare parse payload, without classic zod's ctx.addIssue: the
// transforms below push their issue onto ctx.issues, as classic zod's addIssue did.

const sha256Hex = z
  .string({ error: 'expected 64 lowercase hex characters (a SHA-256)' })
  .check(z.regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex characters (a SHA-256)'));

const duration = z.pipe(
  z.string({ error: 'expected a duration such as "15s", "1m30s" or "500ms"' }),
  z.transform((text: string, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined || ms <= 0) {
      ctx.issues.push({
        code: 'custom',
        message: `expected a duration such as "15s", "1m30s" or "500ms", got "${text}"`,
        input: text,
      });
      return z.NEVER;
    }
    return ms;
  }),
);

const hostPort = z.string({ error: 'expected HOST:PORT' }).check(
  z.superRefine((text, ctx) => {
    const parsed = parseHostPort(text);
    if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
  }),
);

const name = z.string({ error: 'expected a name' }).check(
  z.superRefine((value, ctx) => {
    const problem = validateName(value);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
  }),
);

const namePattern = z
  .string({ error: 'expected a name or a * glob' })
  .check(z.regex(/^[a-z0-9*.-]+$/, 'expected a lower-case name or a glob such as "home-*"'));

const credential = z.union(
  [
    z.strictObject({ username: z.string().check(z.minLength(1)), password_sha256: sha256Hex }),
    z.strictObject({ bearer_sha256: sha256Hex }),
  ],
  { error: 'expected {username, password_sha256} or {bearer_sha256}' },
);

// The check's own text: the schema's would call 0 "not a whole number".
const positiveInt = z
  .number({ error: 'expected a whole number' })
  .check(z.int(), z.positive('expected a whole number above 0'));

const byteSize = z.pipe(
  z.union([positiveInt, z.string()], {
    error: 'expected a size such as "512MiB" or a number of bytes',
  }),
  z.transform((value: number | string, ctx) => {
    const bytes = typeof value === 'number' ? value : parseByteSize(value);
    if (bytes === undefined || bytes <= 0) {
      ctx.issues.push({
        code: 'custom',
        message: `expected a size such as "512MiB", "10MB" or a number of bytes, got "${value}"`,
        input: value,
      });
      return z.NEVER;
    }
    return bytes;
  }),
);

const filePath = z
  .string({ error: 'expected a file path' })
  .check(z.minLength(1, 'expected a file path'));

const tlsFingerprint = z.string({ error: 'expected a SHA-256 fingerprint' }).check(
  z.refine((text) => normalizeFingerprint(text) !== undefined, {
    message: 'expected a SHA-256 fingerprint: 64 hex digits, with or without colons',
  }),
);

const CLIENT_CREDENTIALS = ['token_sha256', 'cert_subject', 'cert_sha256'] as const;

/** A client grant: names and exactly one credential (a token, or a TLS client certificate). */
const clientGrant = z
  .strictObject({
    names: z.array(namePattern).check(z.minLength(1, 'expected at least one name or pattern')),
    token_sha256: z.optional(sha256Hex),
    cert_subject: z.optional(
      z
        .string({ error: "expected a certificate's CN or DNS name" })
        .check(z.minLength(1, "expected a certificate's CN or DNS name")),
    ),
    cert_sha256: z.optional(tlsFingerprint),
    max_names: z.optional(positiveInt),
    max_tunnels: z.optional(positiveInt),
  })
  .check(
    z.superRefine((entry, ctx) => {
      const given = CLIENT_CREDENTIALS.filter((key) => entry[key] !== undefined);
      if (given.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          message: `expected exactly one of token_sha256 (natprox token prints it), cert_subject (a client certificate's CN or DNS name, signed by tls.client_ca_file) or cert_sha256 (a client certificate's fingerprint), got ${given.length === 0 ? 'none' : given.join(' and ')}`,
        });
      }
    }),
  );

export const proxyFileSchema = z.strictObject({
  listen: z.optional(hostPort),
  behind_reverse_proxy: z.optional(z.boolean({ error: 'expected true or false' })),
  tls: z.optional(
    z.strictObject({
      cert_file: filePath,
      key_file: filePath,
      client_ca_file: z.optional(filePath),
    }),
  ),
  default_scrape_timeout: z.optional(duration),
  max_scrape_timeout: z.optional(duration),
  shutdown_grace: z.optional(duration),
  public_names: z.optional(z.array(name)),
  clients: z.optional(z.array(clientGrant)),
  scrapers: z.optional(z.array(credential)),
  operators: z.optional(z.array(credential)),
  long_poll: z.optional(
    // idle_timeout: accepted for old configs; a client now leaves after repoll_grace.
    z.strictObject({ repoll_grace: z.optional(duration), idle_timeout: z.optional(duration) }),
  ),
  limits: z.optional(
    z.strictObject({
      max_clients: z.optional(positiveInt),
      max_streams_per_client: z.optional(positiveInt),
      max_names_per_client: z.optional(positiveInt),
      max_labels_per_client: z.optional(positiveInt),
      max_ports_per_client: z.optional(positiveInt),
      max_names_per_entry: z.optional(positiveInt),
      max_tunnels_per_name: z.optional(positiveInt),
      max_response_bytes: z.optional(byteSize),
      max_request_bytes: z.optional(byteSize),
      max_streams_per_scraper: z.optional(positiveInt),
      max_pipelined_requests: z.optional(positiveInt),
      max_tunnel_control_bytes_per_second: z.optional(byteSize),
      flood_block: z.optional(
        z.union([z.literal(0), duration], {
          error: 'expected a duration such as "10s", or 0 to turn it off',
        }),
      ),
    }),
  ),
});

export type ProxyFile = z.infer<typeof proxyFileSchema>;

const port = z.number().check(z.int(), z.gte(1), z.lte(65535));

const allowEntry = z.union(
  [
    port,
    // "HOST:PORT", "9090/federate", "POST 9090/api/v1/read": parsed by parseAllowText.
    z.string(),
    z.strictObject({
      host: z.optional(z.string().check(z.minLength(1))),
      port,
      paths: z.optional(
        z.array(z.string().check(z.startsWith('/', 'a path prefix starts with "/"'))),
      ),
      methods: z.optional(z.array(z.string())),
    }),
  ],
  { error: 'expected PORT, "HOST:PORT", "METHODS PORT/PATH" or {host, port, paths, methods}' },
);

/** One proxy of several; token_file, ca_file, tls_fingerprint, cert_file and key_file default to the top-level ones. */
const proxyEntry = z.strictObject({
  url: z.string({ error: 'expected the proxy URL, e.g. https://vps.example:8443' }),
  token_file: z.optional(filePath),
  ca_file: z.optional(filePath),
  tls_fingerprint: z.optional(tlsFingerprint),
  cert_file: z.optional(filePath),
  key_file: z.optional(filePath),
});

const labels = z.record(z.string(), z.string({ error: 'expected a string label value' })).check(
  z.superRefine((record, ctx) => {
    for (const [key, value] of Object.entries(record)) {
      const problem = validateLabelName(key) ?? validateLabelValue(key, value);
      if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [key] });
    }
  }),
);

export const clientFileSchema = z.strictObject({
  proxy_url: z.optional(z.string()),
  proxies: z.optional(
    z
      .array(proxyEntry, {
        error:
          'expected a list of {url, token_file, ca_file, tls_fingerprint, cert_file, key_file}',
      })
      .check(z.minLength(1, 'expected at least one proxy')),
  ),
  connect_all_addresses: z.optional(z.boolean({ error: 'expected true or false' })),
  transport: z.optional(
    z.enum(['native', 'pushprox'], { error: 'expected "native" or "pushprox"' }),
  ),
  names: z.optional(z.array(name)),
  allow: z.optional(z.array(allowEntry)),
  labels: z.optional(labels),
  token_file: z.optional(filePath),
  ca_file: z.optional(filePath),
  tls_fingerprint: z.optional(tlsFingerprint),
  cert_file: z.optional(filePath),
  key_file: z.optional(filePath),
  metrics_listen: z.optional(hostPort),
  shutdown_grace: z.optional(duration),
});

export type ClientFile = z.infer<typeof clientFileSchema>;
export type AllowEntry = z.infer<typeof allowEntry>;
export type ProxyEntry = z.infer<typeof proxyEntry>;
