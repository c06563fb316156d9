import type { Settings } from 'node:http2';

/** Where clients ask for the tunnel, and the Upgrade token they ask for. */
export const TUNNEL_PATH = '/natprox/v1/tunnel';
export const TUNNEL_UPGRADE_TOKEN = 'natprox-h2';

/** Request header carrying the registration (base64url of JSON) on the upgrade request. */
export const REGISTRATION_HEADER = 'x-natprox-registration';

/**
 * `natprox check` sends the upgrade request with this header set to "1": the proxy runs every
 * check it runs for a real tunnel and, when all pass, answers 200 with this header set to
 * "ok" instead of 101, registering nothing.
 */
export const DRY_RUN_HEADER = 'x-natprox-dry-run';
/** On a dry-run answer: the name patterns the token grants, comma-separated ("*" for any). */
export const GRANTS_HEADER = 'x-natprox-grants';
/** On a dry-run answer: "token" when the proxy checks client tokens, "none" without clients:. */
export const CLIENT_AUTH_HEADER = 'x-natprox-client-auth';

/** Headers natprox adds between proxy and client; stripped before anything reaches a target. */
export const INTERNAL_HEADER_PREFIX = 'x-natprox-';
export const DEADLINE_HEADER = 'x-natprox-deadline-ms';
/** How the client starts the text of its own error answers (403, 502, 504…). */
export const CLIENT_ANSWER_PREFIX = 'natprox client: ';

/** The reason in the text of a client's own error answer, or undefined when it has none. */
export function clientAnswerReason(text: string): string | undefined {
  const trimmed = text.trim();
  const reason = trimmed.startsWith(CLIENT_ANSWER_PREFIX)
    ? trimmed.slice(CLIENT_ANSWER_PREFIX.length)
    : trimmed;
  return reason === '' ? undefined : reason;
}

/**
 * Trailer the client sends after a body it relayed in full. HTTP/2 ends a stream the same
 * way whether the body finished or the connection was lost; this tells the two apart. The
 * whole rule, and the functions both sides call, are in body-completion.ts.
 */
export const BODY_COMPLETE_TRAILER = 'x-natprox-complete';
/**
 * Sent with every scrape by proxies that count a body's bytes: a body that reaches its
 * Content-Length is complete to them, so the client may leave BODY_COMPLETE_TRAILER off
 * (saves a frame, and a wake-up on each side, per scrape). Older proxies do not send it
 * and keep getting the trailer.
 */
export const LENGTH_COMPLETES_HEADER = 'x-natprox-length-completes';
/** Set on responses natprox itself made (not the target), with a stable error code. */
export const ERROR_CODE_HEADER = 'x-natprox-error';

/**
 * HTTP/2 settings for the tunnel. The stream window bounds what one body can have on its
 * way: on a slow home uplink all of it sits in the client's socket buffer, ahead of every
 * other scrape's answer. 256 KiB is a second at 2 Mbit/s, so a small scrape beside a
 * federate body still answers within 2 s (e2e/netns/slow-link.test.ts; 4 MiB made it wait
 * 8-10 s), while a body still gets 256 KiB per round trip (10 Mbit/s at 200 ms, 100 Mbit/s
 * at 20 ms). 32 MiB per connection lets many bodies flow at once.
 */
export const STREAM_WINDOW_BYTES = 256 * 1024;
export const CONNECTION_WINDOW_BYTES = 32 * 1024 * 1024;
export const TUNNEL_SETTINGS: Settings = {
  initialWindowSize: STREAM_WINDOW_BYTES,
  maxConcurrentStreams: 1024,
  maxHeaderListSize: 64 * 1024,
  enablePush: false,
};
/** nghttp2's per-session memory cap in MiB (default 10); many streams in flight need more. */
export const MAX_SESSION_MEMORY_MIB = 64;

export interface Registration {
  /** Names this client serves; each is what Prometheus puts in `targets:`. */
  names: string[];
  /** Labels for the client's target groups in /clients. */
  labels: Record<string, string>;
  /** Local ports the client allows; /clients lists NAME:PORT for each. */
  ports: number[];
  /** natprox version of the client, for the status page and logs. */
  version: string;
}

export function encodeRegistration(registration: Registration): string {
  return Buffer.from(JSON.stringify(registration), 'utf8').toString('base64url');
}

const NAME_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)*$/;
const LABEL_NAME_PATTERN = /^[a-zA-Z_][a-zA-Z0-9_]*$/;

