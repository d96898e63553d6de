/*
 * libFuzzer targets for camus.c.  Like test/unit.c, the file includes camus.c
 * itself to reach its static functions.  One target per build, chosen with
 * -DFUZZ_<name>:
 *
 *   http  http_parse(), then form_get() on the body
 *   json  json_parse() and every reader over its tokens; json_write_str() round trip
 *   sdp   sdp_parse_offer(), then sdp_write_answer(), whose answer must parse back
 *   stun  stun_parse() and stun_integrity_ok(); an answer written for it must parse back
 *   dcep  dcep_parse_open(), whose fields must encode back to the same bytes
 *   srtp  srtp_unprotect() and srtcp_unprotect() of any bytes; protect then unprotect gives them back
 *   msg   msg_input() of a room member with an open message channel, on a real server
 *   udp   udp_input() on a real server with one session in ICE and two in DTLS (client, server)
 *
 * Build:  clang -fsanitize=fuzzer,address,undefined -DFUZZ_json -o fuzz-json test/fuzz.c \
 *           -lmbedtls -lmbedx509 -lmbedcrypto -lusrsctp -lpthread
 * or simply `sh test/fuzz.sh`, which builds and runs them all on test/corpus/<name>/.
 * FUZZ_LOG=1 in the environment shows the server's debug log in the msg and udp targets.
 */
#define CAMUS_NO_MAIN
#include "../camus.c"

