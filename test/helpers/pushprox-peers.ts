/**
 * Test peers that speak PushProx's wire format byte for byte, written from its description
 * and Go's documented formats (`Request.WriteProxy`, `Response.Write`), not from natprox:
 * - GoStyleClient: a PushProx client (poll, execute, push over raw sockets, one poll at a time);
 * - FakePushProxProxy: a PushProx proxy (long-poll server that hands out WriteProxy requests,
 *   answers an older waiting poll for a name with 408 when a new one arrives, accepts pushes
 *   and serves scrapes to a test scraper);
 * - startCuttingRelay: an intermediary that can cut open connections with an HTML 504.
 * Every wait is bounded.
 */
import { randomUUID } from 'node:crypto';
import http, { type IncomingMessage, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';

type Teardown = (fn: () => unknown) => void;

export interface RawMessage {
  /** Status line or request line. */
  startLine: string;
  /** Lower-case names; repeated headers joined with ", ". */
  headers: Record<string, string>;
  /** Header lines exactly as they arrived, in order. */
  headerLines: string[];
  body: Buffer;
}

/** Go's CanonicalMIMEHeaderKey. */
export function canonical(name: string): string {
  return name
    .toLowerCase()
    .replace(/(^|-)([a-z])/g, (_m, dash: string, c: string) => `${dash}${c.toUpperCase()}`);
}

/**
 * Parses one whole HTTP/1.x message from `data`: head, then a body delimited by
 * Content-Length, chunked framing, or the end of `data`. Returns a reason when it cannot.
 */
export function parseMessage(data: Buffer): RawMessage | string {
  const end = data.indexOf('\r\n\r\n');
  if (end < 0) return 'no end of head';
  const lines = data.subarray(0, end).toString('latin1').split('\r\n');
  const [startLine = '', ...headerLines] = lines;
  const headers: Record<string, string> = {};
  for (const line of headerLines) {
    const colon = line.indexOf(':');
    if (colon <= 0) return `bad header line ${line}`;
    const name = line.slice(0, colon).toLowerCase();
    const value = line.slice(colon + 1).trim();
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const rest = data.subarray(end + 4);
  let body: Buffer;
  if (/chunked/i.test(headers['transfer-encoding'] ?? '')) {
    const parts: Buffer[] = [];
    let at = 0;
    for (let guard = 0; guard < 1_000_000; guard += 1) {
      const lineEnd = rest.indexOf('\r\n', at);
      if (lineEnd < 0) return 'chunked body cut off';
      const size = parseInt(rest.subarray(at, lineEnd).toString('latin1'), 16);
      if (!Number.isFinite(size)) return 'bad chunk size';
      at = lineEnd + 2;
      if (size === 0) break;
      if (rest.length < at + size + 2) return 'chunk cut off';
      parts.push(rest.subarray(at, at + size));
      at += size + 2;
    }
    body = Buffer.concat(parts);
  } else if (headers['content-length'] !== undefined) {
    const length = Number(headers['content-length']);
    if (rest.length < length) return 'body shorter than Content-Length';
    body = rest.subarray(0, length);
  } else {
    body = rest;
  }
  return { startLine, headers, headerLines, body };
}

/**
 * Sends `request` on a new TCP connection and resolves with the raw response bytes once a
 * whole response arrived or the server closed; rejects after `timeoutMs`.
 */
export function rawExchange(
  port: number,
  request: Buffer | string,
  options: { timeoutMs?: number; onSocket?: (socket: net.Socket) => void } = {},
): Promise<Buffer> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    options.onSocket?.(socket);
    let received = Buffer.alloc(0);
    let done = false;
    const finish = (err?: Error): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      socket.destroy();
      if (err) reject(err);
      else resolve(received);
    };
    const timer = setTimeout(
      () => finish(new Error(`no response within ${timeoutMs} ms`)),
      timeoutMs,
    );
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      const parsed = parseMessage(received);
      const framed =
        typeof parsed !== 'string' &&
        (parsed.headers['content-length'] !== undefined ||
          /chunked/i.test(parsed.headers['transfer-encoding'] ?? ''));
      if (framed) finish();
    });
    socket.on('error', (err) => (received.length > 0 ? finish() : finish(err)));
    socket.on('close', () =>
      received.length > 0 ? finish() : finish(new Error('closed without a response')),
    );
    socket.write(request);
  });
}

