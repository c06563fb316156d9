import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { DASHBOARDS, dashboardQueries, readDashboard } from './helpers/dashboards.js';

const DATASOURCE = { type: 'prometheus', uid: '${DS_PROMETHEUS}' };

describe('Grafana dashboards in deploy/grafana', () => {
  for (const file of DASHBOARDS) {
    it(`${file.split('/').pop()} imports as it is`, () => {
      const dashboard = readDashboard(file);
      assert.deepEqual(
        dashboard.__inputs.map((i) => [i.name, i.type, i.pluginId]),
        [['DS_PROMETHEUS', 'datasource', 'prometheus']],
      );
      const ids = dashboard.panels.map((p) => p.id);
      assert.equal(new Set(ids).size, ids.length, 'panel ids are unique');
      for (const panel of dashboard.panels.filter((p) => p.type !== 'row')) {
        assert.deepEqual(panel.datasource, DATASOURCE, `${panel.title} uses the input data source`);
        assert.ok((panel.targets ?? []).length > 0, `${panel.title} has a query`);
      }
      for (const variable of dashboard.templating.list) {
        assert.deepEqual(variable.datasource, DATASOURCE);
      }
      // Every variable a query uses is defined.
      const defined = new Set(dashboard.templating.list.map((v) => v.name));
      for (const panel of dashboard.panels) {
        for (const { expr } of panel.targets ?? []) {
          for (const [, name] of expr.matchAll(/\$([a-z_]+)/g)) {
            if (name !== '__rate_interval')
              assert.ok(defined.has(name ?? ''), `$${name} in ${panel.title}`);
          }
        }
      }
    });
  }

  it('the natprox dashboard filters by proxy instance, location and client', () => {
    const names = readDashboard(DASHBOARDS[0] as string).templating.list.map((v) => v.name);
    assert.deepEqual(names, ['instance', 'location', 'client']);
  });

  it('the home network dashboard filters by location and instance', () => {
    const names = readDashboard(DASHBOARDS[1] as string).templating.list.map((v) => v.name);
    assert.deepEqual(names, ['location', 'instance']);
    for (const query of dashboardQueries(DASHBOARDS[1] as string)) {
      assert.match(query.expr, /location=~/, query.panel);
    }
  });
});
