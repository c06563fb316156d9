import { VERSION } from '../version.js';

export const MAIN_HELP = `natprox ${VERSION} — scrape Prometheus targets behind NAT through a tunnel the private side opens

Usage:
  natprox proxy  [flags]   run the public side: the scrape proxy and tunnel endpoint
  natprox client [flags]   run the private side: connect out, serve allowlisted targets
  natprox check  [flags]   with the client's flags: check each step to the proxy and targets
  natprox demo             proxy + client "demo" + a sample target on loopback (npm start)
  natprox token            print a new random client token and its token_sha256 line
  natprox hash-password    print the password_sha256 line for a password read from stdin
  natprox config WHAT      print Prometheus config: prometheus (VPS jobs) or home
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
Behind nginx or Caddy, set behind_reverse_proxy: true: loopback is public there, and the
refusal applies too.
`;

/** The client's flags; natprox check takes the same ones. */
const CLIENT_FLAG_LINES = `  --proxy-url URL                  the proxy, e.g. http://vps.example:8080, https://vps.example,
                                   http://[2001:db8::1]:8080 (required, or proxy_url in --config).
                                   Repeat it for several proxies: one independent tunnel to each;
                                   they all share --token-file, --ca-file, --tls-fingerprint and
                                   --cert-file (for one token or CA per proxy use proxies:)
  --connect-all-addresses          one tunnel to every A/AAAA address of each proxy host, kept in
                                   step with DNS (re-resolved every 30 s), for proxy replicas
                                   behind one name; TLS still checks the host name (docs/ha.md)
  --transport KIND                 native (default): the natprox tunnel; pushprox: long-poll a
                                   PushProx proxy at --proxy-url (/poll, /push), one --name only
  --name NAME                      a name to serve, repeatable (default: this host's name)
  --allow ENTRY                    a local target the client may fetch, repeatable. ENTRY is
                                   [METHODS ][HOST:]PORT[/PATH]: PORT alone means
                                   127.0.0.1:PORT, GET and HEAD on any path; /PATH limits it to
                                   a path prefix; METHODS grants others there, e.g.
                                   --allow 'POST 9090/api/v1/read'. Nothing else is fetched.
  --label KEY=VALUE                a label on this client's /clients target groups, repeatable
  --config FILE                    YAML config: proxy_url (or proxies: [{url, token_file,
                                   ca_file, tls_fingerprint, cert_file, key_file}]),
                                   connect_all_addresses, transport, names, allow, labels,
                                   token_file, ca_file, tls_fingerprint, cert_file, key_file,
                                   metrics_listen, shutdown_grace; flags win
  --token-file FILE                the client token (one trailing newline is ignored); refused
                                   when group or others may write it, a warning when others
                                   (or the group of a file root does not own) may read it
  --ca-file FILE                   trust this CA (PEM) for an https:// proxy instead of the
                                   system CAs
  --tls-fingerprint SHA256         accept only the proxy certificate with this SHA-256
                                   fingerprint (hex, colons optional); replaces CA checks
  --cert-file FILE                 a TLS client certificate (PEM) for an https:// proxy that
                                   accepts certificates instead of tokens (natprox proxy
                                   clients: cert_subject or cert_sha256; a PushProx proxy
                                   behind mTLS)
  --key-file FILE                  the private key (PEM) of --cert-file
  --metrics-listen HOST:PORT       serve the client's own /metrics here
  --shutdown-grace DUR             on SIGTERM/SIGINT, time in-flight scrapes get to finish (default 10s)
  --heartbeat-interval DUR         ping interval on the tunnel (default 4s)
  --log-level LEVEL                trace, debug, info, warn, error, silent (default info)
  -h, --help                       this help
`;

export const CLIENT_HELP = `Usage: natprox client --proxy-url URL --allow PORT [flags]

Runs the private side: connects out to the proxy, registers its names and serves scrapes of
its allowlisted local targets. It reconnects forever with exponential backoff and jitter.

Flags:
${CLIENT_FLAG_LINES}
Example:
  natprox client --proxy-url http://vps.example:8080 --name raspberrypi \\
    --allow 9090 --allow 9100 --label location=home
`;

