import { VERSION } from '../version.js';

export const MAIN_HELP = `natprox ${VERSION} — scrape Prometheus targets behind NAT through a tunnel the private side opens

Usage:
  natprox proxy  [flags]   run the public side: the scrape proxy and tunnel endpoint
  natprox client [flags]   run the private side: connect out, serve allowlisted targets
  natprox demo             proxy + client "demo" + a sample target on loopback (npm start)
  natprox token            print a new random client token and its token_sha256 line
  natprox hash-password    print the password_sha256 line for a password read from stdin
  natprox --version        print the version
  natprox COMMAND --help   flags of one command

How it fits together:
  Prometheus (public host)  --proxy_url-->  natprox proxy  <--tunnel--  natprox client (home)
  The client connects out, so the private side needs no inbound port. Prometheus scrapes
  http://NAME:PORT/PATH with proxy_url set to the proxy; NAME picks the client and PORT
  the local target, which the client fetches only if it is on its allowlist.

Exit codes: 0 success, 1 runtime failure, 2 bad flags or configuration.
`;

export const PROXY_HELP = `Usage: natprox proxy [flags]

Runs the public side. One listener serves:
  scrapes      absolute-form forward-proxy requests, as Prometheus sends with proxy_url:
               GET http://NAME:PORT/PATH?QUERY  →  routed to the client that registered NAME;
               CONNECT NAME:PORT for https targets (TLS end to end, the proxy sees bytes)
  tunnels      natprox clients connect to /natprox/v1/tunnel (HTTP/1.1 Upgrade, then HTTP/2)
  /clients     Prometheus http_sd_configs target groups: NAME:PORT per allowed port, with labels
  /metrics     the proxy's own metrics
  /-/healthy   liveness;  /-/ready  readiness (503 while shutting down)

Flags:
  --listen HOST:PORT               where to listen (default 127.0.0.1:8080; [::]:8080 for IPv6)
  --config FILE                    YAML config: listen, tls, timeouts, clients (tokens and
                                   names), scrapers, operators, limits; flags win over the file.
                                   SIGHUP reloads it and the certificate without dropping clients
  --insecure                       allow listening on a non-loopback address without
                                   "clients:" or "scrapers:" (anyone could connect or scrape)
  --default-scrape-timeout DUR     deadline when the scraper sends no
                                   X-Prometheus-Scrape-Timeout-Seconds (default 15s)
  --max-scrape-timeout DUR         upper bound of any scrape's deadline (default 5m)
  --shutdown-grace DUR             on SIGTERM/SIGINT, time in-flight scrapes get to finish (default 10s)
  --heartbeat-interval DUR         ping interval on tunnels; a peer silent for 3 intervals is
                                   dropped (default 4s)
  --log-level LEVEL                trace, debug, info, warn, error, silent (default info;
                                   also NATPROX_LOG_LEVEL)
  -h, --help                       this help

Durations: 500ms, 15s, 1m30s, 2h.
Without "clients:" in the config any client may connect, and without "scrapers:" anyone may
scrape: allowed on loopback; elsewhere the proxy refuses to start unless --insecure is given.
`;

export const CLIENT_HELP = `Usage: natprox client --proxy-url URL --allow PORT [flags]

Runs the private side: connects out to the proxy, registers its names and serves scrapes of
its allowlisted local targets. It reconnects forever with exponential backoff and jitter.

Flags:
  --proxy-url URL                  the proxy, e.g. http://vps.example:8080, https://vps.example,
                                   http://[2001:db8::1]:8080 (required, or proxy_url in --config)
  --name NAME                      a name to serve, repeatable (default: this host's name)
  --allow PORT | HOST:PORT         a local target the client may fetch, repeatable; PORT alone
                                   means 127.0.0.1:PORT. Nothing else is ever fetched.
  --label KEY=VALUE                a label on this client's /clients target groups, repeatable
  --config FILE                    YAML config: proxy_url, names, allow, labels, token_file,
                                   ca_file, tls_fingerprint, metrics_listen; flags win
  --token-file FILE                the client token (one trailing newline is ignored)
  --ca-file FILE                   trust this CA (PEM) for an https:// proxy instead of the
                                   system CAs
  --tls-fingerprint SHA256         accept only the proxy certificate with this SHA-256
                                   fingerprint (hex, colons optional); replaces CA checks
  --metrics-listen HOST:PORT       serve the client's own /metrics here
  --shutdown-grace DUR             on SIGTERM/SIGINT, time in-flight scrapes get to finish (default 10s)
  --heartbeat-interval DUR         ping interval on the tunnel (default 4s)
  --log-level LEVEL                trace, debug, info, warn, error, silent (default info)
  -h, --help                       this help

Example:
  natprox client --proxy-url http://vps.example:8080 --name raspberrypi \\
    --allow 9090 --allow 9100 --label location=home
`;

export const DEMO_HELP = `Usage: natprox demo [--listen HOST:PORT] [--log-level LEVEL]

Starts, on loopback, a proxy (default 127.0.0.1:8080, or a free port if that is taken),
a sample target, and a client named "demo" serving it; prints the curl command and the
prometheus.yml job that scrape "demo" through the proxy, logs each scrape, and runs until
Ctrl-C.

Flags:
  --listen HOST:PORT               where the proxy listens (default 127.0.0.1:8080)
  --log-level LEVEL                trace, debug, info, warn, error, silent (default info)
  -h, --help                       this help
`;

export const HASH_PASSWORD_HELP = `Usage: natprox hash-password < password.txt

Reads a password from stdin (one trailing newline is ignored; on a terminal it asks without
echoing) and prints the password_sha256 line for scrapers: or operators: in the proxy's
config. The same value as: printf %s "$PASSWORD" | sha256sum
`;

export const TOKEN_HELP = `Usage: natprox token

Prints a new random client token (256 bits, base64url) and the token_sha256 line to put
under "clients:" in the proxy's config. Give the token to the client in --token-file.
`;
