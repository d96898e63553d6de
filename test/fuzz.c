/*
 * libFuzzer targets for camus.c.  Like test/unit.c, the file includes camus.c
 * itself to reach its static functions.  One target per build, chosen with
 * -DFUZZ_<name>:
 *
 *   http  http_parse(), then form_get() on the body
 *   json  json_parse() and every reader over its tokens; json_write_str() round trip
 *   sdp   sdp_parse_offer(), then sdp_write_answer() with no plan and with one, whose answers must parse back
 *   stun  stun_parse() and stun_integrity_ok(); an answer written for it must parse back
 *   dcep  dcep_parse_open(), whose fields must encode back to the same bytes
 *   rtp   rtp_parse() and rtp_ext_find() of every id, vp8_keyframe() of the same bytes; a header written back
 *   rtcp  rtcp_next() to the end of a compound, rtcp_report_read() of each report block; writers give the same bytes
 *   srtp  srtp_unprotect() and srtcp_unprotect() of any bytes, leaving no state if refused; protect (with the
 *         sender's state or the caller's) then unprotect gives them back
 *   msg   msg_input() of a room member with an open message channel, on a real server
 *   media the SFU on a real server: RTP and RTCP (SRTP-protected, or not) through udp_input() from a publisher
 *         and a viewer, report timers, new offers
 *   udp   udp_input() on a real server with one session in ICE and two in DTLS (client, server)
 *   turn  the TURN relay of a real server: requests with good or spoiled long-term credentials, Send and Data
 *         indications, ChannelData, any datagram, peers sending to relay ports, time passing, from several
 *         clients; answers, relayed data, the policy and the caps checked after each
 *   tcp   the framing of STUN connections on the HTTP port (RFC 4571, RFC 8656 TURN over TCP): a stream in
 *         chunks, to conn_take_frames() directly or through a socketpair accepted by a real server
 *
 * Build:  clang -fsanitize=fuzzer,address,undefined -DFUZZ_json -o fuzz-json test/fuzz.c \
 *           -lmbedtls -lmbedx509 -lmbedcrypto -lusrsctp -lpthread
 * or simply `sh test/fuzz.sh`, which builds and runs them all on test/corpus/<name>/.
 * FUZZ_LOG=1 in the environment shows the server's debug log in the msg, media, udp, turn and tcp targets.
 */
#define CAMUS_NO_MAIN
#if defined(FUZZ_turn) /* caps small enough for an input of a few requests to reach each */
#define CAMUS_TURN_ALLOCATIONS 10
#define CAMUS_TURN_PER_HOST 4
#define CAMUS_TURN_PER_MEMBER 3
#define CAMUS_TURN_PERMISSIONS 3
#define CAMUS_TURN_CHANNELS 4
#define CAMUS_TURN_KBPS 2 /* 250 bytes a second */
#endif
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
  static const struct sdp_candidate cands[] = {{"127.0.0.1", 5000, 2130706431u, false}, {"::1", 5000, 2130706175u, false},
                                               {"127.0.0.1", 8080, 1518338047u, true}};
  const struct sdp_local local = {"00000abcdefghijk", "0123456789abcdef0123456789abcdef", fp, cands, 3, 65536, 42, NULL, NULL};
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
  /* Planned as the SFU plans (receiving, sending with msid, inactive; with an SSRC or none; refused), the
   * audio and video sections it can take read back with the plan's direction and SSRC, the offer's numbers. */
  static struct sdp_plan plan[CAMUS_SDP_MAX_MEDIA];
  static const enum sdp_dir dirs[] = {SDP_RECVONLY, SDP_SENDONLY, SDP_INACTIVE};
  for (int i = 0; i < o.n_media; i++) {
    size_t k = (size_t)i + size;
    plan[i] = (struct sdp_plan){.dir = dirs[k % 3], .accept = k % 4 != 3, .ssrc = k % 5 ? 0x10000u + (uint32_t)i : 0};
    snprintf(plan[i].msid, sizeof plan[i].msid, "0123456789abcdef0123456789abcdef-camera t%d", i);
  }
  struct sdp_local planned = local;
  planned.plan = plan;
  planned.setup = size % 2 ? "passive" : NULL;
  b.len = 0;
  err = NULL;
  FUZZ_CHECK(sdp_write_answer(&b, &o, &planned, &err) == 0 && !b.err);
  rc = sdp_parse_offer(b.p, b.len, &back, &err);
  if (rc != 0) fprintf(stderr, "fuzz: planned answer refused: %s\n%s", err, b.p);
  FUZZ_CHECK(rc == 0 && back.n_media == o.n_media && back.data_index == o.data_index);
  bool bundled = false;
  for (int i = 0; i < o.n_media; i++) {
    const struct sdp_media *m = &o.m[i], *a = &back.m[i];
    if (i == o.data_index) continue;
    bool took = plan[i].accept && m->media && m->pt >= 0 && m->rtcp_mux && m->mid[0] && o.bundle && o.m[o.data_index].mid[0];
    FUZZ_CHECK(took == sdp_accepted(&o, &planned, i) && took == (a->port != 0));
    if (!took) continue;
    bundled = true;
    FUZZ_CHECK(a->media == m->media && a->pt == m->pt && a->mid_ext == m->mid_ext && a->rtcp_mux && a->dir == plan[i].dir &&
               a->ssrc == plan[i].ssrc && a->rtcp_rsize == m->rtcp_rsize);
  }
  /* Every section taken is in the bundle (when the data channel, which always is, has a mid). */
  if (bundled && o.m[o.data_index].mid[0]) FUZZ_CHECK(back.bundle && strstr(b.p, "a=group:BUNDLE "));
  FUZZ_CHECK(back.setup == (planned.setup || o.setup == SDP_SETUP_ACTIVE ? SDP_SETUP_PASSIVE : SDP_SETUP_ACTIVE));
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
  if (m.has_mapped) stun_xor_address(&w, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)&m.mapped);
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

/* --------------------------------------------------------------- RTP, RTCP ---------------------------------------------------------------- */
#elif defined(FUZZ_rtp)

/* The same bytes as an RTP packet (rtp_parse, then every element rtp_ext_find can name) and as VP8
 * (vp8_keyframe, of the whole and of the packet's payload); a header written from what was read (as
 * the SFU forwards it, with a mid element) reads back the same. */
static void fuzz(const uint8_t *data, size_t size) {
  static const char *const mids[] = {"0", "video-1", "0123456789abcdef"};
  uint8_t *p = malloc(size ? size : 1); /* exactly size bytes, so ASan sees any read past them */
  struct rtp_hdr h, back;
  memcpy(p, data, size);
  (void)vp8_keyframe(p, size);
  if (rtp_parse(p, size, &h) != 0) {
    free(p);
    return;
  }
  size_t at = RTP_HDR + 4u * (p[0] & 15);
  FUZZ_CHECK(size >= at && h.payload >= at && h.payload <= size && h.payload_len <= size - h.payload);
  FUZZ_CHECK(h.pt == (p[1] & 0x7f) && h.marker == (p[1] >> 7) && h.seq == get_u16(p + 2) && h.ts == get_u32(p + 4) &&
             h.ssrc == get_u32(p + 8));
  if (p[0] & 0x10)
    FUZZ_CHECK(h.ext_at == at + 4 && h.ext_profile == get_u16(p + at) && h.ext_at + h.ext_len == h.payload);
  else
    FUZZ_CHECK(h.ext_profile == 0 && h.ext_len == 0 && h.payload == at);
  FUZZ_CHECK(h.payload + h.payload_len + ((p[0] & 0x20) ? p[size - 1] : 0) == size && (!(p[0] & 0x20) || p[size - 1] > 0));
  bool one = h.ext_profile == 0xBEDE, two = (h.ext_profile & 0xfff0) == 0x1000;
  for (unsigned id = 0; id < 256; id++) {
    size_t len = 0;
    const uint8_t *v = rtp_ext_find(p, &h, id, &len);
    if (!v) continue;
    /* An element of the extension, with the id and length its own header gives. */
    FUZZ_CHECK((one || two) && id != 0 && (!one || id < 15) && v >= p + h.ext_at + (one ? 1 : 2) && v + len <= p + h.payload);
    FUZZ_CHECK(one ? (unsigned)(v[-1] >> 4) == id && (size_t)(v[-1] & 15) + 1 == len : v[-2] == id && v[-1] == len);
  }
  (void)vp8_keyframe(p + h.payload, h.payload_len);
  uint8_t out[RTP_HDR + 32];
  const char *mid = mids[h.seq % 3];
  unsigned mid_ext = 1 + h.ssrc % 14;
  size_t hl = rtp_write_header(out, p[0] & 0x20, h.marker, h.pt, h.seq, h.ts, h.ssrc, mid_ext, mid), len = 0;
  out[hl] = 1; /* the padding count, if the bit is set; else a byte of payload */
  FUZZ_CHECK(hl <= RTP_HDR + 24 && rtp_parse(out, hl + 1, &back) == 0 && back.pt == h.pt && back.marker == h.marker &&
             back.seq == h.seq && back.ts == h.ts && back.ssrc == h.ssrc && back.payload == hl);
  const uint8_t *v = rtp_ext_find(out, &back, mid_ext, &len);
  FUZZ_CHECK(v && len == strlen(mid) && !memcmp(v, mid, len));
  free(p);
}

#elif defined(FUZZ_rtcp)

/* The bytes as a compound RTCP packet, walked with rtcp_next() to its end or to the first malformed
 * packet; each report block read as media_rtcp_input() reads them, written back by rtcp_write_rr()
 * to the same bytes; a PLI, a generic NACK or a REMB in canonical form written back the same. */
