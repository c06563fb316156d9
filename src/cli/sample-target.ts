import http from 'node:http';

/** A tiny exporter for the demo: a few metrics that change with every scrape. */
export function createSampleTarget(): http.Server {
  let scrapes = 0;
  const startedAt = Date.now() / 1000;
  return http.createServer((req, res) => {
    if ((req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('sample target: try /metrics\n');
      return;
    }
    scrapes += 1;
    const body = [
      '# HELP demo_scrapes_total Scrapes of this sample target.',
      '# TYPE demo_scrapes_total counter',
      `demo_scrapes_total ${scrapes}`,
      '# HELP demo_temperature_celsius A made-up temperature.',
      '# TYPE demo_temperature_celsius gauge',
      `demo_temperature_celsius ${(20 + 5 * Math.sin(Date.now() / 60_000)).toFixed(2)}`,
      '# HELP demo_start_time_seconds When the sample target started.',
      '# TYPE demo_start_time_seconds gauge',
      `demo_start_time_seconds ${startedAt.toFixed(3)}`,
      '',
    ].join('\n');
    res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
    res.end(body);
  });
}
