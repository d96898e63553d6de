/*
 * loadgen.c — Camus's load generator and benchmark (`make bench`).
 *
 * A WebRTC data channel client written from camus.c's own parts, used in the
 * opposite roles: it writes an SDP offer and reads the answer with the SDP
 * code, runs the controlling side of ICE with the STUN writer and parser,
 * and hands the rest to camus.c's session layer (struct rtc) in the client
 * role: DTLS in whichever role the answer leaves it, the SCTP association,
 * DCEP OPEN for its channel.  It speaks Ground Control's messaging protocol.  Thousands of such clients run
 * on one epoll loop, each from its own UDP socket on its own loopback address
 * (127.1.x.y), so that the server sees them as distinct hosts.
 *
 * `loadgen --server ./camus [--static ./camus-static] [--json FILE]` starts
 * the server itself, drives every phase of the benchmark, reads the server's
 * figures from /proc/<pid>/{stat,status,schedstat}, prints one table and
 * writes the raw results as JSON.
 */
#define CAMUS_NO_MAIN
#include "../camus.c"

#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/utsname.h>
#include <sys/wait.h>

/* ================================================================= CLOCKS =================================================================== */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b) {
  uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
  return x < y ? -1 : x > y;
}

/* The q-quantile (0..1) of n samples, sorted in place; in ms. */
static double quantile_ms(uint64_t *v, size_t n, double q) {
  if (!n) return 0;
  qsort(v, n, sizeof *v, cmp_u64);
  size_t i = (size_t)(q * (double)(n - 1) + 0.5);
  return (double)v[i] / 1e6;
}

/* ================================================================= CLIENTS ================================================================== */

enum cstate { C_IDLE, C_ICE, C_DTLS, C_SCTP, C_OPEN, C_CLOSING, C_FAILED };

struct user {
  int idx, fd;
  enum cstate state;
  bool leaving;
  struct sockaddr_in local;
  char ufrag[9], pwd[25];
  char rufrag[CAMUS_SDP_UFRAG_MAX + 1], rpwd[CAMUS_SDP_UFRAG_MAX + 1];
  uint8_t txid[12];
  struct timer ice_timer;
  int ice_tries;
  struct rtc *rtc;          /* camus.c's session layer, in the client role */
  struct channel *ch;       /* Ground Control's channel, once opened */
  char id[33];
  uint64_t t_post, t_answer, t_ice, t_dtls, t_sctp, t_open, t_pong; /* when each step of the join ended */
  int room;
  /* relay accounting */
  uint64_t got, errors;
};

static struct {
  struct loop loop;
  struct crypto crypto;
  struct rtc_host host;     /* our sessions: the client role of camus.c's session layer */
  int log_level;
  int ep;
  struct sockaddr_in server_udp, server_http;
  struct sockaddr_storage server_udp_ss;
  pid_t pid;
  int log_fd;
  struct user *c;
  int n_clients;
  int rooms_made[2048];
  /* relay measurement */
  uint64_t *lat;
  size_t n_lat, cap_lat;
  int errors_shown;
} lg;

static void client_fail(struct user *c, const char *why) {
  if (c->state == C_FAILED) return;
  if (lg.errors_shown++ < 10) fprintf(stderr, "loadgen: client %d: %s\n", c->idx, why);
  c->state = C_FAILED;
}

/* 127.1.x.y for client i: a distinct loopback host for every thousand clients' worth. */
static void client_addr(int i, struct sockaddr_in *a) {
  int k = i % 4000 + 1;
  memset(a, 0, sizeof *a);
  a->sin_family = AF_INET;
  a->sin_addr.s_addr = htonl(0x7f010000u | (uint32_t)k);
}

/* ================================================================== HTTP ==================================================================== */

/* One blocking request on loopback, from the client's own address.  Returns
 * the status and the body in *body (caller frees), or -1. */