static void fuzz(const uint8_t *data, size_t size) {
  uint8_t *p = malloc(size ? size : 1), out[20 + 4 * 255];
  struct rtcp_pkt r;
  size_t at = 0, prev = 0;
  int rc;
  memcpy(p, data, size);
  while ((rc = rtcp_next(p, size, &at, &r)) == 1) {
    FUZZ_CHECK(at > prev && at <= size && r.body == p + prev + 4 && r.len % 4 == 0 && r.body + r.len == p + at);
    FUZZ_CHECK(r.pt == p[prev + 1] && r.count == (p[prev] & 31) && (p[prev] >> 6) == 2);
    size_t first = r.pt == RTCP_SR ? 24 : 4;
    for (size_t k = 0; (r.pt == RTCP_SR || r.pt == RTCP_RR) && k < r.count && first + (k + 1) * RTCP_REPORT <= r.len; k++) {
      struct rtcp_report rep;
      const uint8_t *block = r.body + first + k * RTCP_REPORT;
      rtcp_report_read(block, &rep);
      FUZZ_CHECK(rep.lost >= -0x800000 && rep.lost <= 0x7fffff && rep.ssrc == get_u32(block));
      FUZZ_CHECK(rtcp_write_rr(out, sizeof out, get_u32(r.body), &rep) == 8 + RTCP_REPORT &&
                 !memcmp(out + 8, block, RTCP_REPORT));
    }
    bool plain = (p[prev] & 0x20) == 0; /* no padding bit: our writers never set it */
    if (plain && r.pt == RTCP_PSFB && r.count == RTCP_FMT_PLI && r.len == 8)
      FUZZ_CHECK(rtcp_write_pli(out, sizeof out, get_u32(r.body), get_u32(r.body + 4)) == 12 && !memcmp(out, p + prev, 12));
    if (plain && r.pt == RTCP_RTPFB && r.count == RTCP_FMT_NACK && r.len == 12)
      FUZZ_CHECK(rtcp_write_nack(out, sizeof out, get_u32(r.body), get_u32(r.body + 4), get_u16(r.body + 8),
                                 get_u16(r.body + 10)) == 16 &&
                 !memcmp(out, p + prev, 16));
    if (plain && r.pt == RTCP_PSFB && r.count == RTCP_FMT_AFB && r.len >= 16 && !memcmp(r.body + 8, "REMB", 4) &&
        get_u32(r.body + 4) == 0) {
      uint32_t word = get_u32(r.body + 12), n = word >> 24, exp = word >> 18 & 63, mantissa = word & 0x3ffff;
      uint32_t ssrcs[255];
      for (uint32_t i = 0; i < n && 16 + 4 * (i + 1) <= r.len; i++) ssrcs[i] = get_u32(r.body + 16 + 4 * i);
      /* Canonical: the smallest exponent, and as many SSRCs as the count says. */
      if (n >= 1 && r.len == 16 + 4 * n && exp <= 46 && (exp == 0 || mantissa >= 0x20000))
        FUZZ_CHECK(rtcp_write_remb(out, sizeof out, get_u32(r.body), (uint64_t)mantissa << exp, ssrcs, (int)n) == 4 + r.len &&
                   !memcmp(out, p + prev, 4 + r.len));
    }
    prev = at;
  }
  FUZZ_CHECK(rc == 0 ? at == size : rc == -1 && at == prev && at < size);
  free(p);
}

/* --------------------------------------------------------- A SERVER WITH PEERS ------------------------------------------------------------ */
#elif defined(FUZZ_srtp)

/* The input as SRTP and as SRTCP to a receiver (each refused cleanly, leaving no state behind, or taken
 * whole), and as RTP and RTCP to a sender, keeping its own state (srtp_protect) or the caller's
 * (srtp_protect_with, as the SFU sends), whose output another receiver must give back unchanged.
 * Fresh keys each input. */
static void fuzz(const uint8_t *data, size_t size) {
  static const uint8_t mk[16] = {0xe1, 0xf9, 0x7a, 0x0d, 0x3e, 0x01, 0x8b, 0xe0,
                                 0xd6, 0x4f, 0xa3, 0x2c, 0x06, 0xde, 0x41, 0x39};
  static const uint8_t ms[14] = {0x0e, 0xc6, 0x75, 0xad, 0x49, 0x8a, 0xfe, 0xeb, 0xb6, 0x96, 0x0b, 0x3a, 0xab, 0xe6};
  static uint8_t buf[2048 + 32];
  static struct srtp_ssrc before[CAMUS_SRTP_SSRCS];
  struct srtp rx, tx, rx2, rx3;
  struct srtp_ssrc st = {0};
  FUZZ_CHECK(srtp_init(&rx, mk, ms) == 0 && srtp_init(&tx, mk, ms) == 0 && srtp_init(&rx2, mk, ms) == 0 &&
             srtp_init(&rx3, mk, ms) == 0);
  size_t n = MIN(size, (size_t)2048);
  memcpy(buf, data, n);
  memcpy(before, rx.ssrc, sizeof before);
  int r = srtp_unprotect(&rx, buf, n);
  FUZZ_CHECK(r == SRTP_MALFORMED || r == SRTP_AUTH || (r >= 12 && (size_t)r == n - SRTP_TAG));
  FUZZ_CHECK(r >= 0 || !memcmp(before, rx.ssrc, sizeof before)); /* forged packets cannot fill the table */
  memcpy(buf, data, n);
  memcpy(before, rx.ssrc, sizeof before);
  r = srtcp_unprotect(&rx, buf, n);
  FUZZ_CHECK(r == SRTP_MALFORMED || r == SRTP_AUTH || (r >= 8 && (size_t)r == n - 4 - SRTP_TAG));
  FUZZ_CHECK(r >= 0 || !memcmp(before, rx.ssrc, sizeof before));
  memcpy(buf, data, n);
  r = srtp_protect(&tx, buf, n, sizeof buf);
  if (r > 0) FUZZ_CHECK(srtp_unprotect(&rx2, buf, (size_t)r) == (int)n && !memcmp(buf, data, n));
  memcpy(buf, data, n);
  r = srtcp_protect(&tx, buf, n, sizeof buf);
  if (r > 0) FUZZ_CHECK(srtcp_unprotect(&rx2, buf, (size_t)r) == (int)n && !memcmp(buf, data, n));
  /* The caller's state: the sender's own table is left alone. */
  memcpy(before, tx.ssrc, sizeof before);
  memcpy(buf, data, n);
  r = srtp_protect_with(&tx, &st, buf, n, sizeof buf);
  if (r > 0)
    FUZZ_CHECK(st.ssrc == get_u32(data + 8) && st.rtp_seen && srtp_unprotect(&rx3, buf, (size_t)r) == (int)n &&
               !memcmp(buf, data, n));
  memcpy(buf, data, n);
  r = srtcp_protect_with(&tx, &st, buf, n, sizeof buf);
  if (r > 0)
    FUZZ_CHECK(st.ssrc == get_u32(data + 4) && st.rtcp_next == 1 && srtcp_unprotect(&rx3, buf, (size_t)r) == (int)n &&
               !memcmp(buf, data, n));
  FUZZ_CHECK(!memcmp(before, tx.ssrc, sizeof before));
  srtp_free(&rx);
  srtp_free(&tx);
  srtp_free(&rx2);
  srtp_free(&rx3);
}

#elif defined(FUZZ_msg) || defined(FUZZ_media) || defined(FUZZ_udp) || defined(FUZZ_turn) || defined(FUZZ_tcp)

/* A real server on loopback (ports picked by the kernel), made once per process.  It logs only
 * errors; FUZZ_LOG=1 in the environment shows its debug log (for replays). */
static struct camus *fuzz_server(void) {
  struct camus_config cfg;
  char err[256];
  camus_config_init(&cfg);
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.udp_port = 0;
  cfg.turn_secret = "fuzz"; /* the TURN relay on, with no state directory made */
  cfg.state_dir = "";       /* rooms in memory only */
  cfg.log_level = getenv("FUZZ_LOG") ? CAMUS_LOG_DEBUG : CAMUS_LOG_ERROR;
  struct camus *s = camus_new(&cfg, err, sizeof err);
  if (!s) {
    fprintf(stderr, "fuzz: camus_new: %s\n", err);
    abort();
  }
  return s;
}

#if defined(FUZZ_msg) || defined(FUZZ_media) || defined(FUZZ_udp)
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
  enum app_err rc = client_offer(s, rm, (const uint8_t[16]){0}, sdp, n, false, ROLE_GUEST, NULL, (char[33]){0}, &answer, &err);
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
#endif

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
  room = room_create(srv, (const uint8_t[16]){0}, "Fuzz Room", 9, NULL, 0, true, true, 0, (char[33]){0}, &status, &err);
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

/* ------------------------------------------------------------------ MEDIA ----------------------------------------------------------------- */
#elif defined(FUZZ_media)

/* Input: records of [op][length, 2 bytes big-endian][payload], while they last; op's low 4 bits, mod 6:
 *   op 0  the payload as RTP from the publisher, protected with its browser's keys so that it passes SRTP
 *         (sent as it is if it cannot be); op bit 4 makes it a packet of the publisher's camera (its
 *         version, payload type and SSRC), bit 5 of its microphone
 *   op 1  the payload as RTCP from the viewer, protected; "SUBV" and "SUBA" in it become the SSRCs the
 *         server sends the camera and the microphone to the viewer with
 *   op 2  the payload as RTCP from the publisher, protected
 *   op 3  the payload as a datagram from source payload[0] % 3 (publisher, viewer, nobody's address), its
 *         first byte made 128-191, not protected: what the demultiplexer hands rtc_media_datagram()
 *   op 4  payload[0] * 4 ms pass (caps refill, CAMUS_PLI_MS runs out) and both members' report timers
 *         fire (receiver reports, REMB)
 *   op 5  an offer again: payload[0] % 4 picks the publisher's first, its camera with a new SSRC, its
 *         camera gone, or the viewer's (taking up what it may receive now)
 * Made afresh for each input: a publisher sending a microphone and a camera (chromium-av-datachannel.sdp)
 * and a viewer receiving both (the same offer, recvonly), members of an SFU room with SRTP keys as if
 * their DTLS handshakes had agreed on them. */
enum { MEDIA_SRC = 3 };
#define CAMERA_SSRC 2583404429u
#define MIC_SSRC 3157627856u

struct end {
  void *h;        /* the session's handle */
  struct srtp tx; /* what its browser sends with */
};

static struct camus *srv;
static struct room *room;
static char *offers[3], *view;
static size_t offer_len;
static struct sockaddr_storage src[MEDIA_SRC]; /* bound sinks; the last one no session's */
static struct end pub, sub;

/* Replaces every from in text by to, of the same length; how many. */
static int fuzz_edit(char *text, const char *from, const char *to) {
  int k = 0;
  for (char *p = text; (p = strstr(p, from)) != NULL; p += strlen(from), k++) memcpy(p, to, strlen(to));
  return k;
}

static void fuzz_setup(void) {
  enum app_err status;
  const char *err = NULL;
  srv = fuzz_server();
  room = room_create(srv, (const uint8_t[16]){0}, "Fuzz SFU", 8, NULL, 0, true, true, 0, (char[33]){0}, &status, &err);
  FUZZ_CHECK(room != NULL && room->sfu);
  for (int i = 0; i < 3; i++) offers[i] = fuzz_fixture("chromium-av-datachannel.sdp", &offer_len);
  view = fuzz_fixture("chromium-av-datachannel.sdp", &offer_len);
  FUZZ_CHECK(fuzz_edit(offers[1], "2583404429", "2583404430") == 3 && fuzz_edit(offers[2], "m=video 9 ", "m=video 0 ") == 1 &&
             fuzz_edit(view, "a=sendrecv", "a=recvonly") == 2);
  for (int i = 0; i < MEDIA_SRC; i++) {
    addr_parse("127.0.0.1", 0, &src[i]);
    int fd = socket_bind(&src[i], SOCK_DGRAM);
    addr_parse("127.0.0.1", fd >= 0 ? socket_port(fd) : 40000 + i, &src[i]);
  }
}