function statusOf(raw: Buffer): number {
  return Number(/^HTTP\/\d\.\d (\d{3})/.exec(raw.toString('latin1'))?.[1] ?? 0);
}

/** A POST as Go's http.Client writes it (client.Post / client.Do with a known length). */
export function goPost(
  port: number,
  path: string,
  body: Buffer | string,
  authorization?: string,
): Buffer {
  const bytes = Buffer.isBuffer(body) ? body : Buffer.from(body);
  const head = [
    `POST ${path} HTTP/1.1`,
    `Host: 127.0.0.1:${port}`,
    'User-Agent: Go-http-client/1.1',
    `Content-Length: ${bytes.length}`,
    ...(authorization ? [`Authorization: ${authorization}`] : []),
    'Accept-Encoding: gzip',
  ];
  return Buffer.concat([Buffer.from(`${head.join('\r\n')}\r\n\r\n`, 'latin1'), bytes]);
}

export function basicAuth(user: string, password: string): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
}

/** The head of a response as Go's Response.Write writes it (headers sorted, canonical). */
export function goResponseHead(statusLine: string, headers: Record<string, string>): string {
  const lines = Object.entries(headers)
    .map(([name, value]): [string, string] => [canonical(name), value])
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([name, value]) => `${name}: ${value}`);
  return `${[statusLine, ...lines].join('\r\n')}\r\n\r\n`;
}

export interface PolledScrape {
  raw: Buffer;
  requestLine: string;
  url: URL;
  /** The host of the request line as written (URL lower-cases it; Go does not). */
  rawHostname: string;
  headers: Record<string, string>;
  headerLines: string[];
  id: string;
  timeoutSeconds: number;
}

/** Parses a poll answer as Go's http.ReadRequest would, or says why it is not a request. */
export function parsePolledRequest(body: Buffer): PolledScrape | string {
  const parsed = parseMessage(body);
  if (typeof parsed === 'string') return `malformed HTTP request: ${parsed}`;
  const match = /^GET (http:\/\/\S+) HTTP\/1\.1$/.exec(parsed.startLine);
  if (!match) return `malformed HTTP request "${parsed.startLine.slice(0, 40)}"`;
  return {
    raw: body,
    requestLine: parsed.startLine,
    url: new URL(match[1] as string),
    rawHostname: /^http:\/\/([^/:?]+)/.exec(match[1] as string)?.[1] ?? '',
    headers: parsed.headers,
    headerLines: parsed.headerLines,
    id: parsed.headers.id ?? '',
    timeoutSeconds: Number(parsed.headers['x-prometheus-scrape-timeout-seconds']),
  };
}

export interface GoStyleClientOptions {
  proxyPort: number;
  fqdn: string;
  /** Basic auth the Go client derives from the proxy URL's user info. */
  authorization?: string;
  /** Delay after a failed poll (the Go client backs off; short here). */
  retryDelayMs?: number;
}

/**
 * A PushProx client as its Go code behaves: POST /poll with the FQDN, read the answer as a
 * request whatever its status (as the Go client does), re-poll at once while the scrape runs
 * in the background (fetch http://127.0.0.1:PORT for FQDN:PORT), push the response as
 * Response.Write writes it, or on failure an `HTTP/0.0 500` with the error text.
 */
export class GoStyleClient {
  private running = false;
  private polling: net.Socket | undefined;
  pollErrors: string[] = [];
  pushStatuses: number[] = [];
  polls = 0;
  private readonly inFlight = new Set<Promise<void>>();
  private wake: (() => void) | undefined;

  constructor(private readonly options: GoStyleClientOptions) {}

  /** One poll: resolves with the raw answer. */
  poll(onSocket?: (socket: net.Socket) => void): Promise<Buffer> {
    this.polls += 1;
    return rawExchange(
      this.options.proxyPort,
      goPost(this.options.proxyPort, '/poll', this.options.fqdn, this.options.authorization),
      {
        timeoutMs: 60_000,
        ...(onSocket ? { onSocket } : {}),
      },
    );
  }

  /** Pushes a serialised response; resolves with the proxy's raw answer. */
  push(serialised: Buffer): Promise<Buffer> {
    return rawExchange(
      this.options.proxyPort,
      goPost(this.options.proxyPort, '/push', serialised, this.options.authorization),
    );
  }

  start(): void {
    if (this.running) return;
    this.running = true;
    void this.loop();
  }

