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
 *
 * Build:  clang -fsanitize=fuzzer,address,undefined -DFUZZ_json -o fuzz-json test/fuzz.c \
 *           -lmbedtls -lmbedx509 -lmbedcrypto -lusrsctp -lpthread
 * or simply `sh test/fuzz.sh`, which builds and runs them all on test/corpus/<name>/.
 * FUZZ_LOG=1 in the environment shows the server's debug log in the msg, media and udp targets.
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

#elif defined(FUZZ_msg) || defined(FUZZ_media) || defined(FUZZ_udp)

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
  enum app_err rc = client_offer(s, rm, (const uint8_t[16]){0}, sdp, n, false, (char[33]){0}, &answer, &err);
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
  room = room_create(srv, (const uint8_t[16]){0}, "Fuzz SFU", 8, NULL, 0, true, true, 0, &status, &err);
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
#error "choose a target: -DFUZZ_http, -DFUZZ_json, -DFUZZ_sdp, -DFUZZ_stun, -DFUZZ_dcep, -DFUZZ_rtp, -DFUZZ_rtcp, -DFUZZ_srtp, -DFUZZ_msg, -DFUZZ_media or -DFUZZ_udp"
#endif

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  fuzz(data, size);
  return 0;
}
