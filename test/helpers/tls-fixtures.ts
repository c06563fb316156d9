/**
 * A throwaway CA and certificates for tests, made with the openssl command (Debian's
 * `openssl` package; .ci/run installs it when missing). EC P-256 keeps it fast.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { X509Certificate } from 'node:crypto';

export interface CertFiles {
  certFile: string;
  keyFile: string;
  cert: Buffer;
  key: Buffer;
  /** SHA-256 fingerprint as openssl prints it (AA:BB:…). */
  fingerprint256: string;
}

export interface TestCa extends CertFiles {
  dir: string;
  /** Issues a server certificate for `names` (DNS names and IP addresses). */
  issue(label: string, names?: string[]): CertFiles;
  remove(): void;
}

function openssl(args: string[], cwd: string): void {
  try {
    execFileSync('openssl', args, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
  } catch (err) {
    throw new Error(
      `openssl ${args.join(' ')} failed (is Debian's openssl package installed?): ${(err as Error).message}`,
      { cause: err },
    );
  }
}

function files(dir: string, label: string): CertFiles {
  const certFile = join(dir, `${label}.crt`);
  const keyFile = join(dir, `${label}.key`);
  const cert = readFileSync(certFile);
  return {
    certFile,
    keyFile,
    cert,
    key: readFileSync(keyFile),
    fingerprint256: new X509Certificate(cert).fingerprint256,
  };
}

export function createTestCa(label = 'ca'): TestCa {
  const dir = mkdtempSync(join(tmpdir(), 'natprox-tls-'));
  const ec = ['-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes'];
  openssl(
    [
      'req',
      '-x509',
      ...ec,
      '-keyout',
      `${label}.key`,
      '-out',
      `${label}.crt`,
      '-days',
      '2',
      '-subj',
      `/CN=natprox test ${label}`,
    ],
    dir,
  );
  const ca = files(dir, label);
  return {
    ...ca,
    dir,
    issue(name, names = ['localhost', '127.0.0.1', '::1']) {
      const san = names.map((n) => (/^[\d.]+$|:/.test(n) ? `IP:${n}` : `DNS:${n}`)).join(',');
      writeFileSync(join(dir, `${name}.ext`), `subjectAltName=${san}\n`);
      openssl(
        ['req', ...ec, '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${names[0]}`],
        dir,
      );
      openssl(
        [
          'x509',
          '-req',
          '-in',
          `${name}.csr`,
          '-CA',
          `${label}.crt`,
          '-CAkey',
          `${label}.key`,
          '-CAcreateserial',
          '-out',
          `${name}.crt`,
          '-days',
          '2',
          '-extfile',
          `${name}.ext`,
        ],
        dir,
      );
      return files(dir, name);
    },
    remove: () => rmSync(dir, { recursive: true, force: true }),
  };
}