  /** Stops polling: the waiting poll's connection closes, as when the process exits. */
  async stop(): Promise<void> {
    this.running = false;
    this.polling?.destroy();
    this.wake?.();
    await Promise.race([Promise.all([...this.inFlight]), new Promise((r) => setTimeout(r, 5000))]);
  }

  private async loop(): Promise<void> {
    for (let guard = 0; guard < 100_000 && this.running; guard += 1) {
      let answer: Buffer;
      try {
        answer = await this.poll((socket) => {
          this.polling = socket;
        });
      } catch (err) {
        if (!this.running) return;
        this.pollErrors.push(`error polling: ${(err as Error).message}`);
        await this.sleep(this.options.retryDelayMs ?? 50);
        continue;
      }
      if (!this.running) return;
      const response = parseMessage(answer);
      const scrape = typeof response === 'string' ? response : parsePolledRequest(response.body);
      if (typeof scrape === 'string') {
        // The Go client parses whatever came back; an HTML error page fails here.
        this.pollErrors.push(`error reading request: ${scrape} (status ${statusOf(answer)})`);
        await this.sleep(this.options.retryDelayMs ?? 50);
        continue;
      }
      const job = this.doScrape(scrape).finally(() => this.inFlight.delete(job));
      this.inFlight.add(job);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(resolve, ms);
      this.wake = () => {
        clearTimeout(timer);
        resolve();
      };
    });
  }

  private async doScrape(scrape: PolledScrape): Promise<void> {
    const startedAt = Date.now();
    const deadline = startedAt + scrape.timeoutSeconds * 1000;
    const remaining = (): string => ((deadline - Date.now()) / 1000).toFixed(6);
    let serialised: Buffer;
    try {
      if (scrape.rawHostname !== this.options.fqdn)
        throw new Error("scrape target doesn't match client fqdn");
      const response = await fetchLocal(scrape, deadline - Date.now());
      const headers: Record<string, string> = {
        ...response.headers,
        id: scrape.id,
        'x-prometheus-scrape-timeout': remaining(),
      };
      if (response.chunked) {
        headers['transfer-encoding'] = 'chunked';
        const chunked = Buffer.concat([
          Buffer.from(`${response.body.length.toString(16)}\r\n`),
          response.body,
          Buffer.from('\r\n0\r\n\r\n'),
        ]);
        serialised = Buffer.concat([
          Buffer.from(goResponseHead(response.statusLine, headers), 'latin1'),
          chunked,
        ]);
      } else {
        headers['content-length'] = String(response.body.length);
        serialised = Buffer.concat([
          Buffer.from(goResponseHead(response.statusLine, headers), 'latin1'),
          response.body,
        ]);
      }
    } catch (err) {
      const text = `failed to scrape ${scrape.url.href}: ${(err as Error).message}`;
      // handleErr: a Response without Proto, so Response.Write writes HTTP/0.0, body to EOF.
      serialised = Buffer.concat([
        Buffer.from(
          goResponseHead('HTTP/0.0 500 Internal Server Error', {
            id: scrape.id,
            'x-prometheus-scrape-timeout': remaining(),
          }),
          'latin1',
        ),
        Buffer.from(text),
      ]);
    }
    try {
      this.pushStatuses.push(statusOf(await this.push(serialised)));
    } catch {
      this.pushStatuses.push(0);
    }
  }
}

interface LocalResponse {
  statusLine: string;
  headers: Record<string, string>;
  chunked: boolean;
  body: Buffer;
}

/** The Go client's client.Do with the scrape's context: FQDN resolves to 127.0.0.1 here. */
function fetchLocal(scrape: PolledScrape, timeoutMs: number): Promise<LocalResponse> {
  return new Promise((resolve, reject) => {
    const headers = { ...scrape.headers };
    delete headers.host;
    const req = http.request({
      host: '127.0.0.1',
      port: Number(scrape.url.port || 80),
      path: `${scrape.url.pathname}${scrape.url.search}`,
      headers: { ...headers, host: scrape.url.host },
      agent: false,
    });
    const timer = setTimeout(
      () => {
        req.destroy(new Error(`Get "${scrape.url.href}": context deadline exceeded`));
      },
      Math.max(0, timeoutMs),
    );
    req.once('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(timer);
      reject(err.code ? new Error(`Get "${scrape.url.href}": dial tcp: ${err.code}`) : err);
    });
    req.once('response', (res: IncomingMessage) => {
      const chunks: Buffer[] = [];
      res.on('data', (chunk: Buffer) => chunks.push(chunk));
      res.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      res.once('end', () => {
        clearTimeout(timer);
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(res.headers)) {
          if (
            name === 'transfer-encoding' ||
            name === 'connection' ||
            name === 'content-length' ||
            name === 'keep-alive'
          )
            continue;
          if (value !== undefined) out[name] = Array.isArray(value) ? value.join(', ') : value;
        }
        resolve({
          statusLine: `HTTP/1.1 ${res.statusCode} ${res.statusMessage}`,
          headers: out,
          chunked: res.headers['content-length'] === undefined,
          body: Buffer.concat(chunks),
        });
      });
    });
    req.end();
  });
}