/* An offer from p's page to Ground Control. */
static void fuzz_offer(struct rtc *p, const char *sdp) {
  struct buf b = {0};
  buf_adds(&b, "{\"type\":\"offer\",\"receiver\":\"ground control\",\"data\":{\"sdp\":");
  json_write_str(&b, sdp, strlen(sdp));
  buf_adds(&b, ",\"tracks\":{\"1\":\"camera\"}}}");
  FUZZ_CHECK(!b.err);
  msg_input(p->user, b.p, b.len);
  buf_free(&b);
}

/* A member from source i: checked over ICE, DTLS-SRTP keys made up (the browser is the DTLS server), its
 * message channel open, its offer sent. */
static void fuzz_member(struct end *e, int i, const char *sdp) {
  uint8_t req[256], txid[12] = "fuzz-media-0";
  char user[300];
  struct rtc *p = fuzz_peer(srv, room, sdp, offer_len);
  struct stun_writer w = {req, sizeof req, 0, false};
  txid[11] = (uint8_t)i;
  snprintf(user, sizeof user, "%s:%s", p->ufrag, p->remote_ufrag);
  stun_begin(&w, STUN_BINDING_REQUEST, txid);
  stun_attr(&w, STUN_A_USERNAME, user, (uint16_t)strlen(user));
  stun_attr_u32(&w, STUN_A_PRIORITY, 0x6e0001ff);
  stun_attr(&w, STUN_A_USE_CANDIDATE, NULL, 0);
  stun_integrity(&w, p->pwd, strlen(p->pwd));
  stun_fingerprint(&w);
  udp_input(&srv->udp, req, w.len, &src[i]);
  FUZZ_CHECK(p->state == RTC_DTLS && p->n_addrs == 1 && !p->dtls_server && (p->srtp_master = malloc(60)) != NULL);
  for (int k = 0; k < 60; k++) p->srtp_master[k] = (uint8_t)(17 * i + k);
  p->dtls_up = true;
  p->addrs[p->sel].proven = true;
  FUZZ_CHECK(srtp_init(&e->tx, p->srtp_master + 16, p->srtp_master + 46) == 0);
  rtc_set_state(p, RTC_OPEN);
  p->ch[0] = (struct channel){.sid = 1, .type = 0, .open = true};
  client_open(srv, p, &p->ch[0]);
  struct client *c = p->user;
  FUZZ_CHECK(c->member && c->media);
  fuzz_offer(p, sdp);
  e->h = rtc_handle(p);
}

/* The SSRC the viewer receives kind with, or 0. */
static uint32_t fuzz_sub_ssrc(enum sdp_kind kind) {
  struct rtc *p = fuzz_live(sub.h);
  struct client *c = p ? p->user : NULL;
  for (int i = 0; c && c->media && i < c->media->n_subs; i++)
    if (c->media->subs[i]->kind == kind) return c->media->subs[i]->ssrc;
  return 0;
}

/* n bytes (at most 2048) as a datagram from source from, in a buffer of exactly their size. */
static void fuzz_datagram(const uint8_t *p, size_t n, const struct sockaddr_storage *from) {
  uint8_t *d = malloc(n ? n : 1);
  memcpy(d, p, n);
  udp_input(&srv->udp, d, n, from);
  free(d);
}

static void fuzz(const uint8_t *data, size_t size) {
  static uint8_t buf[2048 + 32];
  if (!srv) fuzz_setup();
  fuzz_member(&pub, 0, offers[0]);
  fuzz_member(&sub, 1, view);
  srv->loop.now += 1000; /* the caps fill (a member's byte budget starts empty) */
  FUZZ_CHECK(fuzz_sub_ssrc(SDP_AUDIO) && fuzz_sub_ssrc(SDP_VIDEO));
  /* The viewer's numbers start where an input can name them (they are random): its first packet of
   * each stream is 0xfff1, so a NACK can ask for 0xfff1 and on, across the wrap. */
  struct client *viewer = fuzz_live(sub.h)->user;
  for (int i = 0; i < viewer->media->n_subs; i++) {
    viewer->media->subs[i]->last_seq = 0xfff0;
    viewer->media->subs[i]->last_ts = 0xffff0000u;
  }
  while (size >= 3) {
    uint8_t op = data[0];
    size_t n = MIN((size_t)get_u16(data + 1), size - 3);
    const uint8_t *arg = data + 3;
    data += 3 + n;
    size -= 3 + n;
    int kind = (op & 15) % 6;
    struct end *e = kind == 1 || (kind == 5 && n && arg[0] % 4 == 3) ? &sub : &pub;
    struct rtc *p = fuzz_live(e->h);
    n = MIN(n, (size_t)2048 - 4 - SRTP_TAG);
    memcpy(buf, arg, n);
    if (kind == 0 && (op & 0x30) && n >= RTP_HDR) {
      buf[0] = (uint8_t)(0x80 | (buf[0] & 0x3f));
      buf[1] = (uint8_t)((buf[1] & 0x80) | (op & 0x10 ? 96 : 111));
      put_u32(buf + 8, op & 0x10 ? CAMERA_SSRC : MIC_SSRC);
    }
    if (kind <= 2) {
      bool rtcp = kind != 0;
      for (size_t i = 0; rtcp && i + 4 <= n; i++)
        if (!memcmp(buf + i, "SUBV", 4) || !memcmp(buf + i, "SUBA", 4))
          put_u32(buf + i, fuzz_sub_ssrc(buf[i + 3] == 'V' ? SDP_VIDEO : SDP_AUDIO));
      int len = rtcp ? srtcp_protect(&e->tx, buf, n, sizeof buf) : srtp_protect(&e->tx, buf, n, sizeof buf);
      if (p) fuzz_datagram(buf, len > 0 ? (size_t)len : n, &src[e == &sub]);
    } else if (kind == 3) {
      if (n) buf[0] = (uint8_t)(128 | (buf[0] & 63));
      fuzz_datagram(buf, n, &src[n ? arg[0] % MEDIA_SRC : 0]);
    } else if (kind == 4) {
      srv->loop.now += 4u * (n ? arg[0] : 0);
      for (int i = 0; i < 2; i++) {
        struct rtc *q = fuzz_live(i ? sub.h : pub.h);
        struct client *c = q ? q->user : NULL;
        if (!c || !c->media || !c->media->report.slot) continue;
        timer_stop(&srv->loop, &c->media->report); /* as timers_run() fires it */
        c->media->report.fn(&c->media->report);
      }
    } else if (p) {
      fuzz_offer(p, e == &sub ? view : offers[n ? arg[0] % 4 : 0]);
    }
  }
  /* Everything goes, as camus_free() closes its sessions: the next input starts afresh. */
  for (int i = 0; i < 2; i++) {
    struct end *e = i ? &sub : &pub;
    struct rtc *q = fuzz_live(e->h);
    if (q) q->dtls_up = false; /* its handshake never finished: no close_notify */
    srtp_free(&e->tx);
  }
  for (uint32_t i = 0; i < sessions.cap; i++)
    if (sessions.table[i] && sessions.table[i]->host == &srv->rtc) rtc_close(sessions.table[i], "fuzz: next input");
  rtc_reap(&srv->rtc);
  udp_flush(&srv->udp);
  FUZZ_CHECK(srv->rtc.n == 0 && srv->rtc.n_handshakes == 0 && srv->rtc.n_unchecked == 0 && srv->rtc.amap.n == 0 &&
             room->n_sessions == 0 && room->members == NULL);
}

/* ------------------------------------------------------------------ UDP ------------------------------------------------------------------- */
#elif defined(FUZZ_udp)

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
  room = room_create(srv, (const uint8_t[16]){0}, "Fuzz UDP", 8, NULL, 0, true, true, 0, (char[33]){0}, &status, &err);
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

/* ------------------------------------------------------------- A TURN CLIENT -------------------------------------------------------------- */
#else

/* Long-term credentials as a member's page gets them (turn_credentials()), or spoiled in one way, so that inputs
 * get past the relay's 401 to what lies behind it. */
#define FUZZ_PAD64 "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
enum { AUTH_GOOD, AUTH_NONE, AUTH_NO_NONCE, AUTH_STALE_NONCE, AUTH_OTHERS_NONCE, AUTH_WRONG_REALM, AUTH_EXPIRED,
       AUTH_WRONG_PASSWORD, AUTH_SHORT_NONCE, AUTH_BAD_NONCE, AUTH_NO_EXPIRY, AUTH_LONG_USER, AUTH_FAULTS };

/* Ends the message in w as a client with the secret's credentials would: USERNAME "<expiry>:<id>", REALM, NONCE
 * (the relay's, for client) and MESSAGE-INTEGRITY keyed with MD5(user:realm:password), as fault leaves them (none
 * of them for AUTH_NONE; AUTH_OTHERS_NONCE takes other's nonce); then FINGERPRINT if fingerprint is 1, a broken
 * one if 2.  The key it signed with goes to key. */
static void fuzz_sign(const struct turn *t, struct stun_writer *w, int fault, const char *id,
                      const struct sockaddr_storage *client, const struct sockaddr_storage *other, int fingerprint,
                      uint8_t key[16]) {
  memset(key, 0, 16);
  if (fault != AUTH_NONE) {
    char user[256], pass[32], text[320], nonce[33];
    unsigned long long until = fault == AUTH_EXPIRED ? 1 : (unsigned long long)time(NULL) + 3600;
    int ul = fault == AUTH_NO_EXPIRY ? snprintf(user, sizeof user, "%s", id)
                                     : snprintf(user, sizeof user, "%llu:%s%s", until, id,
                                                fault == AUTH_LONG_USER ? "/" FUZZ_PAD64 FUZZ_PAD64 : "");
    turn_password(t, user, (size_t)ul, pass);
    int tl = snprintf(text, sizeof text, "%s:" TURN_REALM ":%s", user, fault == AUTH_WRONG_PASSWORD ? "guess" : pass);
    FUZZ_CHECK(ul > 0 && (size_t)ul < sizeof user && tl > 0 && mbedtls_md5_ret((const uint8_t *)text, (size_t)tl, key) == 0);
    stun_attr(w, STUN_A_USERNAME, user, (uint16_t)ul);
    if (fault == AUTH_WRONG_REALM)
      stun_attr(w, STUN_A_REALM, "elsewhere", 9);
    else
      stun_attr(w, STUN_A_REALM, TURN_REALM, sizeof TURN_REALM - 1);
    if (fault != AUTH_NO_NONCE) {
      uint64_t now = (uint64_t)time(NULL), until_nonce = fault == AUTH_STALE_NONCE ? now - 1 : now + 600;
      turn_nonce(t, fault == AUTH_OTHERS_NONCE ? other : client, until_nonce, nonce);
      if (fault == AUTH_BAD_NONCE) nonce[7] = 'g';
      stun_attr(w, STUN_A_NONCE, nonce, fault == AUTH_SHORT_NONCE ? 31 : 32);
    }
    stun_integrity(w, key, 16);
  }
  if (fingerprint) stun_fingerprint(w);
  if (fingerprint > 1 && !w->err) w->p[w->len - 1] ^= 1;
}

