import http, { type ClientRequest, type OutgoingHttpHeaders } from 'node:http';
import https from 'node:https';
import { dialTls, type ClientTls } from '../../wire/tls-connect.js';
import { VERSION } from '../../version.js';
import { urlHostPort } from '../../util/host-port.js';

/** TCP keepalive on polls: a long-idle poll keeps home NAT mappings open and dead peers show. */
const KEEPALIVE_DELAY_MS = 30_000;
const TLS_HANDSHAKE_TIMEOUT_MS = 10_000;

/**
 * Requests to a PushProx proxy: `poll` and `push` resolved against the proxy URL as the Go
 * client resolves them (`http://h/prefix/` → `/prefix/poll`), with basic auth from the URL's
 * user info, or NAME:TOKEN when a token is configured, on every request.
 */
export class ProxyHttp {
  private readonly httpAgent = new http.Agent({ keepAlive: true, maxSockets: 512 });
  private readonly httpsAgent: https.Agent;
  private readonly authorization: string | undefined;

  constructor(
    private readonly proxyUrl: URL,
    name: string,
    token: string | undefined,
    private readonly tls: ClientTls | undefined,
  ) {
    this.httpsAgent = new https.Agent({
      keepAlive: true,
      maxSockets: 512,
      ...(tls?.ca ? { ca: tls.ca } : {}),
      ...(tls?.cert ? { cert: tls.cert, key: tls.key } : {}),
    });
    const user = decodeURIComponent(proxyUrl.username);
    const password = decodeURIComponent(proxyUrl.password);
    const basic =
      user !== '' || password !== ''
        ? `${user}:${password}`
        : token
          ? `${name}:${token}`
          : undefined;
    this.authorization = basic
      ? `Basic ${Buffer.from(basic, 'utf8').toString('base64')}`
      : undefined;
  }

  /** The URL of `poll` or `push` (without user info), for messages. */
  urlOf(endpoint: 'poll' | 'push'): URL {
    const url = new URL(endpoint, this.proxyUrl);
    url.username = '';
    url.password = '';
    return url;
  }

  /** Opens a POST to `endpoint`; the caller writes the body and ends it. */
  /** `signal` gives up the TLS handshake of a pinned connection (the client is stopping). */
  async post(
    endpoint: 'poll' | 'push',
    headers: OutgoingHttpHeaders,
    signal?: AbortSignal,
  ): Promise<ClientRequest> {
    const url = this.urlOf(endpoint);
    const secure = url.protocol === 'https:';
    const { host: hostname, port } = urlHostPort(url);
    const options: http.RequestOptions = {
      method: 'POST',
      hostname,
      port,
      path: `${url.pathname}${url.search}`,
      headers: {
        host: url.host,
        'user-agent': `natprox-client/${VERSION} (PushProx transport)`,
        ...(this.authorization ? { authorization: this.authorization } : {}),
        ...headers,
      },
    };
    let request: ClientRequest;
    if (secure && this.tls?.pinSha256) {
      // A pinned certificate is checked on a connection of our own before anything is sent.
      const socket = await dialTls(
        hostname,
        port,
        this.tls,
        TLS_HANDSHAKE_TIMEOUT_MS,
        undefined,
        signal,
      );
      request = http.request({ ...options, createConnection: () => socket });
    } else if (secure) {
      request = https.request({ ...options, agent: this.httpsAgent });
    } else {
      request = http.request({ ...options, agent: this.httpAgent });
    }
    request.once('socket', (socket) => socket.setKeepAlive(true, KEEPALIVE_DELAY_MS));
    return request;
  }

  close(): void {
    this.httpAgent.destroy();
    this.httpsAgent.destroy();
  }
}