const HTML_504 =
  '<html>\r\n<head><title>504 Gateway Time-out</title></head>\r\n<body>\r\n<center><h1>504 Gateway Time-out</h1></center>\r\n<hr><center>nginx</center>\r\n</body>\r\n</html>\r\n';

export function html504Response(): string {
  return `HTTP/1.1 504 Gateway Time-out\r\nServer: nginx\r\nContent-Type: text/html\r\nContent-Length: ${Buffer.byteLength(HTML_504)}\r\nConnection: close\r\n\r\n${HTML_504}`;
}

interface WaitingPoll {
  res: ServerResponse;
  /** The intermediary cut it off; the proxy does not know and still holds it. */
  stale: boolean;
}

interface WaitingScrape {
  fqdn: string;
  text: string;
  id: string;
  answer: (pushed: RawMessage) => void;
}

/**
 * A PushProx proxy as its Go code behaves: /poll waits for a scrape; a new poll for an FQDN
 * answers an older waiting one with 408 "request is expired"; a scrape (absolute-form GET)
 * waits for a poll, then for the push with its Id, and answers the scraper with the pushed
 * status, headers (Id and the timeout headers removed) and body. A scrape whose timeout
 * passes gets a 500. `cutWaitingPolls` plays a load balancer in front: the client gets an
 * HTML 504, while the proxy still holds the poll (stale), as PushProx does.
 */
export class FakePushProxProxy {
  readonly server: http.Server;
  port = 0;
  readonly polls = new Map<string, WaitingPoll[]>();
  private readonly scrapes: WaitingScrape[] = [];
  private readonly waitingPush = new Map<string, WaitingScrape>();
  pollsSeen = 0;
  expired = 0;
  maxLivePolls = 0;
  pushes: RawMessage[] = [];
  pollAuthorizations: Array<string | undefined> = [];
  pushAuthorizations: Array<string | undefined> = [];
  /** Raw poll answers handed out, for byte-level checks. */
  handedOut: string[] = [];

  constructor() {
    this.server = http.createServer((req, res) => this.route(req, res));
  }

