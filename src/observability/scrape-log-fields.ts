/** What client and proxy log about one scrape, in the same field names. */
export function scrapeLogFields(info: {
  name: string;
  port: number;
  path: string;
  outcome: string;
  status: number;
  durationMs: number;
  bytes: number;
  reason?: string | undefined;
}): Record<string, unknown> {
  return {
    target: `${info.name}:${info.port}`,
    path: info.path,
    outcome: info.outcome,
    status: info.status,
    durationMs: Math.round(info.durationMs * 10) / 10,
    bytes: info.bytes,
    ...(info.reason ? { reason: info.reason } : {}),
  };
}
