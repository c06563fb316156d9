/**
 * The floods of the floods scenario, in their own process (bench/lib/floods.ts): so that
 * the proxy's latency under a flood is measured, not the harness's.
 *
 * IPC in:  {type:'start', flood: FloodSpec}   {type:'stop'}
 * IPC out: {type:'ready'}  {type:'started'}  {type:'stopped', connections, closedByProxy}
 */
import {
  nonReadingScrapes,
  pipelineFlood,
  requestText,
  windowUpdateFlood,
  type Flood,
} from './lib/floods.js';

export type FloodSpec =
  | { kind: 'pipelined-healthy'; port: number; connections: number }
  | { kind: 'unauthenticated'; port: number; connections: number; targetUrl: string }
  | { kind: 'window-update'; port: number; connections: number }
  | {
      kind: 'non-reading';
      port: number;
      scrapes: number;
      targetUrl: string;
      proxyAuthorization: string;
    };

function start(spec: FloodSpec): Flood[] {
  const many = (count: number, open: (index: number) => Flood): Flood[] =>
    Array.from({ length: count }, (_unused, index) => open(index));
  switch (spec.kind) {
    case 'pipelined-healthy':
      return many(spec.connections, () => pipelineFlood(spec.port, requestText('/-/healthy')));
    case 'unauthenticated': {
      const { host } = new URL(spec.targetUrl);
      const request = requestText(spec.targetUrl, { host });
      return many(spec.connections, () => pipelineFlood(spec.port, request));
    }
    case 'window-update':
      return many(spec.connections, (index) => windowUpdateFlood(spec.port, `flood-${index}`));
    case 'non-reading': {
      const held = nonReadingScrapes(spec.port, spec.targetUrl, spec.scrapes, {
        'proxy-authorization': spec.proxyAuthorization,
        'x-prometheus-scrape-timeout-seconds': '60',
      });
      return [{ connections: spec.scrapes, closedByProxy: 0, stop: () => held.stop() }];
    }
  }
}

let running: Flood[] = [];
process.on('message', (message: { type: string; flood?: FloodSpec }) => {
  if (message.type === 'start' && message.flood) {
    running = start(message.flood);
    process.send?.({ type: 'started' });
  } else if (message.type === 'stop') {
    for (const flood of running) flood.stop();
    process.send?.({
      type: 'stopped',
      connections: running.reduce((sum, f) => sum + f.connections, 0),
      closedByProxy: running.reduce((sum, f) => sum + f.closedByProxy, 0),
    });
    running = [];
  }
});
process.on('disconnect', () => process.exit(0));
process.send?.({ type: 'ready' });
