/**
 * natprox behind a real nginx (Debian's nginx-light), configured as docs/deploy.md says:
 * the client's tunnel (an HTTP/1.1 Upgrade) and Prometheus's scrapes (absolute-form
 * requests with Proxy-Authorization) both go through nginx to natprox on loopback.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { sha256Hex } from '../src/auth/secret-hash.js';
import {
  eventually,
  startClient,
  startProxy,
  startTarget,
  type ScrapeResult,
} from '../test/helpers/loopback.js';
import { requireDebianBinaries } from './helpers/debian-binaries.js';
import { freePorts } from './helpers/processes.js';

/** The location block from docs/deploy.md, pointed at `upstreamPort`. */
function nginxConfig(dir: string, listenPort: number, upstreamPort: number): string {
  const doc = readFileSync(new URL('../docs/deploy.md', import.meta.url), 'utf8');
  const location = /location \/ \{[\s\S]*?\n {4}\}/.exec(doc)?.[0];
  assert.ok(location, 'docs/deploy.md has the nginx location block');
  return `daemon off; master_process off; pid ${dir}/nginx.pid; error_log ${dir}/error.log;
events {}
http {
  access_log off;
  client_body_temp_path ${dir}; proxy_temp_path ${dir}; fastcgi_temp_path ${dir};
  uwsgi_temp_path ${dir}; scgi_temp_path ${dir};
  server {
    listen 127.0.0.1:${listenPort};
    ${location.replace('http://127.0.0.1:8080', `http://127.0.0.1:${upstreamPort}`)}
  }
}
`;
}

function request(
  port: number,
  path: string,
  headers: Record<string, string>,
): Promise<ScrapeResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, path, headers, agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.once('error', reject);
    req.end();
  });
}

describe('natprox behind nginx', () => {
  it('passes the tunnel and Prometheus-style scrapes through nginx as docs/deploy.md configures it', async () => {
    const { nginx } = requireDebianBinaries(['nginx']);
    const target = await startTarget(
      (req, res) => res.end(`path=${req.url} auth=${req.headers.authorization ?? '-'}`),
      after,
    );
    const { port } = await startProxy(after, {
      scrapers: [{ username: 'prometheus', passwordSha256: sha256Hex('scrape-pw') }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'natprox-nginx-'));
    after(() => rmSync(dir, { recursive: true, force: true }));
    const [nginxPort] = await freePorts(1);
    assert.ok(nginxPort);
    writeFileSync(join(dir, 'nginx.conf'), nginxConfig(dir, nginxPort, port));
    const child = spawn(nginx, ['-c', join(dir, 'nginx.conf'), '-p', dir], { stdio: 'ignore' });
    after(() => child.kill('SIGKILL'));
    await eventually(
      () =>
        request(nginxPort, '/-/healthy', {}).then(
          (r) => r.status === 200,
          () => false,
        ),
      5000,
      `nginx on 127.0.0.1:${nginxPort} (see ${dir}/error.log)`,
    );

    await startClient(after, {
      proxyUrl: new URL(`http://127.0.0.1:${nginxPort}`),
      names: ['raspberrypi'],
      allow: [{ host: '127.0.0.1', port: target.port }],
    });
    const scrape = (proxyAuth: string | undefined) =>
      request(nginxPort, `http://raspberrypi:${target.port}/federate?match[]=up`, {
        host: `raspberrypi:${target.port}`,
        authorization: 'Bearer for-the-target',
        ...(proxyAuth ? { 'proxy-authorization': proxyAuth } : {}),
      });
    const ok = await scrape(`Basic ${Buffer.from('prometheus:scrape-pw').toString('base64')}`);
    assert.equal(ok.status, 200, ok.body);
    assert.equal(ok.body, 'path=/federate?match[]=up auth=Bearer for-the-target');
    assert.equal((await scrape(undefined)).status, 407, 'credentials are still required');
  });
});
