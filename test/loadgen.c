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
 * In SFU rooms its clients also carry media over that session, as browsers
 * do: a publisher offers a sendonly Opus and a VP8 section and sends SRTP at
 * a camera's and a microphone's rates and sizes (and a keyframe when the
 * server's PLI asks); a subscriber offers as many recvonly sections as the
 * server's "renegotiate" asks for and counts, checks and times what comes.
 * SRTP is camus.c's own (rtc_media_buf, rtc_media_send, rtc_media_input).
 *
 * A client may also reach the server by ICE over TCP instead (RFC 6544): the
 * same session, its STUN and DTLS framed with a 16-bit length (RFC 4571) on a
 * TCP connection to the passive candidate on the server's HTTP port.  And the
 * server's TURN relay is driven on its own, by TURN clients and peers of ours
 * (see TURN PHASES).
 *
 * `loadgen --server ./camus [--static ./camus-static] [--json FILE]` starts
 * the server itself, drives every phase of the benchmark, reads the server's
 * figures from /proc/<pid>/{stat,status,schedstat}, prints one table and
 * writes the raw results as JSON.
 */
#define CAMUS_NO_MAIN
#include "../camus.c"

#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/uio.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <linux/sock_diag.h>

/* ================================================================= CLOCKS =================================================================== */

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

#define SWAP(type, a, b) \
  do {                     \
    type swap_ = (a);      \
    (a) = (b);             \
    (b) = swap_;           \
  } while (0)

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
enum role { ROLE_PLAIN, ROLE_PUB, ROLE_SUB }; /* messaging only; SFU publisher; SFU subscriber */

/* A stream a subscriber receives, known by the SSRC the server sends it with. */
struct stream_rx {
  uint32_t ssrc;
  bool video, keyed;        /* keyed: its first keyframe came */
  uint64_t packets;
};

#define LG_STREAMS 16       /* streams one subscriber tells apart (CAMUS_SRTP_SSRCS) */

struct user {
  int idx, fd;              /* fd: its UDP socket; or, over ICE-TCP, its TCP connection once it has one */
  enum cstate state;
  bool leaving;
  bool tcp;                 /* ICE over TCP (RFC 6544) to the server's HTTP port; survives client_join */
  struct buf tin, tout;     /* ICE-TCP: bytes read and not yet a whole frame; frames the socket did not take yet */
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
  /* SFU: role and verify survive client_join; the rest starts afresh with each join. */
  enum role role;
  bool verify;              /* every packet SRTP-checked and read; else counted by its header, which is clear */
  bool offering, offer_again, published;
  uint8_t sec[CAMUS_SFU_SUBS]; /* our receiving sections in mid order (mid i + 1): SDP_AUDIO or SDP_VIDEO */
  int n_sec, want_audio, want_video;
  int streams;              /* sections the last answer gave a stream */
  uint64_t t_offer;         /* when the first offer went (ns) */
  struct publisher {
    uint32_t ssrc[2];       /* [0] Opus, [1] VP8 */
    uint16_t seq[2];
    uint32_t ts[2];
    uint64_t next[2];       /* ns: the next audio packet, the next video frame */
    unsigned frame;
    bool key;               /* the next frame is a keyframe (a PLI came) */
    uint64_t sent, video, plis, nacks; /* packets sent (video: of them), PLIs and NACKs received */
  } pub;
  struct stream_rx rx[LG_STREAMS];
  int n_rx;
  uint64_t rx_packets;
  bool in_window;           /* streaming when the measurement began */
  struct timer rr_timer;    /* a subscriber's receiver reports */
  uint32_t rr_ssrc;
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
  int n_clients, n_users;   /* n_users: the size of c */
  int rooms_made[2048];
  /* relay measurement */
  uint64_t *lat;
  size_t n_lat, cap_lat;
  int errors_shown;
  /* SFU */
  bool hold[3];             /* by role: SFU clients note what they would offer, and wait for sfu_kick() */
  struct user **pubs;       /* publishers sending media */
  int n_pubs;
  bool lat_on, key_on;      /* latency and first keyframes are being measured */
  uint64_t rx_kernel_ns;    /* CLOCK_REALTIME the kernel stamped on the datagram being handled; 0: none */
  uint64_t *lat_app, *keys; /* as lat: send to the loop's read; an offer to a stream's first keyframe */
  uint64_t *spare_lat, *spare_app; /* as lat and lat_app: the best window's, while another is measured */
  size_t n_lat_app, n_keys, cap_keys;
  uint64_t pub_late;        /* media the loadgen sent more than 100 ms late and skipped */
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

/* ================================================================= ICE-TCP ================================================================== */

/* A client over ICE-TCP sends each datagram of its session as one frame, its
 * length first in two bytes (RFC 4571), on its TCP connection to the server;
 * what the socket does not take at once waits in c->tout for EPOLLOUT. */
static void tcp_send(struct user *c, const void *data, size_t n) {
  uint8_t len[2];
  if (c->fd < 0 || n == 0 || n > 0xffff) return;
  put_u16(len, (uint16_t)n);
  if (!c->tout.len) {
    struct iovec v[2] = {{len, 2}, {(void *)data, n}};
    ssize_t k = writev(c->fd, v, 2);
    if (k == (ssize_t)(n + 2)) return;
    if (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      client_fail(c, "ICE-TCP: the connection failed");
      return;
    }
    k = MAX(k, 0);
    if (k < 2) buf_add(&c->tout, len + k, (size_t)(2 - k));
    buf_add(&c->tout, (const uint8_t *)data + MAX(k - 2, 0), n - (size_t)MAX(k - 2, 0));
    struct epoll_event ev = {.events = EPOLLIN | EPOLLOUT, .data.ptr = c};
    epoll_ctl(lg.ep, EPOLL_CTL_MOD, c->fd, &ev);
  } else {
    buf_add(&c->tout, len, 2);
    buf_add(&c->tout, data, n);
  }
  if (c->tout.err) client_fail(c, "ICE-TCP: more queued than a connection may hold");
}

/* What c sends the server: a datagram to its UDP port, or a frame on c's ICE-TCP connection. */
static void client_send(struct user *c, const void *data, size_t n) {
  if (c->tcp)
    tcp_send(c, data, n);
  else if (c->fd >= 0)
    sendto(c->fd, data, n, 0, (struct sockaddr *)&lg.server_udp, sizeof lg.server_udp);
}

/* The passive TCP host candidate of an answer (RFC 6544), where an ICE-TCP client connects; false if none. */
static bool answer_tcp_candidate(const char *sdp, struct sockaddr_in *to) {
  const char *l = sdp;
  for (int guard = 0; l && *l && guard < 4096; guard++) {
    char line[256], proto[8], ip[64];
    unsigned long prio;
    int comp, port;
    size_t len = strcspn(l, "\r\n");
    snprintf(line, sizeof line, "%.*s", (int)MIN(len, sizeof line - 1), l);
    if (sscanf(line, "a=candidate:%*s %d %7s %lu %63s %d typ host", &comp, proto, &prio, ip, &port) == 5 &&
        !strcasecmp(proto, "tcp") && strstr(line, " tcptype passive") && port > 0 && port < 65536) {
      *to = (struct sockaddr_in){.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
      if (inet_pton(AF_INET, ip, &to->sin_addr) == 1) return true;
    }
    l += len;
    l += strspn(l, "\r\n");
  }
  return false;
}

/* c's TCP connection, from its own address, to the answer's TCP candidate (which must be the HTTP port). */
static int tcp_connect(struct user *c, const char *sdp) {
  struct sockaddr_in to, src = c->local;
  int one = 1;
  if (!answer_tcp_candidate(sdp, &to)) return client_fail(c, "ICE-TCP: the answer has no passive TCP candidate"), -1;
  if (to.sin_port != lg.server_http.sin_port || to.sin_addr.s_addr != lg.server_http.sin_addr.s_addr)
    return client_fail(c, "ICE-TCP: the answer's TCP candidate is not the server's HTTP port"), -1;
  int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  src.sin_port = 0;
  if (fd < 0 || bind(fd, (struct sockaddr *)&src, sizeof src) != 0 || connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
    if (fd >= 0) close(fd);
    return client_fail(c, "ICE-TCP: cannot connect to the TCP candidate"), -1;
  }
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one); /* as browsers' ICE-TCP does: a frame goes when written */
  fcntl(fd, F_SETFL, O_NONBLOCK);
  c->fd = fd;
  c->tin.max = 2 * (2 + 0xffff); /* a frame at most, and the next one's start */
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  epoll_ctl(lg.ep, EPOLL_CTL_ADD, fd, &ev);
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
  if (!w.err) client_send(c, out, w.len);
}

/* Checks are repeated every 50 ms until one succeeds (over TCP, which loses
 * nothing, the first is only waited for), then every 5 s or so for consent
 * freshness, as browsers do. */
static void ice_timeout(struct timer *t) {
  struct user *c = CONTAINER(t, struct user, ice_timer);
  if (c->state == C_FAILED || c->state == C_CLOSING) return;
  if (c->state == C_ICE && ++c->ice_tries > 100) {
    client_fail(c, "no answer to STUN checks");
    return;
  }
  if (!c->tcp || c->state != C_ICE) ice_check(c);
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
  if (!c->rtc) return; /* an answer to a check sent before the session closed */
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
  if (c->tcp)
    tcp_send(c, data, n);
  else if (c->fd >= 0)
    sendto(c->fd, data, n, 0, (const struct sockaddr *)to, addr_len(to));
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

/* ================================================================== MEDIA =================================================================== */

/* A publisher sends what a browser's camera and microphone would: VP8 at 30
 * frames a second in packets of 1,100 bytes, three or four a frame (100 a
 * second; a keyframe, at the start and whenever the server's PLI asks, ten),
 * and Opus, 100 bytes every 20 ms.  Every payload carries the time it was
 * sent (CLOCK_REALTIME ns, big-endian) at STAMP_AT: after the VP8 payload
 * descriptor and the VP8 frame tag, the bytes the server reads for keyframes.
 * The load generator's host has no reserve/commit, so rtc_media_buf() is a
 * scratch buffer and rtc_media_send() hands the SRTP packet to lg_rtc_send. */
#define PT_OPUS 111
#define PT_VP8 96
#define VIDEO_BYTES 1100             /* an RTP packet of video, header included */
#define AUDIO_BYTES 100
#define KEY_PACKETS 10
#define FRAME_NS (1000000000ull / 30)
#define AUDIO_NS 20000000ull
#define STAMP_AT 8                   /* payload offset of the send time */
#define LATE_NS 100000000ull         /* media this late is skipped, not sent in a burst */

static uint64_t real_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One packet of c's stream k (0 Opus, 1 VP8), len bytes; first: a frame's first packet. */
static void pub_packet(struct user *c, int k, size_t len, bool first, bool marker) {
  struct publisher *pb = &c->pub;
  uint8_t *out = c->rtc && c->state == C_OPEN ? rtc_media_buf(c->rtc) : NULL;
  if (!out) return;
  size_t h = rtp_write_header(out, false, marker, k ? PT_VP8 : PT_OPUS, pb->seq[k]++, pb->ts[k], pb->ssrc[k], 0, "");
  uint8_t *pl = out + h;
  memset(pl, 0, STAMP_AT);
  if (k) {
    pl[0] = first ? 0x10 : 0x00; /* VP8 payload descriptor: S on a frame's first packet, partition 0 */
    if (first) {                 /* the frame tag: bit 0 (P) clear on a keyframe; show_frame; then a keyframe's start code */
      pl[1] = pb->key ? 0x10 : 0x11;
      if (pb->key) memcpy(pl + 4, "\x9d\x01\x2a", 3);
    }
  } else {
    pl[0] = 0x78;                /* Opus TOC: 20 ms frames */
  }
  uint64_t t = real_ns();
  put_u32(pl + STAMP_AT, (uint32_t)(t >> 32));
  put_u32(pl + STAMP_AT + 4, (uint32_t)t);
  rtc_media_send(c->rtc, out, len, false, NULL);
  pb->sent++;
  pb->video += k;
}

static void pub_frame(struct user *c) {
  struct publisher *pb = &c->pub;
  int n = pb->key ? KEY_PACKETS : pb->frame % 3 == 2 ? 4 : 3; /* ten packets in three frames */
  for (int i = 0; i < n; i++) pub_packet(c, 1, VIDEO_BYTES, i == 0, i == n - 1);
  pb->key = false;
  pb->frame++;
  pb->ts[1] += 90000 / 30;
}

/* Every publisher's media that is due, called at each turn of the loop. */
static void media_pump(void) {
  uint64_t now = now_ns();
  for (int i = 0; i < lg.n_pubs; i++) {
    struct user *c = lg.pubs[i];
    for (int k = 0; k < 2; k++) {
      if (now < c->pub.next[k]) continue;
      if (now - c->pub.next[k] > LATE_NS) lg.pub_late++, c->pub.next[k] = now;
      if (k) {
        pub_frame(c);
      } else {
        pub_packet(c, 0, AUDIO_BYTES, false, false);
        c->pub.ts[0] += 960;
      }
      c->pub.next[k] += k ? FRAME_NS : AUDIO_NS;
    }
  }
}

/* The server answered c's offer: its media starts, a keyframe first, at a random phase. */
static void pub_start(struct user *c) {
  uint32_t r[2];
  if (c->published) return;
  random_bytes(&lg.crypto, r, sizeof r);
  uint64_t now = now_ns();
  c->published = true;
  c->pub.key = true;
  c->pub.next[0] = now + r[0] % AUDIO_NS;
  c->pub.next[1] = now + r[1] % FRAME_NS;
  lg.pubs[lg.n_pubs++] = c;
}

static void pub_stop(struct user *c) {
  for (int i = 0; i < lg.n_pubs; i++)
    if (lg.pubs[i] == c) {
      lg.pubs[i] = lg.pubs[--lg.n_pubs];
      break;
    }
  c->published = false;
}

/* RTCP from the server to a publisher: a PLI or FIR about its video makes the
 * next frame a keyframe; NACKs are counted (the load generator resends nothing). */
static void pub_feedback(struct user *c, const uint8_t *p, size_t n) {
  struct rtcp_pkt r;
  size_t at = 0;
  while (rtcp_next(p, n, &at, &r) == 1) {
    if (r.pt == RTCP_PSFB && (r.count == RTCP_FMT_PLI || r.count == RTCP_FMT_FIR) && r.len >= 8)
      c->pub.key = true, c->pub.plis++;
    else if (r.pt == RTCP_RTPFB && r.count == RTCP_FMT_NACK)
      c->pub.nacks++;
  }
}

/* The stream ssrc of those c receives (new ones while there is room), or NULL. */
static struct stream_rx *rx_stream(struct user *c, uint32_t ssrc, bool video) {
  for (int i = 0; i < c->n_rx; i++)
    if (c->rx[i].ssrc == ssrc) return &c->rx[i];
  if (c->n_rx == LG_STREAMS) return NULL;
  c->rx[c->n_rx] = (struct stream_rx){.ssrc = ssrc, .video = video};
  return &c->rx[c->n_rx++];
}

/* An SRTP packet to a subscriber that does not check them: counted by its
 * header (SRTP leaves it clear).  The server sends a stream's video only
 * from a keyframe on, so the first video packet counts as one. */
static void sub_count(struct user *c, const uint8_t *p, size_t n) {
  if (n < RTP_HDR + SRTP_TAG || rtcp_is(p, n)) return;
  struct stream_rx *st = rx_stream(c, get_u32(p + 8), (p[1] & 0x7f) == PT_VP8);
  c->rx_packets++;
  if (st) st->packets++, st->keyed = true;
}

/* Every second or so, as browsers do, a subscriber's receiver report about
 * each stream it gets (all received, none lost): it keeps the server's
 * consent to send (RFC 7675) fresh, and it is part of the load. */
static void sub_report(struct timer *tm) {
  struct user *c = CONTAINER(tm, struct user, rr_timer);
  uint8_t r;
  uint8_t *out = c->rtc && c->state == C_OPEN ? rtc_media_buf(c->rtc) : NULL;
  if (out) {
    int n = MIN(c->n_rx, 31);
    size_t len = 8 + (size_t)n * RTCP_REPORT;
    rtcp_header(out, (uint8_t)n, RTCP_RR, len);
    put_u32(out + 4, c->rr_ssrc);
    memset(out + 8, 0, (size_t)n * RTCP_REPORT);
    for (int i = 0; i < n; i++) put_u32(out + 8 + i * RTCP_REPORT, c->rx[i].ssrc);
    rtc_media_send(c->rtc, out, len, true, NULL);
  }
  random_bytes(&lg.crypto, &r, 1);
  timer_in(&lg.loop, &c->rr_timer, 1000 + r);
}

/* An authenticated, decrypted RTP or RTCP packet of one of our sessions (the host's on_media). */
static void lg_rtc_media(void *ctx, struct rtc *r, uint8_t *p, size_t n, bool rtcp) {
  (void)ctx;
  struct user *c = r->user;
  struct rtp_hdr h;
  if (rtcp) {
    if (c->role == ROLE_PUB) pub_feedback(c, p, n);
    return;
  }
  if (c->role != ROLE_SUB || rtp_parse(p, n, &h) != 0) return;
  struct stream_rx *st = rx_stream(c, h.ssrc, h.pt == PT_VP8);
  c->rx_packets++;
  if (!st) return;
  st->packets++;
  if (st->video && !st->keyed && vp8_keyframe(p + h.payload, h.payload_len)) {
    st->keyed = true;
    if (lg.key_on && c->t_offer && lg.n_keys < lg.cap_keys) lg.keys[lg.n_keys++] = now_ns() - c->t_offer;
  }
  if (lg.lat_on && h.payload_len >= STAMP_AT + 8) {
    const uint8_t *q = p + h.payload + STAMP_AT;
    uint64_t sent = (uint64_t)get_u32(q) << 32 | get_u32(q + 4), now = real_ns();
    if (lg.rx_kernel_ns >= sent && lg.n_lat < lg.cap_lat) lg.lat[lg.n_lat++] = lg.rx_kernel_ns - sent;
    if (now >= sent && lg.n_lat_app < lg.cap_lat) lg.lat_app[lg.n_lat_app++] = now - sent;
  }
}

/* Offers what c sends and receives: the data channel section of its first
 * offer (same mid, ICE credentials and fingerprint), then a publisher's two
 * sendonly sections or a subscriber's recvonly ones, all in one bundle.  One
 * offer at a time: another waits for the answer (offer_again). */
static void sfu_offer(struct user *c) {
  char fp[96];
  struct buf sdp = {0}, msg = {0};
  bool pub = c->role == ROLE_PUB;
  int n = pub ? 2 : c->n_sec;
  fingerprint_text(lg.host.id.fingerprint, fp);
  buf_addf(&sdp, "v=0\r\no=- %d 3 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\na=group:BUNDLE 0", c->idx);
  for (int i = 1; i <= n; i++) buf_addf(&sdp, " %d", i);
  buf_addf(&sdp,
           "\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n"
           "a=ice-ufrag:%s\r\na=ice-pwd:%s\r\na=ice-options:trickle\r\na=fingerprint:sha-256 %s\r\n"
           "a=setup:actpass\r\na=sctp-port:5000\r\na=max-message-size:262144\r\n",
           c->ufrag, c->pwd, fp);
  for (int i = 0; i < n; i++) {
    bool video = pub ? i == 1 : c->sec[i] == SDP_VIDEO;
    buf_addf(&sdp,
             "m=%s 9 " SDP_RTP_PROFILE " %d\r\nc=IN IP4 0.0.0.0\r\na=mid:%d\r\na=%s\r\na=rtcp-mux\r\n"
             "a=extmap:4 " SDP_MID_URI "\r\na=rtpmap:%d %s\r\n",
             video ? "video" : "audio", video ? PT_VP8 : PT_OPUS, i + 1, pub ? "sendonly" : "recvonly",
             video ? PT_VP8 : PT_OPUS, video ? "VP8/90000" : "opus/48000/2");
    if (video) buf_addf(&sdp, "a=rtcp-fb:%d nack\r\na=rtcp-fb:%d nack pli\r\n", PT_VP8, PT_VP8);
    if (pub) buf_addf(&sdp, "a=ssrc:%lu cname:lg%d\r\n", (unsigned long)c->pub.ssrc[i], c->idx);
  }
  buf_adds(&msg, "{\"receiver\":\"ground control\",\"type\":\"offer\",\"data\":{\"type\":\"offer\",\"sdp\":");
  json_write_str(&msg, sdp.p, sdp.len);
  buf_adds(&msg, pub ? ",\"tracks\":{\"1\":\"mic\",\"2\":\"camera\"}}}" : "}}");
  if (!sdp.err && !msg.err && lg_text(c, msg.p) == 0) {
    c->offering = true;
    c->offer_again = false;
    if (!c->t_offer) c->t_offer = now_ns();
  }
  buf_free(&sdp);
  buf_free(&msg);
}

/* Offers if c has something to offer, nothing is on the way, and the phase lets it. */
static void sfu_kick(struct user *c) {
  if (c->offer_again && !c->offering && !lg.hold[c->role] && c->state == C_OPEN) sfu_offer(c);
}

/* "renegotiate": a subscriber makes sure it has that many receiving sections
 * of each kind (it never removes one) and offers if it added some.  A
 * publisher only publishes: it ignores the others' streams. */
static void sfu_renegotiate(struct user *c, long long audio, long long video) {
  bool more = false;
  if (c->role != ROLE_SUB) return;
  for (; c->want_audio < audio && c->n_sec < CAMUS_SFU_SUBS; c->want_audio++, more = true) c->sec[c->n_sec++] = SDP_AUDIO;
  for (; c->want_video < video && c->n_sec < CAMUS_SFU_SUBS; c->want_video++, more = true) c->sec[c->n_sec++] = SDP_VIDEO;
  if (more) c->offer_again = true;
  sfu_kick(c);
}

/* ================================================================ MESSAGES ================================================================== */

static void lg_message(struct user *c, const char *s, size_t n) {
  static struct json_tok t[512];
  char type[32], receiver[40];
  if (json_parse(s, n, t, (int)COUNT(t)) < 0 || t[0].type != JSON_OBJECT) return;
  int it = json_find(s, t, 0, "type"), ir = json_find(s, t, 0, "receiver"), id = json_find(s, t, 0, "data");
  if (it < 0 || json_str(s, t, it, type, sizeof type) < 0) return;
  if (!strcmp(type, "greeting")) {
    if (ir >= 0 && json_str(s, t, ir, receiver, sizeof receiver) == 32) memcpy(c->id, receiver, 33);
    if (c->role == ROLE_PUB) c->offer_again = true, sfu_kick(c);
  } else if (!strcmp(type, "renegotiate")) {
    long long a = 0, v = 0;
    int ia = id >= 0 ? json_find(s, t, id, "audio") : -1, iv = id >= 0 ? json_find(s, t, id, "video") : -1;
    if (ia >= 0 && iv >= 0 && json_int(s, t, ia, &a) && json_int(s, t, iv, &v)) sfu_renegotiate(c, a, v);
  } else if (!strcmp(type, "answer")) {
    int is = id >= 0 ? json_find(s, t, id, "streams") : -1;
    c->offering = false;
    c->streams = is >= 0 && t[is].type == JSON_OBJECT ? (int)t[is].n : 0;
    if (c->role == ROLE_PUB) pub_start(c);
    if (c->role == ROLE_SUB && !c->rr_timer.slot) timer_in(&lg.loop, &c->rr_timer, 1000);
    sfu_kick(c);
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
    c->offering = false;
    if (lg.errors_shown++ < 10) fprintf(stderr, "loadgen: client %d got an error: %.*s\n", c->idx, (int)n, s);
  }
}

/* ================================================================= JOINING ================================================================== */

static int client_join(struct user *c) {
  static const char ice_chars[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  uint8_t rnd[32];
  char fp[96], path[64];
  int idx = c->idx, room = c->room;
  enum role role = c->role;
  bool verify = c->verify, tcp = c->tcp;
  if (c->published) pub_stop(c);
  timer_stop(&lg.loop, &c->ice_timer);
  timer_stop(&lg.loop, &c->rr_timer);
  buf_free(&c->tin);
  buf_free(&c->tout);
  *c = (struct user){.idx = idx, .room = room, .fd = -1, .role = role, .verify = verify, .tcp = tcp};
  c->ice_timer.fn = ice_timeout;
  c->rr_timer.fn = sub_report;
  while (!c->rr_ssrc) random_bytes(&lg.crypto, &c->rr_ssrc, sizeof c->rr_ssrc);
  client_addr(idx, &c->local);
  if (!tcp) c->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (!tcp && (c->fd < 0 || bind(c->fd, (struct sockaddr *)&c->local, sizeof c->local) != 0)) {
    client_fail(c, strerror(errno));
    return -1;
  }
  if (role != ROLE_PLAIN) { /* room for a burst of media while the loop is busy elsewhere */
    int sz = 1 << 20;
    setsockopt(c->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  }
  if (role == ROLE_PUB)
    for (int k = 0; k < 2; k++) {
      while (!c->pub.ssrc[k]) random_bytes(&lg.crypto, &c->pub.ssrc[k], sizeof c->pub.ssrc[k]);
      random_bytes(&lg.crypto, &c->pub.seq[k], sizeof c->pub.seq[k]);
      random_bytes(&lg.crypto, &c->pub.ts[k], sizeof c->pub.ts[k]);
    }
  struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
  if (!tcp) epoll_ctl(lg.ep, EPOLL_CTL_ADD, c->fd, &ev);
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
  struct json_tok t[64]; /* the answer: type, sdp, and what else the server adds (resume, turn: {...}) */
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
    if (c->rtc && tcp && tcp_connect(c, sdp) != 0) rc = -1, err = "no ICE-TCP connection";
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
  if (c->published) pub_stop(c);
  timer_stop(&lg.loop, &c->ice_timer);
  timer_stop(&lg.loop, &c->rr_timer);
  if (c->rtc) {
    rtc_close(c->rtc, "leaving");
    rtc_reap(&lg.host); /* its close_notify leaves through the socket before it closes */
  }
  if (c->fd >= 0) {
    epoll_ctl(lg.ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    c->fd = -1;
  }
  buf_free(&c->tin);
  buf_free(&c->tout);
}

/* ================================================================== LOOP ==================================================================== */

/* When the kernel received a datagram (SO_TIMESTAMPNS, CLOCK_REALTIME ns), or 0. */
static uint64_t kernel_stamp(struct msghdr *mh) {
  for (struct cmsghdr *cm = CMSG_FIRSTHDR(mh); cm; cm = CMSG_NXTHDR(mh, cm))
    if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_TIMESTAMPNS) {
      struct timespec ts;
      memcpy(&ts, CMSG_DATA(cm), sizeof ts);
      return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
    }
  return 0;
}

static void client_datagram(struct user *c, uint8_t *data, size_t n, struct msghdr *mh) {
  if (n == 0) return;
  if (data[0] <= 3) {
    stun_answer(c, data, n);
  } else if (data[0] >= 20 && data[0] <= 63 && c->rtc && c->state >= C_ICE && c->state <= C_OPEN) {
    if (c->state == C_ICE) ice_done(c); /* the server's ClientHello overtook its STUN answer */
    dtls_input(c->rtc, data, n, &lg.server_udp_ss);
    if (c->rtc && c->rtc->dtls_up && !c->t_dtls) c->t_dtls = now_ns();
  } else if (data[0] >= 128 && data[0] <= 191 && c->rtc && c->state == C_OPEN) {
    if (c->role == ROLE_SUB && !c->verify) {
      sub_count(c, data, n);
      return;
    }
    lg.rx_kernel_ns = lg.lat_on && mh ? kernel_stamp(mh) : 0;
    rtc_media_input(c->rtc, data, n);
  }
}

/* c's ICE-TCP connection is writable or readable: what waits goes, and each
 * whole frame that came goes up as a datagram would; a few reads at most. */
static void tcp_readable(struct user *c) {
  uint8_t tmp[16384];
  if (c->tout.len) {
    ssize_t k = write(c->fd, c->tout.p, c->tout.len);
    if (k > 0) buf_consume(&c->tout, (size_t)k);
    if (!c->tout.len) {
      struct epoll_event ev = {.events = EPOLLIN, .data.ptr = c};
      epoll_ctl(lg.ep, EPOLL_CTL_MOD, c->fd, &ev);
    }
  }
  for (int round = 0; round < 4 && c->fd >= 0; round++) {
    ssize_t k = read(c->fd, tmp, sizeof tmp);
    if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
    if (k <= 0) {
      epoll_ctl(lg.ep, EPOLL_CTL_DEL, c->fd, NULL); /* closed by client_leave */
      if (c->state != C_CLOSING) client_fail(c, "ICE-TCP: the server closed the connection");
      return;
    }
    buf_add(&c->tin, tmp, (size_t)k);
    if (c->tin.err) {
      client_fail(c, "ICE-TCP: a frame larger than any");
      return;
    }
    size_t at = 0;
    while (c->fd >= 0 && c->tin.len - at >= 2 && c->tin.len - at >= 2 + (size_t)get_u16((uint8_t *)c->tin.p + at)) {
      size_t n = get_u16((uint8_t *)c->tin.p + at);
      client_datagram(c, (uint8_t *)c->tin.p + at + 2, n, NULL);
      at += 2 + n;
    }
    buf_consume(&c->tin, at);
    if ((size_t)k < sizeof tmp) return;
  }
}

/* What came to c's socket: LG_BATCH datagrams a system call, a few calls at most. */
#define LG_BATCH 32
static void client_readable(struct user *c) {
  if (c->tcp) {
    if (c->fd >= 0) tcp_readable(c);
    return;
  }
  static uint8_t data[LG_BATCH][2048];
  static uint8_t ctl[LG_BATCH][CMSG_SPACE(sizeof(struct timespec))];
  struct mmsghdr msg[LG_BATCH];
  struct iovec iov[LG_BATCH];
  for (int round = 0; round < 4 && c->fd >= 0; round++) {
    for (int i = 0; i < LG_BATCH; i++) {
      iov[i] = (struct iovec){data[i], sizeof data[i]};
      msg[i].msg_hdr = (struct msghdr){.msg_iov = &iov[i], .msg_iovlen = 1, .msg_control = ctl[i],
                                       .msg_controllen = sizeof ctl[i]};
    }
    int k = recvmmsg(c->fd, msg, LG_BATCH, 0, NULL);
    for (int i = 0; i < k && c->fd >= 0; i++) client_datagram(c, data[i], msg[i].msg_len, &msg[i].msg_hdr);
    if (k < LG_BATCH) return;
  }
}

static void drain_log(void) {
  char tmp[4096];
  ssize_t n;
  while ((n = read(lg.log_fd, tmp, sizeof tmp)) > 0) {
    if (getenv("LOADGEN_SHOW_LOG")) fwrite(tmp, 1, (size_t)n, stderr);
  }
}

/* One turn of the loop: waits at most max_ms.  While media flows the loop
 * does not sleep in epoll_wait but in nanosleep, a quarter of a millisecond
 * at a time: it looks often enough to send media on time and to read what
 * came (latency is timed by the kernel's receive stamps, not by when we
 * look), and the server's sends to it do not each wake it up, a cost that
 * on loopback the server would pay and that a real network spares it. */
static void lg_poll(int max_ms) {
  struct epoll_event ev[256];
  lg.loop.now = mono_ms();
  int n = epoll_wait(lg.ep, ev, (int)COUNT(ev), lg.n_pubs ? 0 : timers_timeout(&lg.loop, max_ms));
  if (n == 0 && lg.n_pubs) {
    nanosleep(&(struct timespec){0, 250000}, NULL);
    n = epoll_wait(lg.ep, ev, (int)COUNT(ev), 0);
  }
  lg.loop.now = mono_ms();
  for (int i = 0; i < n; i++) {
    if (ev[i].data.ptr == &lg.log_fd)
      drain_log();
    else
      client_readable(ev[i].data.ptr);
    if (i % 8 == 7 && lg.n_pubs) media_pump(); /* media due meanwhile goes now, not in one burst after the turn */
  }
  if (lg.n_pubs) media_pump();
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
    prctl(PR_SET_PDEATHSIG, SIGTERM); /* a load generator that dies leaves no server behind */
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

/* CPU time every process of the machine used, ns (from /proc/stat: all but idle and iowait). */
static uint64_t machine_cpu_ns(void) {
  unsigned long long v[8] = {0};
  FILE *f = fopen("/proc/stat", "r");
  int n = f ? fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5], &v[6],
                     &v[7])
            : 0;
  if (f) fclose(f);
  if (n != 8) return 0;
  return (uint64_t)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) * (1000000000u / (uint64_t)sysconf(_SC_CLK_TCK));
}

/* Datagrams the kernel dropped for want of room in a receiving socket's
 * buffer (/proc/net/udp): the server's socket's, and all of our clients'. */
static void udp_drops(uint64_t *server, uint64_t *ours) {
  char line[512];
  unsigned addr, port;
  unsigned long long drops;
  *server = *ours = 0;
  FILE *f = fopen("/proc/net/udp", "r");
  while (f && fgets(line, sizeof line, f)) { /* "sl: ADDR:PORT ... drops", the address as its s_addr in hex */
    char *end = line + strlen(line);
    while (end > line && isspace((unsigned char)end[-1])) *--end = 0;
    const char *col = strrchr(line, ' ');
    if (sscanf(line, " %*u: %x:%x", &addr, &port) != 2 || !col || sscanf(col, "%llu", &drops) != 1) continue;
    uint32_t a = ntohl(addr);
    if (a == INADDR_LOOPBACK && port == ntohs(lg.server_udp.sin_port))
      *server += drops;
    else if (a >> 16 == 0x7f01) /* 127.1.x.y: one of ours */
      *ours += drops;
  }
  if (f) fclose(f);
}

/* CPU time the load generator used, ns. */
static uint64_t self_cpu_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Starts the server under load on fresh ports, its log on a pipe in the loop, and waits for its first answer. */
static void server_up(const char *bin, const char *const *extra) {
  int port = free_port(SOCK_STREAM), uport = free_port(SOCK_DGRAM);
  lg.server_http = (struct sockaddr_in){
      .sin_family = AF_INET, .sin_port = htons((uint16_t)port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
  lg.server_udp = lg.server_http;
  lg.server_udp.sin_port = htons((uint16_t)uport);
  memcpy(&lg.server_udp_ss, &lg.server_udp, sizeof lg.server_udp);
  memset(lg.rooms_made, 0, sizeof lg.rooms_made);
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
}

static void server_down(void) {
  server_stop(lg.pid);
  lg.pid = 0;
  drain_log();
  epoll_ctl(lg.ep, EPOLL_CTL_DEL, lg.log_fd, NULL);
  close(lg.log_fd);
  lg.log_fd = -1;
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
      if (per_room > 0) c->room = next / per_room; /* else as the caller placed it */
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

static struct figure figs[192];
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

/* ================================================================ SFU PHASE ================================================================= */

/* Media through the server.  Room r holds clients [r * SFU_ROOM, (r + 1) *
 * SFU_ROOM): SFU_PUBS publishers (a camera and a microphone each), then
 * SFU_SUBS subscribers that receive all of them.  Rooms are added until the
 * server's one core is busy (or packets are lost, or the load generator's
 * own core is); then half of them go and the rest carry the latency, first
 * keyframe and join/leave measurements.  A subscriber in verify_every
 * checks and decrypts every packet (SRTP): the others count datagrams by
 * their clear RTP header, which spares the load generator's core for load. */
enum { SFU_PUBS = 4, SFU_SUBS = 10, SFU_ROOM = SFU_PUBS + SFU_SUBS, SFU_FIRST = 10, SFU_STEP = 5 };
enum { SFU_CHURN_ROOMS = 3, SFU_CYCLES = 6, SFU_KEY_JOINS = 12 };

static void sfu_roles(int r0, int r1, int verify_every) {
  for (int i = r0 * SFU_ROOM; i < r1 * SFU_ROOM; i++) {
    struct user *c = &lg.c[i];
    int k = i % SFU_ROOM;
    c->role = k < SFU_PUBS ? ROLE_PUB : ROLE_SUB;
    /* The server sends a packet to its subscribers in turn, the last to subscribe first: the one
     * in the middle of each verify_every waits a middling time for its copy. */
    c->verify = c->role == ROLE_PUB || (k - SFU_PUBS) % verify_every == verify_every / 2;
  }
}

/* Whether c has what it came for: a publisher its answer (so its media
 * flows); a subscriber a stream on `streams` sections, each of them flowing. */
static bool sfu_ready(const struct user *c, int streams) {
  if (c->state != C_OPEN) return false;
  if (c->role == ROLE_PUB) return c->published;
  int flowing = 0;
  for (int i = 0; i < c->n_rx; i++) flowing += c->rx[i].video ? c->rx[i].keyed : c->rx[i].packets > 0;
  return c->streams >= streams && flowing >= streams;
}

/* Turns the loop until every client of [from, to) in role (any: ROLE_PLAIN)
 * is ready, or ms pass.  Returns how many are not (failed ones included). */
static int sfu_settle(int from, int to, enum role role, int ms) {
  uint64_t end = mono_ms() + (uint64_t)ms;
  for (;;) {
    int bad = 0, waiting = 0;
    for (int i = from; i < to; i++) {
      const struct user *c = &lg.c[i];
      if ((role && c->role != role) || sfu_ready(c, 2 * SFU_PUBS)) continue;
      bad++;
      waiting += c->state != C_FAILED;
    }
    if (!waiting || mono_ms() >= end) {
      for (int i = from; i < to && bad && getenv("LOADGEN_DEBUG"); i++) {
        const struct user *c = &lg.c[i];
        if ((role && c->role != role) || sfu_ready(c, 2 * SFU_PUBS)) continue;
        fprintf(stderr, "  not ready: %d role %d state %d offering %d again %d sec %d streams %d rx %d:", i, c->role, c->state,
                c->offering, c->offer_again, c->n_sec, c->streams, c->n_rx);
        for (int k = 0; k < c->n_rx; k++) fprintf(stderr, " %c%d/%llu", c->rx[k].video ? 'v' : 'a', c->rx[k].keyed, (unsigned long long)c->rx[k].packets);
        fprintf(stderr, "\n");
      }
      return bad;
    }
    lg_poll(5);
  }
}

static void sfu_kick_range(int from, int to, enum role role) {
  lg.hold[role] = false;
  for (int i = from; i < to; i++)
    if (lg.c[i].role == role) sfu_kick(&lg.c[i]);
}

/* Clients [from, to) say bye (a few at a time: their goodbyes must not
 * overflow a socket buffer) and stop sending; once the server counts only
 * the clients still there (SCTP resends a bye that was lost), or after 5 s,
 * their sessions close. */
static void sfu_leave(int from, int to) {
  for (int i = from; i < to; i++) {
    struct user *c = &lg.c[i];
    if (c->state == C_OPEN) lg_text(c, "{\"receiver\":\"ground control\",\"type\":\"bye\",\"data\":null}");
    if (c->state != C_FAILED) c->state = C_CLOSING;
    if (c->published) pub_stop(c);
    if ((i - from) % 50 == 49) lg_wait_ms(10);
  }
  long left = 0, counted = -1;
  for (int i = 0; i < lg.n_users; i++) left += lg.c[i].state == C_OPEN;
  for (int i = 0; i < 50 && (counted = server_clients()) > left; i++) lg_wait_ms(100);
  if (counted > left) fprintf(stderr, "loadgen: sfu: the server counts %ld clients 5 s after all but %ld left\n", counted, left);
  for (int i = from; i < to; i++)
    if (lg.c[i].fd >= 0 || lg.c[i].rtc) client_leave(&lg.c[i], false);
}

/* SO_TIMESTAMPNS on the sockets of the subscribers that read their packets. */
static void sfu_stamps(int from, int to, int on) {
  for (int i = from; i < to; i++)
    if (lg.c[i].fd >= 0 && lg.c[i].role == ROLE_SUB && lg.c[i].verify)
      setsockopt(lg.c[i].fd, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
}

struct sfu_sample {
  int rooms;
  double secs, got;         /* RTP packets the subscribers received */
  double got_ok, want;      /* of them, by those streaming all along; what those should have received */
  double cpu, lg_cpu;       /* the server's and the load generator's CPU, in cores */
  double others;            /* every other process's (and the kernel's own threads'), in cores */
  uint64_t nacks, late;     /* NACKs the server sent the publishers; media the load generator sent late */
  uint64_t drops_server, drops_ours; /* datagrams dropped at the server's socket, at our clients' */
  int idle;                 /* subscribers not streaming every stream (left out of got_ok and want) */
};

/* What rooms [0, rooms) sent and received so far: got, the RTP packets
 * their subscribers received; got_ok, those of the subscribers that were
 * streaming every stream when the window opened (first: it opens now);
 * want, the publishers' packets times the room's number of those. */
static void sfu_sums(int rooms, bool first, uint64_t *got, uint64_t *got_ok, uint64_t *want, uint64_t *nacks) {
  *got = *got_ok = *want = *nacks = 0;
  for (int r = 0; r < rooms; r++) {
    uint64_t sent = 0, n_ok = 0;
    for (int i = r * SFU_ROOM; i < (r + 1) * SFU_ROOM; i++) {
      struct user *c = &lg.c[i];
      if (c->role == ROLE_PUB) {
        sent += c->pub.sent;
        *nacks += c->pub.nacks;
        continue;
      }
      if (first) c->in_window = sfu_ready(c, 2 * SFU_PUBS);
      n_ok += c->in_window;
      *got += c->rx_packets;
      if (c->in_window) *got_ok += c->rx_packets;
    }
    *want += sent * n_ok;
  }
}

/* ms of media in rooms [0, rooms): what came, what the server and we spent. */
static struct sfu_sample sfu_measure(int rooms, int ms) {
  struct sfu_sample m = {.rooms = rooms};
  uint64_t got0, ok0, want0, nack0, got1, ok1, want1, nack1, late0 = lg.pub_late, ds0, do0, ds1, do1;
  sfu_sums(rooms, true, &got0, &ok0, &want0, &nack0);
  for (int i = 0; i < rooms * SFU_ROOM; i++) m.idle += lg.c[i].role == ROLE_SUB && !lg.c[i].in_window;
  udp_drops(&ds0, &do0);
  uint64_t c0 = cpu_ns(), l0 = self_cpu_ns(), a0 = machine_cpu_ns(), t0 = now_ns();
  lg_wait_ms(ms);
  uint64_t dt = now_ns() - t0, dc = cpu_ns() - c0, dl = self_cpu_ns() - l0, da = machine_cpu_ns() - a0;
  udp_drops(&ds1, &do1);
  sfu_sums(rooms, false, &got1, &ok1, &want1, &nack1);
  m.secs = (double)dt / 1e9;
  m.got = (double)(got1 - got0);
  m.got_ok = (double)(ok1 - ok0);
  m.want = (double)(want1 - want0);
  m.cpu = (double)dc / (double)dt;
  m.lg_cpu = (double)dl / (double)dt;
  m.others = MAX(0, (double)da / (double)dt - m.cpu - m.lg_cpu);
  m.nacks = nack1 - nack0;
  m.late = lg.pub_late - late0;
  m.drops_server = ds1 - ds0;
  m.drops_ours = do1 - do0;
  return m;
}

static double sfu_loss(const struct sfu_sample *m) { return m->want > 0 ? 1 - m->got_ok / m->want : 1; }

/* One level of load: 2 s of it, and 2 s more if other processes took a
 * quarter of a core meanwhile, or packets were lost while the server had CPU
 * to spare (a stall, ours or someone else's); the quieter of the two counts. */
static struct sfu_sample sfu_level(int rooms) {
  struct sfu_sample m = sfu_measure(rooms, 2000);
  if (m.others > 0.25 || (sfu_loss(&m) >= 0.05 && m.cpu < 0.9)) {
    struct sfu_sample again = sfu_measure(rooms, 2000);
    if (again.others < m.others) m = again;
  }
  return m;
}

static void sfu_print(const char *what, const struct sfu_sample *m) {
  printf("sfu: %-7s %2d rooms, %4d video streams subscribed (%d subscribers not streaming): %7.0f pkt/s forwarded, "
         "%5.2f%% lost; CPU: server %3.0f%%, loadgen %3.0f%%, others %3.0f%%; %.2f us a packet; dropped at the server's "
         "socket %llu, at ours %llu; %llu NACKs, %llu sent late\n",
         what, m->rooms, m->rooms * SFU_PUBS * SFU_SUBS, m->idle, m->got / m->secs, 100 * sfu_loss(m), 100 * m->cpu,
         100 * m->lg_cpu, 100 * m->others, m->got > 0 ? m->cpu * m->secs * 1e6 / m->got : 0,
         (unsigned long long)m->drops_server, (unsigned long long)m->drops_ours, (unsigned long long)m->nacks,
         (unsigned long long)m->late);
  fflush(stdout);
}

/* Where a forwarded packet's time goes, each part alone on this machine: the
 * SRTP protection the server gives every copy (camus.c's own code, a video
 * packet of VIDEO_BYTES), and the kernel's sendmmsg() of datagrams of that
 * many bytes on loopback, CAMUS_UDP_BATCH a call to ten sockets that a child process
 * drains (the loopback delivery is charged to the sender, as it is to the
 * server).  Microseconds a packet, over about a second each. */
static double sfu_cost_srtp(void) {
  static struct srtp s;
  struct srtp_ssrc st = {0};
  uint8_t key[16] = {1}, salt[14] = {2}, p[VIDEO_BYTES + SRTP_TAG];
  if (srtp_init(&s, key, salt) != 0) return 0;
  int n = 0;
  uint64_t c0 = self_cpu_ns(), end = mono_ms() + 1000;
  for (; mono_ms() < end; n += 64)
    for (int i = 0; i < 64; i++) {
      memset(p, 0, VIDEO_BYTES);
      rtp_write_header(p, false, false, PT_VP8, (uint16_t)(n + i), 0, 0x1234, 0, "");
      if (srtp_protect_with(&s, &st, p, VIDEO_BYTES, sizeof p) < 0) return 0;
    }
  return (double)(self_cpu_ns() - c0) / 1000 / n;
}

static double sfu_cost_send(size_t bytes) {
  enum { SOCKS = 10 };
  int rx[SOCKS], tx = socket(AF_INET, SOCK_DGRAM, 0), sync[2];
  struct sockaddr_in to[SOCKS];
  if (tx < 0 || pipe(sync) != 0) return 0;
  for (int i = 0; i < SOCKS; i++) {
    socklen_t len = sizeof to[i];
    to[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    rx[i] = socket(AF_INET, SOCK_DGRAM, 0);
    if (rx[i] < 0 || bind(rx[i], (struct sockaddr *)&to[i], sizeof to[i]) != 0 ||
        getsockname(rx[i], (struct sockaddr *)&to[i], &len) != 0)
      return 0;
  }
  pid_t child = fork();
  if (child == 0) { /* drains every socket until the pipe closes */
    static uint8_t buf[CAMUS_UDP_BATCH][2048];
    struct mmsghdr m[CAMUS_UDP_BATCH];
    struct iovec v[CAMUS_UDP_BATCH];
    struct pollfd pf[SOCKS + 1];
    for (int i = 0; i < CAMUS_UDP_BATCH; i++)
      v[i] = (struct iovec){buf[i], sizeof buf[i]}, m[i] = (struct mmsghdr){.msg_hdr = {.msg_iov = &v[i], .msg_iovlen = 1}};
    close(sync[1]);
    for (int i = 0; i < SOCKS; i++) pf[i] = (struct pollfd){rx[i], POLLIN, 0};
    pf[SOCKS] = (struct pollfd){sync[0], POLLIN, 0};
    for (uint64_t end = mono_ms() + 10000; mono_ms() < end && !pf[SOCKS].revents;)
      if (poll(pf, SOCKS + 1, 100) > 0)
        for (int i = 0; i < SOCKS; i++)
          if (pf[i].revents) while (recvmmsg(rx[i], m, CAMUS_UDP_BATCH, MSG_DONTWAIT, NULL) > 0) {}
    _exit(0);
  }
  close(sync[0]);
  static uint8_t payload[2048];
  struct mmsghdr m[CAMUS_UDP_BATCH];
  struct iovec v = {payload, MIN(bytes, sizeof payload)};
  long sent = 0;
  uint64_t c0 = self_cpu_ns(), end = mono_ms() + 1000;
  for (int k = 0; child > 0 && mono_ms() < end; k++) {
    for (int i = 0; i < CAMUS_UDP_BATCH; i++)
      m[i] = (struct mmsghdr){.msg_hdr = {.msg_name = &to[(k + i) % SOCKS], .msg_namelen = sizeof to[0], .msg_iov = &v,
                                          .msg_iovlen = 1}};
    int got = sendmmsg(tx, m, CAMUS_UDP_BATCH, 0);
    if (got > 0) sent += got;
  }
  uint64_t dc = self_cpu_ns() - c0;
  close(sync[1]);
  if (child > 0) waitpid(child, NULL, 0);
  for (int i = 0; i < SOCKS; i++) close(rx[i]);
  close(tx);
  return sent ? (double)dc / 1000 / (double)sent : 0;
}

/* The floor under any added latency on this machine: a datagram's way from
 * its sender through a process that only passes it on (waking from poll, a
 * recvmmsg, a sendmmsg) to the kernel's receive stamp at the far socket,
 * timed as the SFU's packets are.  One a millisecond for about a second.
 * Sets the median and the p99 (ms). */
static void sfu_floor(double *p50, double *p99) {
  int in = socket(AF_INET, SOCK_DGRAM, 0), out = socket(AF_INET, SOCK_DGRAM, 0), tx = socket(AF_INET, SOCK_DGRAM, 0), on = 1;
  struct sockaddr_in a[2];
  *p50 = *p99 = 0;
  for (int i = 0; i < 2; i++) {
    socklen_t len = sizeof a[i];
    a[i] = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (bind(i ? out : in, (struct sockaddr *)&a[i], sizeof a[i]) != 0 || getsockname(i ? out : in, (struct sockaddr *)&a[i], &len) != 0)
      return;
  }
  setsockopt(out, SOL_SOCKET, SO_TIMESTAMPNS, &on, sizeof on);
  pid_t child = fork();
  if (child == 0) { /* passes on what comes to `in`, until a datagram of one byte */
    static uint8_t buf[VIDEO_BYTES];
    struct iovec v = {buf, sizeof buf};
    struct mmsghdr m = {.msg_hdr = {.msg_iov = &v, .msg_iovlen = 1}};
    struct pollfd pf = {in, POLLIN, 0};
    for (uint64_t end = mono_ms() + 10000; mono_ms() < end;) {
      if (poll(&pf, 1, 100) <= 0 || recvmmsg(in, &m, 1, MSG_DONTWAIT, NULL) != 1) continue;
      if (m.msg_len <= 1) break;
      v.iov_len = m.msg_len;
      struct mmsghdr o = {.msg_hdr = {.msg_name = &a[1], .msg_namelen = sizeof a[1], .msg_iov = &v, .msg_iovlen = 1}};
      sendmmsg(in, &o, 1, 0);
      v.iov_len = sizeof buf;
    }
    _exit(0);
  }
  enum { N = 1000 };
  static uint64_t lat[N];
  size_t n = 0;
  uint8_t pkt[VIDEO_BYTES] = {0}, back[VIDEO_BYTES], ctl[CMSG_SPACE(sizeof(struct timespec))];
  for (int i = 0; child > 0 && i < N; i++) {
    uint64_t t = real_ns();
    memcpy(pkt, &t, sizeof t);
    sendto(tx, pkt, sizeof pkt, 0, (struct sockaddr *)&a[0], sizeof a[0]);
    struct pollfd pf = {out, POLLIN, 0};
    if (poll(&pf, 1, 100) <= 0) continue;
    struct iovec v = {back, sizeof back};
    struct msghdr mh = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = ctl, .msg_controllen = sizeof ctl};
    uint64_t k;
    if (recvmsg(out, &mh, MSG_DONTWAIT) == (ssize_t)sizeof pkt && (k = kernel_stamp(&mh)) >= t) lat[n++] = k - t;
    nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  sendto(tx, pkt, 1, 0, (struct sockaddr *)&a[0], sizeof a[0]);
  if (child > 0) waitpid(child, NULL, 0);
  close(in), close(out), close(tx);
  *p50 = quantile_ms(lat, n, 0.5), *p99 = quantile_ms(lat, n, 0.99);
}

static void sfu_phase(const char *bin, const char *const *extra, int max_rooms, int verify_every) {
  char label[128];
  double srtp_us = sfu_cost_srtp(), send_us = sfu_cost_send(VIDEO_BYTES), floor50, floor99; /* before the server starts: on a quiet machine */
  sfu_floor(&floor50, &floor99);
  server_up(bin, extra);
  lg_wait_ms(1000);
  int first = MIN(SFU_FIRST, max_rooms), n0 = first * SFU_ROOM;

  /* Memory: the first rooms' clients join and wait; their publishers publish
   * until each packet cache is full; then their subscribers subscribe. */
  sfu_roles(0, first, verify_every);
  lg.hold[ROLE_PUB] = lg.hold[ROLE_SUB] = true;
  int joined = join_range(0, n0, 32, SFU_ROOM);
  lg_wait_ms(1500);
  long rss_joined = rss_kb();
  sfu_kick_range(0, n0, ROLE_PUB);
  int bad = sfu_settle(0, n0, ROLE_PUB, 10000);
  for (uint64_t end = mono_ms() + 15000; mono_ms() < end;) { /* until every packet cache is full */
    bool full = true;
    for (int i = 0; i < n0 && full; i++)
      full = !lg.c[i].published || lg.c[i].pub.video >= CAMUS_NACK_SLOTS + 50;
    if (full) break;
    lg_wait_ms(100);
  }
  lg_wait_ms(500);
  long rss_pub = rss_kb();
  sfu_kick_range(0, n0, ROLE_SUB);
  bad += sfu_settle(0, n0, ROLE_SUB, 15000);
  lg_wait_ms(2000);
  long rss_sub = rss_kb();
  int pubs = 0, subscriptions = 0;
  for (int i = 0; i < n0; i++) {
    pubs += lg.c[i].published;
    if (lg.c[i].role == ROLE_SUB && lg.c[i].state == C_OPEN) subscriptions += lg.c[i].streams;
  }
  if (joined != n0 || bad) fprintf(stderr, "loadgen: sfu: %d of %d joined, %d not streaming\n", joined, n0, bad);
  printf("sfu: RSS (KiB) with %d clients joined %ld, then %d publishing %ld, then %d subscriptions %ld\n", n0, rss_joined,
         pubs, rss_pub, subscriptions, rss_sub);

  /* Load: rooms added until something gives. */
  struct sfu_sample lv[64];
  int nl = 0, rooms = first;
  lv[nl++] = sfu_level(rooms);
  sfu_print("load", &lv[0]);
  while (lv[nl - 1].cpu < 0.95 && sfu_loss(&lv[nl - 1]) < 0.05 && lv[nl - 1].lg_cpu < 0.95 &&
         rooms + SFU_STEP <= max_rooms && nl < (int)COUNT(lv)) {
    sfu_roles(rooms, rooms + SFU_STEP, verify_every);
    join_range(rooms * SFU_ROOM, (rooms + SFU_STEP) * SFU_ROOM, 32, SFU_ROOM);
    if ((bad = sfu_settle(rooms * SFU_ROOM, (rooms + SFU_STEP) * SFU_ROOM, ROLE_PLAIN, 5000)))
      fprintf(stderr, "loadgen: sfu: %d clients of rooms %d to %d not streaming\n", bad, rooms, rooms + SFU_STEP - 1);
    rooms += SFU_STEP;
    lg_wait_ms(500);
    lv[nl++] = sfu_level(rooms);
    sfu_print("load", &lv[nl - 1]);
  }
  int top = 0;
  for (int i = 1; i < nl; i++)
    if (lv[i].got / lv[i].secs > lv[top].got / lv[top].secs) top = i;
  const struct sfu_sample *t = &lv[top], *last = &lv[nl - 1];
  double pps = t->got / t->secs, us = t->got > 0 ? t->cpu * t->secs * 1e6 / t->got : 0;
  const char *limit = last->cpu >= 0.95                ? "the server's core is busy"
                      : sfu_loss(last) >= 0.05         ? "packets are lost"
                      : last->lg_cpu >= 0.95           ? "THE LOAD GENERATOR's core is busy: it is the bottleneck"
                                                       : "the largest load tried";
  printf("sfu: the load stopped rising at %d rooms: %s\n", last->rooms, limit);
  if (t->others > 0.25)
    printf("sfu: other processes used %.0f%% of a core meanwhile: these are not a quiet machine's figures\n",
           100 * t->others);
  snprintf(label, sizeof label, "SFU: forwarded packets/s (%d video streams subscribed)", t->rooms * SFU_PUBS * SFU_SUBS);
  fig("sfu_forwarded_per_s", strdup(label), pps, "pkt/s", ">= 150000", pps >= 150000);
  fig("sfu_video_streams", "  subscribed video streams then (x 150 pkt/s)", t->rooms * SFU_PUBS * SFU_SUBS, "",
      ">= 1000", t->rooms * SFU_PUBS * SFU_SUBS >= 1000);
  fig("sfu_server_cpu_pct", "  server CPU then", 100 * t->cpu, "% core", NULL, -1);
  fig("sfu_loadgen_cpu_pct", "  load generator CPU then", 100 * t->lg_cpu, "% core", NULL, -1);
  fig("sfu_loss_pct", "  packets lost then", 100 * sfu_loss(t), "%", NULL, -1);
  fig("sfu_others_cpu_pct", "  every other process's CPU then (0 on a quiet machine)", 100 * t->others, "% core", NULL, -1);
  fig("sfu_cpu_us_per_packet", "SFU: server CPU per forwarded packet", us, "us", NULL, -1);
  fig("sfu_core_per_s", "  forwarded packets/s a core can carry at that cost", us > 0 ? 1e6 / us : 0, "pkt/s",
      ">= 150000", us > 0 && 1e6 / us >= 150000);

  fig("sfu_cost_srtp_us", "  of which SRTP-protecting a 1,100-byte copy, alone", srtp_us, "us", NULL, -1);
  fig("sfu_cost_send_us", "  and the kernel sending it on loopback, alone", send_us, "us", NULL, -1);
  fig("sfu_cost_ceiling_per_s", "  packets/s a core could carry at just these two", srtp_us + send_us > 0 ? 1e6 / (srtp_us + send_us) : 0,
      "pkt/s", NULL, -1);

  /* Half of that load: latency, then first keyframes, then joins and leaves. */
  int half = MAX(1, (t->rooms + 1) / 2);
  sfu_leave(half * SFU_ROOM, rooms * SFU_ROOM);
  lg_wait_ms(2000);
  /* Up to three windows of 2 s: the one in which other processes took the least CPU counts. */
  uint64_t *best_lat = lg.spare_lat, *best_app = lg.spare_app;
  size_t best_n = 0, best_n_app = 0;
  struct sfu_sample h = {0};
  sfu_stamps(0, half * SFU_ROOM, 1);
  for (int w = 0; w < 3; w++) {
    lg.n_lat = lg.n_lat_app = 0;
    lg.lat_on = true;
    struct sfu_sample m = sfu_measure(half, 2000);
    lg.lat_on = false;
    if (!w || m.others < h.others) {
      h = m;
      SWAP(uint64_t *, lg.lat, best_lat);
      SWAP(uint64_t *, lg.lat_app, best_app);
      best_n = lg.n_lat, best_n_app = lg.n_lat_app;
    }
    if (h.others < 0.1) break;
  }
  sfu_stamps(0, half * SFU_ROOM, 0);
  SWAP(uint64_t *, lg.lat, best_lat);
  SWAP(uint64_t *, lg.lat_app, best_app);
  lg.n_lat = best_n, lg.n_lat_app = best_n_app;
  lg.spare_lat = best_lat, lg.spare_app = best_app;
  sfu_print("latency", &h);
  snprintf(label, sizeof label, "SFU: added latency at %.0f pkt/s, median", h.got / h.secs);
  double l50 = quantile_ms(lg.lat, lg.n_lat, 0.5), l99 = quantile_ms(lg.lat, lg.n_lat, 0.99);
  fig("sfu_latency_p50_ms", strdup(label), l50, "ms", "<= 0.1", lg.n_lat && l50 <= 0.1);
  fig("sfu_latency_p99_ms", "  p99", l99, "ms", "<= 1", lg.n_lat && l99 <= 1);
  fig("sfu_latency_floor_p50_ms", "  a process that only passes it on, median (the floor)", floor50, "ms", NULL, -1);
  fig("sfu_latency_floor_p99_ms", "  p99", floor99, "ms", NULL, -1);
  fig("sfu_latency_samples", "  packets timed (publisher's send to the kernel's receive)", (double)lg.n_lat, "", NULL,
      -1);
  fig("sfu_latency_loop_p50_ms", "  to the subscriber's loop instead, median", quantile_ms(lg.lat_app, lg.n_lat_app, 0.5),
      "ms", NULL, -1);
  fig("sfu_latency_loop_p99_ms", "  to the subscriber's loop instead, p99", quantile_ms(lg.lat_app, lg.n_lat_app, 0.99),
      "ms", NULL, -1);

  /* A subscriber at a time joins one of the rooms (its offer asks for all four cameras): offer to each first keyframe. */
  int kb = (max_rooms + SFU_CHURN_ROOMS) * SFU_ROOM;
  lg.n_keys = 0;
  lg.key_on = true;
  for (int i = kb; i < kb + SFU_KEY_JOINS; i++) {
    struct user *c = &lg.c[i];
    c->role = ROLE_SUB;
    c->verify = true;
    c->room = (i - kb) % half;
    if (join_range(i, i + 1, 1, 0) == 1) sfu_settle(i, i + 1, ROLE_SUB, 2000);
  }
  lg.key_on = false;
  size_t want_keys = (size_t)SFU_KEY_JOINS * SFU_PUBS;
  if (lg.n_keys < want_keys) fprintf(stderr, "loadgen: sfu: %zu of %zu first keyframes came\n", lg.n_keys, want_keys);
  sfu_leave(kb, kb + SFU_KEY_JOINS);
  snprintf(label, sizeof label, "SFU: a subscriber's offer to each camera's first keyframe (%zu), median", lg.n_keys);
  fig("sfu_keyframe_p50_ms", strdup(label), quantile_ms(lg.keys, lg.n_keys, 0.5), "ms", NULL, -1);
  double k95 = quantile_ms(lg.keys, lg.n_keys, 0.95);
  fig("sfu_keyframe_p95_ms", "  p95", k95, "ms", "<= 300", lg.n_keys == want_keys && k95 <= 300);
  fig("sfu_keyframe_max_ms", "  the slowest", quantile_ms(lg.keys, lg.n_keys, 1), "ms", NULL, -1);

  /* Memory, from the first rooms. */
  double per_pub = pubs ? (double)(rss_pub - rss_joined) / pubs : 0;
  double per_sub = subscriptions ? (double)(rss_sub - rss_pub) / subscriptions : 0;
  snprintf(label, sizeof label, "SFU: RSS per published camera (%d-packet cache) and mic, %d of them", CAMUS_NACK_SLOTS,
           pubs);
  fig("sfu_rss_per_published_kb", strdup(label), per_pub, "KiB", "<= 512", pubs && per_pub <= 512);
  snprintf(label, sizeof label, "SFU: RSS per subscription (one stream received), %d of them", subscriptions);
  fig("sfu_rss_per_subscription_kb", strdup(label), per_sub, "KiB", "<= 16", subscriptions && per_sub <= 16);

  /* Whole rooms join, stream for a second, and leave, while the others stream on. */
  long rss_cycle[SFU_CYCLES + 1];
  int cr = max_rooms;
  lg_wait_ms(1000);
  rss_cycle[0] = rss_kb();
  for (int cyc = 1; cyc <= SFU_CYCLES; cyc++) {
    sfu_roles(cr, cr + SFU_CHURN_ROOMS, verify_every);
    int ok = join_range(cr * SFU_ROOM, (cr + SFU_CHURN_ROOMS) * SFU_ROOM, 32, SFU_ROOM);
    int nb = sfu_settle(cr * SFU_ROOM, (cr + SFU_CHURN_ROOMS) * SFU_ROOM, ROLE_PLAIN, 5000);
    if (ok != SFU_CHURN_ROOMS * SFU_ROOM || nb)
      fprintf(stderr, "loadgen: sfu cycle %d: %d of %d joined, %d not streaming\n", cyc, ok, SFU_CHURN_ROOMS * SFU_ROOM, nb);
    lg_wait_ms(1000);
    sfu_leave(cr * SFU_ROOM, (cr + SFU_CHURN_ROOMS) * SFU_ROOM);
    lg_wait_ms(1500);
    rss_cycle[cyc] = rss_kb();
  }
  char series[256] = "";
  for (int cyc = 0; cyc <= SFU_CYCLES; cyc++)
    snprintf(series + strlen(series), sizeof series - strlen(series), "%s%ld", cyc ? " " : "", rss_cycle[cyc]);
  printf("sfu: RSS (KiB) before and after each of %d cycles of %d clients joining, streaming and leaving: %s\n",
         SFU_CYCLES, SFU_CHURN_ROOMS * SFU_ROOM, series);
  fig("sfu_rss_after_cycle1_kb", "SFU: RSS after the first cycle of rooms joining and leaving", (double)rss_cycle[1],
      "KiB", NULL, -1);
  fig("sfu_rss_after_last_cycle_kb", "  after the last", (double)rss_cycle[SFU_CYCLES], "KiB", NULL, -1);
  double growth = (double)(rss_cycle[SFU_CYCLES] - rss_cycle[SFU_CYCLES - 3]) / 3;
  fig("sfu_churn_growth_kb", "  growth per cycle over the last three", growth, "KiB", "<= 64", growth <= 64);
  sfu_leave(0, half * SFU_ROOM);
  lg_wait_ms(500);
  server_down();
}

/* --small: what a server started with it costs idle, then with one room of SFU_ROOM through it
 * (SFU_PUBS publishing a camera and a microphone until their shorter packet caches are full, the others
 * receiving every stream): the figure behind "32 MB holds a room of 8". */
static void small_phase(const char *bin) {
  static const char *const extra[] = {"--small", "--msg-rate", "10000000", NULL};
  char label[160];
  server_up(bin, extra);
  lg_wait_ms(1000);
  long idle = rss_kb();
  sfu_roles(0, 1, 1);
  lg.hold[ROLE_PUB] = lg.hold[ROLE_SUB] = true;
  int joined = join_range(0, SFU_ROOM, 8, SFU_ROOM);
  sfu_kick_range(0, SFU_ROOM, ROLE_PUB);
  int bad = sfu_settle(0, SFU_ROOM, ROLE_PUB, 10000);
  for (uint64_t end = mono_ms() + 15000; mono_ms() < end;) { /* until every packet cache is full */
    bool full = true;
    for (int i = 0; i < SFU_ROOM && full; i++) full = !lg.c[i].published || lg.c[i].pub.video >= CAMUS_SMALL_NACK_SLOTS + 50;
    if (full) break;
    lg_wait_ms(100);
  }
  sfu_kick_range(0, SFU_ROOM, ROLE_SUB);
  bad += sfu_settle(0, SFU_ROOM, ROLE_SUB, 15000);
  lg_wait_ms(2000);
  long room = rss_kb();
  if (joined != SFU_ROOM || bad) fprintf(stderr, "loadgen: small: %d of %d joined, %d not streaming\n", joined, SFU_ROOM, bad);
  fig("small_idle_rss_kb", "--small: idle RSS", (double)idle, "KiB", NULL, -1);
  snprintf(label, sizeof label, "--small: RSS with a room of %d (%d cameras and mics, %d-packet caches)",
           SFU_ROOM, SFU_PUBS, CAMUS_SMALL_NACK_SLOTS);
  fig("small_room_rss_kb", strdup(label), (double)room, "KiB", "<= 16384", !bad && joined == SFU_ROOM && room <= 16384);
  sfu_leave(0, SFU_ROOM);
  lg_wait_ms(500);
  server_down();
}

/* =============================================================== TURN PHASES ================================================================ */

/* The built-in TURN relay under load.  The server is started with a secret
 * of ours (--turn-secret) and --turn-allow 127.0.0.0/8, so that it relays to
 * loopback peers.  Allocation i is a UDP socket of ours on 127.1.x.y, a host
 * of its own (the server allows CAMUS_TURN_PER_HOST allocations a host), that
 * allocates on the server's UDP port with the ephemeral credentials of the
 * TURN REST API (user "<expiry>:<name>", password base64(HMAC-SHA1(secret,
 * user)), computed here independently of the server's code), then installs a
 * permission for peer i (a socket of ours on 127.2.x.y) and binds channel
 * 0x4000 to it.  ChannelData then goes client -> relay -> peer, and the
 * peer's datagrams relay -> client as ChannelData, one direction at a time,
 * at an audio packet's size and a video packet's.  Both ends are connected
 * sockets, and send and read CAMUS_UDP_BATCH-like batches (sendmmsg,
 * recvmmsg), so that our side of a packet costs no more than the server's. */
#define TURN_SECRET "loadgen-turn-secret"
#define TURN_CHANNEL 0x4000
#define TURN_AUDIO 160      /* bytes of payload: an Opus packet and its RTP header, about */
#define TURN_VIDEO 1100     /* a VP8 packet's */
#define TURN_BATCH 16       /* datagrams in one sendmmsg() or recvmmsg() of ours (CAMUS_UDP_BATCH's) */
#define TURN_SHARE 0.8      /* of the relay's rate limit per allocation (CAMUS_TURN_KBPS) that we send */

struct talloc {
  int fd, peer;                    /* our client's socket, connected to the server's UDP port; our peer's, to the relay */
  struct sockaddr_in local, peer_addr, relayed;
  char user[64], realm[64];
  uint8_t nonce[128], key[16];     /* key: MD5(user:realm:password), long-term credentials (RFC 8489 9.2) */
  size_t realm_len, nonce_len;
  double tokens;                   /* datagrams it may send now (a token bucket at its share of the rate limit) */
  uint32_t seq;
};

static struct {
  struct talloc a[CAMUS_TURN_ALLOCATIONS];
  int n;                           /* allocations open: a[0..n) */
  int ep;                          /* every socket of theirs; data.u32 = 2 i + (1 for the peer's) */
  bool relay_port[65536];          /* the server's relay ports in use (for its sockets' drops in /proc/net/udp) */
  uint32_t run;                    /* which run of turn_pump() this is: each datagram carries it */
  uint64_t sent, got, bad;         /* datagrams sent, read where they should arrive, and of them malformed or misrouted */
  uint64_t strays;                 /* datagrams read where none should come in this direction */
  uint64_t late;                   /* of an earlier run: they waited that long somewhere */
  uint64_t data_ind;               /* of the bad: Data indications where ChannelData should come */
} tr;

/* The REST API's credentials for name, good for an hour. */
static void turn_rest_user(const char *name, char user[64], char pass[32]) {
  uint8_t mac[20];
  size_t olen = 0;
  int n = snprintf(user, 64, "%llu:%s", (unsigned long long)time(NULL) + 3600, name);
  if (mbedtls_md_hmac(mbedtls_md_info_from_type(MBEDTLS_MD_SHA1), (const uint8_t *)TURN_SECRET, strlen(TURN_SECRET),
                      (const uint8_t *)user, (size_t)n, mac) != 0 ||
      mbedtls_base64_encode((uint8_t *)pass, 32, &olen, mac, sizeof mac) != 0)
    olen = 0;
  pass[olen] = 0;
}

/* A request of a's: method with its attributes (arg: CHANNEL-NUMBER's or LIFETIME's value), signed once a knows a nonce. */
static size_t turn_request_write(struct talloc *a, uint16_t method, uint32_t arg, uint8_t *out, size_t cap) {
  uint8_t txid[12];
  struct stun_writer w = {out, cap, 0, false};
  random_bytes(&lg.crypto, txid, sizeof txid);
  stun_begin(&w, method, txid);
  if (method == TURN_ALLOCATE) stun_attr_u32(&w, TURN_A_REQUESTED_TRANSPORT, 17u << 24); /* UDP */
  if (method == TURN_CHANNEL_BIND) stun_attr_u32(&w, TURN_A_CHANNEL_NUMBER, arg << 16);
  if (method == TURN_REFRESH) stun_attr_u32(&w, TURN_A_LIFETIME, arg);
  if (method == TURN_CREATE_PERMISSION || method == TURN_CHANNEL_BIND)
    stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&a->peer_addr);
  if (a->nonce_len) {
    stun_attr(&w, STUN_A_USERNAME, a->user, (uint16_t)strlen(a->user));
    stun_attr(&w, STUN_A_REALM, a->realm, (uint16_t)a->realm_len);
    stun_attr(&w, STUN_A_NONCE, a->nonce, (uint16_t)a->nonce_len);
    stun_integrity(&w, a->key, sizeof a->key);
  }
  stun_fingerprint(&w);
  return w.err ? 0 : w.len;
}

/* Sends a request and waits for its answer (the same transaction), 500 ms a try, three tries.
 * Returns the answer's length in resp and its parse in m, or -1. */
static int turn_transact(struct talloc *a, const uint8_t *req, size_t n, uint8_t *resp, size_t cap, struct stun_msg *m) {
  for (int tries = 0; tries < 3; tries++) {
    if (send(a->fd, req, n, 0) != (ssize_t)n) return -1;
    for (uint64_t end = mono_ms() + 500; mono_ms() < end;) {
      struct pollfd pf = {a->fd, POLLIN, 0};
      if (poll(&pf, 1, 50) <= 0) continue;
      ssize_t k = recv(a->fd, resp, cap, MSG_DONTWAIT);
      if (k > 0 && stun_parse(resp, (size_t)k, m) == 0 && !memcmp(m->txid, req + 8, 12)) return (int)k;
    }
  }
  return -1;
}

/* The XOR-RELAYED-ADDRESS of an Allocate's success (stun_parse() leaves it aside), IPv4; false if none. */
static bool turn_relayed_address(const uint8_t *p, size_t n, struct sockaddr_in *out) {
  size_t at = STUN_HDR;
  for (int guard = 0; at + 4 <= n && guard < 64; guard++) {
    uint16_t type = get_u16(p + at), len = get_u16(p + at + 2);
    if (at + 4 + len > n) return false;
    struct sockaddr_storage ss;
    if (type == TURN_A_XOR_RELAYED_ADDRESS) {
      if (!stun_read_address(p + at + 4, len, true, p, &ss) || ss.ss_family != AF_INET) return false;
      memcpy(out, &ss, sizeof *out);
      return true;
    }
    at += 4 + (((size_t)len + 3) & ~(size_t)3);
  }
  return false;
}

/* One request of a's, answered with success and signed with a's key: 0; else -1 and why (the error code in it). */
static int turn_ask(struct talloc *a, uint16_t method, uint32_t arg, uint8_t *resp, size_t cap, int *len, char *why, size_t wl) {
  uint8_t req[512];
  struct stun_msg m;
  size_t n = turn_request_write(a, method, arg, req, sizeof req);
  int k = n ? turn_transact(a, req, n, resp, cap, &m) : -1;
  if (k < 0) return snprintf(why, wl, "no answer to request 0x%03x", method), -1;
  if (m.type != (method | STUN_SUCCESS))
    return snprintf(why, wl, "request 0x%03x answered 0x%03x, error %d", method, m.type, m.error_code), -1;
  if (!stun_integrity_ok(resp, (size_t)k, &m, a->key, sizeof a->key))
    return snprintf(why, wl, "request 0x%03x answered without a valid MESSAGE-INTEGRITY", method), -1;
  *len = k;
  return 0;
}

/* Allocation i: sockets, Allocate (401 first, then with credentials), CreatePermission, ChannelBind.  0 or -1. */
static int turn_open(int i) {
  struct talloc *a = &tr.a[i];
  uint8_t req[512], resp[1024];
  struct stun_msg m;
  char why[160] = "", name[32], pass[32], text[256];
  int len, sz = 256 << 10; /* read every half millisecond: plenty, and the kernel's UDP memory is shared */
  socklen_t sl = sizeof a->peer_addr;
  *a = (struct talloc){.fd = -1, .peer = -1};
  client_addr(i, &a->local);
  a->peer_addr = (struct sockaddr_in){.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7f020000u | (uint32_t)(i + 1))};
  a->fd = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  a->peer = socket(AF_INET, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (a->fd < 0 || a->peer < 0 || bind(a->fd, (struct sockaddr *)&a->local, sizeof a->local) != 0 ||
      connect(a->fd, (struct sockaddr *)&lg.server_udp, sizeof lg.server_udp) != 0 ||
      bind(a->peer, (struct sockaddr *)&a->peer_addr, sizeof a->peer_addr) != 0 ||
      getsockname(a->peer, (struct sockaddr *)&a->peer_addr, &sl) != 0) {
    snprintf(why, sizeof why, "sockets: %s", strerror(errno));
    goto fail;
  }
  setsockopt(a->fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  setsockopt(a->peer, SOL_SOCKET, SO_RCVBUF, &sz, sizeof sz);
  /* A first Allocate without credentials learns the realm and a nonce from its 401. */
  size_t n = turn_request_write(a, TURN_ALLOCATE, 0, req, sizeof req);
  int k = n ? turn_transact(a, req, n, resp, sizeof resp, &m) : -1;
  if (k < 0 || m.type != (TURN_ALLOCATE | STUN_ERROR) || m.error_code != 401 || !m.realm || !m.nonce ||
      m.realm_len >= sizeof a->realm || m.nonce_len > sizeof a->nonce) {
    snprintf(why, sizeof why, "the first Allocate got %s (type 0x%03x, error %d), not a 401 with a realm and a nonce",
             k < 0 ? "no answer" : "an answer", k < 0 ? 0 : m.type, k < 0 ? 0 : m.error_code);
    goto fail;
  }
  memcpy(a->realm, m.realm, m.realm_len);
  a->realm_len = m.realm_len;
  memcpy(a->nonce, m.nonce, m.nonce_len);
  a->nonce_len = m.nonce_len;
  snprintf(name, sizeof name, "lg%d", i);
  turn_rest_user(name, a->user, pass);
  int tl = snprintf(text, sizeof text, "%s:%s:%s", a->user, a->realm, pass);
  if (tl < 0 || (size_t)tl >= sizeof text || mbedtls_md5_ret((const uint8_t *)text, (size_t)tl, a->key) != 0) {
    snprintf(why, sizeof why, "no key");
    goto fail;
  }
  if (turn_ask(a, TURN_ALLOCATE, 0, resp, sizeof resp, &len, why, sizeof why) != 0) goto fail;
  if (!turn_relayed_address(resp, (size_t)len, &a->relayed)) {
    snprintf(why, sizeof why, "an Allocate's success without an IPv4 XOR-RELAYED-ADDRESS");
    goto fail;
  }
  if (turn_ask(a, TURN_CREATE_PERMISSION, 0, resp, sizeof resp, &len, why, sizeof why) != 0 ||
      turn_ask(a, TURN_CHANNEL_BIND, TURN_CHANNEL, resp, sizeof resp, &len, why, sizeof why) != 0)
    goto fail;
  if (connect(a->peer, (struct sockaddr *)&a->relayed, sizeof a->relayed) != 0) {
    snprintf(why, sizeof why, "connect to the relay: %s", strerror(errno));
    goto fail;
  }
  tr.relay_port[ntohs(a->relayed.sin_port)] = true;
  struct epoll_event ev = {.events = EPOLLIN, .data.u32 = 2u * (uint32_t)i};
  epoll_ctl(tr.ep, EPOLL_CTL_ADD, a->fd, &ev);
  ev.data.u32 = 2u * (uint32_t)i + 1;
  epoll_ctl(tr.ep, EPOLL_CTL_ADD, a->peer, &ev);
  return 0;
fail:
  if (lg.errors_shown++ < 10) fprintf(stderr, "loadgen: turn: allocation %d: %s\n", i, why);
  if (a->fd >= 0) close(a->fd);
  if (a->peer >= 0) close(a->peer);
  a->fd = a->peer = -1;
  return -1;
}

/* The first of n UDP ports of 127.0.0.1 all free now, above the kernel's ephemeral ports (where other
 * programs' sockets come and go), for the relay (--turn-ports); 0 if there are none. */
static int turn_port_range(int n) {
  for (int base = 61000; base + n <= 65536; base += n) {
    int ok = 0;
    for (; ok < n; ok++) {
      struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)(base + ok)),
                              .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
      int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
      bool free_ = fd >= 0 && bind(fd, (struct sockaddr *)&a, sizeof a) == 0;
      if (fd >= 0) close(fd);
      if (!free_) break;
    }
    if (ok == n) return base;
  }
  return 0;
}

/* Allocations [tr.n, n) open; returns how many are open. */
static int turn_open_range(int n) {
  while (tr.n < n && turn_open(tr.n) == 0) tr.n++;
  return tr.n;
}

/* The last allocation goes: a Refresh with LIFETIME 0 (RFC 8656 7), then its sockets. */
static void turn_release_last(void) {
  struct talloc *a = &tr.a[tr.n - 1];
  uint8_t resp[512];
  char why[160];
  int len;
  if (turn_ask(a, TURN_REFRESH, 0, resp, sizeof resp, &len, why, sizeof why) != 0)
    fprintf(stderr, "loadgen: turn: releasing allocation %d: %s\n", tr.n - 1, why);
  tr.relay_port[ntohs(a->relayed.sin_port)] = false;
  epoll_ctl(tr.ep, EPOLL_CTL_DEL, a->fd, NULL);
  epoll_ctl(tr.ep, EPOLL_CTL_DEL, a->peer, NULL);
  close(a->fd);
  close(a->peer);
  tr.n--;
}

/* Datagrams the kernel dropped at our sockets for want of room (SO_MEMINFO): our peers' (up) or our clients'. */
static uint64_t turn_our_drops(bool up) {
  uint64_t sum = 0;
  for (int i = 0; i < tr.n; i++) {
    uint32_t mem[SK_MEMINFO_VARS] = {0};
    socklen_t l = sizeof mem;
    if (getsockopt(up ? tr.a[i].peer : tr.a[i].fd, SOL_SOCKET, SO_MEMINFO, mem, &l) == 0 && l > SK_MEMINFO_DROPS * sizeof *mem)
      sum += mem[SK_MEMINFO_DROPS];
  }
  return sum;
}

/* The server's sockets in /proc/net/udp (its UDP port, and our allocations' relay ports): the datagrams
 * the kernel dropped there for want of room, and the bytes waiting there now.  The file is read in one
 * go, as a listing read in pieces may miss or repeat a line while other programs' sockets come and go. */
static void turn_server_sockets(uint64_t *drops, uint64_t *queued) {
  static char text[4 << 20];
  size_t n = 0;
  ssize_t k;
  *drops = *queued = 0;
  int fd = open("/proc/net/udp", O_RDONLY | O_CLOEXEC);
  while (fd >= 0 && n < sizeof text - 1 && (k = read(fd, text + n, sizeof text - 1 - n)) > 0) n += (size_t)k;
  if (fd >= 0) close(fd);
  text[n] = 0;
  char *save = NULL;
  for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
    char *end = line + strlen(line);
    while (end > line && isspace((unsigned char)end[-1])) *--end = 0;
    unsigned addr, port;
    unsigned long tx, rx;
    unsigned long long d;
    const char *col = strrchr(line, ' ');
    if (sscanf(line, " %*u: %x:%x %*x:%*x %*x %lx:%lx", &addr, &port, &tx, &rx) != 4 || !col ||
        sscanf(col, "%llu", &d) != 1 || port > 65535)
      continue;
    if (ntohl(addr) == INADDR_LOOPBACK && (port == ntohs(lg.server_udp.sin_port) || tr.relay_port[port]))
      *drops += d, *queued += rx;
  }
}

/* Reads what came to our sockets and checks it: a peer gets its own
 * client's payload, whole; a client gets it back as ChannelData on its
 * channel (a Data indication would mean the channel was not used).  Each
 * payload carries the allocation's number, a sequence number and the run's.
 * A few batches a socket.  Returns the datagrams read. */
static int turn_read(bool up, size_t len) {
  static uint8_t in[TURN_BATCH][2048];
  struct mmsghdr m[TURN_BATCH];
  struct iovec v[TURN_BATCH];
  struct epoll_event ev[2 * CAMUS_TURN_ALLOCATIONS];
  int ready = epoll_wait(tr.ep, ev, (int)COUNT(ev), 0), total = 0;
  for (int e = 0; e < ready; e++) {
    uint32_t i = ev[e].data.u32 / 2;
    bool peer = ev[e].data.u32 & 1;
    int fd = peer ? tr.a[i].peer : tr.a[i].fd;
    for (int round = 0; round < 8; round++) {
      for (int j = 0; j < TURN_BATCH; j++) {
        v[j] = (struct iovec){in[j], sizeof in[j]};
        m[j].msg_hdr = (struct msghdr){.msg_iov = &v[j], .msg_iovlen = 1};
      }
      int k = recvmmsg(fd, m, TURN_BATCH, MSG_DONTWAIT, NULL);
      for (int j = 0; j < k; j++) {
        const uint8_t *p = in[j];
        size_t n = m[j].msg_len, at = peer ? 0 : 4;
        if (peer != up) {
          tr.strays++;
          continue;
        }
        if (n >= at + 12 && get_u32(p + at + 8) != tr.run) {
          tr.late++;
          continue;
        }
        tr.got++;
        bool ok = n == at + len && (peer || (get_u16(p) == TURN_CHANNEL && get_u16(p + 2) == len)) && get_u32(p + at) == i;
        tr.bad += !ok;
        tr.data_ind += !peer && n >= STUN_HDR && p[0] <= 1;
      }
      total += MAX(k, 0);
      if (k < TURN_BATCH) break;
    }
  }
  return total;
}

struct turn_sample {
  bool up;
  size_t len;
  double secs, sent, fwd, read;    /* in the window: datagrams we sent; arrived at our far sockets; of them read */
  double cpu, lg_cpu, others;      /* cores */
  uint64_t drops_server, drops_ours; /* in the window: at the server's sockets (it could not read them), at our full ones */
  int64_t lost;                    /* over the whole run: sent, less dropped at the server's sockets, less arrived */
  uint64_t bad, strays, data_ind, late; /* over the whole run */
  double cap;                      /* pkt/s the relay's rate limit allows all allocations together, at our share */
};

/* The counters at one moment of a run. */
struct turn_snap {
  uint64_t sent, read, arrived, drops_server, drops_ours, cpu, lg_cpu, all_cpu, t;
};

static struct turn_snap turn_snap(bool up) {
  struct turn_snap z;
  uint64_t queued;
  turn_server_sockets(&z.drops_server, &queued);
  z.drops_ours = turn_our_drops(up);
  z.sent = tr.sent, z.read = tr.got, z.arrived = tr.got + z.drops_ours;
  z.cpu = cpu_ns(), z.lg_cpu = self_cpu_ns(), z.all_cpu = machine_cpu_ns(), z.t = now_ns();
  return z;
}

/* What happened between two moments. */
static void turn_window(struct turn_sample *s, const struct turn_snap *x, const struct turn_snap *y) {
  s->secs = (double)(y->t - x->t) / 1e9;
  s->sent = (double)(y->sent - x->sent);
  s->fwd = (double)(y->arrived - x->arrived);
  s->read = (double)(y->read - x->read);
  s->drops_server = y->drops_server - x->drops_server;
  s->drops_ours = y->drops_ours - x->drops_ours;
  s->cpu = (double)(y->cpu - x->cpu) / 1e9 / s->secs;
  s->lg_cpu = (double)(y->lg_cpu - x->lg_cpu) / 1e9 / s->secs;
  s->others = MAX(0, (double)(y->all_cpu - x->all_cpu) / 1e9 / s->secs - s->cpu - s->lg_cpu);
}

#define TURN_WINDOWS 3

/* Datagrams of len bytes (payload) through every allocation, client to peer
 * (up) or peer to client, as fast as we can within TURN_SHARE of each
 * allocation's rate limit: 300 ms to settle, TURN_WINDOWS windows of ms,
 * then what is on the way.  The window that relayed the most counts: on a
 * shared machine, the one in which other processes let us be. */
static struct turn_sample turn_pump(bool up, size_t len, int ms) {
  static uint8_t pkt[TURN_BATCH][4 + TURN_VIDEO];
  struct mmsghdr out[TURN_BATCH];
  struct iovec v[TURN_BATCH];
  size_t at = up ? 4 : 0; /* ChannelData: channel number and length first (RFC 8656 12.4) */
  struct turn_sample s = {.up = up, .len = len};
  double rate = TURN_SHARE * CAMUS_TURN_KBPS * 125.0 / (double)len; /* a second, an allocation */
  for (int j = 0; j < TURN_BATCH; j++) {
    memset(pkt[j], 0x5a, sizeof pkt[j]);
    put_u16(pkt[j], TURN_CHANNEL);
    put_u16(pkt[j] + 2, (uint16_t)len);
    v[j] = (struct iovec){pkt[j], at + len};
    out[j].msg_hdr = (struct msghdr){.msg_iov = &v[j], .msg_iovlen = 1};
  }
  for (int i = 0; i < tr.n; i++) { /* a random phase each, so that their batches do not all go at once */
    uint8_t r;
    random_bytes(&lg.crypto, &r, 1);
    tr.a[i].tokens = r % (TURN_BATCH / 2);
  }
  tr.sent = tr.got = tr.bad = tr.strays = tr.late = tr.data_ind = 0;
  tr.run++;
  struct turn_snap first = turn_snap(up), snap[TURN_WINDOWS + 1];
  uint64_t start = now_ns(), next = start + 300000000ull, last = start, last_read = 0;
  int w = 0; /* snapshots taken: the windows are the spans between them */
  for (uint64_t guard = 0; guard < 1000000000ull && w <= TURN_WINDOWS; guard++) {
    uint64_t now = now_ns();
    if (now >= next) {
      snap[w++] = turn_snap(up);
      next = snap[w - 1].t + (uint64_t)ms * 1000000u;
      continue;
    }
    bool busy = false;
    double add = rate * (double)(now - last) / 1e9;
    last = now;
    for (int i = 0; i < tr.n; i++) {
      struct talloc *a = &tr.a[i];
      a->tokens = MIN(a->tokens + add, (double)TURN_BATCH);
      if (a->tokens < TURN_BATCH / 2) continue;
      int k = (int)a->tokens;
      for (int j = 0; j < k; j++)
        put_u32(pkt[j] + at, (uint32_t)i), put_u32(pkt[j] + at + 4, a->seq++), put_u32(pkt[j] + at + 8, tr.run);
      int sent = sendmmsg(up ? a->fd : a->peer, out, (unsigned)k, 0);
      a->tokens -= k; /* what the socket did not take is not sent later in a burst */
      tr.sent += (uint64_t)MAX(sent, 0);
      busy = true;
    }
    if (!busy || now - last_read >= 500000) { /* reads in batches, every half millisecond while sending */
      last_read = now;
      busy |= turn_read(up, len) > 0;
      if (guard % 64 == 0) drain_log();
    }
    if (!busy) nanosleep(&(struct timespec){0, 50000}, NULL);
  }
  /* What is still on the way (in the server's socket buffers, when it is slower than we are) comes: until
   * nothing waits there and 100 ms pass without any, 10 s at most. */
  for (uint64_t quiet = now_ns(), end = quiet + 10000000000ull; now_ns() < end;) {
    uint64_t d, queued = 1;
    if (turn_read(up, len) > 0)
      quiet = now_ns();
    else if (now_ns() - quiet >= 100000000ull && (turn_server_sockets(&d, &queued), !queued))
      break;
    else
      nanosleep(&(struct timespec){0, 1000000}, NULL);
  }
  struct turn_snap end = turn_snap(up);
  for (int k = 0; k + 1 < w; k++) {
    struct turn_sample m = s;
    turn_window(&m, &snap[k], &snap[k + 1]);
    if (getenv("LOADGEN_DEBUG"))
      fprintf(stderr, "  window %d: %.3f s, sent %.0f, arrived %.0f, read %.0f; CPU: server %.2f, loadgen %.2f, others %.2f\n", k,
              m.secs, m.sent, m.fwd, m.read, m.cpu, m.lg_cpu, m.others);
    if (k == 0 || m.fwd / m.secs > s.fwd / s.secs) s = m; /* each lasts ms at least, and longer if we were held up */
  }
  s.cap = rate * tr.n;
  s.lost = (int64_t)(end.sent - first.sent) - (int64_t)(end.drops_server - first.drops_server) -
           (int64_t)(end.arrived - first.arrived);
  s.bad = tr.bad, s.strays = tr.strays, s.data_ind = tr.data_ind, s.late = tr.late;
  return s;
}

static double turn_us(const struct turn_sample *s) { return s->fwd > 0 ? s->cpu * s->secs * 1e6 / s->fwd : 0; }

static void turn_print(const struct turn_sample *s) {
  int cores = (int)sysconf(_SC_NPROCESSORS_ONLN);
  const char *limit = s->cpu >= 0.95                          ? "the server's core"
                      : s->lg_cpu >= 0.95                     ? "THE LOAD GENERATOR's core"
                      : s->sent >= 0.97 * s->cap * s->secs    ? "the relay's rate limit per allocation (CAMUS_TURN_KBPS)"
                      : s->cpu + s->lg_cpu + s->others >= 0.9 * cores ? "the machine's cores: OTHER PROCESSES took some"
                                                              : "unclear (no core busy)";
  printf("turn: %-14s %4zu B, %d allocations: sent %7.0f pkt/s, relayed %7.0f pkt/s (we read %.0f/s, our full sockets "
         "dropped %llu); dropped at the server's sockets %llu, lost in the server %lld, malformed %llu (Data "
         "indications %llu), strays %llu, late %llu; CPU: server %3.0f%%, loadgen %3.0f%%, others %3.0f%%; %.2f us a "
         "packet; limit: %s\n",
         s->up ? "client->peer" : "peer->client", s->len, tr.n, s->sent / s->secs, s->fwd / s->secs, s->read / s->secs,
         (unsigned long long)s->drops_ours, (unsigned long long)s->drops_server, (long long)s->lost,
         (unsigned long long)s->bad, (unsigned long long)s->data_ind, (unsigned long long)s->strays,
         (unsigned long long)s->late, 100 * s->cpu,
         100 * s->lg_cpu, 100 * s->others, turn_us(s), limit);
  fflush(stdout);
}

/* RSS of the [heap] mapping (/proc/<pid>/smaps), KiB: the allocator's main arena, where allocations live. */
static long heap_kb(void) {
  char path[64], line[256];
  long v = -1;
  bool in = false;
  snprintf(path, sizeof path, "/proc/%d/smaps", (int)lg.pid);
  FILE *f = fopen(path, "r");
  for (int guard = 0; f && guard < 1000000 && fgets(line, sizeof line, f); guard++) {
    if (strchr(line, '-') && strchr(line, '-') < strchr(line, ' ') && isxdigit((unsigned char)line[0]))
      in = strstr(line, "[heap]") != NULL; /* a mapping's first line: "start-end perms ..." */
    else if (in && !strncmp(line, "Rss:", 4))
      v = atol(line + 4), in = false;
  }
  if (f) fclose(f);
  return v;
}

/* The size of one object of a kernel slab cache (/proc/slabinfo, root only), or 0. */
static long slab_bytes(const char *name) {
  char line[512], n[64];
  long active, total, size = 0;
  FILE *f = fopen("/proc/slabinfo", "r");
  for (int guard = 0; f && guard < 100000 && fgets(line, sizeof line, f); guard++)
    if (sscanf(line, "%63s %ld %ld %ld", n, &active, &total, &size) == 4 && !strcmp(n, name)) break;
    else size = 0;
  if (f) fclose(f);
  return size;
}

/* What an allocation costs the server: RSS (and its heap) with none (after
 * one came and went, which paid what the relay allocates once) and with as
 * many as it allows, each with a permission and a channel. */
static void turnmem_phase(void) {
  char label[160];
  int want = CAMUS_TURN_ALLOCATIONS;
  if (turn_open_range(1) != 1) {
    fprintf(stderr, "loadgen: turnmem: no allocation\n");
    return;
  }
  turn_pump(true, TURN_AUDIO, 20);
  turn_pump(false, TURN_AUDIO, 20);
  turn_release_last();
  lg_wait_ms(1500);
  long rss0 = rss_kb(), heap0 = heap_kb();
  int n = turn_open_range(want);
  lg_wait_ms(1500);
  long rss1 = rss_kb(), heap1 = heap_kb();
  printf("turnmem: RSS (KiB) %ld with no allocation, %ld with %d; heap %ld, then %ld\n", rss0, rss1, n, heap0, heap1);
  if (n != want) fprintf(stderr, "loadgen: turnmem: %d of %d allocations made\n", n, want);
  double per = n ? (double)(rss1 - rss0) / n : 0, per_heap = n ? (double)(heap1 - heap0) / n : 0;
  snprintf(label, sizeof label, "TURN: RSS, %d allocations (a permission, a channel each)", n);
  fig("turn_rss_allocs_kb", strdup(label), (double)rss1, "KiB", NULL, -1);
  fig("turn_rss_no_alloc_kb", "  with none (after one came and went)", (double)rss0, "KiB", NULL, -1);
  fig("turn_rss_per_alloc_kb", "  per allocation (RSS)", per, "KiB", "<= 4", n && per <= 4);
  fig("turn_heap_per_alloc_kb", "  per allocation, the heap's part ([heap] in smaps)", per_heap, "KiB", NULL, -1);
  fig("turn_alloc_struct_bytes", "  sizeof(struct turn_alloc)", (double)sizeof(struct turn_alloc), "bytes", NULL, -1);
  long k_udp = slab_bytes("UDP"), k_inode = slab_bytes("sock_inode_cache"), k_file = slab_bytes("filp"),
       k_dentry = slab_bytes("dentry"), kernel = k_udp + k_inode + k_file + k_dentry;
  if (kernel)
    printf("turnmem: not in RSS: the kernel's side of each relay socket, its objects (UDP %ld B, sock_inode_cache %ld B, "
           "filp %ld B, dentry %ld B: %ld B) and the datagrams its buffers hold\n",
           k_udp, k_inode, k_file, k_dentry, kernel);
  else
    printf("turnmem: not in RSS: the kernel's side of each relay socket (its objects, and the datagrams its buffers hold)\n");
  fig("turn_kernel_per_socket_bytes", "  not in RSS: kernel objects of its socket (buffers aside)", (double)kernel,
      "bytes", NULL, -1);
}

/* The relay's packet rate and CPU cost, each way, at audio's and video's sizes. */
static void turn_phase(void) {
  static const char *const key[2] = {"audio", "video"};
  static const size_t size[2] = {TURN_AUDIO, TURN_VIDEO};
  char k[64], label[160];
  double kernel[2] = {sfu_cost_send(4 + TURN_AUDIO), sfu_cost_send(4 + TURN_VIDEO)};
  int n = turn_open_range(CAMUS_TURN_ALLOCATIONS);
  if (n < CAMUS_TURN_ALLOCATIONS) fprintf(stderr, "loadgen: turn: %d of %d allocations made\n", n, CAMUS_TURN_ALLOCATIONS);
  if (!n) return;
  for (int up = 1; up >= 0; up--)
    for (int z = 0; z < 2; z++) {
      struct turn_sample s = turn_pump(up, size[z], 1000);
      turn_print(&s);
      const char *dir = up ? "up" : "down";
      double us = turn_us(&s), core = us > 0 ? 1e6 / us : 0;
      snprintf(k, sizeof k, "turn_%s_%s_per_s", dir, key[z]);
      snprintf(label, sizeof label, "TURN %s, %zu B: relayed/s (server CPU %.0f%%)", up ? "client->peer" : "peer->client",
               size[z], 100 * s.cpu);
      fig(strdup(k), strdup(label), s.secs > 0 ? s.fwd / s.secs : 0, "pkt/s", NULL, -1);
      snprintf(k, sizeof k, "turn_%s_%s_cpu_us", dir, key[z]);
      fig(strdup(k), "  server CPU per relayed packet", us, "us", NULL, -1);
      snprintf(k, sizeof k, "turn_%s_%s_core_per_s", dir, key[z]);
      fig(strdup(k), "  relayed packets/s a core can carry at that cost", core, "pkt/s", ">= 200000",
          s.fwd > 0 && !s.bad && core >= 200000);
      if (up) { /* once a size: the server's send of a relayed packet, its largest part, is the kernel's */
        snprintf(k, sizeof k, "turn_kernel_send_%s_us", key[z]);
        snprintf(label, sizeof label, "  of it, the kernel's send of %zu B on loopback, alone", 4 + size[z]);
        fig(strdup(k), strdup(label), kernel[z], "us", NULL, -1);
      }
      if (s.bad || s.strays || s.lost > (int64_t)(s.fwd / 1000))
        fprintf(stderr, "loadgen: turn: %s %zu B: %llu malformed, %llu strays, %lld lost in the server\n", dir, size[z],
                (unsigned long long)s.bad, (unsigned long long)s.strays, (long long)s.lost);
    }
}

static void turn_close_all(void) {
  while (tr.n) turn_release_last();
}

/* ============================================================== ICE-TCP PHASE =============================================================== */

/* Joins one at a time, alternately over UDP and over ICE-TCP (RFC 6544: a
 * TCP connection to the answer's passive candidate, the HTTP port, STUN and
 * DTLS framed as RFC 4571 says), from the offer's POST to the data channel's
 * open, and where the time goes. */
static void icetcp_phase(int n) {
  static const char *const step_name[5] = {"offer/answer", "ICE", "DTLS", "SCTP", "DCEP"};
  uint64_t *t[2], *st[2][5];
  size_t got[2] = {0, 0};
  char label[160];
  for (int w = 0; w < 2; w++) {
    t[w] = calloc((size_t)n, sizeof *t[w]);
    for (int j = 0; j < 5; j++) st[w][j] = calloc((size_t)n, sizeof *st[w][j]);
  }
  lg_wait_ms(100); /* the loop's clock, which the sessions' timers read, was not kept while the TURN phases ran */
  for (int i = 0; i < 2 * n; i++) {
    struct user *c = &lg.c[i];
    int w = i & 1;
    c->tcp = w;
    if (join_range(i, i + 1, 1, 10) != 1 || !c->t_open) continue;
    uint64_t s[6] = {c->t_post, c->t_answer, c->t_ice, c->t_dtls, c->t_sctp, c->t_open};
    if (getenv("LOADGEN_DEBUG"))
      fprintf(stderr, "  join %d over %s: %.2f %.2f %.2f %.2f %.2f ms\n", i, w ? "TCP" : "UDP", (s[1] - s[0]) / 1e6,
              (s[2] - s[1]) / 1e6, (s[3] - s[2]) / 1e6, (s[4] - s[3]) / 1e6, (s[5] - s[4]) / 1e6);
    for (int j = 0; j < 5; j++) st[w][j][got[w]] = s[j + 1] >= s[j] ? s[j + 1] - s[j] : 0;
    t[w][got[w]++] = c->t_open - c->t_post;
  }
  leave_range(0, 2 * n);
  for (int i = 0; i < 2 * n; i++) lg.c[i].tcp = false;
  for (int w = 0; w < 2; w++) {
    printf("icetcp: %s joins, medians (ms):", w ? "ICE-TCP" : "UDP");
    for (int j = 0; j < 5; j++) printf(" %s %.2f", step_name[j], quantile_ms(st[w][j], got[w], 0.5));
    printf("\n");
  }
  double u50 = quantile_ms(t[0], got[0], 0.5), u95 = quantile_ms(t[0], got[0], 0.95);
  double c50 = quantile_ms(t[1], got[1], 0.5), c95 = quantile_ms(t[1], got[1], 0.95);
  snprintf(label, sizeof label, "join over UDP (%zu of %d): POST to channel open, median", got[0], n);
  fig("icetcp_udp_open_p50_ms", strdup(label), u50, "ms", NULL, -1);
  fig("icetcp_udp_open_p95_ms", "  p95", u95, "ms", NULL, -1);
  snprintf(label, sizeof label, "join over ICE-TCP (%zu of %d): POST to channel open, median", got[1], n);
  fig("icetcp_tcp_open_p50_ms", strdup(label), c50, "ms", NULL, -1);
  fig("icetcp_tcp_open_p95_ms", "  p95", c95, "ms", NULL, -1);
  double r50 = u50 > 0 ? c50 / u50 : 0, r95 = u95 > 0 ? c95 / u95 : 0;
  bool all = got[0] == (size_t)n && got[1] == (size_t)n;
  fig("icetcp_ratio_p50", "  ICE-TCP / UDP, medians", r50, "x", "<= 2", all && r50 > 0 && r50 <= 2);
  fig("icetcp_ratio_p95", "  ICE-TCP / UDP, p95s", r95, "x", NULL, -1);
  for (int w = 0; w < 2; w++) {
    free(t[w]);
    for (int j = 0; j < 5; j++) free(st[w][j]);
  }
}

/* =================================================================== MAIN =================================================================== */

#define PHASES "startup,levels,relay,churn,turnmem,turn,icetcp,small,sfu"

static void usage(void) {
  fprintf(stderr, "usage: loadgen --server BIN [--static BIN] [--json FILE] [--clients N] [--joins N] [--churn N]\n"
                  "               [--sfu-rooms N] [--sfu-verify N] [--icetcp-joins N] [--phases " PHASES "]\n");
  exit(2);
}

/* Whether name is one of the comma-separated phases. */
static bool phase_on(const char *phases, const char *name) {
  size_t n = strlen(name);
  for (const char *p = phases; p && *p; p = strchr(p, ',') ? strchr(p, ',') + 1 : NULL)
    if (!strncmp(p, name, n) && (p[n] == ',' || !p[n])) return true;
  return false;
}

int main(int argc, char **argv) {
  const char *bin = NULL, *static_bin = NULL, *json_path = NULL, *phases = PHASES;
  int max_clients = 5000, n_joins = 200, churn = 1000, sfu_rooms = 80, sfu_verify = SFU_SUBS, icetcp_joins = 30;
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
    else if (!strcmp(argv[i], "--sfu-rooms") && v)
      sfu_rooms = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--sfu-verify") && v)
      sfu_verify = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--icetcp-joins") && v)
      icetcp_joins = atoi(argv[++i]);
    else if (!strcmp(argv[i], "--phases") && v)
      phases = argv[++i];
    else
      usage();
  }
  if (!bin || max_clients < 100 || n_joins < 1 || churn < 1 || sfu_rooms < 1 || sfu_verify < 1 || icetcp_joins < 1 ||
      2 * icetcp_joins > max_clients)
    usage();
  int sfu_clients = (sfu_rooms + SFU_CHURN_ROOMS) * SFU_ROOM + SFU_KEY_JOINS;
  if (sfu_rooms + SFU_CHURN_ROOMS > (int)COUNT(lg.rooms_made)) usage();
  signal(SIGPIPE, SIG_IGN);
  struct rlimit rl;
  rlim_t fds = (rlim_t)MAX(max_clients, sfu_clients) + 512;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < fds) {
    rl.rlim_cur = rl.rlim_max < fds ? rl.rlim_max : fds;
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
  lg.host.on_media = lg_rtc_media;
  lg.ep = epoll_create1(EPOLL_CLOEXEC);
  int total = max_clients + n_joins + 2, n_users = MAX(MAX(total, churn), sfu_clients);
  lg.c = calloc((size_t)n_users, sizeof *lg.c);
  lg.n_users = n_users;
  lg.pubs = calloc((size_t)n_users, sizeof *lg.pubs);
  lg.cap_lat = 1000000;
  lg.lat = calloc(lg.cap_lat, sizeof *lg.lat);
  lg.lat_app = calloc(lg.cap_lat, sizeof *lg.lat_app);
  lg.spare_lat = calloc(lg.cap_lat, sizeof *lg.spare_lat);
  lg.spare_app = calloc(lg.cap_lat, sizeof *lg.spare_app);
  lg.cap_keys = 4096;
  lg.keys = calloc(lg.cap_keys, sizeof *lg.keys);
  if (!lg.c || !lg.pubs || !lg.lat || !lg.lat_app || !lg.spare_lat || !lg.spare_app || !lg.keys) {
    fprintf(stderr, "loadgen: out of memory\n");
    return 1;
  }
  for (int i = 0; i < n_users; i++) lg.c[i].fd = -1;
  static const char *const server_extra[] = {"--msg-rate", "10000000", "--max-connections", "4000", NULL};

  /* Sizes and start-up. */
  if (phase_on(phases, "startup")) {
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
  bool core = phase_on(phases, "levels") || phase_on(phases, "relay") || phase_on(phases, "churn");
  if (core) {
    server_up(bin, server_extra);
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
    for (size_t k = 0; k < COUNT(levels) && prev_n < max_clients && phase_on(phases, "levels"); k++) {
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
    if (phase_on(phases, "relay") && join_range(0, 2, 2, 100000) == 2) {
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
    for (int cyc = 1; cyc <= CYCLES && phase_on(phases, "churn"); cyc++) {
      int ok = join_range(0, churn, 32, 10);
      leave_range(0, churn);
      lg_wait_ms(2000);
      rss_cycle[cyc] = rss_kb();
      if (ok != churn) fprintf(stderr, "loadgen: cycle %d: %d of %d joined\n", cyc, ok, churn);
    }
    if (phase_on(phases, "churn")) {
      char series[512] = "";
      for (int cyc = 0; cyc <= CYCLES; cyc++)
        snprintf(series + strlen(series), sizeof series - strlen(series), "%s%ld", cyc ? " " : "", rss_cycle[cyc]);
      printf("RSS (KiB) before and after each of %d cycles of %d joins and leaves: %s\n", CYCLES, churn, series);
      fig("rss_after_cycle1_kb", "RSS after the first cycle of joins and leaves", (double)rss_cycle[1], "KiB", NULL, -1);
      fig("rss_after_last_cycle_kb", "RSS after the twelfth cycle", (double)rss_cycle[CYCLES], "KiB", NULL, -1);
      double growth = (double)(rss_cycle[CYCLES] - rss_cycle[CYCLES - 3]) / 3;
      fig("churn_growth_kb", "growth per cycle over the last three", growth, "KiB", "<= 64", growth <= 64);
    }
    server_down();
  }

  /* The TURN relay, then ICE over TCP beside UDP: one server, started with a TURN secret of ours. */
  if (phase_on(phases, "turnmem") || phase_on(phases, "turn") || phase_on(phases, "icetcp")) {
    char ports[32] = "";
    int tp = turn_port_range(2 * CAMUS_TURN_ALLOCATIONS); /* so that its quota, not its ports, limits allocations */
    if (tp) snprintf(ports, sizeof ports, "%d-%d", tp, tp + 2 * CAMUS_TURN_ALLOCATIONS - 1);
    const char *turn_extra[] = {"--msg-rate",  "10000000",    "--max-connections", "4000",
                                "--turn-secret", TURN_SECRET, "--turn-allow",      "127.0.0.0/8",
                                tp ? "--turn-ports" : NULL,   ports,               NULL};
    server_up(bin, turn_extra);
    lg_wait_ms(1000);
    tr.ep = epoll_create1(EPOLL_CLOEXEC);
    if (phase_on(phases, "turnmem")) turnmem_phase();
    if (phase_on(phases, "turn")) turn_phase();
    turn_close_all();
    close(tr.ep);
    if (phase_on(phases, "icetcp")) icetcp_phase(icetcp_joins);
    server_down();
  }
  if (phase_on(phases, "small")) small_phase(bin);
  if (phase_on(phases, "sfu")) sfu_phase(bin, server_extra, sfu_rooms, sfu_verify);
  report(json_path, machine);
  return 0;
}