export const CHECK_HELP = `Usage: natprox check --proxy-url URL --allow PORT [flags]

Takes exactly the flags and config of natprox client (listed below) and, instead of running,
walks the client's path step by step, printing one line per step:
  configuration   flags and config file valid (names, allow list, proxy URL, files)
  (with several proxies, DNS to authentication run for each proxy in turn)
  DNS             every A/AAAA address of the proxy's host
  TCP connect     a connection to the proxy's port (5 s)
  TLS             https:// only: chain against the system CAs or --ca-file, expiry, host
                  name, or the --tls-fingerprint pin
  tunnel upgrade  the upgrade request reaches the proxy through any reverse proxy on the way
  authentication  the token is accepted, which names it grants, which will be registered
  target H:P      each allowlisted target answers an HTTP GET (/metrics or its first path)

  ✔ step: what was found       ✘ step: what went wrong       - step: not checked (why)
                                  → what to do

The tunnel check is a dry run: the proxy runs all its checks but registers nothing, so a
client already running with the same names keeps serving.

Flags (the same as natprox client's; --metrics-listen, --shutdown-grace and
--heartbeat-interval are accepted and change nothing here):
${CLIENT_FLAG_LINES}
Exit codes: 0 every step passed, 1 a step failed, 2 bad flags or configuration.
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

export const CONFIG_HELP = `Usage: natprox config prometheus --proxy-url URL --name NAME --port PORT [--label KEY=VALUE …]
                                [--match SELECTOR …] [--http-sd] [--remote-read]
       natprox config home --label KEY=VALUE [--node-exporter HOST:PORT]

Prints Prometheus configuration for the reference deployment. Each output is a complete
prometheus.yml (promtool check config accepts it as it is); to add it to an existing
prometheus.yml, copy its scrape_configs: entries (and remote_read:, global.external_labels).

natprox config prometheus — the public (VPS) Prometheus:
  a job "federate" that pulls the home Prometheus's /federate through the proxy
  (honor_labels, match[] selectors, proxy_url, one target NAME:PORT per --name), and a job
  "natprox-proxy" that scrapes the proxy's own /metrics (for the natprox dashboard).
  --proxy-url URL        the proxy as the VPS Prometheus reaches it, with the scraper
                         credentials: https://USER:PASSWORD@vps.example:8443 (required)
  --name NAME            the name the natprox client registers, repeatable (required)
  --port PORT            the home Prometheus's port on the client's side, e.g. 9090 (required)
  --label KEY=VALUE      a target label of the federate job, repeatable: the site's
                         external label (location=home), so up{job="federate"} carries it
  --match SELECTOR       a match[] selector, repeatable (default {job="node"})
  --http-sd              also a job "natprox" that discovers clients from the proxy's
                         /clients (http_sd_configs, refreshed every 5 s) and scrapes each
                         port directly through the proxy, leaving out the --name clients
                         (federation brings their series already)
  --remote-read          also remote_read of each home Prometheus through the proxy, so
                         queries over an outage of the home link return the home's samples
                         (the client needs --allow 'POST PORT/api/v1/read')
  --operator USER:PASS   credentials for /clients and /metrics when the proxy has operators:
                         (default: the scraper credentials of --proxy-url)
  --ca-file FILE         the CA that signed the proxy's certificate, when it is not public
                         (tls_config.ca_file)
  --job NAME             name of the federate job (default federate)
  --sd-job NAME          name of the --http-sd job (default natprox)
  --proxy-job NAME       name of the proxy's /metrics job (default natprox-proxy)

natprox config home — the home Prometheus: global.external_labels, which mark every series
the VPS federates (e.g. location="home"), and a job "node" scraping node_exporter.
  --label KEY=VALUE      an external label, repeatable (required)
  --node-exporter H:P    where node_exporter listens (default localhost:9100)
  --job NAME             name of the node_exporter job (default node)

Example:
  natprox config home --label location=home > /etc/prometheus/prometheus.yml
  natprox config prometheus --proxy-url https://prometheus:PASSWORD@vps.example:8443 \\
    --name raspberrypi --port 9090 --label location=home --remote-read
`;
