/**
 * Requests the ordinary HTTP clients will not send: arbitrary bytes on a raw socket, tunnel
 * upgrade attempts with any registration and token, forward-proxy requests to a TLS proxy
 * and CONNECT through a proxy. Every helper is bounded by a timeout.
 */
import http, { type IncomingHttpHeaders } from 'node:http';
import https from 'node:https';
import net from 'node:net';
import tls from 'node:tls';
import type { Duplex } from 'node:stream';
import {
  encodeRegistration,
  REGISTRATION_HEADER,
  TUNNEL_PATH,
  TUNNEL_UPGRADE_TOKEN,
  type Registration,
} from '../../src/wire/protocol.js';
import { readBody } from './loopback.js';

export interface RawResult {
  /** Status of the first response, when a complete status line arrived. */
  status: number | undefined;
  /** Everything received, as latin1 text. */
  text: string;
  /** The server closed the connection (before or after answering). */
  closed: boolean;
  /** Neither a complete response nor a close arrived within the timeout. */
  timedOut: boolean;
  /** Milliseconds from connect to the end (response complete, close or timeout). */
  elapsedMs: number;
}

/** Length of a complete response (head and content-length body) in `buffer`, or -1. */
function completeResponseLength(buffer: Buffer): number {
  const end = buffer.indexOf('\r\n\r\n');
  if (end < 0) return -1;
  const head = buffer.subarray(0, end).toString('latin1');
  const length = /\r\ncontent-length:\s*(\d+)/i.exec(head);
  if (!length) return /\r\ntransfer-encoding:/i.test(head) ? -1 : end + 4;
  const total = end + 4 + Number(length[1]);
  return buffer.length >= total ? total : -1;
}

/**
 * Writes `data` on a new TCP connection to 127.0.0.1:`port` and waits for one complete
 * response (status line, headers and a content-length body), a close, or `timeoutMs`.
 */
export function rawRequest(
  port: number,
  data: string | Buffer | Array<string | Buffer>,
  options: { timeoutMs?: number; host?: string; writeDelayMs?: number } = {},
): Promise<RawResult> {
  const timeoutMs = options.timeoutMs ?? 5000;
  const started = Date.now();
  return new Promise((resolve) => {
    const socket = net.connect({ host: options.host ?? '127.0.0.1', port });
    let received = Buffer.alloc(0);
    let settled = false;
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      const text = received.toString('latin1');
      const status = /^HTTP\/1\.[01] (\d{3})/.exec(text);
      resolve({
        status: status ? Number(status[1]) : undefined,
        text,
        closed,
        timedOut,
        elapsedMs: Date.now() - started,
      });
    };
    const timer = setTimeout(() => finish(false, true), timeoutMs);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (completeResponseLength(received) >= 0) finish(false, false);
    });
    socket.on('error', () => finish(true, false));
    socket.on('close', () => finish(true, false));
    socket.once('connect', () => {
      const parts = Array.isArray(data) ? data : [data];
      const delay = options.writeDelayMs ?? 0;
      let i = 0;
      const writeNext = (): void => {
        if (settled || socket.destroyed) return;
        const part = parts[i];
        i += 1;
        if (part === undefined) return;
        socket.write(part);
        if (delay > 0) setTimeout(writeNext, delay).unref();
        else writeNext();
      };
      writeNext();
    });
  });
}

export interface TunnelAttempt {
  /** 101 when the proxy accepted the tunnel (the socket is then closed at once). */
  status: number;
  body: string;
  headers: IncomingHttpHeaders;
  /** The local port of the attempt's connection: the proxy sees 127.0.0.1:localPort. */
  localPort: number;
}

/**
 * Asks the proxy for a tunnel as a natprox client does (GET /natprox/v1/tunnel with
 * Upgrade), with any registration (object or raw header value) and token.
 */
export function tunnelAttempt(
  port: number,
  options: {
    registration?: Registration | string;
    token?: string;
    headers?: Record<string, string>;
    timeoutMs?: number;
  } = {},
): Promise<TunnelAttempt> {
  const registration = options.registration ?? {
    names: ['demo'],
    labels: {},
    ports: [9100],
    version: 'test',
  };
  const headers: Record<string, string> = {
    connection: 'Upgrade',
    upgrade: TUNNEL_UPGRADE_TOKEN,
    [REGISTRATION_HEADER]:
      typeof registration === 'string' ? registration : encodeRegistration(registration),
    ...(options.token !== undefined ? { authorization: `Bearer ${options.token}` } : {}),
    ...options.headers,
  };
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port,
      method: 'GET',
      path: TUNNEL_PATH,
      headers,
      agent: false,
      timeout: options.timeoutMs ?? 5000,
    });
    let localPort = 0;
    req.once('socket', (socket) => {
      socket.once('connect', () => {
        localPort = socket.localPort ?? 0;
      });
    });
    req.once('timeout', () => req.destroy(new Error('tunnel attempt timed out')));
    req.once('error', reject);
    req.once('upgrade', (res, socket: Duplex) => {
      socket.destroy();
      resolve({ status: res.statusCode ?? 0, body: '', headers: res.headers, localPort });
    });
    req.once('response', (res) => {
      readBody(res).then(
        (body) =>
          resolve({
            status: res.statusCode ?? 0,
            body: body.toString(),
            headers: res.headers,
            localPort,
          }),
        reject,
      );
    });
    req.end();
  });
}