static int http_call(const struct sockaddr_in *from, const char *method, const char *path, const char *json,
                     struct buf *body) {
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  struct sockaddr_in src = *from;
  src.sin_port = 0;
  struct timeval tv = {10, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  if ((from->sin_addr.s_addr && bind(fd, (struct sockaddr *)&src, sizeof src) != 0) ||
      connect(fd, (struct sockaddr *)&lg.server_http, sizeof lg.server_http) != 0) {
    close(fd);
    return -1;
  }
  struct buf req = {0};
  size_t blen = json ? strlen(json) : 0;
  buf_addf(&req, "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n", method, path);
  if (json) buf_addf(&req, "Content-Type: application/json\r\nContent-Length: %zu\r\n", blen);
  buf_adds(&req, "\r\n");
  if (json) buf_add(&req, json, blen);
  bool ok = !req.err && write(fd, req.p, req.len) == (ssize_t)req.len;
  buf_free(&req);
  struct buf in = {0};
  char tmp[8192];
  ssize_t n;
  while (ok && (n = read(fd, tmp, sizeof tmp)) > 0) buf_add(&in, tmp, (size_t)n);
  close(fd);
  int status = -1;
  const char *sep = in.p ? memmem(in.p, in.len, "\r\n\r\n", 4) : NULL;
  if (ok && !in.err && sep && in.len > 12 && !memcmp(in.p, "HTTP/1.1 ", 9)) {
    status = atoi(in.p + 9);
    size_t off = (size_t)(sep + 4 - in.p);
    buf_add(body, in.p + off, in.len - off);
  }
  buf_free(&in);
  return status;
}

static int room_ensure(int room) {
  if (room < (int)COUNT(lg.rooms_made) && lg.rooms_made[room]) return 0;
  struct sockaddr_in from;
  client_addr(room, &from);
  char json[96];
  snprintf(json, sizeof json, "{\"name\":\"bench-%d\"}", room);
  struct buf body = {0};
  int st = http_call(&from, "POST", "/api/rooms", json, &body);
  buf_free(&body);
  if (st != 201 && st != 200 && st != 409) {
    fprintf(stderr, "loadgen: creating room bench-%d: HTTP %d\n", room, st);
    return -1;
  }
  if (room < (int)COUNT(lg.rooms_made)) lg.rooms_made[room] = 1;
  return 0;
}

/* =================================================================== ICE ==================================================================== */

static void ice_check(struct user *c) {
  uint8_t out[512], tb[8], flag = 0;
  struct stun_writer w = {out, sizeof out, 0, false};
  char user[2 * CAMUS_SDP_UFRAG_MAX + 2];
  random_bytes(&lg.crypto, c->txid, sizeof c->txid);
  random_bytes(&lg.crypto, tb, sizeof tb);
  int ul = snprintf(user, sizeof user, "%s:%s", c->rufrag, c->ufrag);
  stun_begin(&w, STUN_BINDING_REQUEST, c->txid);
  stun_attr(&w, STUN_A_USERNAME, user, (uint16_t)ul);
  stun_attr_u32(&w, STUN_A_PRIORITY, 0x6e001eff);
  stun_attr(&w, STUN_A_ICE_CONTROLLING, tb, 8);
  stun_attr(&w, STUN_A_USE_CANDIDATE, &flag, 0);
  stun_integrity(&w, c->rpwd, strlen(c->rpwd));
  stun_fingerprint(&w);
  if (!w.err) sendto(c->fd, out, w.len, 0, (struct sockaddr *)&lg.server_udp, sizeof lg.server_udp);
}

/* Checks are repeated every 50 ms until one succeeds, then every 5 s or so
 * for consent freshness, as browsers do. */
static void ice_timeout(struct timer *t) {
  struct user *c = CONTAINER(t, struct user, ice_timer);
  if (c->state == C_FAILED || c->state == C_CLOSING) return;
  if (c->state == C_ICE && ++c->ice_tries > 100) {
    client_fail(c, "no answer to STUN checks");
    return;
  }
  ice_check(c);
  uint8_t r;
  random_bytes(&lg.crypto, &r, 1);
  timer_in(&lg.loop, &c->ice_timer, c->state == C_ICE ? 50 : 4000 + 8u * r);
}

/* ICE is done: the session takes over, towards the server's address. */
static void ice_done(struct user *c) {
  c->t_ice = now_ns();
  c->state = C_DTLS;
  rtc_connected(c->rtc, &lg.server_udp_ss);
}

static void stun_answer(struct user *c, const uint8_t *p, size_t n) {
  struct stun_msg m;
  if (stun_parse(p, n, &m) != 0 || m.type != STUN_BINDING_SUCCESS || memcmp(m.txid, c->txid, 12) != 0) return;
  if (!m.integrity_at || !stun_integrity_ok(p, n, &m, c->rpwd, strlen(c->rpwd))) {
    client_fail(c, "STUN response without valid integrity");
    return;
  }
  c->rtc->last_seen = lg.loop.now; /* consent (RFC 7675): the server answers our checks */
  if (c->state == C_ICE) ice_done(c);
}

/* ============================================================ SESSION CALLBACKS ============================================================= */

static int lg_text(struct user *c, const char *s) {
  return c->ch && c->rtc ? rtc_send(c->rtc, c->ch, PPID_STRING, s, strlen(s)) : -1;
}

static void lg_message(struct user *c, const char *s, size_t n);

/* A datagram of one of our sessions: from that client's own socket. */
static void lg_rtc_send(void *ctx, struct rtc *r, const void *data, size_t n, const struct sockaddr_storage *to) {
  (void)ctx;
  struct user *c = r->user;
  if (c->fd >= 0) sendto(c->fd, data, n, 0, (const struct sockaddr *)to, addr_len(to));
}

/* The association is up (ch NULL): our channel opens; its ACK (ch): we talk. */
static void lg_rtc_open(void *ctx, struct rtc *r, struct channel *ch) {
  (void)ctx;
  struct user *c = r->user;
  if (!ch) {
    c->t_sctp = now_ns();
    c->state = C_SCTP;
    if (!rtc_channel_open(r, r->dtls_server ? 1 : 0, "ground-control")) client_fail(c, "DCEP OPEN failed");
    return;
  }
  c->ch = ch;
  c->state = C_OPEN;
  c->t_open = now_ns();
  lg_text(c, "{\"receiver\":\"ground control\",\"type\":\"ping\",\"data\":1}");
}

static void lg_rtc_message(void *ctx, struct rtc *r, struct channel *ch, const uint8_t *data, size_t n, bool binary) {
  (void)ctx, (void)ch;
  if (!binary) lg_message(r->user, (const char *)data, n);
}

static void lg_rtc_close(void *ctx, struct rtc *r) {
  (void)ctx;
  struct user *c = r->user;
  c->rtc = NULL;
  c->ch = NULL;
  if (c->state != C_CLOSING) client_fail(c, "session closed");
}

/* ================================================================ MESSAGES ================================================================== */

static void lg_message(struct user *c, const char *s, size_t n) {
  struct json_tok t[64];
  char type[32], receiver[40];
  if (json_parse(s, n, t, (int)COUNT(t)) < 0 || t[0].type != JSON_OBJECT) return;
  int it = json_find(s, t, 0, "type"), ir = json_find(s, t, 0, "receiver"), id = json_find(s, t, 0, "data");
  if (it < 0 || json_str(s, t, it, type, sizeof type) < 0) return;
  if (!strcmp(type, "greeting")) {
    if (ir >= 0 && json_str(s, t, ir, receiver, sizeof receiver) == 32) memcpy(c->id, receiver, 33);
  } else if (!strcmp(type, "pong")) {
    if (!c->t_pong) c->t_pong = now_ns();
  } else if (!strcmp(type, "ping")) {
    lg_text(c, "{\"receiver\":\"ground control\",\"type\":\"pong\",\"data\":null}");
  } else if (!strcmp(type, "bench")) {
    long long sent;
    int ts = id >= 0 ? json_find(s, t, id, "t") : -1;
    if (ts >= 0 && json_int(s, t, ts, &sent)) {
      uint64_t d = now_ns() - (uint64_t)sent;
      if (lg.n_lat < lg.cap_lat) lg.lat[lg.n_lat++] = d;
    }
    c->got++;
  } else if (!strcmp(type, "error")) {
    c->errors++;
    if (lg.errors_shown++ < 10) fprintf(stderr, "loadgen: client %d got an error: %.*s\n", c->idx, (int)n, s);
  }
}

/* ================================================================= JOINING ================================================================== */

static int client_join(struct user *c) {
  static const char ice_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t rnd[32];
  char fp[96], path[64];
  int idx = c->idx, room = c->room;
  *c = (struct user){.idx = idx, .room = room, .fd = -1};
  c->ice_timer.fn = ice_timeout;
  client_addr(idx, &c->local);
  c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (c->fd < 0 || bind(c->fd, (struct sockaddr *)&c->local, sizeof c->local) != 0) {
    client_fail(c, strerror(errno));
    return -1;
  }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(lg.ep, EPOLL_CTL_ADD, c->fd, &ev);
  random_bytes(&lg.crypto, rnd, sizeof rnd);
  for (int i = 0; i < 8; i++) c->ufrag[i] = ice_chars[rnd[i] & 63];
  for (int i = 0; i < 24; i++) c->pwd[i] = ice_chars[rnd[8 + i] & 63];
  fingerprint_text(lg.host.id.fingerprint, fp);
  struct buf offer = {0}, req = {0}, body = {0};
  buf_addf(&offer,
           "v=0\r\no=- %d 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0\r\n"
           "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
           "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\na=fingerprint:sha-256 %s\r\n"
           "a=setup:actpass\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n",
           idx, c->ufrag, c->pwd, fp);
  buf_adds(&req, "{\"type\":\"offer\",\"sdp\":");
  json_write_str(&req, offer.p, offer.len);
  buf_adds(&req, "}");
  snprintf(path, sizeof path, "/rtc/bench-%d/offer", c->room);
  c->t_post = now_ns();
  c->state = C_ICE;
  int st = req.err ? -1 : http_call(&c->local, "POST", path, req.p, &body);
  c->t_answer = now_ns();
  buf_free(&offer);
  buf_free(&req);
  struct json_tok t[16];
  char *sdp = malloc(CAMUS_SDP_MAX + 1);
  int n = -1, is;
  if (st == 200 && sdp && json_parse(body.p, body.len, t, (int)COUNT(t)) > 0 &&
      (is = json_find(body.p, t, 0, "sdp")) >= 0)
    n = json_str(body.p, t, is, sdp, CAMUS_SDP_MAX + 1);
  struct sdp_offer *a = malloc(sizeof *a);
  const char *err = "bad answer";
  int rc = -1;
  if (n > 0 && a && sdp_parse_offer(sdp, (size_t)n, a, &err) == 0 && a->setup != SDP_SETUP_ACTPASS) {
    snprintf(c->rufrag, sizeof c->rufrag, "%s", a->ufrag);
    snprintf(c->rpwd, sizeof c->rpwd, "%s", a->pwd);
    const struct sdp_media *m = &a->m[a->data_index];
    struct rtc_params prm = {a->ufrag, a->pwd, a->fingerprint, a->setup == SDP_SETUP_ACTIVE, (uint16_t)m->sctp_port,
                             m->max_message_size, NULL};
    c->rtc = rtc_new(&lg.host, &prm, c);
    rc = c->rtc ? 0 : -1;
    err = "no session";
  } else if (st != 200) {
    char msg[160];
    snprintf(msg, sizeof msg, "POST %s: HTTP %d %.*s", path, st, (int)MIN(body.len, 100), body.p ? body.p : "");
    client_fail(c, msg);
  }
  free(sdp);
  free(a);
  buf_free(&body);
  if (rc != 0) {
    client_fail(c, err);
    return -1;
  }
  ice_check(c);
  timer_in(&lg.loop, &c->ice_timer, 50);
  return 0;
}

/* Says bye, closes the association and frees everything of the client. */
static void client_leave(struct user *c, bool bye) {
  if (bye && c->state == C_OPEN) lg_text(c, "{\"receiver\":\"ground control\",\"type\":\"bye\",\"data\":null}");
  c->state = C_CLOSING;
  timer_stop(&lg.loop, &c->ice_timer);
  if (c->rtc) {
    rtc_close(c->rtc, "leaving");
    rtc_reap(&lg.host); /* its close_notify leaves through the socket before it closes */
  }
  if (c->fd >= 0) {
    epoll_ctl(lg.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
}

/* ================================================================== LOOP ==================================================================== */

static void client_readable(struct user *c) {
  static uint8_t data[2048];
  for (int i = 0; i < 64 && c->fd >= 0; i++) {
    ssize_t n = recv(c->fd, data, sizeof data, 0);
    if (n <= 0) return;
    if (data[0] <= 3) {
      stun_answer(c, data, (size_t)n);
    } else if (data[0] >= 20 && data[0] <= 63 && c->rtc && c->state >= C_ICE && c->state <= C_OPEN) {
      if (c->state == C_ICE) ice_done(c); /* the server's ClientHello overtook its STUN answer */
      dtls_input(c->rtc, data, (size_t)n, &lg.server_udp_ss);
      if (c->rtc && c->rtc->dtls_up && !c->t_dtls) c->t_dtls = now_ns();
    }
  }
}

static void drain_log(void) {
  char tmp[4096];
  ssize_t n;
  while ((n = read(lg.log_fd, tmp, sizeof tmp)) > 0) {
    if (getenv("LOADGEN_SHOW_LOG")) fwrite(tmp, 1, (size_t)n, stderr);
  }
}

/* One turn of the loop: waits at most max_ms. */
static void lg_poll(int max_ms) {
  struct epoll_event ev[256];
  lg.loop.now = mono_ms();
  int n = epoll_wait(lg.ep, ev, (int)COUNT(ev), timers_timeout(&lg.loop, max_ms));
  lg.loop.now = mono_ms();
  for (int i = 0; i < n; i++) {
    if (ev[i].data.ptr == &lg.log_fd)
      drain_log();
    else
      client_readable(ev[i].data.ptr);
  }
  timers_run(&lg.loop);
  rtc_reap(&lg.host);
}

static void lg_wait_ms(int ms) {
  uint64_t end = mono_ms() + (uint64_t)ms;
  while (mono_ms() < end) lg_poll((int)(end - mono_ms()));
}

/* ========================================================== THE SERVER'S FIGURES ============================================================ */

static long proc_status_kb(pid_t pid, const char *key) {
  char path[64], line[256];
  snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
  FILE *f = fopen(path, "r");
  long v = -1;
  size_t kl = strlen(key);
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl) && line[kl] == ':') v = atol(line + kl + 1);
  if (f) fclose(f);
  return v;
}

static long rss_kb(void) { return proc_status_kb(lg.pid, "VmRSS"); }

/* Times the server was woken: its voluntary and involuntary context switches. */
static long wakeups(void) {
  return proc_status_kb(lg.pid, "voluntary_ctxt_switches") + proc_status_kb(lg.pid, "nonvoluntary_ctxt_switches");
}

/* CPU time the server used, ns: schedstat's run time, else utime + stime from stat. */
static uint64_t cpu_ns(void) {
  char path[64], line[1024];
  unsigned long long run = 0;
  snprintf(path, sizeof path, "/proc/%d/schedstat", (int)lg.pid);
  FILE *f = fopen(path, "r");
  if (f) {
    int ok = fscanf(f, "%llu", &run);
    fclose(f);
    if (ok == 1 && run) return run;
  }
  snprintf(path, sizeof path, "/proc/%d/stat", (int)lg.pid);
  f = fopen(path, "r");
  unsigned long ut = 0, st = 0;
  if (f && fgets(line, sizeof line, f)) {
    const char *p = strrchr(line, ')');
    if (p) sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &ut, &st);
  }
  if (f) fclose(f);
  return (uint64_t)(ut + st) * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* ================================================================== PHASES ================================================================== */

static int free_port(int type) {
  struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  int fd = socket(AF_INET, type, 0);
  socklen_t l = sizeof a;
  if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) != 0 || getsockname(fd, (struct sockaddr *)&a, &l) != 0)
    return -1;
  close(fd);
  return ntohs(a.sin_port);
}