/* The descriptors this process has open. */
static int fuzz_fds(void) {
  int n = 0;
  DIR *d = opendir("/proc/self/fd");
  if (!d) return -1;
  while (readdir(d)) n++;
  closedir(d);
  return n;
}

/* The end of a loop turn, as far as descriptors go: slots freed during it may be taken again (loop_turn()). */
static void fuzz_slots(struct loop *l) {
  for (unsigned i = 0; i < l->n_io; i++)
    if (l->io[i].fd == -2) l->io[i].fd = -1;
}

/* ------------------------------------------------------------------ TURN ------------------------------------------------------------------ */
#if defined(FUZZ_turn)

/* Input: byte 0 % 3 sets the relay's --turn-allow (0 none; 1 127.0.0.2/32; 2 that and 127.0.0.0/8), and byte 0 & 4
 * its ports (8 from 47000, fewer than the allocations it may have, or 16); then records of [op][client][length, 2
 * bytes big-endian][payload], while they last.  The client (mod N_CLIENTS) is one of client_at[]'s addresses.  A
 * request's payload starts with an auth byte:
 *   auth & 15      AUTH_*: good credentials (also 12-15), or how they are spoiled
 *   auth >> 4 & 3  the member id in the user name (member_ids[])
 *   auth >> 6      0 FINGERPRINT; 1 none; 2 a broken one; 3 FINGERPRINT, and the client's last transaction id
 * and op % 11 is:
 *   0  Allocate; payload[1]: 1 no REQUESTED-TRANSPORT, 2 TCP's (6) asked instead of UDP's, 4 REQUESTED-ADDRESS-
 *      FAMILY (8: IPv6), 16 EVEN-PORT (its R bit: payload[6] & 1), 32 LIFETIME payload[2..5], 64 an unknown
 *      comprehension-required attribute, 128 DONT-FRAGMENT; payload[6] & 2 RESERVATION-TOKEN
 *   1  Refresh; payload[1] & 3: no LIFETIME, 0, payload[2..5], 0xffffffff; & 4 an unknown attribute
 *   2  CreatePermission for payload[1] % 6 peers, named by payload[2..] (fuzz_peer_at())
 *   3  ChannelBind of number payload[1..2] (in range or not) to a peer named by payload[4..]; payload[3]: 1 no
 *      CHANNEL-NUMBER, 2 a second peer
 *   4  a Send indication to a peer named by payload[1..], the rest its DATA; payload[0]: 1 no DATA, 2 a second
 *      peer, 4 FINGERPRINT
 *   5  ChannelData: number payload[0..1], length field payload[2..3], then the rest (shorter or longer)
 *   6  the payload as a datagram, as it is
 *   7  a message of type payload[1..2] whose attributes are payload[3..] (zero-padded), signed as auth says;
 *      left unsent if it names a public peer address (nothing leaves the host)
 *   8  a peer's sink (payload[0] % N_SINKS) sends the rest of the payload to the relayed address of allocation
 *      payload[1] (or, with none, to a relay port)
 *   9  payload[0..1] * 100 ms pass, and the relay's sweep runs
 *  10  the client's TCP or TLS connection closes (turn_client_gone())
 * After each, the relay ports are read (as poll() would), and the harness checks what reached the peers' sinks and
 * what the relay sent clients (caught, not sent): answers well formed, no larger than amplification allows when
 * unsigned, signed when the request was and with the code its spoiled credentials deserve; successes that did what
 * they say (an allocation at that relayed address, permissions and channels only for peers the policy opens,
 * fuzz_open()); data only to and from permitted peers, whole; then fuzz_invariants().  At the end turn_close()
 * frees every allocation, and no descriptor stays open.  The caps are small (see the top of this file), so that
 * inputs reach them. */
enum { N_CLIENTS = 14, N_SINKS = 3, N_SEEN = 16, N_OUT = 32, N_OPS = 11 };

static const char *const member_ids[4] = {
    "alice", "bob", "0123456789abcdef0123456789abcdef", /* the last as long as a REST service might make one */
    "an-id-of-eighty-bytes/longer-than-camus-makes-yet-what-a-rest-api-service-chooses"};

static const struct {
  const char *ip;
  int port;
  bool tcp;
} client_at[N_CLIENTS] = {
    {"127.0.0.1", 40001, false}, {"127.0.0.1", 40002, false}, {"127.0.0.1", 40003, false},
    {"127.0.0.1", 40004, false}, {"127.0.0.1", 40005, false}, {"127.0.0.2", 40001, false},
    {"127.0.0.2", 40002, false}, {"127.0.0.2", 40003, false}, {"127.0.0.3", 40001, false},
    {"127.0.0.3", 40002, false}, {"::1", 40001, false},       {"::1", 40002, false},
    {"127.0.0.1", 40001, true},        /* the first client's numbers, over TCP: another client */
    {"::ffff:127.0.0.1", 40002, false} /* the second client as a dual-stack socket sees it: the same */
};

static struct camus *srv;
static struct turn *relay;
static struct sockaddr_storage clients[N_CLIENTS], canon[N_CLIENTS]; /* as they come; as the relay knows them */
static int slot_of[N_CLIENTS];                                        /* the first client with the same canon */
static struct sockaddr_storage sinks[N_SINKS], media;                 /* peers: bound sockets; the media port */
static int sink_fd[N_SINKS];
static uint8_t txids[N_CLIENTS][12]; /* each client's last request's */
static int alloc_id[N_CLIENTS];      /* the member id (index) its allocation was made with, -1 if unknown */
static int allow;
static uint32_t txn;
static uint64_t epoch;

/* What the relay sent its clients during one operation. */
static struct out {
  struct sockaddr_storage to;
  size_t n;
  uint8_t p[CAMUS_UDP_DATAGRAM_MAX + 64];
} out[N_OUT];
static int n_out;

/* The data lately sent either way, which is all the relay may pass on. */
static struct seen {
  size_t n;
  uint8_t p[CAMUS_UDP_DATAGRAM_MAX];
} seen[N_SEEN];
static unsigned seen_next;

/* The value of the first attribute of that type in the well-formed STUN message p[0..n), or NULL. */
static const uint8_t *fuzz_attr(const uint8_t *p, size_t n, uint16_t type, size_t *len) {
  for (size_t at = STUN_HDR; at + 4 <= n; at += 4 + ((get_u16(p + at + 2) + 3u) & ~3u)) {
    *len = get_u16(p + at + 2);
    if (get_u16(p + at) == type) return at + 4 + *len <= n ? p + at + 4 : NULL;
  }
  return NULL;
}

static void fuzz_sent(void *ctx, const void *data, size_t n, const struct sockaddr_storage *to) {
  (void)ctx;
  FUZZ_CHECK(n > 0 && n <= sizeof out[0].p);
  if (n_out == N_OUT) return;
  out[n_out].to = *to;
  out[n_out].n = n;
  memcpy(out[n_out].p, data, n);
  n_out++;
}

static void fuzz_seen(const uint8_t *p, size_t n) {
  struct seen *s = &seen[seen_next++ % N_SEEN];
  s->n = MIN(n, sizeof s->p);
  memcpy(s->p, p, s->n);
}

static bool fuzz_was_seen(const uint8_t *p, size_t n) {
  for (int i = 0; i < N_SEEN; i++)
    if (seen[i].n == n && !memcmp(seen[i].p, p, n)) return true;
  return false;
}

/* Loopback, or a range the relay never opens (unless allowed): private, shared, link-local, multicast, broadcast. */
static bool fuzz_private(const uint8_t ip[4]) {
  return ip[0] == 0 || ip[0] == 10 || ip[0] == 127 || ip[0] >= 224 || (ip[0] == 100 && (ip[1] & 0xc0) == 64) ||
         (ip[0] == 169 && ip[1] == 254) || (ip[0] == 172 && (ip[1] & 0xf0) == 16) || (ip[0] == 192 && ip[1] == 168);
}

/* The harness's own model of the relay's policy for the peers fuzz_peer_at() can name: an IPv4 address with a
 * port, in 127.0.0.0/8 where --turn-allow opens it, or the server's own address (127.0.0.1) at a relay port or its
 * media port.  Nothing else (private ranges stay closed; public addresses are never named). */
static bool fuzz_open(const struct sockaddr_storage *peer) {
  uint8_t ip[16];
  int port = addr_port(peer);
  if (peer->ss_family != AF_INET || port == 0 || addr_bytes(peer, ip) != AF_INET || ip[0] != 127) return false;
  bool is2 = ip[1] == 0 && ip[2] == 0 && ip[3] == 2, own = ip[1] == 0 && ip[2] == 0 && ip[3] == 1;
  if (allow == 2 || (allow == 1 && is2)) return true;
  return own && ((port >= relay->port_min && port <= relay->port_max) || port == relay->media_port);
}

/* A peer named by the bytes p[0..n): returns how many it took.  p[0] & 15 picks a sink (0-2: 127.0.0.1,
 * 127.0.0.2, ::1), an allocation's relayed address, the media port, a relay port, loopback at port 0 or elsewhere,
 * a closed range, an IPv6 address, or (14) the IPv4 address and port p[1..6] (made private if public). */
