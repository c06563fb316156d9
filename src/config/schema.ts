import { z } from 'zod';
import { validateLabelName, validateLabelValue, validateName } from '../wire/protocol.js';
import { normalizeFingerprint } from '../wire/tls-connect.js';
import { parseByteSize } from '../util/byte-size.js';
import { parseDurationMs } from '../util/duration.js';
import { parseHostPort } from '../util/host-port.js';

const sha256Hex = z
  .string({ error: 'expected 64 lowercase hex characters (a SHA-256)' })
  .regex(/^[0-9a-f]{64}$/, 'expected 64 lowercase hex characters (a SHA-256)');

const duration = z
  .string({ error: 'expected a duration such as "15s", "1m30s" or "500ms"' })
  .transform((text, ctx) => {
    const ms = parseDurationMs(text);
    if (ms === undefined || ms <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a duration such as "15s", "1m30s" or "500ms", got "${text}"`,
      });
      return z.NEVER;
    }
    return ms;
  });

const hostPort = z.string({ error: 'expected HOST:PORT' }).superRefine((text, ctx) => {
  const parsed = parseHostPort(text);
  if (typeof parsed === 'string') ctx.addIssue({ code: 'custom', message: parsed });
});

const name = z.string({ error: 'expected a name' }).superRefine((value, ctx) => {
  const problem = validateName(value);
  if (problem) ctx.addIssue({ code: 'custom', message: problem });
});

const namePattern = z
  .string({ error: 'expected a name or a * glob' })
  .regex(/^[a-z0-9*.-]+$/, 'expected a lower-case name or a glob such as "home-*"');

const credential = z.union(
  [
    z.object({ username: z.string().min(1), password_sha256: sha256Hex }).strict(),
    z.object({ bearer_sha256: sha256Hex }).strict(),
  ],
  { error: 'expected {username, password_sha256} or {bearer_sha256}' },
);

const positiveInt = z.number({ error: 'expected a whole number' }).int().positive();

const byteSize = z
  .union([positiveInt, z.string()], {
    error: 'expected a size such as "512MiB" or a number of bytes',
  })
  .transform((value, ctx) => {
    const bytes = typeof value === 'number' ? value : parseByteSize(value);
    if (bytes === undefined || bytes <= 0) {
      ctx.addIssue({
        code: 'custom',
        message: `expected a size such as "512MiB", "10MB" or a number of bytes, got "${value}"`,
      });
      return z.NEVER;
    }
    return bytes;
  });

const filePath = z.string({ error: 'expected a file path' }).min(1, 'expected a file path');

const tlsFingerprint = z
  .string({ error: 'expected a SHA-256 fingerprint' })
  .refine((text) => normalizeFingerprint(text) !== undefined, {
    message: 'expected a SHA-256 fingerprint: 64 hex digits, with or without colons',
  });

const CLIENT_CREDENTIALS = ['token_sha256', 'cert_subject', 'cert_sha256'] as const;

/** A client grant: names and exactly one credential (a token, or a TLS client certificate). */
const clientGrant = z
  .object({
    names: z.array(namePattern).min(1, 'expected at least one name or pattern'),
    token_sha256: sha256Hex.optional(),
    cert_subject: z
      .string({ error: "expected a certificate's CN or DNS name" })
      .min(1, "expected a certificate's CN or DNS name")
      .optional(),
    cert_sha256: tlsFingerprint.optional(),
    max_names: positiveInt.optional(),
    max_tunnels: positiveInt.optional(),
  })
  .strict()
  .superRefine((entry, ctx) => {
    const given = CLIENT_CREDENTIALS.filter((key) => entry[key] !== undefined);
    if (given.length !== 1) {
      ctx.addIssue({
        code: 'custom',
        message: `expected exactly one of token_sha256 (natprox token prints it), cert_subject (a client certificate's CN or DNS name, signed by tls.client_ca_file) or cert_sha256 (a client certificate's fingerprint), got ${given.length === 0 ? 'none' : given.join(' and ')}`,
      });
    }
  });

export const proxyFileSchema = z
  .object({
    listen: hostPort.optional(),
    behind_reverse_proxy: z.boolean({ error: 'expected true or false' }).optional(),
    tls: z
      .object({ cert_file: filePath, key_file: filePath, client_ca_file: filePath.optional() })
      .strict()
      .optional(),
    default_scrape_timeout: duration.optional(),
    max_scrape_timeout: duration.optional(),
    shutdown_grace: duration.optional(),
    public_names: z.array(name).optional(),
    clients: z.array(clientGrant).optional(),
    scrapers: z.array(credential).optional(),
    operators: z.array(credential).optional(),
    long_poll: z
      // idle_timeout: accepted for old configs; a client now leaves after repoll_grace.
      .object({ repoll_grace: duration.optional(), idle_timeout: duration.optional() })
      .strict()
      .optional(),
    limits: z
      .object({
        max_clients: positiveInt.optional(),
        max_streams_per_client: positiveInt.optional(),
        max_names_per_client: positiveInt.optional(),
        max_labels_per_client: positiveInt.optional(),
        max_ports_per_client: positiveInt.optional(),
        max_names_per_entry: positiveInt.optional(),
        max_tunnels_per_name: positiveInt.optional(),
        max_response_bytes: byteSize.optional(),
        max_request_bytes: byteSize.optional(),
        max_streams_per_scraper: positiveInt.optional(),
        max_pipelined_requests: positiveInt.optional(),
        max_tunnel_control_bytes_per_second: byteSize.optional(),
        flood_block: z
          .union([z.literal(0), duration], {
            error: 'expected a duration such as "10s", or 0 to turn it off',
          })
          .optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export type ProxyFile = z.infer<typeof proxyFileSchema>;

const allowEntry = z.union(
  [
    z.number().int().min(1).max(65535),
    // "HOST:PORT", "9090/federate", "POST 9090/api/v1/read": parsed by parseAllowText.
    z.string(),
    z
      .object({
        host: z.string().min(1).optional(),
        port: z.number().int().min(1).max(65535),
        paths: z.array(z.string().startsWith('/', 'a path prefix starts with "/"')).optional(),
        methods: z.array(z.string()).optional(),
      })
      .strict(),
  ],
  { error: 'expected PORT, "HOST:PORT", "METHODS PORT/PATH" or {host, port, paths, methods}' },
);

/** One proxy of several; token_file, ca_file, tls_fingerprint, cert_file and key_file default to the top-level ones. */
const proxyEntry = z
  .object({
    url: z.string({ error: 'expected the proxy URL, e.g. https://vps.example:8443' }),
    token_file: filePath.optional(),
    ca_file: filePath.optional(),
    tls_fingerprint: tlsFingerprint.optional(),
    cert_file: filePath.optional(),
    key_file: filePath.optional(),
  })
  .strict();

export const clientFileSchema = z
  .object({
    proxy_url: z.string().optional(),
    proxies: z
      .array(proxyEntry, {
        error:
          'expected a list of {url, token_file, ca_file, tls_fingerprint, cert_file, key_file}',
      })
      .min(1, 'expected at least one proxy')
      .optional(),
    connect_all_addresses: z.boolean({ error: 'expected true or false' }).optional(),
    transport: z
      .enum(['native', 'pushprox'], { error: 'expected "native" or "pushprox"' })
      .optional(),
    names: z.array(name).optional(),
    allow: z.array(allowEntry).optional(),
    labels: z
      .record(z.string(), z.string({ error: 'expected a string label value' }))
      .superRefine((labels, ctx) => {
        for (const [key, value] of Object.entries(labels)) {
          const problem = validateLabelName(key) ?? validateLabelValue(key, value);
          if (problem) ctx.addIssue({ code: 'custom', message: problem, path: [key] });
        }
      })
      .optional(),
    token_file: filePath.optional(),
    ca_file: filePath.optional(),
    tls_fingerprint: tlsFingerprint.optional(),
    cert_file: filePath.optional(),
    key_file: filePath.optional(),
    metrics_listen: hostPort.optional(),
    shutdown_grace: duration.optional(),
  })
  .strict();

export type ClientFile = z.infer<typeof clientFileSchema>;
export type AllowEntry = z.infer<typeof allowEntry>;
export type ProxyEntry = z.infer<typeof proxyEntry>;