/** A name a client may register: a DNS host name, lower case, as Prometheus writes a target. */
export function validateName(name: string): string | undefined {
  if (name.length > 253 || !NAME_PATTERN.test(name)) {
    return `"${name}" is not a valid name: use a lower-case host name such as "raspberrypi" or "home-1.example"`;
  }
  return undefined;
}

/**
 * Labels a registration may not set. Prometheus lets a target group's labels override the
 * scrape job's own: `job` and `instance` would let a client pass itself off as another
 * target, and `__*` labels (`__address__`, `__scheme__`, `__metrics_path__`, `__param_*`)
 * would change what is scraped.
 */
export const RESERVED_LABELS: readonly string[] = ['job', 'instance'];

/** Longest label name and value a registration may carry. */
export const MAX_LABEL_NAME_LENGTH = 128;
export const MAX_LABEL_VALUE_LENGTH = 1024;

export function validateLabelName(name: string): string | undefined {
  if (RESERVED_LABELS.includes(name)) {
    return `"${name}" is a reserved label: Prometheus would let it override the ${name} label of the scrape job, so a client could pass itself off as another target; use another label name (e.g. "site") or set ${name} in the Prometheus job`;
  }
  if (
    !LABEL_NAME_PATTERN.test(name) ||
    name.startsWith('__') ||
    name.length > MAX_LABEL_NAME_LENGTH
  ) {
    return `"${name.slice(0, MAX_LABEL_NAME_LENGTH)}" is not a valid label name: use [a-zA-Z_][a-zA-Z0-9_]* not starting with "__", at most ${MAX_LABEL_NAME_LENGTH} characters`;
  }
  return undefined;
}

export function validateLabelValue(name: string, value: string): string | undefined {
  if (value.length > MAX_LABEL_VALUE_LENGTH) {
    return `label "${name}" has a value of ${value.length} characters; the limit is ${MAX_LABEL_VALUE_LENGTH}`;
  }
  return undefined;
}

export interface RegistrationLimits {
  maxNames: number;
  maxLabels: number;
  maxPorts: number;
}

/** Decodes and validates a registration header; returns an error text for the client on failure. */
export function decodeRegistration(
  header: string | undefined,
  limits: RegistrationLimits,
): Registration | string {
  if (header === undefined || header === '') return `missing ${REGISTRATION_HEADER} header`;
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(header, 'base64url').toString('utf8'));
  } catch {
    return `${REGISTRATION_HEADER} is not base64url-encoded JSON`;
  }
  if (typeof value !== 'object' || value === null) return 'registration must be a JSON object';
  const { names, labels, ports, version } = value as Record<string, unknown>;
  if (!Array.isArray(names) || names.length === 0 || !names.every((n) => typeof n === 'string')) {
    return 'registration.names must be a non-empty list of strings';
  }
  if (names.length > limits.maxNames) {
    return `registration has ${names.length} names; the limit is ${limits.maxNames} (limits: max_names_per_client on the proxy)`;
  }
  for (const name of names as string[]) {
    const problem = validateName(name);
    if (problem) return problem;
  }
  if (typeof labels !== 'object' || labels === null || Array.isArray(labels)) {
    return 'registration.labels must be an object of strings';
  }
  const labelEntries = Object.entries(labels);
  if (labelEntries.length > limits.maxLabels) {
    return `registration has ${labelEntries.length} labels; the limit is ${limits.maxLabels} (limits: max_labels_per_client on the proxy)`;
  }
  for (const [key, labelValue] of labelEntries) {
    const problem = validateLabelName(key);
    if (problem) return problem;
    if (typeof labelValue !== 'string') return `label "${key}" must be a string`;
    const valueProblem = validateLabelValue(key, labelValue);
    if (valueProblem) return valueProblem;
  }
  if (!Array.isArray(ports) || !ports.every((p) => Number.isInteger(p) && p > 0 && p < 65536)) {
    return 'registration.ports must be a list of ports (1-65535)';
  }
  const distinctPorts = new Set(ports as number[]).size;
  if (distinctPorts > limits.maxPorts) {
    return `registration has ${distinctPorts} ports; the limit is ${limits.maxPorts} (limits: max_ports_per_client on the proxy)`;
  }
  return {
    names: [...new Set(names as string[])],
    labels: labels as Record<string, string>,
    ports: [...new Set(ports as number[])].sort((a, b) => a - b),
    version: typeof version === 'string' ? version.slice(0, 64) : 'unknown',
  };
}
