/** What stands in for the user info of a URL shown anywhere. */
export const REDACTED_USER_INFO = '***';

/**
 * A URL as it may be logged, printed or used as a label: its user info (the PushProx
 * convention puts the client token there, a scraper's proxy_url its password) replaced by
 * `***`, the user name too, since a token may sit there alone. Text that does not parse as
 * a URL (a bad flag echoed in an error) gets the same treatment: everything before the last
 * `@` of its authority.
 */
export function redactUrl(url: URL | string): string {
  const parsed = typeof url === 'string' ? parseOrNull(url) : url;
  // "name:pw@host:9100" parses too, as scheme "name:" and a path: the text says more.
  if (parsed === null || (parsed.username === '' && parsed.password === '')) {
    return typeof url === 'string' ? redactText(url) : url.href;
  }
  const { protocol, host, pathname, search, hash } = parsed;
  return `${protocol}//${REDACTED_USER_INFO}@${host}${pathname}${search}${hash}`;
}

function redactText(text: string): string {
  const start = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text)?.[0].length ?? 0;
  const authorityEnd = text.slice(start).search(/[/?#]/);
  const end = authorityEnd < 0 ? text.length : start + authorityEnd;
  const at = text.lastIndexOf('@', end - 1);
  if (at < start) return text;
  return `${text.slice(0, start)}${REDACTED_USER_INFO}${text.slice(at)}`;
}

function parseOrNull(text: string): URL | null {
  try {
    return new URL(text);
  } catch {
    return null;
  }
}