static size_t fuzz_peer_at(const uint8_t *p, size_t n, struct sockaddr_storage *peer) {
  static const char *const closed[] = {"10.0.0.1",  "192.168.1.1", "172.16.0.1", "169.254.1.1",
                                       "100.64.0.1", "0.0.0.0",     "224.0.0.1",  "255.255.255.255"};
  static const char *const v6[] = {"::1", "fe80::1", "fc00::1", "ff02::1", "::", "2001:db8::1", "::ffff:127.0.0.2"};
  uint8_t s = n ? p[0] : 0, hi = s >> 4;
  switch (s & 15) {
  case 0:
  case 1:
  case 2: *peer = sinks[s & 15]; break;
  case 3: *peer = relay->n ? relay->allocs[hi % relay->n]->relayed : sinks[0]; break;
  case 4: *peer = media; break;
  case 5: addr_parse("127.0.0.1", relay->port_min + hi, peer); break;
  case 6: addr_parse(hi & 1 ? "127.0.0.2" : "127.0.0.1", 0, peer); break;
  case 7: { /* 127.0.0.3-10: enough addresses to fill the permissions */
    char ip[16];
    snprintf(ip, sizeof ip, "127.0.0.%d", 3 + hi % 8);
    addr_parse(ip, 1000 + hi, peer);
    break;
  }
  case 8:
  case 9:
  case 10:
  case 11: addr_parse(closed[(s & 15) - 8 + 4 * (hi & 1)], 9, peer); break;
  case 12:
  case 13: addr_parse(v6[hi % COUNT(v6)], 9, peer); break;
  case 14:
    if (n >= 7) {
      uint8_t ip[4];
      char text[INET_ADDRSTRLEN];
      memcpy(ip, p + 1, 4);
      if (!fuzz_private(ip)) ip[0] = 10;
      inet_ntop(AF_INET, ip, text, sizeof text);
      addr_parse(text, get_u16(p + 5), peer);
      return 7;
    }
    *peer = sinks[1];
    break;
  default: addr_parse("127.0.0.1", hi, peer); break; /* the server's own address, but at no port of its */
  }
  return n ? 1 : 0;
}

static void fuzz_setup(void) {
  srv = fuzz_server();
  relay = &srv->turn;
  FUZZ_CHECK(srv->turn_on && relay->n_own == 1 && cidr_parse("127.0.0.2/32", &relay->allow[0]) == 0 &&
             cidr_parse("127.0.0.0/8", &relay->allow[1]) == 0);
  relay->send = fuzz_sent; /* what it sends clients is caught here; what goes to the media port still goes up */
  relay->port_min = 47000; /* off the default range, which servers under test use */
  for (int i = 0; i < N_CLIENTS; i++) {
    struct sockaddr_storage tmp;
    FUZZ_CHECK(addr_parse(client_at[i].ip, client_at[i].port, &clients[i]) == 0);
    if (client_at[i].tcp) addr_set_tcp(&clients[i]);
    canon[i] = *addr_canonical(&clients[i], &tmp);
    for (slot_of[i] = 0; !addr_same(&canon[slot_of[i]], &canon[i]);) slot_of[i]++;
  }
  FUZZ_CHECK(slot_of[13] == 1 && slot_of[12] == 12);
  static const char *const sink_ips[N_SINKS] = {"127.0.0.1", "127.0.0.2", "::1"};
  for (int i = 0; i < N_SINKS; i++) {
    addr_parse(sink_ips[i], 0, &sinks[i]);
    sink_fd[i] = socket_bind(&sinks[i], SOCK_DGRAM);
    addr_parse(sink_ips[i], sink_fd[i] >= 0 ? socket_port(sink_fd[i]) : 9, &sinks[i]); /* no IPv6: a sink never read */
  }
  addr_parse("127.0.0.1", relay->media_port, &media);
  epoch = srv->loop.now;
}

/* What reached the peers' sinks: only from an allocation's relayed address, to a peer it permits and the policy
 * opens; and want[0..want_n) whole, if given (the one datagram the operation sent a peer). */
static void fuzz_sinks_read(const uint8_t *want, size_t want_n, bool check) {
  static uint8_t buf[65536];
  for (int k = 0; k < N_SINKS; k++) {
    for (;;) {
      struct sockaddr_storage from;
      socklen_t fl = sizeof from;
      memset(&from, 0, sizeof from);
      ssize_t got = sink_fd[k] < 0 ? -1 : recvfrom(sink_fd[k], buf, sizeof buf, MSG_DONTWAIT, (struct sockaddr *)&from, &fl);
      if (got < 0) break;
      if (!check) continue;
      struct turn_alloc *a = NULL;
      for (unsigned i = 0; i < relay->n && !a; i++)
        if (addr_same(&relay->allocs[i]->relayed, &from)) a = relay->allocs[i];
      FUZZ_CHECK(a && turn_permission(a, &sinks[k]) && fuzz_open(&sinks[k]));
      if (want) FUZZ_CHECK((size_t)got == want_n && !memcmp(buf, want, want_n));
    }
  }
}

/* The same address and port, whatever the transport. */
static bool fuzz_same_host_port(const struct sockaddr_storage *a, const struct sockaddr_storage *b) {
  uint8_t x[16], y[16];
  return addr_bytes(a, x) == addr_bytes(b, y) && !memcmp(x, y, 16) && addr_port(a) == addr_port(b);
}

/* What the relay sent during an operation in which client ci sent req[0..req_n) (req NULL: nothing): data only to
 * clients with an allocation, from a peer permitted and open, and seen lately; at most one answer, to req's sender,
 * for req's transaction and method, no larger than CAMUS_AMPLIFICATION times req when unsigned over UDP.
 * Returns the answer, if any. */
static const struct out *fuzz_check_out(int ci, const uint8_t *req, size_t req_n) {
  const struct out *answer = NULL;
  for (int i = 0; i < n_out; i++) {
    const struct out *o = &out[i];
    struct turn_alloc *a = turn_find(relay, &o->to);
    bool known = false;
    for (int j = 0; j < N_CLIENTS; j++) known |= addr_same(&o->to, &canon[j]);
    FUZZ_CHECK(known);
    if (o->p[0] >= 64 && o->p[0] <= 79) { /* ChannelData from a peer */
      struct turn_channel *c;
      FUZZ_CHECK(a && o->n >= 4 && get_u16(o->p + 2) == o->n - 4 && (c = turn_channel(a, get_u16(o->p), NULL)) != NULL);
      FUZZ_CHECK(turn_permission(a, &c->peer) && fuzz_open(&c->peer));
      FUZZ_CHECK(addr_same(&c->peer, &media) || fuzz_was_seen(o->p + 4, o->n - 4));
      continue;
    }
    struct stun_msg m;
    FUZZ_CHECK(stun_parse(o->p, o->n, &m) == 0 && (m.fingerprint_ok || !m.fingerprint));
    uint16_t cls = STUN_CLASS(m.type);
    if (cls == STUN_INDICATION) { /* a Data indication from a peer (FINGERPRINT optional) */
      FUZZ_CHECK(STUN_METHOD(m.type) == TURN_DATA && a && m.n_peers == 1 && m.has_data);
      FUZZ_CHECK(turn_permission(a, &m.peers[0]) && fuzz_open(&m.peers[0]));
      FUZZ_CHECK(addr_same(&m.peers[0], &media) || fuzz_was_seen(m.data, m.data_len));
      continue;
    }
    FUZZ_CHECK((cls == STUN_SUCCESS || cls == STUN_ERROR) && m.fingerprint_ok && !answer && req && req_n >= STUN_HDR);
    FUZZ_CHECK(addr_same(&o->to, &canon[ci]) && !memcmp(m.txid, req + 8, 12) && STUN_METHOD(m.type) == STUN_METHOD(get_u16(req)));
    if (!m.integrity_at && !addr_is_tcp(&o->to)) FUZZ_CHECK(o->n <= (size_t)CAMUS_AMPLIFICATION * req_n);
    answer = o;
  }
  return answer;
}

/* The answer ans to client ci's request req, which was signed with key (NULL: unknown): an error says why; a
 * 401 or 438 gives the realm and a nonce good for the client; a success is signed with the request's key and has
 * done what it says. */
static void fuzz_check_answer(int ci, const uint8_t *req, size_t req_n, const struct out *ans, const uint8_t *key) {
  struct stun_msg q, m;
  size_t l;
  FUZZ_CHECK(stun_parse(req, req_n, &q) == 0 && stun_parse(ans->p, ans->n, &m) == 0);
  struct turn_alloc *a = turn_find(relay, &canon[ci]);
  uint64_t now = relay->loop->now, most = MAX(CAMUS_TURN_LIFETIME, 600);
  if (STUN_CLASS(m.type) == STUN_ERROR) {
    FUZZ_CHECK(m.error_code >= 300 && m.error_code < 700);
    if (m.error_code == 401 || m.error_code == 438)
      FUZZ_CHECK(m.realm && m.realm_len == 5 && !memcmp(m.realm, TURN_REALM, 5) && m.nonce &&
                 turn_nonce_ok(relay, &canon[ci], m.nonce, m.nonce_len));
    return;
  }
  FUZZ_CHECK(m.integrity_at && (!key || stun_integrity_ok(ans->p, ans->n, &m, key, 16)));
  switch (STUN_METHOD(q.type)) {
  case TURN_ALLOCATE: {
    struct sockaddr_storage relayed;
    const uint8_t *v = fuzz_attr(ans->p, ans->n, TURN_A_XOR_RELAYED_ADDRESS, &l);
    FUZZ_CHECK(a && v && stun_read_address(v, l, true, ans->p, &relayed) && addr_same(&relayed, &a->relayed));
    FUZZ_CHECK(m.has_mapped && fuzz_same_host_port(&m.mapped, &canon[ci]) && !memcmp(a->txid, q.txid, 12));
    FUZZ_CHECK(m.has_lifetime && m.lifetime >= 600 && m.lifetime <= most && a->until == now + 1000ull * m.lifetime);
    break;
  }
  case TURN_REFRESH:
    FUZZ_CHECK(m.has_lifetime);
    if (m.lifetime == 0)
      FUZZ_CHECK(!a && q.has_lifetime && q.lifetime == 0);
    else
      FUZZ_CHECK(a && m.lifetime >= 600 && m.lifetime <= most && a->until == now + 1000ull * m.lifetime);
    break;
  case TURN_CREATE_PERMISSION:
    FUZZ_CHECK(a && q.n_peers > 0);
    for (int i = 0; i < q.n_peers; i++) FUZZ_CHECK(fuzz_open(&q.peers[i]) && turn_permission(a, &q.peers[i]));
    break;
  case TURN_CHANNEL_BIND: {
    struct turn_channel *c = a ? turn_channel(a, q.channel, NULL) : NULL;
    FUZZ_CHECK(c && q.has_channel && q.channel >= 0x4000 && q.channel <= 0x4fff && q.n_peers == 1);
    FUZZ_CHECK(addr_same(&c->peer, &q.peers[0]) && fuzz_open(&q.peers[0]) && turn_permission(a, &q.peers[0]));
    break;
  }
  default: FUZZ_CHECK(!"a success answer to no request of TURN's");
  }
}