  async listen(teardown: Teardown): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    teardown(() => {
      this.server.closeAllConnections();
      this.server.close();
    });
    this.port = (this.server.address() as AddressInfo).port;
    return this.port;
  }

  livePolls(fqdn: string): number {
    return (this.polls.get(fqdn) ?? []).filter((p) => !p.stale && !p.res.destroyed).length;
  }

  cutWaitingPolls(fqdn: string): number {
    let cut = 0;
    for (const poll of this.polls.get(fqdn) ?? []) {
      if (poll.stale) continue;
      poll.stale = true;
      cut += 1;
      const socket = poll.res.socket;
      socket?.end(html504Response());
      socket?.destroySoon();
    }
    return cut;
  }

  private route(req: IncomingMessage, res: ServerResponse): void {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks);
      if (req.url === '/poll' && req.method === 'POST') this.poll(body.toString().trim(), req, res);
      else if (req.url === '/push' && req.method === 'POST') this.push(body, req, res);
      else if (req.url?.startsWith('http://')) this.scrape(req, res);
      else {
        res.writeHead(404);
        res.end();
      }
    });
  }

  private poll(fqdn: string, req: IncomingMessage, res: ServerResponse): void {
    this.pollsSeen += 1;
    this.pollAuthorizations.push(req.headers.authorization);
    const list = this.polls.get(fqdn) ?? [];
    this.polls.set(fqdn, list);
    // WaitForScrapeInstruction: "exhaust existing poll request" - an older waiting poll expires.
    const older = list.shift();
    if (older) {
      this.expired += 1;
      if (!older.stale) {
        older.res.writeHead(408, {
          'content-type': 'text/plain; charset=utf-8',
          'x-content-type-options': 'nosniff',
        });
        older.res.end('request is expired\n');
      }
    }
    const queued = this.scrapes.findIndex((s) => s.fqdn === fqdn);
    if (queued >= 0) {
      const [scrape] = this.scrapes.splice(queued, 1);
      this.handOut(scrape as WaitingScrape, res);
      return;
    }
    const poll: WaitingPoll = { res, stale: false };
    list.push(poll);
    this.maxLivePolls = Math.max(this.maxLivePolls, this.livePolls(fqdn));
    res.once('close', () => {
      if (!res.writableFinished) poll.stale = true;
    });
  }

  private handOut(scrape: WaitingScrape, res: ServerResponse): void {
    this.handedOut.push(scrape.text);
    this.waitingPush.set(scrape.id, scrape);
    res.writeHead(200, { 'content-type': 'text/plain; charset=utf-8' });
    res.end(scrape.text);
  }

  private scrape(req: IncomingMessage, res: ServerResponse): void {
    const url = new URL(req.url ?? '');
    const fqdn = url.hostname;
    const id = randomUUID();
    const timeoutSeconds = Number(req.headers['x-prometheus-scrape-timeout-seconds'] ?? '10');
    const headers: Record<string, string> = {};
    for (const [name, value] of Object.entries(req.headers)) {
      if (name === 'host' || name === 'user-agent' || name === 'connection' || value === undefined)
        continue;
      headers[name] = Array.isArray(value) ? value.join(', ') : value;
    }
    headers.id = id;
    headers['x-prometheus-scrape-timeout-seconds'] = String(timeoutSeconds);
    const host = url.host;
    const userAgent = req.headers['user-agent'] ?? 'Go-http-client/1.1';
    const sorted = Object.entries(headers)
      .map(([n, v]): [string, string] => [canonical(n), v])
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
      .map(([n, v]) => `${n}: ${v}`);
    const text = `${[`GET ${url.href} HTTP/1.1`, `Host: ${host}`, `User-Agent: ${userAgent}`, ...sorted].join('\r\n')}\r\n\r\n`;
    const timer = setTimeout(() => {
      this.waitingPush.delete(id);
      const index = this.scrapes.indexOf(scrape);
      if (index >= 0) this.scrapes.splice(index, 1);
      if (!res.headersSent) {
        res.writeHead(500, { 'content-type': 'text/plain; charset=utf-8' });
        res.end(`Error scraping "${url.href}": timeout reached\n`);
      }
    }, timeoutSeconds * 1000);
    res.once('close', () => {
      // The scraper went away: PushProx's context is done; the push will find no one.
      clearTimeout(timer);
      this.waitingPush.delete(id);
    });
    const scrape: WaitingScrape = {
      fqdn,
      text,
      id,
      answer: (pushed) => {
        clearTimeout(timer);
        const status = Number(/^HTTP\/\d\.\d (\d{3})/.exec(pushed.startLine)?.[1] ?? 500);
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(pushed.headers)) {
          if (
            [
              'id',
              'x-prometheus-scrape-timeout',
              'x-prometheus-scrape-timeout-seconds',
              'transfer-encoding',
              'content-length',
              'connection',
            ].includes(name)
          )
            continue;
          out[name] = value;
        }
        res.writeHead(status, { ...out, 'content-length': pushed.body.length });
        res.end(pushed.body);
      },
    };
    // DoScrape: hand it to a waiting poll (a stale one swallows it, as in PushProx).
    const list = this.polls.get(fqdn) ?? [];
    const poll = list.shift();
    if (poll) {
      if (poll.stale) {
        this.waitingPush.set(id, scrape);
        return;
      }
      this.handOut(scrape, poll.res);
      return;
    }
    this.scrapes.push(scrape);
  }

  private push(body: Buffer, req: IncomingMessage, res: ServerResponse): void {
    this.pushAuthorizations.push(req.headers.authorization);
    const parsed = parseMessage(body);
    if (typeof parsed === 'string') {
      res.writeHead(400);
      res.end(`${parsed}\n`);
      return;
    }
    this.pushes.push(parsed);
    const scrape = this.waitingPush.get(parsed.headers.id ?? '');
    if (!scrape) {
      res.writeHead(500);
      res.end('context deadline exceeded\n');
      return;
    }
    this.waitingPush.delete(scrape.id);
    scrape.answer(parsed);
    res.writeHead(200);
    res.end();
  }
}
