/*
 * camus.h — the embeddable API of Camus, a video chat server in one C file.
 *
 * Usage:
 *     struct camus_config cfg; camus_config_init(&cfg); cfg.port = 8080;
 *     char err[256]; struct camus *srv = camus_new(&cfg, err, sizeof err);
 *     while (srv && camus_poll(srv, -1) == 0) {}  camus_free(srv);
 *
 * Everything runs on the caller's thread: camus_poll() waits for network
 * activity or a timer, handles it and returns.  No other threads are made.
 */
#ifndef CAMUS_H
#define CAMUS_H

#ifdef __cplusplus
extern "C" {
#endif

#define CAMUS_VERSION "0.1.0"
#define CAMUS_MAX_PUBLIC_IPS 8 /* --public-ip entries */
#define CAMUS_MAX_ICE_URLS 8   /* --stun and --turn entries, together */
#define CAMUS_MAX_ALLOWED_HOSTS 8 /* --allowed-hosts entries */
#define CAMUS_MAX_TURN_ALLOW 8    /* --turn-allow entries */
#define CAMUS_ROOM_EXPIRY_NEVER 0xffffffffu /* room_expiry_sec: rooms live until deleted */
#define CAMUS_MAX_METRICS_FROM 8  /* --metrics-from entries */

enum camus_log_level { CAMUS_LOG_ERROR, CAMUS_LOG_WARN, CAMUS_LOG_INFO, CAMUS_LOG_DEBUG };

/* Server settings.  Start from camus_config_init(), which sets every field
 * to its default (given below).  Strings are borrowed: they must outlive the
 * server.  Where zero has no meaning (room_expiry_sec, max_connections,
 * request_timeout_sec, idle_timeout_sec, msg_rate, max_bitrate_kbps) and for a NULL host,
 * camus_new() takes the default; elsewhere zero means what it says (port 0
 * picks a free port, tls 0 is plain HTTP, log_level 0 is CAMUS_LOG_ERROR).
 * Each server logs to stderr at its own log_level. */
struct camus_config {
  const char *host;             /* address to listen on; "0.0.0.0" (default), "::" for IPv6 */
  int port;                     /* HTTP(S) port; 5000 by default, 0 picks a free one */
  int udp_port;                 /* WebRTC UDP port; -1 (default) = same number as port, 0 picks one */
  int tls;                      /* serve HTTPS instead of HTTP */
  const char *cert_file;        /* PEM certificate for HTTPS; NULL = self-signed in state_dir */
  const char *key_file;         /* PEM private key for HTTPS */
  const char *state_dir;        /* where rooms, secrets and the self-signed certificate are kept; "" = nowhere */
  const char *web_dir;          /* serve the web client from this folder instead of the binary */
  const char *public_ips[CAMUS_MAX_PUBLIC_IPS]; /* extra addresses to advertise as candidates */
  int n_public_ips;
  const char *ice_urls[CAMUS_MAX_ICE_URLS];     /* stun:/turn: URLs handed to web clients */
  int n_ice_urls;
  const char *allowed_hosts[CAMUS_MAX_ALLOWED_HOSTS]; /* Host names served ("name" or "name:port"); none = any */
  int n_allowed_hosts;
  enum camus_log_level log_level; /* CAMUS_LOG_INFO by default */
  unsigned room_expiry_sec;     /* an empty room is deleted after this; 3600; CAMUS_ROOM_EXPIRY_NEVER: never */
  unsigned max_connections;     /* concurrent HTTP connections; 1000 (at most 65536) */
  unsigned request_timeout_sec; /* time allowed to send one whole request; 10 */
  unsigned idle_timeout_sec;    /* idle keep-alive connections are closed after this; 60 */
  unsigned msg_rate;            /* messages a second one client may send (bursts of 4 s worth); 50 */
  unsigned max_bitrate_kbps;    /* kbit/s each published video is steered to at most (SFU rooms); 2500 */
  int turn_port_min, turn_port_max; /* the built-in TURN server's relay ports; 49152-49407; 0-0: no TURN */
  const char *turn_secret;      /* of its credentials; NULL = random, kept in state_dir */
  const char *turn_allow[CAMUS_MAX_TURN_ALLOW]; /* CIDR ranges it may relay to that it otherwise would not */
  int n_turn_allow;
  const char *metrics_from[CAMUS_MAX_METRICS_FROM]; /* CIDR ranges that may GET /metrics; none = loopback only */
  int n_metrics_from;
  const char *metrics_token;    /* or a request with "Authorization: Bearer <token>"; NULL = none */
  const char *metrics_addr;     /* "HOST:PORT" of a listener of its own for /metrics and /healthz; NULL = none */
  int small;                    /* lower caps for a device with little memory (see --small in the README) */
  int log_json;                 /* log lines as JSON objects (the process's stderr: the last server's choice) */
};

struct camus;

/* Fills cfg with the defaults. */
void camus_config_init(struct camus_config *cfg);

/* Opens the sockets and prepares everything.  Returns the server, or NULL
 * with a message in err (if err is not NULL).  The caller owns the result
 * and releases it with camus_free(). */
struct camus *camus_new(const struct camus_config *cfg, char *err, unsigned errlen);

/* Waits at most timeout_ms (-1: until something happens) and handles what
 * arrived and every timer that is due.  Returns 0, or -1 once camus_stop()
 * was called (the server is then idle and may be freed). */
int camus_poll(struct camus *srv, int timeout_ms);

/* Asks the server to stop; safe to call from a signal handler. */
void camus_stop(struct camus *srv);

/* Reads the HTTPS certificate and key files again at the next camus_poll()
 * (a renewed certificate), for new connections; safe from a signal handler. */
void camus_reload(struct camus *srv);

/* Closes every socket and frees all memory.  NULL is accepted. */
void camus_free(struct camus *srv);

/* The ports actually bound (useful with port 0). */
int camus_http_port(const struct camus *srv);
int camus_udp_port(const struct camus *srv);

#ifdef __cplusplus
}
#endif
#endif