/* Bugs these targets found, each kept in the corpus: a ChannelBind without a number crashed the relay
 * (channelbind-number-0); a user name longer than the allocation kept (an id over 52 bytes) escaped the quota per
 * member (bug-member-quota-long-id). */
/* What holds between operations: the caps (all, per address, per member); each allocation findable by its client
 * and its relayed address, with its own socket on a relay port, registered with the loop; its live channels
 * numbered in range, no number and no peer twice; its live permissions each for one address the policy opens. */
static void fuzz_invariants(void) {
  unsigned per_id[COUNT(member_ids)] = {0};
  uint64_t now = relay->loop->now;
  FUZZ_CHECK(relay->n <= CAMUS_TURN_ALLOCATIONS && relay->by_client.n == relay->n && relay->by_relay.n == relay->n);
  FUZZ_CHECK(relay->sweep.slot != 0 && srv->loop.n_io < 64);
  for (unsigned i = 0; i < relay->n; i++) {
    struct turn_alloc *a = relay->allocs[i];
    int port = addr_port(&a->relayed), ci = -1;
    unsigned same_host = 0;
    FUZZ_CHECK(a->t == relay && turn_find(relay, &a->client) == a && turn_relaying(relay, &a->relayed) == a);
    FUZZ_CHECK(a->fd >= 0 && fcntl(a->fd, F_GETFD) != -1 && a->slot >= 0 && (unsigned)a->slot < srv->loop.n_io);
    FUZZ_CHECK(srv->loop.io[a->slot].fd == a->fd && srv->loop.io[a->slot].ctx == a &&
               srv->loop.io[a->slot].fn == turn_relay_readable);
    FUZZ_CHECK(port >= relay->port_min && port <= relay->port_max && socket_port(a->fd) == port);
    for (unsigned j = 0; j < relay->n; j++) {
      same_host += !memcmp(relay->allocs[j]->host, a->host, 16);
      if (j != i) FUZZ_CHECK(relay->allocs[j]->fd != a->fd && !addr_same(&relay->allocs[j]->client, &a->client));
    }
    FUZZ_CHECK(same_host <= CAMUS_TURN_PER_HOST);
    for (int j = 0; j < N_CLIENTS && ci < 0; j++)
      if (addr_same(&canon[j], &a->client)) ci = j;
    FUZZ_CHECK(ci >= 0);
    if (alloc_id[slot_of[ci]] >= 0) per_id[alloc_id[slot_of[ci]]]++;
    for (int k = 0; k < CAMUS_TURN_CHANNELS; k++) {
      const struct turn_channel *c = &a->channels[k];
      if (!c->number || c->until <= now) continue;
      FUZZ_CHECK(c->number >= 0x4000 && c->number <= 0x4fff && fuzz_open(&c->peer));
      for (int j = k + 1; j < CAMUS_TURN_CHANNELS; j++) {
        const struct turn_channel *d = &a->channels[j];
        if (d->number && d->until > now) FUZZ_CHECK(d->number != c->number && !addr_same(&d->peer, &c->peer));
      }
    }
    for (int k = 0; k < CAMUS_TURN_PERMISSIONS; k++) {
      uint8_t x[16], y[16];
      if (a->perms[k].until <= now) continue;
      FUZZ_CHECK(fuzz_open(&a->perms[k].peer));
      addr_bytes(&a->perms[k].peer, x);
      for (int j = k + 1; j < CAMUS_TURN_PERMISSIONS; j++)
        if (a->perms[j].until > now) FUZZ_CHECK(addr_bytes(&a->perms[j].peer, y) != AF_INET || memcmp(x, y, 16) != 0);
    }
  }
  for (size_t k = 0; k < COUNT(member_ids); k++)
    FUZZ_CHECK(per_id[k] <= CAMUS_TURN_PER_MEMBER);
}

/* One operation of the input (see the top of this section). */
static void fuzz_op(int op, int ci, const uint8_t *arg, size_t n) {
  static uint8_t msg[CAMUS_UDP_DATAGRAM_MAX + 64];
  struct stun_writer w = {msg, CAMUS_UDP_DATAGRAM_MAX, 0, false};
  uint8_t key[16] = {0}, txid[12] = "fuzz-turn-tx";
  int fault = -1, id = 0, fp = 1, slot = slot_of[ci];
  size_t len = 0, at = 0, want_n = 0;
  const uint8_t *want = NULL;                 /* what a sink may get: the datagram to a peer, whole */
  bool had = turn_find(relay, &canon[ci]), send = true;
  struct turn_alloc *target = NULL;           /* op 8: the allocation a peer sends to */
  uint64_t target_in = 0;
  bool target_open = false;
  struct sockaddr_storage peer;
  put_u32(txid + 8, ++txn);
  if (op <= 3 || op == 7) {
    uint8_t auth = n ? arg[0] : 0;
    fault = auth & 15, id = auth >> 4 & 3, fp = auth >> 6 == 1 ? 0 : auth >> 6 == 2 ? 2 : 1;
    if (fault >= AUTH_FAULTS) fault = AUTH_GOOD;
    if (auth >> 6 == 3) memcpy(txid, txids[slot], 12); /* a retransmission */
    memcpy(txids[slot], txid, 12);
    arg += n ? 1 : 0, n -= n ? 1 : 0;
  }
  uint8_t f = n ? arg[0] : 0;
  switch (op) {
  case 0:
    stun_begin(&w, TURN_ALLOCATE, txid);
    if (!(f & 1)) stun_attr(&w, TURN_A_REQUESTED_TRANSPORT, (const uint8_t[4]){f & 2 ? 6 : 17}, 4);
    if (f & 4) stun_attr(&w, TURN_A_REQUESTED_ADDRESS_FAMILY, (const uint8_t[4]){f & 8 ? 2 : 1}, 4);
    if (f & 16) stun_attr(&w, TURN_A_EVEN_PORT, n >= 6 && (arg[5] & 1) ? "\x80" : "", 1);
    if (n >= 6 && (arg[5] & 2)) stun_attr(&w, TURN_A_RESERVATION_TOKEN, "fuzz-tok", 8);
    if (f & 32) stun_attr_u32(&w, TURN_A_LIFETIME, n >= 5 ? get_u32(arg + 1) : 0);
    if (f & 64) stun_attr(&w, 0x0033, "?", 1);
    if (f & 128) stun_attr(&w, TURN_A_DONT_FRAGMENT, NULL, 0);
    break;
  case 1:
    stun_begin(&w, TURN_REFRESH, txid);
    if (f & 3) stun_attr_u32(&w, TURN_A_LIFETIME, (f & 3) == 1 ? 0 : (f & 3) == 3 ? 0xffffffffu : n >= 5 ? get_u32(arg + 1) : 0);
    if (f & 4) stun_attr(&w, 0x0033, "?", 1);
    break;
  case 2:
    stun_begin(&w, TURN_CREATE_PERMISSION, txid);
    at = MIN((size_t)1, n);
    for (int i = 0; i < f % 6; i++) {
      at += fuzz_peer_at(arg + at, n - at, &peer);
      at = MIN(at, n);
      stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peer);
    }
    break;
  case 3: {
    uint8_t number[4] = {0x40, 0, 0, 0}, flags = n >= 3 ? arg[2] : 0;
    if (n >= 2) memcpy(number, arg, 2);
    stun_begin(&w, TURN_CHANNEL_BIND, txid);
    if (!(flags & 1)) stun_attr(&w, TURN_A_CHANNEL_NUMBER, number, 4);
    at = MIN((size_t)3, n);
    at += fuzz_peer_at(arg + at, n - at, &peer);
    stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peer);
    if (flags & 2) stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&sinks[1]);
    break;
  }
  case 4:
    at = MIN((size_t)1, n);
    at = MIN(at + fuzz_peer_at(arg + at, n - at, &peer), n);
    want = arg + at, want_n = MIN(n - at, (size_t)CAMUS_UDP_DATAGRAM_MAX - 128);
    stun_begin(&w, TURN_SEND | STUN_INDICATION, txid);
    stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peer);
    if (f & 2) stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&sinks[1]);
    if (!(f & 1)) stun_attr(&w, TURN_A_DATA, want, (uint16_t)want_n);
    if (f & 4) stun_fingerprint(&w);
    fuzz_seen(want, want_n);
    len = w.len;
    break;
  case 5: {
    size_t dn = n > 4 ? MIN(n - 4, (size_t)CAMUS_UDP_DATAGRAM_MAX - 4) : 0;
    msg[0] = n >= 1 ? arg[0] : 0x40, msg[1] = n >= 2 ? arg[1] : 0;
    put_u16(msg + 2, n >= 4 ? get_u16(arg + 2) : (uint16_t)dn);
    memcpy(msg + 4, arg + MIN((size_t)4, n), dn);
    len = 4 + dn;
    if (get_u16(msg + 2) <= dn) fuzz_seen(want = msg + 4, want_n = get_u16(msg + 2));
    break;
  }
  case 6: {
    struct stun_msg m;
    len = MIN(n, (size_t)CAMUS_UDP_DATAGRAM_MAX);
    memcpy(msg, arg, len);
    if (len >= 4 && msg[0] >= 64 && msg[0] <= 79)
      fuzz_seen(msg + 4, MIN((size_t)get_u16(msg + 2), len - 4));
    else if (stun_parse(msg, len, &m) == 0 && m.has_data)
      fuzz_seen(m.data, m.data_len);
    break;
  }
  case 7: {
    struct stun_msg m;
    size_t an = n > 2 ? MIN(n - 2, (size_t)1024) : 0;
    stun_begin(&w, n >= 2 ? get_u16(arg) & 0x3fff : TURN_ALLOCATE, txid);
    memcpy(msg + STUN_HDR, arg + 2, an);
    memset(msg + STUN_HDR + an, 0, (4 - an % 4) % 4);
    w.len += (an + 3) & ~(size_t)3;
    put_u16(msg + 2, (uint16_t)(w.len - STUN_HDR));
    fuzz_sign(relay, &w, fault, member_ids[id], &canon[ci], &canon[(ci + 1) % N_CLIENTS], fp, key);
    len = w.len;
    if (w.err || stun_parse(msg, len, &m) != 0) break;
    for (int i = 0; i < m.n_peers; i++) {
      uint8_t ip[16];
      if (addr_bytes(&m.peers[i], ip) == AF_INET && !fuzz_private(ip)) send = false;
    }
    if (m.has_data) fuzz_seen(m.data, m.data_len);
    break;
  }
  case 8: {
    int k = f % N_SINKS;
    uint8_t which = n > 1 ? arg[1] : 0;
    struct sockaddr_storage to;
    at = MIN((size_t)2, n);
    if (relay->n) {
      target = relay->allocs[which % relay->n];
      to = target->relayed;
      target_in = target->bytes_in;
      target_open = turn_permission(target, &sinks[k]) && fuzz_open(&sinks[k]);
    } else {
      addr_parse("127.0.0.1", relay->port_min + which, &to);
    }
    fuzz_seen(arg + at, n - at);
    if (sink_fd[k] >= 0) (void)!sendto(sink_fd[k], arg + at, n - at, 0, (const struct sockaddr *)&to, addr_len(&to));
    send = false;
    break;
  }
  case 9:
    srv->loop.now += 100ull * (n >= 2 ? get_u16(arg) : 0);
    timer_stop(&srv->loop, &relay->sweep); /* as timers_run() fires it */
    relay->sweep.fn(&relay->sweep);
    for (unsigned i = 0; i < relay->n; i++) FUZZ_CHECK(relay->allocs[i]->until > srv->loop.now);
    send = false;
    break;
  default:
    turn_client_gone(relay, &canon[ci]);
    FUZZ_CHECK(!turn_find(relay, &canon[ci]));
    send = false;
    break;
  }
  if (op <= 3) {
    fuzz_sign(relay, &w, fault, member_ids[id], &canon[ci], &canon[(ci + 1) % N_CLIENTS], fp, key);
    FUZZ_CHECK(!w.err);
    len = w.len;
  }
  n_out = 0;
  if (send && !w.err) {
    uint8_t *d = malloc(len ? len : 1); /* exactly len bytes, as the socket filled */
    memcpy(d, msg, len);
    udp_input(&srv->udp, d, len, &clients[ci]);
    free(d);
  }
  for (unsigned i = 0; i < relay->n; i++) turn_relay_readable(relay->allocs[i], POLLIN);
  fuzz_sinks_read(want, want_n, true);
  const struct out *ans = fuzz_check_out(ci, send && !w.err ? msg : NULL, len);
  if (op <= 3) { /* what the credentials deserve */
    struct stun_msg m;
    if (ans) FUZZ_CHECK(stun_parse(ans->p, ans->n, &m) == 0);
    if (fp == 2) {
      FUZZ_CHECK(!ans); /* a broken FINGERPRINT: not ours, dropped */
    } else if (fault == AUTH_NONE) {
      FUZZ_CHECK(ans ? m.error_code == 401 && !m.integrity_at : !addr_is_tcp(&canon[ci]));
    } else if (fault != AUTH_GOOD) {
      bool stale = fault == AUTH_STALE_NONCE || fault == AUTH_OTHERS_NONCE || fault == AUTH_SHORT_NONCE || fault == AUTH_BAD_NONCE;
      int code = fault == AUTH_NO_NONCE ? 400 : stale ? 438 : 401;
      FUZZ_CHECK(ans && m.error_code == code && !m.integrity_at);
    } else {
      struct stun_msg q;
      FUZZ_CHECK(ans && m.integrity_at && stun_integrity_ok(ans->p, ans->n, &m, key, 16) && stun_parse(msg, len, &q) == 0);
      if (q.n_unknown)
        FUZZ_CHECK(m.error_code == 420);
      else if (op != 0 && !had)
        FUZZ_CHECK(m.error_code == 437);
    }
  }
  if (ans) fuzz_check_answer(ci, msg, len, ans, fault >= 0 ? key : NULL);
  if (!had && turn_find(relay, &canon[ci]) && (op == 0 || op == 7)) alloc_id[slot] = id;
  if (target) {
    if (!target_open) FUZZ_CHECK(target->bytes_in == target_in); /* no permission, or not open: nothing passes */
    bool got = false;
    for (int i = 0; i < n_out; i++) got |= addr_same(&out[i].to, &target->client);
    if (n > at && target->bytes_in == target_in + (n - at)) FUZZ_CHECK(got); /* it passed: to the client */
  }
  fuzz_invariants();
}

