import { collectDefaultMetrics, type Registry } from 'prom-client';

/**
 * prom-client's process and runtime metrics (CPU, memory, file descriptors, event-loop lag)
 * on `registry`, named `PREFIX…`. The event-loop lag is sampled every 100 ms rather than
 * prom-client's 10 ms: its timer would otherwise wake an idle process 100 times a second,
 * about 5 ms of CPU per second on a Raspberry Pi-sized machine (bench/README.md).
 */
export function collectProcessMetrics(registry: Registry, prefix: string): void {
  collectDefaultMetrics({ register: registry, prefix, eventLoopMonitoringPrecision: 100 });
}
