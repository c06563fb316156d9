/** Stable error codes: tests and callers match on these, never on message text. */
export type NatproxErrorCode =
  | 'NATPROX_CONFIG_INVALID'
  | 'NATPROX_NO_CLIENT'
  | 'NATPROX_CLIENT_BUSY'
  | 'NATPROX_SCRAPE_TIMEOUT'
  | 'NATPROX_TARGET_FORBIDDEN'
  | 'NATPROX_METHOD_NOT_ALLOWED'
  | 'NATPROX_MISDIRECTED'
  | 'NATPROX_TARGET_FAILED'
  | 'NATPROX_CLIENT_LOST'
  | 'NATPROX_BAD_REQUEST'
  | 'NATPROX_REGISTRATION_REJECTED'
  | 'NATPROX_UNAUTHORIZED'
  | 'NATPROX_TUNNEL_FAILED'
  | 'NATPROX_RESPONSE_TOO_LARGE'
  | 'NATPROX_REQUEST_TOO_LARGE'
  /** The scraper closed its request before the answer was through. */
  | 'NATPROX_SCRAPE_CANCELLED'
  /** The client or proxy is stopping: what it was waiting for will not come. */
  | 'NATPROX_STOPPED'
  /** A body read into memory (src/util/read-limited.ts) was over its limit. */
  | 'NATPROX_BODY_TOO_LARGE';

export class NatproxError extends Error {
  readonly code: NatproxErrorCode;
  /** The HTTP status a peer answered with, when the error is its refusal. */
  readonly httpStatus: number | undefined;

  constructor(
    code: NatproxErrorCode,
    message: string,
    options?: { cause?: unknown; httpStatus?: number | undefined },
  ) {
    super(message, options);
    this.name = 'NatproxError';
    this.code = code;
    this.httpStatus = options?.httpStatus;
  }
}

/** A configuration problem: names the source and the field, and says what is expected. */
export class ConfigError extends NatproxError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('NATPROX_CONFIG_INVALID', message, options);
    this.name = 'ConfigError';
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return typeof code === 'string' && !err.message.includes(code)
      ? `${err.message} (${code})`
      : err.message;
  }
  return String(err);
}