/* Starts the server on 127.0.0.1:port with its stderr on a pipe (or /dev/null). */
static pid_t server_spawn(const char *bin, int port, int udp_port, int *log_fd, const char *const *extra) {
  int pfd[2] = {-1, -1};
  if (log_fd && pipe2(pfd, O_CLOEXEC) != 0) return -1;
  char ps[16], us[16];
  snprintf(ps, sizeof ps, "%d", port);
  snprintf(us, sizeof us, "%d", udp_port);
  const char *argv[32] = {bin, "--host", "127.0.0.1", "--port", ps, "--udp-port", us, "--log-level", "warn"};
  int ac = 9;
  for (int i = 0; extra && extra[i] && ac < 30; i++) argv[ac++] = extra[i];
  argv[ac] = NULL;
  pid_t pid = fork();
  if (pid == 0) {
    int fd = log_fd ? pfd[1] : open("/dev/null", O_WRONLY);
    dup2(fd, 2);
    execv(bin, (char *const *)argv);
    _exit(127);
  }
  if (log_fd) {
    close(pfd[1]);
    *log_fd = pfd[0];
  }
  return pid;
}

static void server_stop(pid_t pid) {
  if (pid <= 0) return;
  kill(pid, SIGTERM);
  for (int i = 0; i < 500; i++) {
    if (waitpid(pid, NULL, WNOHANG) == pid) return;
    usleep(10000);
  }
  kill(pid, SIGKILL);
  waitpid(pid, NULL, 0);
}