#ifndef FUZZ_FIXTURES
#define FUZZ_FIXTURES "test/fixtures" /* where the SDP offers are; fuzz.sh passes an absolute path */
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A broken invariant aborts, which libFuzzer reports as a crash. */
#define FUZZ_CHECK(cond)                                                                                     \
  do {                                                                                                       \
    if (!(cond)) {                                                                                           \
      fprintf(stderr, "fuzz: %s:%d: invariant broken: %s\n", __FILE__, __LINE__, #cond);                    \
      abort();                                                                                               \
    }                                                                                                        \
  } while (0)

/* ------------------------------------------------------------------ HTTP ------------------------------------------------------------------ */
#if defined(FUZZ_http)

/* A view lies within [lo, hi) (an empty one may point anywhere). */
static inline bool view_in(struct str v, const char *lo, const char *hi) {
  return v.n == 0 || (v.p >= lo && v.p <= hi && v.n <= (size_t)(hi - v.p));
}

static void fuzz(const uint8_t *data, size_t size) {
  static struct http_req r, head;
  static const char *const keys[] = {"name", "password", "public", "guest_limit", "sdp", "token", "a", ""};
  const char *s = (const char *)data, *end = s + size;
  int n = http_parse(s, size, &r);
  struct str body = {s, size};
  if (n > 0) {
    FUZZ_CHECK((size_t)n <= size);
    FUZZ_CHECK(view_in(r.method, s, end) && view_in(r.target, s, end) && view_in(r.path, s, end) &&
               view_in(r.query, s, end) && r.nh >= 0 && r.nh <= CAMUS_HTTP_MAX_HEADERS);
    FUZZ_CHECK(r.path.n > 0 && r.path.p[0] == '/' && (r.minor == 0 || r.minor == 1));
    for (int i = 0; i < r.nh; i++) FUZZ_CHECK(view_in(r.h[i].name, s, s + n) && view_in(r.h[i].value, s, s + n));
    /* The head alone parses the same: nothing after it was looked at. */
    FUZZ_CHECK(http_parse(s, (size_t)n, &head) == n && head.nh == r.nh && head.content_length == r.content_length &&
               head.keep_alive == r.keep_alive && head.path.n == r.path.n && head.query.n == r.query.n);
    (void)http_header(&r, "content-type");
    (void)http_header(&r, "HOST");
    body = (struct str){s + n, size - (size_t)n};
    if (r.content_length >= 0 && (unsigned long long)r.content_length < body.n) body.n = (size_t)r.content_length;
  } else {
    FUZZ_CHECK(n == 0 || n == -400 || n == -414 || n == -431 || n == -501);
    FUZZ_CHECK(strcmp(http_reason(-n), "Unknown") != 0 || n == 0);
  }
  for (size_t k = 0; k < COUNT(keys); k++) {
    char out[128];
    size_t caps[] = {sizeof out, 2, 1};
    for (size_t c = 0; c < COUNT(caps); c++) {
      int got = form_get(body, keys[k], out, caps[c]);
      FUZZ_CHECK(got >= -2 && (got < 0 || ((size_t)got < caps[c] && out[got] == 0)));
    }
  }
}

/* ------------------------------------------------------------------ JSON ------------------------------------------------------------------ */
#elif defined(FUZZ_json)

static struct json_tok toks[CAMUS_MSG_TOKENS];

/* Every member key of object obj that json_find() can name is found. */
static void check_object(const char *s, int obj, char *tmp) {
  static const char *const keys[] = {"type", "receiver", "data", "username", "sender", ""};
  for (size_t k = 0; k < COUNT(keys); k++) {
    int v = json_find(s, toks, obj, keys[k]);
    FUZZ_CHECK(v == -1 || (v > obj + 1 && (uint32_t)v < toks[obj].end));
  }
  int i = obj + 1;
  for (uint32_t m = 0; m < toks[obj].n; m++) {
    FUZZ_CHECK((uint32_t)i < toks[obj].end && toks[i].type == JSON_STRING);
    int kl = json_str(s, toks, i, tmp, 64);
    if (kl >= 0 && strlen(tmp) == (size_t)kl) {
      int v = json_find(s, toks, obj, tmp);
      FUZZ_CHECK(v > obj + 1 && v <= i + 1 && toks[v - 1].type == JSON_STRING);
      /* The member found has this very key (for keys without a backslash, which a raw match could fake). */
      char *found = tmp + 64;
      if (!strchr(tmp, '\\')) FUZZ_CHECK(json_str(s, toks, v - 1, found, 64) == kl && !memcmp(found, tmp, (size_t)kl));
    }
    i = (int)toks[i + 1].end;
  }
  FUZZ_CHECK((uint32_t)i == toks[obj].end);
}

static void fuzz(const uint8_t *data, size_t size) {
  const char *s = (const char *)data;
  char *tmp = malloc(size + 128); /* any string unescaped, or two keys of 64 bytes */
  int nt = json_parse(s, size, toks, (int)COUNT(toks));
  FUZZ_CHECK(nt > 0 || nt == JSON_ERR_SYNTAX || nt == JSON_ERR_NOMEM || nt == JSON_ERR_DEPTH || nt == JSON_ERR_DUPLICATE);
  if (nt > 0) FUZZ_CHECK(toks[0].end == (uint32_t)nt);
  for (int i = 0; i < nt; i++) {
    const struct json_tok *t = &toks[i];
    FUZZ_CHECK(t->type >= JSON_NULL && t->type <= JSON_OBJECT && t->end > (uint32_t)i && t->end <= (uint32_t)nt);
    FUZZ_CHECK(t->start <= size && t->len <= size - t->start);
    long long v;
    switch (t->type) {
    case JSON_STRING: {
      int k = json_str(s, toks, i, tmp, (size_t)t->len + 1);
      FUZZ_CHECK(k >= 0 && (uint32_t)k <= t->len && tmp[k] == 0 && utf8_valid(tmp, (size_t)k));
      FUZZ_CHECK(json_str(s, toks, i, tmp, (size_t)k) == -1);
      break;
    }
    case JSON_NUMBER:
      if (json_int(s, toks, i, &v)) {
        char back[32];
        int k = snprintf(back, sizeof back, "%lld", v);
        FUZZ_CHECK((t->len == 2 && !memcmp(s + t->start, "-0", 2)) ||
                   ((uint32_t)k == t->len && !memcmp(back, s + t->start, t->len)));
      }
      break;
    case JSON_OBJECT: check_object(s, i, tmp); break;
    default: FUZZ_CHECK(json_str(s, toks, i, tmp, 64) == -1 && json_find(s, toks, i, "type") == -1); break;
    }
  }
  /* The writer's output always parses; valid UTF-8 comes back unchanged. */
  struct buf b = {0};
  struct json_tok one[2];
  json_write_str(&b, s, size);
  FUZZ_CHECK(!b.err && json_parse(b.p, b.len, one, (int)COUNT(one)) == 1 && one[0].type == JSON_STRING);
  char *back = malloc(b.len + 1);
  int k = json_str(b.p, one, 0, back, b.len + 1);
  FUZZ_CHECK(k >= 0 && utf8_valid(back, (size_t)k) && !memchr(b.p, '<', b.len));
  if (utf8_valid(s, size)) FUZZ_CHECK((size_t)k == size && !memcmp(back, s, size));
  free(back);
  buf_free(&b);
  free(tmp);
}

/* ------------------------------------------------------------------ SDP ------------------------------------------------------------------- */
#elif defined(FUZZ_sdp)

static void fuzz(const uint8_t *data, size_t size) {
  static struct sdp_offer o, back;
  static const uint8_t fp[32] = {0xde, 0xad, 0xbe, 0xef, 1, 2, 3};
  static const struct sdp_candidate cands[] = {{"127.0.0.1", 5000, 2130706431u}, {"::1", 5000, 2130706175u}};
  const struct sdp_local local = {"00000abcdefghijk", "0123456789abcdef0123456789abcdef", fp, cands, 2, 65536, 42};
  const char *err = NULL;
  if (sdp_parse_offer((const char *)data, size, &o, &err) != 0) {
    FUZZ_CHECK(err != NULL);
    return;
  }
  FUZZ_CHECK(o.n_media > 0 && o.n_media <= CAMUS_SDP_MAX_MEDIA && o.data_index >= 0 && o.data_index < o.n_media);
  FUZZ_CHECK(o.m[o.data_index].data != SDP_NOT_DATA);
  /* Known: "m=application 9 DTLS/SCTP x" leaves sctp_port at -1 (sdp_num's error), and peer_new() then
   * connects SCTP to port 65535. */
  FUZZ_CHECK(o.m[o.data_index].sctp_port > 0 && o.m[o.data_index].sctp_port <= 65535);
  FUZZ_CHECK(strlen(o.ufrag) >= 4 && strlen(o.pwd) >= 22 && o.setup != SDP_SETUP_NONE);
  struct buf b = {0};
  FUZZ_CHECK(sdp_write_answer(&b, &o, &local, &err) == 0 && !b.err);
  /* The answer is SDP our own parser reads: the same sections, our credentials, the other role. */
  err = NULL;
  int rc = sdp_parse_offer(b.p, b.len, &back, &err);
  if (rc != 0) fprintf(stderr, "fuzz: answer refused: %s\n%s", err, b.p);
  FUZZ_CHECK(rc == 0 && back.n_media == o.n_media && back.data_index == o.data_index);
  FUZZ_CHECK(back.m[back.data_index].data == o.m[o.data_index].data && !strcmp(back.ufrag, local.ufrag) &&
             !strcmp(back.pwd, local.pwd) && !memcmp(back.fingerprint, fp, 32));
  FUZZ_CHECK(back.setup == (o.setup == SDP_SETUP_ACTIVE ? SDP_SETUP_PASSIVE : SDP_SETUP_ACTIVE));
  for (int i = 0; i < o.n_media; i++)
    FUZZ_CHECK(!strcmp(back.m[i].kind, o.m[i].kind) && !strcmp(back.m[i].mid, o.m[i].mid));
  buf_free(&b);
}

/* ------------------------------------------------------------------ STUN ------------------------------------------------------------------ */
#elif defined(FUZZ_stun)

static const char key[] = "VOkJxbRl1RmTxUk/WvJxBt"; /* RFC 5769's password: its vectors pass the check */

static void fuzz(const uint8_t *data, size_t size) {
  struct stun_msg m, back;
  if (stun_parse(data, size, &m) != 0) return;
  FUZZ_CHECK(stun_is(data, size) && m.len + STUN_HDR == size && m.txid == data + 8);
  FUZZ_CHECK(!m.username || (m.username >= data + STUN_HDR && m.username + m.username_len <= data + size));
  FUZZ_CHECK(!m.integrity_at || (m.integrity_at >= STUN_HDR && m.integrity_at + 24 <= size));
  FUZZ_CHECK(m.n_unknown >= 0 && m.n_unknown <= 4 && (m.fingerprint || !m.fingerprint_ok));
  bool ok = stun_integrity_ok(data, size, &m, key, strlen(key));
  FUZZ_CHECK(!ok || m.integrity_at);
  if (m.has_mapped) FUZZ_CHECK(m.mapped.ss_family == AF_INET || m.mapped.ss_family == AF_INET6);
  /* Answer it as stun_input() would; the answer parses back with the same fields. */
  uint8_t out[256];
  struct stun_writer w = {out, sizeof out, 0, false};
  stun_begin(&w, m.n_unknown ? STUN_BINDING_ERROR : STUN_BINDING_SUCCESS, m.txid);
  if (m.has_mapped) stun_xor_address(&w, (const struct sockaddr *)&m.mapped);
  if (m.n_unknown) {
    uint8_t list[8];
    for (int i = 0; i < m.n_unknown; i++) put_u16(list + 2 * i, m.unknown[i]);
    stun_error(&w, 420, "Unknown Attribute");
    stun_attr(&w, STUN_A_UNKNOWN_ATTRIBUTES, list, (uint16_t)(2 * m.n_unknown));
  }
  stun_integrity(&w, key, strlen(key));
  stun_fingerprint(&w);
  FUZZ_CHECK(!w.err && stun_parse(out, w.len, &back) == 0 && back.fingerprint_ok && !memcmp(back.txid, m.txid, 12));
  FUZZ_CHECK(stun_integrity_ok(out, w.len, &back, key, strlen(key)) && back.has_mapped == m.has_mapped);
  if (m.has_mapped) {
    struct addr_key a = addr_key(&m.mapped), b = addr_key(&back.mapped);
    FUZZ_CHECK(!memcmp(&a, &b, sizeof a));
  }
  if (m.n_unknown) FUZZ_CHECK(back.error_code == 420);
}

/* ------------------------------------------------------------------ DCEP ------------------------------------------------------------------ */
#elif defined(FUZZ_dcep)

static void fuzz(const uint8_t *data, size_t size) {
  struct dcep_open o;
  if (dcep_parse_open(data, size, &o) != 0) return;
  const char *s = (const char *)data;
  FUZZ_CHECK(size >= 12 && o.label.p == s + 12 && o.protocol.p == o.label.p + o.label.n &&
             o.protocol.p + o.protocol.n == s + size);
  FUZZ_CHECK((o.channel_type & 0x7f) <= 2);
  /* The fields encode back to the same header. */
  uint8_t hdr[12] = {DCEP_OPEN, o.channel_type};
  put_u16(hdr + 2, o.priority);
  put_u32(hdr + 4, o.reliability);
  put_u16(hdr + 8, (uint16_t)o.label.n);
  put_u16(hdr + 10, (uint16_t)o.protocol.n);
  FUZZ_CHECK(!memcmp(hdr, data, 12));
}

/* --------------------------------------------------------- A SERVER WITH PEERS ------------------------------------------------------------ */
#elif defined(FUZZ_srtp)

/* The input as SRTP and as SRTCP to a receiver (each refused cleanly, or taken whole), and as RTP and
 * RTCP to a sender, whose output another receiver must give back unchanged.  Fresh keys each input. */
static void fuzz(const uint8_t *data, size_t size) {
  static const uint8_t mk[16] = {0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0,
                                 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39};
  static const uint8_t ms[14] = {0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};
  static uint8_t buf[2048 + 32];
  struct srtp rx, tx, rx2;
  FUZZ_CHECK(srtp_init(&rx, mk, ms) == 0 && srtp_init(&tx, mk, ms) == 0 && srtp_init(&rx2, mk, ms) == 0);
  size_t n = MIN(size, (size_t)2048);
  memcpy(buf, data, n);
  int r = srtp_unprotect(&rx, buf, n);
  FUZZ_CHECK(r == SRTP_MALFORMED || r == SRTP_AUTH || (r >= 12 && (size_t)r == n - SRTP_TAG));
  memcpy(buf, data, n);
  r = srtcp_unprotect(&rx, buf, n);
  FUZZ_CHECK(r == SRTP_MALFORMED || r == SRTP_AUTH || (r >= 8 && (size_t)r == n - 4 - SRTP_TAG));
  memcpy(buf, data, n);
  r = srtp_protect(&tx, buf, n, sizeof buf);
  if (r > 0) FUZZ_CHECK(srtp_unprotect(&rx2, buf, (size_t)r) == (int)n && !memcmp(buf, data, n));
  memcpy(buf, data, n);
  r = srtcp_protect(&tx, buf, n, sizeof buf);
  if (r > 0) FUZZ_CHECK(srtcp_unprotect(&rx2, buf, (size_t)r) == (int)n && !memcmp(buf, data, n));
  srtp_free(&rx);
  srtp_free(&tx);
  srtp_free(&rx2);
}

#elif defined(FUZZ_msg) || defined(FUZZ_udp)

/* A real server on loopback (ports picked by the kernel), made once per process.  It logs only
 * errors; FUZZ_LOG=1 in the environment shows its debug log (for replays). */
static struct camus *fuzz_server(void) {
  struct camus_config cfg;
  char err[256];
  camus_config_init(&cfg);
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.udp_port = 0;
  cfg.log_level = getenv("FUZZ_LOG") ? CAMUS_LOG_DEBUG : CAMUS_LOG_ERROR;
  struct camus *s = camus_new(&cfg, err, sizeof err);
  if (!s) {
    fprintf(stderr, "fuzz: camus_new: %s\n", err);
    abort();
  }
  return s;
}

/* An offer from test/fixtures, NUL-terminated. */
static char *fuzz_fixture(const char *name, size_t *len) {
  char path[1024];
  snprintf(path, sizeof path, "%s/%s", FUZZ_FIXTURES, name);
  FILE *f = fopen(path, "rb");
  char *p = malloc(CAMUS_SDP_MAX + 1);
  if (!f || !p) {
    fprintf(stderr, "fuzz: cannot read %s (run from the repository root, or build with -DFUZZ_FIXTURES)\n", path);
    abort();
  }
  *len = fread(p, 1, CAMUS_SDP_MAX, f);
  p[*len] = 0;
  fclose(f);
  return p;
}

/* A session made as POST /rtc/<room>/offer makes it: client_offer() takes the first free slot. */
static struct rtc *fuzz_peer(struct camus *s, struct room *rm, const char *sdp, size_t n) {
  struct buf answer = {0};
  const char *err = NULL;
  uint32_t slot = 0;
  while (slot < sessions.cap && sessions.table[slot]) slot++;
  enum app_err rc = client_offer(s, rm, (const uint8_t[16]){0}, sdp, n, &answer, &err);
  buf_free(&answer);
  if (rc != APP_OK || slot >= sessions.cap || !sessions.table[slot] || sessions.table[slot]->host != &s->rtc) {
    fprintf(stderr, "fuzz: client_offer: %d %s\n", rc, err ? err : "");
    abort();
  }
  return sessions.table[slot];
}

/* The live session behind a handle taken with rtc_handle(), or NULL once freed. */
static struct rtc *fuzz_live(void *h) {
  struct rtc *p = h ? rtc_from_handle(h) : NULL;
  return p && !p->dead ? p : NULL;
}

/* ------------------------------------------------------------------ MSG ------------------------------------------------------------------- */
#if defined(FUZZ_msg)

/* Fixed ids, so that an input can name a member as its receiver. */
static const char member_id[] = "0123456789abcdef0123456789abcdef";
static const char other_id[] = "fedcba9876543210fedcba9876543210";

static struct camus *srv;
static struct room *room;
static char *offer;
static size_t offer_len;
static void *member, *other; /* handles */

/* A member of the room whose message channel (stream 1) is open, as after its DCEP open. */
static void *fuzz_member(const char *id) {
  struct rtc *p = fuzz_peer(srv, room, offer, offer_len);
  memcpy(p->id, id, 32);
  rtc_set_state(p, RTC_DTLS); /* past its check: no ssl made yet (dtls_start needs one), which is fine */
  rtc_set_state(p, RTC_OPEN); /* no SCTP socket: rtc_send() refuses, which msg_input() must survive */
  p->ch[0] = (struct channel){.sid = 1, .type = 0, .open = true};
  client_open(srv, p, &p->ch[0]);
  struct client *c = p->user;
  FUZZ_CHECK(c->msg_channel == &p->ch[0] && c->member && !p->dead);
  return rtc_handle(p);
}

static void fuzz_setup(void) {
  enum app_err status;
  const char *err = NULL;
  srv = fuzz_server();
  room = room_create(srv, (const uint8_t[16]){0}, "Fuzz Room", 9, NULL, 0, true, true, 0, &status, &err);
  FUZZ_CHECK(room != NULL);
  offer = fuzz_fixture("chromium-datachannel.sdp", &offer_len);
  other = fuzz_member(other_id);
  member = fuzz_member(member_id);
}

static void fuzz(const uint8_t *data, size_t size) {
  if (!srv) fuzz_setup();
  struct rtc *p = fuzz_live(member), *o = fuzz_live(other);
  FUZZ_CHECK(p && o && room->n_sessions == 2);
  struct client *c = p->user;
  /* What one message may change is put back, so that every input starts alike. */
  c->bucket = CAMUS_MSG_BURST;
  c->bucket_at = srv->loop.now;
  c->bytes = 0;
  c->bytes_at = 0;
  c->rate_warned = c->pinged = false;
  snprintf(c->username, sizeof c->username, "Major Tom");
  char *text = malloc(size ? size : 1); /* exactly size bytes, so ASan sees any read past them */
  memcpy(text, data, size);
  msg_input(c, text, size);
  free(text);
  if (p->dead) {
    FUZZ_CHECK(!c->member && room->members == o->user && room->members->next_member == NULL);
    rtc_reap(&srv->rtc);
    FUZZ_CHECK(!fuzz_live(member) && room->n_sessions == 1);
    member = fuzz_member(member_id);
    p = fuzz_live(member);
  }
  FUZZ_CHECK(room->members == o->user && room->members->next_member == p->user && room->last_member == p->user);
}

/* ------------------------------------------------------------------ UDP ------------------------------------------------------------------- */
#else

/* Input: records of [op][source][length, 2 bytes big-endian][payload], while they last.
 *   op 0  the payload as a datagram from the source (at most 2048 bytes, as udp_readable() reads)
 *   op 1  a valid ICE check built here, from the source, for session payload[0] % 3, shaped by payload[1]:
 *         1 USE-CANDIDATE, 2 ICE-CONTROLLING, 4 ICE-CONTROLLED (tiebreaker: payload[2..9]),
 *         8 an unknown comprehension-required attribute, 16 the wrong password, 32 the wrong remote ufrag,
 *         64 no FINGERPRINT
 *   op 2  a timer of session payload[0] % 3 fires, if armed: payload[1] odd its life timer (handshake
 *         deadline), else its DTLS retransmission timer
 *   op 3  the end of a loop iteration: dead peers are freed
 * Peers: 0 in ICE; 1 DTLS client, checked from source 0; 2 DTLS server (offer a=setup:active), from source 1. */
enum { N_PEERS = 3, N_SRC = 5 };

static struct camus *srv;
static struct room *room;
static char *offer, *offer_active;
static size_t offer_len, offer_active_len;
static struct sockaddr_storage src[N_SRC]; /* bound sinks, so that replies reach nobody else */
static void *peers[N_PEERS];
static uint32_t check_no;

static void fuzz_sinks(void) {
  static const char *const ips[N_SRC] = {"127.0.0.1", "127.0.0.1", "127.0.0.2", "::1", "127.0.0.1"};
  for (int i = 0; i < N_SRC; i++) {
    addr_parse(ips[i], 0, &src[i]);
    int fd = socket_bind(&src[i], SOCK_DGRAM);
    int port = fd >= 0 ? socket_port(fd) : 40000 + i; /* no IPv6: replies to it fail, which is fine too */
    addr_parse(ips[i], port, &src[i]);
  }
}

static size_t fuzz_check(struct rtc *p, const uint8_t *arg, size_t n, uint8_t *out, size_t cap) {
  uint8_t flags = n > 1 ? arg[1] : 0, txid[12] = "fuzz-check-0";
  char user[300];
  struct stun_writer w = {out, cap, 0, false};
  put_u32(txid + 8, ++check_no);
  snprintf(user, sizeof user, "%s:%s", p->ufrag, (flags & 32) ? "nobody" : p->remote_ufrag);
  stun_begin(&w, STUN_BINDING_REQUEST, txid);
  stun_attr(&w, STUN_A_USERNAME, user, (uint16_t)strlen(user));
  stun_attr_u32(&w, STUN_A_PRIORITY, 0x6e0001ff);
  if (flags & 1) stun_attr(&w, STUN_A_USE_CANDIDATE, NULL, 0);
  uint8_t tb[8] = {0};
  memcpy(tb, arg + MIN(n, 2), MIN(n > 2 ? n - 2 : 0, sizeof tb));
  if (flags & 2) stun_attr(&w, STUN_A_ICE_CONTROLLING, tb, 8);
  if (flags & 4) stun_attr(&w, STUN_A_ICE_CONTROLLED, tb, 8);
  if (flags & 8) stun_attr(&w, 0x0033, "?", 1);
  stun_integrity(&w, (flags & 16) ? "not the password" : p->pwd, (flags & 16) ? 16 : strlen(p->pwd));
  if (!(flags & 64)) stun_fingerprint(&w);
  FUZZ_CHECK(!w.err);
  return w.len;
}

static void fuzz_setup(void) {
  enum app_err status;
  const char *err = NULL;
  srv = fuzz_server();
  room = room_create(srv, (const uint8_t[16]){0}, "Fuzz UDP", 8, NULL, 0, true, true, 0, &status, &err);
  FUZZ_CHECK(room != NULL);
  offer = fuzz_fixture("chromium-datachannel.sdp", &offer_len);
  /* The same offer with a=setup:active: the browser is the DTLS client, we are the server. */
  offer_active = fuzz_fixture("chromium-datachannel.sdp", &offer_active_len);
  char *setup = strstr(offer_active, "a=setup:actpass");
  FUZZ_CHECK(setup != NULL);
  size_t at = (size_t)(setup - offer_active) + strlen("a=setup:act");
  memmove(offer_active + at + 3, offer_active + at + 4, offer_active_len - at - 4 + 1); /* "pass" -> "ive" */
  memcpy(offer_active + at, "ive", 3);
  offer_active_len -= 1;
  fuzz_sinks();
}

/* One session in each state: ICE, DTLS as client, DTLS as server. */
static void fuzz_peers(void) {
  uint8_t out[512];
  static const uint8_t plain[2] = {0, 0};
  for (int i = 0; i < N_PEERS; i++) {
    struct rtc *p = fuzz_peer(srv, room, i == 2 ? offer_active : offer, i == 2 ? offer_active_len : offer_len);
    peers[i] = rtc_handle(p);
    if (i == 0) continue;
    size_t n = fuzz_check(p, plain, sizeof plain, out, sizeof out);
    udp_input(&srv->udp, out, n, &src[i - 1]);
    FUZZ_CHECK(p->state == RTC_DTLS && !p->dead && p->dtls_server == (i == 2) && p->n_addrs == 1);
  }
}

static void fuzz(const uint8_t *data, size_t size) {
  if (!srv) fuzz_setup();
  memset(srv->rtc.early, 0, sizeof srv->rtc.early);
  srv->rtc.early_next = 0;
  fuzz_peers();
  while (size >= 4) {
    uint8_t op = data[0] & 3;
    const struct sockaddr_storage *from = &src[data[1] % N_SRC];
    size_t n = MIN((size_t)get_u16(data + 2), size - 4);
    const uint8_t *arg = data + 4;
    data += 4 + n;
    size -= 4 + n;
    struct rtc *p = fuzz_live(peers[n ? arg[0] % N_PEERS : 0]);
    if (op == 0) {
      uint8_t *dgram = malloc(n ? n : 1); /* exactly n bytes, as recvfrom() filled */
      memcpy(dgram, arg, n);
      udp_input(&srv->udp, dgram, MIN(n, 2048), from);
      free(dgram);
    } else if (op == 1 && p) {
      uint8_t out[512];
      size_t len = fuzz_check(p, arg, n, out, sizeof out);
      udp_input(&srv->udp, out, len, from);
    } else if (op == 2 && p) {
      struct timer *t = (n > 1 && (arg[1] & 1)) ? &p->life : &p->dtls_timer;
      if (t->slot) { /* as timers_run() fires a due timer */
        timer_stop(&srv->loop, t);
        t->fn(t);
      }
    } else if (op == 3) {
      rtc_reap(&srv->rtc);
    }
  }
  /* Everything goes, as camus_free() closes its peers: the next input starts afresh. */
  for (uint32_t i = 0; i < sessions.cap; i++)
    if (sessions.table[i] && sessions.table[i]->host == &srv->rtc) rtc_close(sessions.table[i], "fuzz: next input");
  rtc_reap(&srv->rtc);
  FUZZ_CHECK(srv->rtc.n == 0 && srv->rtc.n_handshakes == 0 && srv->rtc.n_unchecked == 0 && srv->rtc.amap.n == 0 &&
             room->n_sessions == 0);
}

#endif
#else
#error "choose a target: -DFUZZ_http, -DFUZZ_json, -DFUZZ_sdp, -DFUZZ_stun, -DFUZZ_dcep, -DFUZZ_srtp, -DFUZZ_msg or -DFUZZ_udp"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz(data, size);
  return 0;
}
