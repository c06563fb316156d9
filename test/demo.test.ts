import assert from 'node:assert/strict';
import { after, describe, it } from 'node:test';
import { parse } from 'yaml';
import { scrapeThrough, spawnNatprox } from './helpers/loopback.js';

describe('npm start (natprox demo)', () => {
  it('runs proxy, client and target, prints a working curl and prometheus.yml, logs scrapes, stops on Ctrl-C', async () => {
    const demo = spawnNatprox(['demo', '--listen', '127.0.0.1:0'], after, {
      NATPROX_LOG_LEVEL: 'info',
    });
    const curl = await demo.waitFor(/curl -x http:\/\/\S+ http:\/\/demo:\d+\/metrics/);
    const [, proxyAddress, targetUrl] =
      /curl -x http:\/\/(\S+) (http:\/\/demo:\d+\/metrics)/.exec(curl) ?? [];
    assert.ok(proxyAddress && targetUrl, curl);
    const proxyPort = Number(proxyAddress.split(':').at(-1));

    const result = await scrapeThrough(proxyPort, targetUrl);
    assert.equal(result.status, 200, result.body);
    assert.match(result.body, /^# HELP /m, 'the sample target serves Prometheus text');
    await demo.waitFor(/scrape through the proxy/);

    // The printed prometheus.yml is valid YAML pointing at this proxy and target.
    await demo.waitFor(/Ctrl-C stops everything/);
    const output = demo.output();
    const yamlText = output
      .slice(output.indexOf('prometheus.yml:') + 'prometheus.yml:'.length)
      .split('\nEach scrape is logged')[0];
    const config = parse(yamlText ?? '') as {
      scrape_configs: Array<{
        job_name: string;
        proxy_url: string;
        static_configs?: Array<{ targets: string[] }>;
        http_sd_configs?: Array<{ url: string }>;
      }>;
    };
    const [job, sd] = config.scrape_configs;
    assert.equal(job?.proxy_url, `http://${proxyAddress}`);
    assert.deepEqual(job?.static_configs?.[0]?.targets, [new URL(targetUrl).host]);
    assert.equal(sd?.http_sd_configs?.[0]?.url, `http://${proxyAddress}/clients`);

    demo.child.kill('SIGINT');
    const code = await Promise.race([
      demo.exited,
      new Promise<string>((resolve) => setTimeout(() => resolve('still running'), 5000)),
    ]);
    assert.equal(code, 0, demo.output());
    assert.match(demo.output(), /demo stopped/);
  });

  it('refuses a non-loopback address: it has no credentials', async () => {
    const demo = spawnNatprox(['demo', '--listen', '0.0.0.0:0'], after);
    assert.equal(await demo.exited, 2);
    assert.match(demo.output(), /listens only on loopback/);
  });
});