/* ms from fork+exec until the server answered GET /api/config; the median of runs. */
static double startup_ms(const char *bin, int runs) {
  uint64_t v[32];
  int n = 0;
  for (int r = 0; r < runs && r < 32; r++) {
    int port = free_port(SOCK_STREAM);
    lg.server_http = (struct sockaddr_in){
        .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    uint64_t t0 = now_ns();
    pid_t pid = server_spawn(bin, port, 0, NULL, NULL);
    struct sockaddr_in none = {0};
    for (int i = 0; i < 20000; i++) {
      struct buf body = {0};
      int st = http_call(&none, "GET", "/api/config", NULL, &body);
      buf_free(&body);
      if (st == 200) {
        v[n++] = now_ns() - t0;
        break;
      }
      usleep(100);
    }
    server_stop(pid);
  }
  return quantile_ms(v, (size_t)n, 0.5);
}

static long file_size(const char *path) {
  struct stat st;
  return path && stat(path, &st) == 0 ? (long)st.st_size : -1;
}

/* Joins clients [from, to) with at most `parallel` joining at once; waits
 * for each one's first pong.  Returns how many joined. */
static int join_range(int from, int to, int parallel, int per_room) {
  int next = from, done = 0, failed = 0, busy = 0;
  uint64_t deadline = mono_ms() + 60000 + 100 * (uint64_t)(to - from);
  while ((done + failed) < to - from && mono_ms() < deadline) {
    while (busy < parallel && next < to) {
      struct user *c = &lg.c[next];
      c->idx = next;
      c->room = next / per_room;
      if (room_ensure(c->room) != 0 || client_join(c) != 0) {
        failed++;
        next++;
        continue;
      }
      busy++;
      next++;
    }
    lg_poll(5);
    busy = 0;
    done = failed = 0;
    for (int i = from; i < next; i++) {
      struct user *c = &lg.c[i];
      if (c->state == C_FAILED)
        failed++;
      else if (c->t_pong)
        done++;
      else if (now_ns() - c->t_post > 20000000000ull)
        client_fail(c, "not joined after 20 s"), failed++;
      else
        busy++;
    }
  }
  if (failed || done + failed < to - from)
    fprintf(stderr, "loadgen: %d of %d joins failed, %d unfinished\n", failed, to - from, to - from - done - failed);
  return done;
}

/* Clients the server counts in its rooms (GET /api/rooms), or -1. */
static long server_clients(void) {
  struct sockaddr_in none = {0};
  struct buf body = {0};
  static struct json_tok t[65536];
  long sum = -1;
  int n;
  if (http_call(&none, "GET", "/api/rooms", NULL, &body) == 200 &&
      (n = json_parse(body.p, body.len, t, (int)COUNT(t))) > 0 && t[0].type == JSON_ARRAY) {
    sum = 0;
    for (int i = 1; i < n; i = (int)t[i].end) {
      long long v;
      int k = json_find(body.p, t, i, "clients");
      if (k >= 0 && json_int(body.p, t, k, &v)) sum += (long)v;
    }
  }
  buf_free(&body);
  return sum;
}

/* Clients say bye and go; the server must count none of them a moment later. */
static void leave_range(int from, int to) {
  for (int i = from; i < to; i++) {
    if (lg.c[i].fd >= 0 || lg.c[i].rtc) client_leave(&lg.c[i], true);
    if ((i - from) % 50 == 49) lg_wait_ms(10); /* 5,000 goodbyes at once would overflow a UDP buffer */
  }
  for (int i = 0; i < 50; i++) {
    lg_wait_ms(100);
    if (server_clients() == 0) return;
  }
  fprintf(stderr, "loadgen: the server still counts %ld clients 5 s after they left\n", server_clients());
}

struct relay_result {
  double per_sec, cpu_ms_per_1000, lat_p50, lat_p95;
  uint64_t sent, got;
};

/* a sends n messages to `to` (B's id, or "room"), keeping at most `window`
 * on the way; b counts them. */
static struct relay_result relay(struct user *a, struct user *b, const char *to, int n, int window) {
  struct relay_result r = {0};
  char msg[256];
  lg.n_lat = 0;
  b->got = 0;
  uint64_t cpu0 = cpu_ns(), t0 = now_ns(), deadline = mono_ms() + 60000;
  while ((int)b->got < n && mono_ms() < deadline) {
    while (r.sent < (uint64_t)n && r.sent - b->got < (uint64_t)window) {
      snprintf(msg, sizeof msg, "{\"receiver\":\"%s\",\"type\":\"bench\",\"data\":{\"t\":%llu,\"text\":\"hello\"}}", to,
               (unsigned long long)now_ns());
      if (lg_text(a, msg) != 0) break;
      r.sent++;
    }
    lg_poll(1);
  }
  uint64_t dt = now_ns() - t0, dcpu = cpu_ns() - cpu0;
  r.got = b->got;
  r.per_sec = (double)b->got / ((double)dt / 1e9);
  r.cpu_ms_per_1000 = b->got ? (double)dcpu / 1e6 / ((double)b->got / 1000.0) : 0;
  r.lat_p50 = quantile_ms(lg.lat, lg.n_lat, 0.5);
  r.lat_p95 = quantile_ms(lg.lat, lg.n_lat, 0.95);
  return r;
}

/* ================================================================== REPORT ================================================================== */

struct figure {
  const char *key, *label, *unit, *target;
  double value;
  int ok; /* 1 met, 0 missed, -1 no target */
};

static struct figure figs[64];
static int n_figs;

static void fig(const char *key, const char *label, double v, const char *unit, const char *target, int ok) {
  if (n_figs < (int)COUNT(figs)) figs[n_figs++] = (struct figure){key, label, unit, target, v, ok};
}

static void report(const char *json_path, const char *machine) {
  printf("\n%-58s %14s  %-10s %s\n", "Camus benchmark", "value", "unit", "target");
  for (int i = 0; i < n_figs; i++) {
    const struct figure *f = &figs[i];
    printf("%-58s %14.*f  %-10s %s%s\n", f->label, f->value >= 100 || f->value == (long)f->value ? 0 : 2, f->value,
           f->unit, f->target ? f->target : "",
           f->ok == 1   ? "  met"
           : f->ok == 0 ? "  MISSED"
                        : "");
  }
  printf("machine: %s\n", machine);
  if (!json_path) return;
  FILE *j = fopen(json_path, "w");
  if (!j) {
    fprintf(stderr, "loadgen: cannot write %s: %s\n", json_path, strerror(errno));
    return;
  }
  struct buf b = {0};
  buf_adds(&b, "{\"machine\":");
  json_write_str(&b, machine, strlen(machine));
  buf_adds(&b, ",\"figures\":{");
  for (int i = 0; i < n_figs; i++) {
    buf_addf(&b, "%s\n  \"%s\":{\"value\":%.4f,\"unit\":\"%s\"", i ? "," : "", figs[i].key, figs[i].value,
             figs[i].unit);
    if (figs[i].target) buf_addf(&b, ",\"target\":\"%s\",\"met\":%s", figs[i].target, figs[i].ok ? "true" : "false");
    buf_adds(&b, "}");
  }
  buf_adds(&b, "\n}}\n");
  fwrite(b.p, 1, b.len, j);
  fclose(j);
  buf_free(&b);
  printf("raw results: %s\n", json_path);
}

static void machine_name(char *out, size_t cap) {
  char model[256] = "unknown CPU", line[512];
  FILE *f = fopen("/proc/cpuinfo", "r");
  while (f && fgets(line, sizeof line, f))
    if (!strncmp(line, "model name", 10) && strchr(line, ':')) {
      snprintf(model, sizeof model, "%s", strchr(line, ':') + 2);
      model[strcspn(model, "\n")] = 0;
      break;
    }
  if (f) fclose(f);
  struct utsname u;
  uname(&u);
  snprintf(out, cap, "%ld cores, %s, Linux %s %s", sysconf(_SC_NPROCESSORS_ONLN), model, u.release, u.machine);
}

/* =================================================================== MAIN =================================================================== */

static void usage(void) {
  fprintf(stderr, "usage: loadgen --server BIN [--static BIN] [--json FILE] [--clients N] [--joins N] [--churn N]\n"
                  "               [--phases startup,levels,relay,churn]\n");
  exit(2);
}

int main(int argc, char **argv) {
  const char *bin = NULL, *static_bin = NULL, *json_path = NULL, *phases = "startup,levels,relay,churn";
  int max_clients = 5000, n_joins = 200, churn = 1000;
  for (int i = 1; i < argc; i++) {
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(argv[i], "--server") && v)
      bin = argv[++i];
    else if (!strcmp(argv[i], "--static") && v)
      static_bin = argv[++i];
    else if (!strcmp(argv[i], "--json") && v)
      json_path = argv[++i];
    else if (!strcmp(argv[i], "--clients") && v)
      max_clients = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--joins") && v)
      n_joins = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--churn") && v)
      churn = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--phases") && v)
      phases = argv[++i];
    else
      usage();
  }
  if (!bin || max_clients < 100 || n_joins < 1 || churn < 1) usage();
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < (rlim_t)max_clients + 512) {
    rl.rlim_cur = rl.rlim_max < (rlim_t)max_clients + 512 ? rl.rlim_max : (rlim_t)max_clients + 512;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
  char machine[512];
  machine_name(machine, sizeof machine);

  /* Our side: camus.c's session layer in the client role, with its certificate and DTLS settings. */
  lg.loop.now = mono_ms();
  if (crypto_init(&lg.crypto) != 0 || rtc_host_init(&lg.host, &lg.loop, &lg.crypto, CAMUS_LOG_ERROR) != 0 ||
      rtc_host_ready(&lg.host) != 0) {
    fprintf(stderr, "loadgen: DTLS setup failed\n");
    return 1;
  }
  lg.host.send = lg_rtc_send;
  lg.host.on_open = lg_rtc_open;
  lg.host.on_message = lg_rtc_message;
  lg.host.on_close = lg_rtc_close;
  lg.ep = epoll_create1(EPOLL_CLOEXEC);
  int total = max_clients + n_joins + 2;
  lg.c = calloc((size_t)(total > churn ? total : churn), sizeof *lg.c);
  lg.cap_lat = 100000;
  lg.lat = calloc(lg.cap_lat, sizeof *lg.lat);
  for (int i = 0; i < total; i++) lg.c[i].fd = -1;

  /* Sizes and start-up. */
  if (strstr(phases, "startup")) {
    fig("binary_bytes", "binary size, make (with debug information)", (double)file_size(bin), "bytes", NULL, -1);
    char cmd[600];
    snprintf(cmd, sizeof cmd, "strip -o test/out/camus-stripped '%s' 2>/dev/null", bin);
    if (system(cmd) == 0)
      fig("binary_stripped_bytes", "binary size, make, stripped", (double)file_size("test/out/camus-stripped"), "bytes",
          NULL, -1);
    if (static_bin) {
      long sz = file_size(static_bin);
      fig("static_bytes", "binary size, make static (stripped)", (double)sz, "bytes", "<= 2621440", sz <= 2621440);
    }
    fig("startup_ms", "exec to first HTTP answer, make", startup_ms(bin, 20), "ms", NULL, -1);
    if (static_bin)
      fig("startup_static_ms", "exec to first HTTP answer, make static", startup_ms(static_bin, 20), "ms", NULL, -1);
    if (static_bin) {
      int port = free_port(SOCK_STREAM);
      lg.server_http.sin_port = htons((uint16_t)port);
      lg.pid = server_spawn(static_bin, port, 0, NULL, NULL);
      usleep(500000);
      long r = rss_kb();
      fig("idle_rss_static_kb", "idle RSS, make static", (double)r, "KiB", "<= 2048", r <= 2048);
      server_stop(lg.pid);
    }
  }

  /* The server under load: the dynamic build, relay rate limit lifted for the relay figures. */
  int port = free_port(SOCK_STREAM), uport = free_port(SOCK_DGRAM);
  lg.server_http = (struct sockaddr_in){
      .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  lg.server_udp = lg.server_http;
  lg.server_udp.sin_port = htons((uint16_t)uport);
  memcpy(&lg.server_udp_ss, &lg.server_udp, sizeof lg.server_udp);
  static const char *const extra[] = {"--msg-rate", "10000000", "--max-connections", "4000", NULL};
  lg.pid = server_spawn(bin, port, uport, &lg.log_fd, extra);
  fcntl(lg.log_fd, F_SETFL, O_NONBLOCK);
  struct epoll_event lev = {.events = EPOLLIN, .data.ptr = &lg.log_fd};
  epoll_ctl(lg.ep, EPOLL_CTL_ADD, lg.log_fd, &lev);
  struct sockaddr_in none = {0};
  for (int i = 0; i < 500; i++) {
    struct buf body = {0};
    int st = http_call(&none, "GET", "/api/config", NULL, &body);
    buf_free(&body);
    if (st == 200) break;
    usleep(10000);
  }
  lg_wait_ms(1000);
  long rss_idle = rss_kb();
  fig("idle_rss_kb", "idle RSS, make (shared libraries count)", (double)rss_idle, "KiB", NULL, -1);
  long w0 = wakeups();
  lg_wait_ms(5000);
  double idle_wakeups = (double)(wakeups() - w0) / 5.0;
  fig("idle_wakeups_per_s", "wake-ups per second, no clients", idle_wakeups, "/s", "0", idle_wakeups < 0.5);

  /* Joins held, one at a time for the first n_joins (their latency and CPU
   * cost), then 32 at once, up to max_clients; RSS at each level. */
  static const int levels[] = {100, 1000, 5000};
  long prev_rss = rss_idle;
  int prev_n = 0, joined = 0;
  uint64_t cpu_join = 0;
  for (size_t k = 0; k < COUNT(levels) && prev_n < max_clients && strstr(phases, "levels"); k++) {
    int n = levels[k] > max_clients ? max_clients : levels[k];
    for (int i = prev_n; i < n; i++) {
      bool one = i < n_joins;
      uint64_t c0 = one ? cpu_ns() : 0;
      joined += join_range(i, one ? i + 1 : n, one ? 1 : 32, 10);
      if (!one) break;
      cpu_join += cpu_ns() - c0; /* the server's CPU from the POST to the first pong */
    }
    lg_wait_ms(3000);
    long r = rss_kb();
    char key[64], label[96];
    int held = 0;
    for (int i = 0; i < n; i++) held += lg.c[i].state == C_OPEN;
    snprintf(key, sizeof key, "rss_%d_kb", n);
    snprintf(label, sizeof label, "RSS with %d idle clients (%d held)", n, held);
    fig(strdup(key), strdup(label), (double)r, "KiB", NULL, -1);
    snprintf(key, sizeof key, "per_client_%d_kb", n);
    snprintf(label, sizeof label, "  per client, from %d to %d clients", prev_n, n);
    double per = (double)(r - prev_rss) / (n - prev_n);
    fig(strdup(key), strdup(label), per, "KiB", "<= 64", per <= 64);
    if (n == 100 || n == 1000) {
      long w = wakeups();
      lg_wait_ms(10000);
      snprintf(key, sizeof key, "wakeups_%d_per_s", n);
      snprintf(label, sizeof label, "wake-ups per second, %d idle clients", n);
      fig(strdup(key), strdup(label), (double)(wakeups() - w) / 10.0, "/s", NULL, -1);
    }
    prev_rss = r, prev_n = n;
  }
  if (joined != prev_n) fprintf(stderr, "loadgen: %d of %d clients joined\n", joined, prev_n);

  /* The join figures of the one-at-a-time joins. */
  int nj = n_joins < prev_n ? n_joins : prev_n;
  uint64_t *step[7];
  static const char *const step_key[7] = {"answer", "ice", "dtls", "sctp", "open", "pong", NULL};
  size_t no = 0;
  for (int k = 0; k < 6; k++) step[k] = calloc((size_t)nj + 1, sizeof *step[k]);
  for (int i = 0; i < nj; i++) {
    struct user *c = &lg.c[i];
    if (!c->t_pong || !c->t_open || !c->t_sctp || !c->t_dtls || !c->t_ice) continue;
    uint64_t t[6] = {c->t_answer, c->t_ice, c->t_dtls, c->t_sctp, c->t_open, c->t_pong};
    for (int k = 0; k < 6; k++) step[k][no] = t[k] - (k ? t[k - 1] : c->t_post);
    no++;
  }
  uint64_t *open = calloc(no + 1, sizeof *open), *pong = calloc(no + 1, sizeof *pong);
  for (size_t i = 0, m = 0; i < (size_t)nj && m < no; i++) {
    struct user *c = &lg.c[i];
    if (!c->t_pong || !c->t_open || !c->t_sctp || !c->t_dtls || !c->t_ice) continue;
    open[m] = c->t_open - c->t_post;
    pong[m++] = c->t_pong - c->t_post;
  }
  fig("joins", "joins measured (one at a time)", (double)no, "", ">= 200", no >= 200);
  double open50 = quantile_ms(open, no, 0.5);
  fig("join_open_p50_ms", "join: POST to channel open, median", open50, "ms", "<= 3", open50 <= 3);
  fig("join_open_p95_ms", "join: POST to channel open, p95", quantile_ms(open, no, 0.95), "ms", NULL, -1);
  fig("join_pong_p50_ms", "join: POST to first pong, median", quantile_ms(pong, no, 0.5), "ms", NULL, -1);
  fig("join_pong_p95_ms", "join: POST to first pong, p95", quantile_ms(pong, no, 0.95), "ms", NULL, -1);
  for (int k = 0; step_key[k]; k++) {
    char key[64], label[96];
    snprintf(key, sizeof key, "join_step_%s_p50_ms", step_key[k]);
    snprintf(label, sizeof label, "  of which %s, median",
             k == 0   ? "HTTP offer/answer"
             : k == 1 ? "ICE check"
             : k == 2 ? "DTLS handshake"
             : k == 3 ? "SCTP association"
             : k == 4 ? "DCEP open/ack"
                      : "ping/pong");
    fig(strdup(key), strdup(label), quantile_ms(step[k], no, 0.5), "ms", NULL, -1);
    free(step[k]);
  }
  fig("join_cpu_ms", "server CPU per join", nj ? (double)cpu_join / 1e6 / nj : 0, "ms", NULL, -1);
  free(open);
  free(pong);
  leave_range(0, prev_n);
  lg_wait_ms(3000);
  fig("rss_after_all_left_kb", "RSS after every client left", (double)rss_kb(), "KiB", NULL, -1);

  /* Relay between two clients of one room. */
  struct user *a = &lg.c[0], *b = &lg.c[1];
  a->room = b->room = 1999;
  if (strstr(phases, "relay") && join_range(0, 2, 2, 100000) == 2) {
    struct relay_result d = relay(a, b, b->id, 1000, 1), r;
    struct relay_result dl = relay(a, b, b->id, 20000, 64);
    fig("direct_lat_p50_ms", "direct message one-way latency, median", d.lat_p50, "ms", NULL, -1);
    fig("direct_lat_p95_ms", "direct message one-way latency, p95", d.lat_p95, "ms", NULL, -1);
    fig("direct_per_s", "direct messages per second through the server", dl.per_sec, "msg/s", NULL, -1);
    fig("direct_cpu_ms_per_1000", "server CPU per 1,000 direct messages", dl.cpu_ms_per_1000, "ms", "<= 5",
        dl.cpu_ms_per_1000 <= 5);
    d = relay(a, b, "room", 1000, 1);
    r = relay(a, b, "room", 20000, 64);
    fig("room_lat_p50_ms", "room message one-way latency, median", d.lat_p50, "ms", NULL, -1);
    fig("room_lat_p95_ms", "room message one-way latency, p95", d.lat_p95, "ms", NULL, -1);
    fig("room_per_s", "room messages per second through the server", r.per_sec, "msg/s", NULL, -1);
    fig("room_cpu_ms_per_1000", "server CPU per 1,000 room messages (2 members)", r.cpu_ms_per_1000, "ms", "<= 5",
        r.cpu_ms_per_1000 <= 5);
  }
  leave_range(0, 2);
  lg_wait_ms(2000);

  /* Join and leave, cycle after cycle.  The server's heap settles after about a minute of this
   * (usrsctp keeps each closed association's verification tag for 60 s, and the allocator's free
   * lists fill); from then on a cycle must not grow it. */
  enum { CYCLES = 12 };
  long rss_cycle[CYCLES + 1] = {rss_kb()};
  for (int cyc = 1; cyc <= CYCLES && strstr(phases, "churn"); cyc++) {
    int ok = join_range(0, churn, 32, 10);
    leave_range(0, churn);
    lg_wait_ms(2000);
    rss_cycle[cyc] = rss_kb();
    if (ok != churn) fprintf(stderr, "loadgen: cycle %d: %d of %d joined\n", cyc, ok, churn);
  }
  if (strstr(phases, "churn")) {
    char series[512] = "";
    for (int cyc = 0; cyc <= CYCLES; cyc++)
      snprintf(series + strlen(series), sizeof series - strlen(series), "%s%ld", cyc ? " " : "", rss_cycle[cyc]);
    printf("RSS (KiB) before and after each of %d cycles of %d joins and leaves: %s\n", CYCLES, churn, series);
    fig("rss_after_cycle1_kb", "RSS after the first cycle of joins and leaves", (double)rss_cycle[1], "KiB", NULL, -1);
    fig("rss_after_last_cycle_kb", "RSS after the twelfth cycle", (double)rss_cycle[CYCLES], "KiB", NULL, -1);
    double growth = (double)(rss_cycle[CYCLES] - rss_cycle[CYCLES - 3]) / 3;
    fig("churn_growth_kb", "growth per cycle over the last three", growth, "KiB", "<= 64", growth <= 64);
  }
  server_stop(lg.pid);
  report(json_path, machine);
  return 0;
}
