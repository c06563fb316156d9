/** PushProx's convention: `?_scheme=https` on a scrape URL asks the client to fetch https. */
export const SCHEME_PARAM = '_scheme';

/**
 * Splits the `_scheme` parameter off a path and query: the scheme to fetch with, and the
 * path and query to send to the target without it (as PushProx clients do).
 */
export function takeSchemeParam(pathAndQuery: string): {
  scheme: 'http' | 'https' | undefined;
  pathAndQuery: string;
  invalid?: string;
} {
  const question = pathAndQuery.indexOf('?');
  if (question < 0 || !pathAndQuery.includes(`${SCHEME_PARAM}=`, question)) {
    return { scheme: undefined, pathAndQuery };
  }
  const path = pathAndQuery.slice(0, question);
  const kept: string[] = [];
  let scheme: string | undefined;
  for (const part of pathAndQuery.slice(question + 1).split('&')) {
    if (part.startsWith(`${SCHEME_PARAM}=`)) scheme = part.slice(SCHEME_PARAM.length + 1);
    else kept.push(part);
  }
  const rest = kept.length > 0 ? `${path}?${kept.join('&')}` : path;
  if (scheme === 'http' || scheme === 'https') return { scheme, pathAndQuery: rest };
  return { scheme: undefined, pathAndQuery: rest, invalid: scheme ?? '' };
}