static void fuzz(const uint8_t *data, size_t size) {
  if (!srv) fuzz_setup();
  int fds = fuzz_fds();
  srv->loop.now = epoch;
  FUZZ_CHECK(timer_in(&srv->loop, &relay->sweep, 1000) == 0);
  allow = size ? data[0] % 3 : 0;
  relay->n_allow = allow;
  relay->port_max = relay->port_min + (size && (data[0] & 4) ? 15 : 7); /* 8 ports run out before the allocations do */
  relay->next_port = 0;
  if (size) data++, size--;
  for (int i = 0; i < N_SEEN; i++) seen[i].n = 0;
  for (int i = 0; i < N_CLIENTS; i++) alloc_id[i] = -1;
  memset(txids, 0, sizeof txids);
  fuzz_sinks_read(NULL, 0, false);
  while (size >= 4) {
    int op = data[0] % N_OPS, ci = data[1] % N_CLIENTS;
    size_t n = MIN((size_t)get_u16(data + 2), size - 4);
    fuzz_op(op, ci, data + 4, n);
    data += 4 + n, size -= 4 + n;
  }
  /* Everything goes, as camus_free() closes the relay: the next input starts afresh. */
  turn_close(relay);
  FUZZ_CHECK(relay->n == 0 && relay->by_client.n == 0 && relay->by_relay.n == 0);
  FUZZ_CHECK(timer_in(&srv->loop, &relay->sweep, 1000) == 0);
  fuzz_slots(&srv->loop);
  udp_flush(&srv->udp);
  fuzz_sinks_read(NULL, 0, false);
  FUZZ_CHECK(fuzz_fds() == fds);
}

/* ------------------------------------------------------------------- TCP ------------------------------------------------------------------ */
#else

/* Input: [control][k][k chunk sizes][the stream].  The stream's first byte is made 0 or 1, STUN's, so that the
 * connection is framed (HTTP is the http target's).  The stream comes in chunks of the sizes given, round and
 * round, each (b & 127) + 1 bytes, times 64 if b & 128 (no sizes: the whole stream at once).
 *   control & 1  the narrow way: conn_take_frames() on a connection made here, with no socket, each chunk in a
 *                buffer of exactly its size;
 *           else the real way: one end of a socketpair taken by the server as an accepted connection (conn_new()),
 *                each chunk written to the other end, then what poll() and the loop would do (conn_io(), the end
 *                of the turn: http_turn_end()); the frames, once checked, go on up (TURN, ICE-TCP), and what
 *                comes back is read;
 *   control & 2  the stream starts with a signed TURN Allocate and a ChannelBind (channel 0x4000) to a peer on
 *                127.0.0.2, which the relay is allowed to reach;
 *   control & 4  (the real way) after each chunk that peer sends the relay the chunk's first bytes, which come
 *                down the connection as ChannelData.
 * Checked: frames go up whole and in order, as tcp_cut() cuts the whole stream however it came in, and none from
 * outside the connection's buffer; the connection dies when the stream stops being frames (an unknown first
 * byte, a length over CAMUS_UDP_DATAGRAM_MAX, an RFC 4571 length of 0), and lives otherwise, holding just the
 * unfinished rest; what the server sends back is whole frames of the same framing (ChannelData padded with zeros
 * to four bytes, carrying what the peer sent, in order); once the connection is closed, the TURN allocation it
 * held is gone, and no descriptor is left open. */
struct piece {
  size_t at, len; /* a frame's payload in the stream */
};

static struct camus *srv;
static void (*server_on_frame)(void *ctx, struct conn *c, uint8_t *p, size_t n);
static struct loop own_loop;
static struct http_srv own_http; /* the narrow way's: no socket, its frames to tcp_frame() only */
static struct sockaddr_storage peer;
static int peer_fd = -1;
static struct conn *conn;
static const uint8_t *stream;
static size_t stream_n;
static struct piece *want;
static size_t n_want, n_got;

/* The stream s[0..n) cut into frames as RFC 4571 (ICE-TCP: a 16-bit length, then that many bytes, 1 to
 * CAMUS_UDP_DATAGRAM_MAX) or RFC 8656 12.5 (TURN: STUN messages as their header says, ChannelData as its header
 * says padded to four bytes; at most CAMUS_UDP_DATAGRAM_MAX) cut it; *framing 0 tells which from the first
 * message, as a connection does (the magic cookie at byte 4 or 6 of ten).  Returns how many whole frames (in out,
 * room for cap), with the bytes they take in *end and whether what follows them is no frame in *bad. */
static size_t tcp_cut(const uint8_t *s, size_t n, int *framing, struct piece *out, size_t cap, size_t *end, bool *bad) {
  size_t k = 0, at = 0;
  *bad = false;
  if (!*framing && n >= 10)
    *framing = get_u32(s + 4) == STUN_MAGIC ? FRAMING_TURN : get_u32(s + 6) == STUN_MAGIC ? FRAMING_ICE : -1;
  *bad = *framing < 0;
  while (*framing > 0) {
    size_t left = n - at, off = 0, len, whole;
    if (*framing == FRAMING_ICE) {
      if (left < 2) break;
      len = get_u16(s + at), off = 2, whole = 2 + len;
      if (len == 0 || len > CAMUS_UDP_DATAGRAM_MAX) *bad = true;
    } else {
      if (left < 4) break;
      len = (s[at] <= 1 ? STUN_HDR : 4) + (size_t)get_u16(s + at + 2);
      whole = s[at] <= 1 ? len : (len + 3) & ~(size_t)3;
      if ((s[at] > 1 && (s[at] < 64 || s[at] > 79)) || len > CAMUS_UDP_DATAGRAM_MAX) *bad = true;
    }
    if (*bad || left < whole) break;
    FUZZ_CHECK(k < cap);
    out[k++] = (struct piece){at + off, len};
    at += whole;
  }
  *end = at;
  return k;
}

/* A frame going up: within the connection's buffer, and the next one the stream has. */
static void tcp_frame(void *ctx, struct conn *c, uint8_t *p, size_t n) {
  const uint8_t *lo = (const uint8_t *)c->in.p;
  FUZZ_CHECK(c == conn && (c->framed == FRAMING_ICE || c->framed == FRAMING_TURN) && !c->dead);
  FUZZ_CHECK(p >= lo && n <= c->in.len && (size_t)(p - lo) <= c->in.len - n && c->in.len <= c->in.max);
  FUZZ_CHECK(n_got < n_want && want[n_got].len == n && !memcmp(p, stream + want[n_got].at, n));
  n_got++;
  if (ctx) server_on_frame(ctx, c, p, n);
}

