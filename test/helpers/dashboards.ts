/** Reads the Grafana dashboards in deploy/grafana and turns their panels' PromQL into queries. */
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const DASHBOARDS = ['natprox.json', 'home-network.json'].map((file) =>
  fileURLToPath(new URL(`../../deploy/grafana/${file}`, import.meta.url)),
);

export interface DashboardQuery {
  dashboard: string;
  panel: string;
  /** The panel's expression with Grafana's variables replaced, ready for Prometheus. */
  expr: string;
}

interface Panel {
  type: string;
  title: string;
  targets?: Array<{ expr: string }>;
}

export interface Dashboard {
  uid: string;
  title: string;
  __inputs: Array<{ name: string; type: string; pluginId: string }>;
  templating: { list: Array<{ name: string; query: { query: string }; datasource: unknown }> };
  panels: Array<Panel & { id: number; datasource?: unknown }>;
}

export function readDashboard(file: string): Dashboard {
  return JSON.parse(readFileSync(file, 'utf8')) as Dashboard;
}

/**
 * `$__rate_interval` becomes `rateWindow`; each template variable becomes its value in
 * `values` (a regex, as Grafana substitutes a chosen value), or `.*` ("All").
 */
export function dashboardQueries(
  file: string,
  rateWindow = '1m',
  values: Record<string, string> = {},
): DashboardQuery[] {
  const dashboard = readDashboard(file);
  return dashboard.panels.flatMap((panel) =>
    (panel.targets ?? []).map((target) => ({
      dashboard: dashboard.title,
      panel: panel.title,
      expr: target.expr
        .replaceAll('$__rate_interval', rateWindow)
        .replace(/\$([a-z_]+)/g, (_match, name: string) => values[name] ?? '.*'),
    })),
  );
}