export interface TlsScrapeResult {
  status: number;
  headers: IncomingHttpHeaders;
  body: string;
  /** SHA-256 fingerprint (AA:BB:…) of the certificate the proxy presented. */
  fingerprint256: string;
}

/** An absolute-form forward-proxy request to a proxy that serves TLS, trusting `ca`. */
export function scrapeThroughTls(
  proxyPort: number,
  targetUrl: string,
  options: { ca: string | Buffer; headers?: Record<string, string>; timeoutMs?: number },
): Promise<TlsScrapeResult> {
  const { host } = new URL(targetUrl);
  return new Promise((resolve, reject) => {
    const req = https.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'GET',
      path: targetUrl,
      headers: { host, ...options.headers },
      ca: options.ca,
      servername: 'localhost',
      agent: false,
      timeout: options.timeoutMs ?? 5000,
    });
    req.once('timeout', () => req.destroy(new Error(`scrape of ${targetUrl} timed out`)));
    req.once('error', reject);
    req.once('response', (res) => {
      const socket = res.socket as tls.TLSSocket;
      const fingerprint256 = socket.getPeerCertificate().fingerprint256 ?? '';
      readBody(res).then(
        (body) =>
          resolve({
            status: res.statusCode ?? 0,
            headers: res.headers,
            body: body.toString(),
            fingerprint256,
          }),
        reject,
      );
    });
    req.end();
  });
}

/** The SHA-256 fingerprint of the certificate a TLS server on 127.0.0.1:`port` presents now. */
export function peerFingerprint(port: number, ca: string | Buffer): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = tls.connect({ host: '127.0.0.1', port, ca, servername: 'localhost' });
    const timer = setTimeout(() => socket.destroy(new Error('TLS handshake timed out')), 5000);
    socket.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    socket.once('secureConnect', () => {
      clearTimeout(timer);
      const fingerprint = socket.getPeerCertificate().fingerprint256 ?? '';
      socket.destroy();
      resolve(fingerprint);
    });
  });
}

export interface ConnectResult {
  status: number;
  /** The response's headers (Node's lower-case names). */
  headers: http.IncomingHttpHeaders;
  /** The tunnel socket when the proxy answered 200; the caller destroys it. */
  socket: net.Socket;
  /** The response body (for refusals) or bytes that followed the 200 head. */
  head: Buffer;
}

/** Sends `CONNECT authority` to a plain-HTTP proxy on 127.0.0.1:`proxyPort`. */
export function connectThrough(
  proxyPort: number,
  authority: string,
  headers: Record<string, string> = {},
  timeoutMs = 5000,
): Promise<ConnectResult> {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: '127.0.0.1',
      port: proxyPort,
      method: 'CONNECT',
      path: authority,
      headers: { host: authority, ...headers },
      agent: false,
    });
    const timer = setTimeout(
      () => req.destroy(new Error(`CONNECT ${authority} timed out`)),
      timeoutMs,
    );
    req.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    req.once('connect', (res, socket: net.Socket, head: Buffer) => {
      clearTimeout(timer);
      if (res.statusCode === 200) {
        resolve({ status: 200, headers: res.headers, socket, head });
        return;
      }
      // A refusal: the body follows on the socket (the proxy closes it afterwards).
      const chunks: Buffer[] = [head];
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => {});
      const done = (): void =>
        resolve({
          status: res.statusCode ?? 0,
          headers: res.headers,
          socket,
          head: Buffer.concat(chunks),
        });
      socket.once('close', done);
      socket.once('end', done);
    });
    req.end();
  });
}

/** One GET over an established byte stream (a CONNECT tunnel) with TLS to the target. */
export function httpsGetOver(
  socket: net.Socket,
  options: { servername: string; ca: string | Buffer; path: string; timeoutMs?: number },
): Promise<{ status: number; body: string; peerFingerprint: string }> {
  return new Promise((resolve, reject) => {
    const secure = tls.connect({ socket, servername: options.servername, ca: options.ca });
    const timer = setTimeout(
      () => secure.destroy(new Error('GET over the CONNECT tunnel timed out')),
      options.timeoutMs ?? 5000,
    );
    let peerFingerprint = '';
    let received = '';
    secure.setEncoding('utf8');
    secure.once('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    secure.once('secureConnect', () => {
      peerFingerprint = secure.getPeerCertificate().fingerprint256 ?? '';
      secure.write(
        `GET ${options.path} HTTP/1.1\r\nHost: ${options.servername}\r\nConnection: close\r\n\r\n`,
      );
    });
    secure.on('data', (chunk: string) => {
      received += chunk;
    });
    secure.once('end', () => {
      clearTimeout(timer);
      secure.destroy();
      const status = /^HTTP\/1\.1 (\d{3})/.exec(received);
      const bodyStart = received.indexOf('\r\n\r\n');
      resolve({
        status: status ? Number(status[1]) : 0,
        body: bodyStart < 0 ? '' : received.slice(bodyStart + 4),
        peerFingerprint,
      });
    });
  });
}