static void tcp_setup(void) {
  srv = fuzz_server();
  FUZZ_CHECK(srv->turn_on && srv->http.on_frame && cidr_parse("127.0.0.2/32", &srv->turn.allow[0]) == 0);
  srv->turn.n_allow = 1;
  srv->turn.port_min = 47008, srv->turn.port_max = 47015; /* off the default range (servers under test) */
  server_on_frame = srv->http.on_frame;
  srv->http.on_frame = tcp_frame;
  own_http = (struct http_srv){.loop = &own_loop, .log_level = srv->log_level, .fd = -1, .request_timeout_sec = 10,
                               .idle_timeout_sec = 60, .on_frame = tcp_frame, .max_framed_out = CAMUS_ICE_TCP_MAX_OUT};
  addr_parse("127.0.0.2", 0, &peer);
  peer_fd = socket_bind(&peer, SOCK_DGRAM);
  FUZZ_CHECK(peer_fd >= 0);
  addr_parse("127.0.0.2", socket_port(peer_fd), &peer);
}

/* The size of chunk i. */
static size_t tcp_chunk(const uint8_t *sizes, size_t k, size_t i) {
  if (!k) return SIZE_MAX;
  uint8_t b = sizes[i % k];
  return ((size_t)(b & 127) + 1) * (b & 128 ? 64 : 1);
}

/* The narrow way.  Returns whether the connection died. */
static bool tcp_direct(const uint8_t *sizes, size_t k, int framing, size_t end) {
  struct conn *c = calloc(1, sizeof *c);
  FUZZ_CHECK(c != NULL);
  *c = (struct conn){.srv = &own_http, .fd = -1, .slot = -1, .timer = {.fn = conn_timeout}};
  addr_parse("127.0.0.1", 50000, &c->addr);
  c->in.max = CAMUS_HTTP_MAX_HEAD + CAMUS_HTTP_MAX_BODY;
  c->out.max = CAMUS_HTTP_MAX_OUT;
  conn = c;
  conn_become_framed(c, false); /* as conn_sniff() does for a first byte of 0 or 1 */
  FUZZ_CHECK(c->framed == FRAMING_UNKNOWN && addr_is_tcp(&c->path) && c->in.max < 2 * CAMUS_UDP_DATAGRAM_MAX);
  for (size_t at = 0, i = 0; at < stream_n && !c->dead; i++) {
    size_t len = MIN(tcp_chunk(sizes, k, i), stream_n - at);
    uint8_t *chunk = malloc(len);
    memcpy(chunk, stream + at, len);
    conn_take_frames(c, chunk, len);
    free(chunk);
    at += len;
    FUZZ_CHECK(c->in.len <= c->in.max && !c->in.err);
  }
  bool dead = c->dead;
  if (framing > 0) FUZZ_CHECK(c->framed == framing);
  if (!dead) FUZZ_CHECK(c->in.len == stream_n - end && !memcmp(c->in.p, stream + end, c->in.len));
  FUZZ_CHECK(amap_get(&own_http.framed, &c->path) == c);
  conn_free(c); /* no descriptor, no slot: it closes nothing */
  FUZZ_CHECK(own_loop.n == 0);
  FUZZ_CHECK(own_http.framed.n == 0);
  return dead;
}

/* Reads what the server sent back into b. */
static void tcp_read_back(int fd, struct buf *b) {
  char tmp[16384];
  ssize_t got;
  while ((got = recv(fd, tmp, sizeof tmp, MSG_DONTWAIT)) > 0) buf_add(b, tmp, (size_t)got);
}

/* The real way.  Returns whether the connection died before the stream ended; what came back goes to back, and
 * what the peer sent the relay to sent[] (pointers into the stream). */
static bool tcp_real(const uint8_t *sizes, size_t k, uint8_t control, size_t prefix_n, struct buf *back,
                     struct piece *sent, size_t *n_sent) {
  int sv[2];
  struct sockaddr_storage addr;
  uint8_t host[16];
  FUZZ_CHECK(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, sv) == 0);
  addr_parse("127.0.0.1", 50000, &addr);
  host_key(&addr, host);
  conn = conn_new(&srv->http, sv[0], &addr, host); /* as http_accept() takes it */
  FUZZ_CHECK(conn && srv->http.n_conns == 1);
  bool alive = true;
  *n_sent = 0;
  for (size_t at = 0, i = 0; at < stream_n && alive;) {
    size_t len = at < prefix_n ? prefix_n - at : tcp_chunk(sizes, k, i++);
    len = MIN(len, stream_n - at);
    FUZZ_CHECK(write(sv[1], stream + at, len) == (ssize_t)len);
    at += len;
    conn_io(conn, POLLIN);
    struct turn_alloc *a = conn->dead ? NULL : turn_find(&srv->turn, &conn->path);
    if ((control & 4) && a) {
      size_t n = MIN(len, (size_t)1000);
      sent[(*n_sent)++] = (struct piece){at - len, n};
      (void)!sendto(peer_fd, stream + at - len, n, 0, (const struct sockaddr *)&a->relayed, addr_len(&a->relayed));
      turn_relay_readable(a, POLLIN);
    }
    http_turn_end(&srv->http); /* sends what was queued; frees the connection if it died */
    tcp_read_back(sv[1], back);
    alive = srv->http.n_conns == 1;
  }
  if (alive) { /* the client closes: so does the connection, and its allocation goes */
    close(sv[1]);
    conn_io(conn, POLLIN | POLLHUP);
    FUZZ_CHECK(conn->dead);
    http_turn_end(&srv->http);
    FUZZ_CHECK(srv->http.n_conns == 0);
  } else {
    close(sv[1]);
  }
  /* A connection whose first message had the magic cookie at neither place once left its path in h->framed,
   * pointing at the freed connection (bug-first-message-not-stun). */
  FUZZ_CHECK(srv->turn.n == 0 && srv->http.framed.n == 0);
  return !alive;
}

/* What came back: whole frames of the connection's framing; ChannelData carrying, in order, what the peer sent,
 * padded with zeros. */
static void tcp_check_back(const struct buf *back, int framing, const struct piece *sent, size_t n_sent) {
  const uint8_t *b = (const uint8_t *)back->p;
  size_t end, k, next = 0;
  bool bad;
  if (framing <= 0) {
    FUZZ_CHECK(back->len == 0);
    return;
  }
  struct piece *frames = malloc((back->len / 3 + 1) * sizeof *frames);
  k = tcp_cut(b, back->len, &framing, frames, back->len / 3 + 1, &end, &bad);
  FUZZ_CHECK(!bad && end == back->len);
  for (size_t i = 0; i < k; i++) {
    const uint8_t *f = b + frames[i].at;
    size_t pad_to = i + 1 < k ? frames[i + 1].at - (framing == FRAMING_ICE ? 2 : 0) : end;
    for (size_t j = frames[i].at + frames[i].len; j < pad_to; j++) FUZZ_CHECK(b[j] == 0);
    if (framing != FRAMING_TURN || f[0] < 64) continue;
    FUZZ_CHECK(get_u16(f) == 0x4000);
    while (next < n_sent && (sent[next].len != frames[i].len - 4 || memcmp(stream + sent[next].at, f + 4, sent[next].len)))
      next++;
    FUZZ_CHECK(next < n_sent);
    next++;
  }
  free(frames);
}

static void fuzz(const uint8_t *data, size_t size) {
  uint8_t prefix[1024], key[16];
  size_t prefix_n = 0, end, n_sent = 0;
  int framing = 0;
  bool bad;
  if (!srv) tcp_setup();
  if (size < 3) return;
  int fds = fuzz_fds();
  uint8_t control = data[0];
  size_t k = MIN((size_t)data[1], size - 2);
  const uint8_t *sizes = data + 2;
  data += 2 + k, size -= 2 + k;
  if (!size) return;
  if (control & 2) { /* a client of the relay, over this connection */
    struct sockaddr_storage path;
    struct stun_writer w = {prefix, sizeof prefix, 0, false};
    addr_parse("127.0.0.1", 50000, &path);
    addr_set_tcp(&path);
    stun_begin(&w, TURN_ALLOCATE, (const uint8_t *)"fuzz-tcp-000");
    stun_attr(&w, TURN_A_REQUESTED_TRANSPORT, (const uint8_t[4]){17}, 4);
    fuzz_sign(&srv->turn, &w, AUTH_GOOD, "alice", &path, &path, 1, key);
    prefix_n = w.len;
    w = (struct stun_writer){prefix + prefix_n, sizeof prefix - prefix_n, 0, false};
    stun_begin(&w, TURN_CHANNEL_BIND, (const uint8_t *)"fuzz-tcp-001");
    stun_attr(&w, TURN_A_CHANNEL_NUMBER, (const uint8_t[4]){0x40, 0}, 4);
    stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peer);
    fuzz_sign(&srv->turn, &w, AUTH_GOOD, "alice", &path, &path, 1, key);
    FUZZ_CHECK(!w.err);
    prefix_n += w.len;
  }
  uint8_t *s = malloc(prefix_n + size); /* exactly the stream's size */
  memcpy(s, prefix, prefix_n);
  memcpy(s + prefix_n, data, size);
  s[0] &= 1;
  stream = s, stream_n = prefix_n + size;
  want = malloc((stream_n / 3 + 1) * sizeof *want);
  n_want = tcp_cut(stream, stream_n, &framing, want, stream_n / 3 + 1, &end, &bad);
  n_got = 0;
  if (control & 1) {
    FUZZ_CHECK(tcp_direct(sizes, k, framing, end) == bad);
  } else {
    struct buf back = {0};
    struct piece *sent = malloc((stream_n + 1) * sizeof *sent);
    FUZZ_CHECK(tcp_real(sizes, k, control, prefix_n, &back, sent, &n_sent) == bad);
    tcp_check_back(&back, framing, sent, n_sent);
    buf_free(&back);
    free(sent);
    fuzz_slots(&srv->loop);
    udp_flush(&srv->udp);
  }
  FUZZ_CHECK(n_got == n_want);
  char tmp[2048];
  while (recv(peer_fd, tmp, sizeof tmp, MSG_DONTWAIT) >= 0) {}
  free(want);
  free(s);
  FUZZ_CHECK(fuzz_fds() == fds);
}

#endif
#endif
#else
#error "choose a target: -DFUZZ_http, -DFUZZ_json, -DFUZZ_sdp, -DFUZZ_stun, -DFUZZ_dcep, -DFUZZ_rtp, -DFUZZ_rtcp, -DFUZZ_srtp, -DFUZZ_msg, -DFUZZ_media, -DFUZZ_udp, -DFUZZ_turn or -DFUZZ_tcp"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz(data, size);
  return 0;
}
