/*
 * Table tests for camus.c's parsers and data structures.  The file includes
 * camus.c itself to reach its static functions.  Ends with "N passed, N failed".
 */
#define CAMUS_NO_MAIN
#include "../camus.c"

#include <dirent.h>

static int passed, failed;

#define CHECK(cond)                                                                                          \
  do {                                                                                                       \
    if (cond) {                                                                                              \
      passed++;                                                                                              \
    } else {                                                                                                 \
      failed++;                                                                                              \
      fprintf(stderr, "FAIL %s:%d: %s\n", __FILE__, __LINE__, #cond);                                        \
    }                                                                                                        \
  } while (0)

/* ------------------------------------------------------------------ JSON ------------------------------------------------------------------ */

static struct json_tok toks[8192];

static int parse_text(const char *s) { return json_parse(s, strlen(s), toks, (int)COUNT(toks)); }

/* JSONTestSuite: every y_ file accepted, every n_ file refused, i_ files survive. */
static void test_json_suite(void) {
  const char *dir = "../shared/testdata/JSONTestSuite/test_parsing";
  DIR *d = opendir(dir);
  if (!d) {
    printf("unit: %s is absent, skipping the JSONTestSuite\n", dir);
    return;
  }
  struct dirent *e;
  int y = 0, n = 0, i = 0;
  while ((e = readdir(d))) {
    char path[1024];
    static char data[1 << 20];
    if (e->d_name[0] == '.' || !strstr(e->d_name, ".json")) continue;
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    FILE *f = fopen(path, "rb");
    if (!f) continue;
    size_t len = fread(data, 1, sizeof data, f);
    fclose(f);
    int r = json_parse(data, len, toks, (int)COUNT(toks));
    if (strstr(e->d_name, "duplicated_key")) {
      /* Valid JSON, but not I-JSON (RFC 7493): Camus refuses names given twice. */
      y++;
      CHECK(r == JSON_ERR_DUPLICATE);
    } else if (e->d_name[0] == 'y') {
      y++;
      if (r <= 0) fprintf(stderr, "FAIL json: %s refused (%d)\n", e->d_name, r);
      CHECK(r > 0);
    } else if (e->d_name[0] == 'n') {
      n++;
      if (r > 0) fprintf(stderr, "FAIL json: %s accepted\n", e->d_name);
      CHECK(r < 0);
    } else {
      i++;
    }
  }
  closedir(d);
  CHECK(y >= 95 && n >= 188);
  printf("unit: JSONTestSuite: %d y_, %d n_, %d i_ files\n", y, n, i);
}

static void test_json(void) {
  char out[64];
  long long v;
  CHECK(parse_text("{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}") == 10);
  CHECK(toks[0].type == JSON_OBJECT && toks[0].n == 2 && toks[0].end == 10);
  CHECK(toks[2].type == JSON_ARRAY && toks[2].n == 3 && toks[2].end == 8);
  CHECK(json_find("{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}", toks, 0, "c") == 9);
  CHECK(json_find("{\"a\": [1, 2, {\"b\": null}], \"c\": \"d\"}", toks, 0, "b") == -1);
  const char *esc = "{\"k\\u0065y\": \"\\ud83d\\ude00\\n\\\"\"}";
  CHECK(parse_text(esc) == 3);
  CHECK(json_find(esc, toks, 0, "key") == 2);
  CHECK(json_str(esc, toks, 2, out, sizeof out) == 6 && !memcmp(out, "\xf0\x9f\x98\x80\n\"", 6));
  CHECK(json_str(esc, toks, 2, out, 6) == -1);
  CHECK(json_str(esc, toks, 0, out, sizeof out) == -1);
  CHECK(parse_text("9223372036854775807") == 1 && json_int("9223372036854775807", toks, 0, &v) && v == LLONG_MAX);
  CHECK(parse_text("-9223372036854775808") == 1 && json_int("-9223372036854775808", toks, 0, &v) && v == LLONG_MIN);
  CHECK(parse_text("9223372036854775808") == 1 && !json_int("9223372036854775808", toks, 0, &v));
  CHECK(parse_text("1.5") == 1 && !json_int("1.5", toks, 0, &v));
  CHECK(parse_text("1e3") == 1 && !json_int("1e3", toks, 0, &v));
  /* Depth: 32 levels are fine, 33 are not. */
  char deep[80];
  memset(deep, '[', 33);
  memset(deep + 33, ']', 33);
  CHECK(json_parse(deep + 1, 64, toks, (int)COUNT(toks)) == 32);
  CHECK(json_parse(deep, 66, toks, (int)COUNT(toks)) == JSON_ERR_DEPTH);
  CHECK(json_parse("[1,2,3]", 7, toks, 3) == JSON_ERR_NOMEM);
  CHECK(json_parse("[1,2,3]", 7, toks, 4) == 4);
  /* Every strict prefix of a document is refused. */
  const char *doc = "{\"a\":[true,false,null,-1.5e+3,\"\\u00e9\"]}";
  bool prefixes = true;
  for (size_t k = 0; k < strlen(doc); k++)
    if (json_parse(doc, k, toks, (int)COUNT(toks)) > 0) prefixes = false;
  CHECK(prefixes && parse_text(doc) > 0);
  CHECK(parse_text(" [ ] ") == 1 && parse_text("") < 0 && parse_text("[] x") < 0 && parse_text("\"\x01\"") < 0);
  /* I-JSON: a member named twice, however it is spelled, is refused at any depth; the same name
   * in sibling or nested objects is not a duplicate. */
  CHECK(parse_text("{\"text\":\"ok\",\"text\":\"long\"}") == JSON_ERR_DUPLICATE);
  CHECK(parse_text("{\"text\":1,\"t\\u0065xt\":2}") == JSON_ERR_DUPLICATE);
  CHECK(parse_text("{\"\\ud83d\\ude00\":1,\"\xf0\x9f\x98\x80\":2}") == JSON_ERR_DUPLICATE);
  CHECK(parse_text("{\"a\":{\"b\":1,\"c\":2,\"b\":3}}") == JSON_ERR_DUPLICATE);
  CHECK(parse_text("[{\"a\":1},{\"a\":2}]") == 7 && parse_text("{\"a\":{\"a\":1}}") == 5);
  CHECK(parse_text("{\"ab\":1,\"a\":2,\"abc\":3,\"\":4,\"b\":5}") == 11);
  /* The writer's output parses back to its input; bad UTF-8 becomes U+FFFD. */
  const char *inputs[] = {"plain", "quote \" back \\ slash", "ctl \x01\x1f\n\t", "<img src=x onerror=alert(1)>",
                          "\xe2\x80\xa8 \xf0\x9f\x9a\x80 \xc3\xa9"};
  for (size_t k = 0; k < COUNT(inputs); k++) {
    struct buf b = {0};
    json_write_str(&b, inputs[k], strlen(inputs[k]));
    char back[128];
    CHECK(json_parse(b.p, b.len, toks, 4) == 1 && json_str(b.p, toks, 0, back, sizeof back) == (int)strlen(inputs[k]) &&
          !strcmp(back, inputs[k]));
    CHECK(!memchr(b.p, '<', b.len));
    buf_free(&b);
  }
  struct buf b = {0};
  json_write_str(&b, "a\xff\xc3", 3);
  CHECK(b.err == false && !strcmp(b.p, "\"a\xef\xbf\xbd\xef\xbf\xbd\""));
  buf_free(&b);
  CHECK(utf8_valid("\xc3\xa9", 2) && !utf8_valid("\xc0\xaf", 2) && !utf8_valid("\xed\xa0\x80", 3) &&
        !utf8_valid("\xf4\x90\x80\x80", 4) && !utf8_valid("\xe2\x82", 2));
}

/* ------------------------------------------------------------------ HTTP ------------------------------------------------------------------ */

static int parse(const char *text, struct http_req *r) { return http_parse(text, strlen(text), r); }

static void test_http(void) {
  struct http_req r;
  const char *ok = "POST /api/rooms?x=1 HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nConnection: keep-alive\r\n\r\nhello";
  int n = parse(ok, &r);
  CHECK(n == (int)(strlen(ok) - 5));
  CHECK(str_eq(r.method, "POST") && str_eq(r.path, "/api/rooms") && str_eq(r.query, "x=1"));
  CHECK(r.content_length == 5 && r.keep_alive && r.minor == 1 && r.nh == 3);
  CHECK(str_eq(http_header(&r, "HOST"), "a"));
  /* Every strict prefix of the head needs more bytes. */
  size_t head = (size_t)n;
  bool all_zero = true;
  for (size_t i = 0; i < head; i++)
    if (http_parse(ok, i, &r) != 0) all_zero = false;
  CHECK(all_zero);
  CHECK(parse("GET / HTTP/1.0\n\n", &r) > 0 && !r.keep_alive);
  CHECK(parse("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", &r) > 0 && r.keep_alive);
  CHECK(parse("GET / HTTP/1.1\r\nConnection: close\r\n\r\n", &r) > 0 && !r.keep_alive);
  /* Malformed */
  CHECK(parse("GET  / HTTP/1.1\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/2.0\r\n\r\n", &r) == -400);
  CHECK(parse("GET x HTTP/1.1\r\n\r\n", &r) == -400);
  CHECK(parse("G(T / HTTP/1.1\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nBad Header: x\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nX: a\x7f b\r\n\r\n", &r) == -400); /* DEL is no field character */
  CHECK(parse("GET / HTTP/1.1\r\n folded\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\n", &r) > 0);
  CHECK(parse("GET / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", &r) == -501);
  CHECK(parse("GET / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 2\r\n\r\n", &r) == -400);
  CHECK(parse("GET / HTTP/1.1\r\nX: a\x01b\r\n\r\n", &r) == -400);
  /* Limits */
  static char big[CAMUS_HTTP_MAX_HEAD * 2];
  memset(big, 'a', sizeof big);
  memcpy(big, "GET /", 5);
  CHECK(http_parse(big, CAMUS_HTTP_MAX_LINE + 10, &r) == -414);
  int len = snprintf(big, sizeof big, "GET / HTTP/1.1\r\n");
  for (int i = 0; i < CAMUS_HTTP_MAX_HEADERS + 1; i++) len += snprintf(big + len, sizeof big - (size_t)len, "X%d: y\r\n", i);
  len += snprintf(big + len, sizeof big - (size_t)len, "\r\n");
  CHECK(http_parse(big, (size_t)len, &r) == -431);
  len = snprintf(big, sizeof big, "GET / HTTP/1.1\r\nX: ");
  memset(big + len, 'v', CAMUS_HTTP_MAX_HEAD);
  CHECK(http_parse(big, (size_t)len + CAMUS_HTTP_MAX_HEAD, &r) == -431);
  /* Header tokens */
  CHECK(str_has_token((struct str){"Keep-Alive, Upgrade", 19}, "upgrade"));
  CHECK(!str_has_token((struct str){"keep-alived", 11}, "keep-alive"));
}

static void test_form(void) {
  char out[32];
  struct str body = {"name=My+Room%21&public=on&guest_limit=&x=%zz", 45};
  CHECK(form_get(body, "name", out, sizeof out) == 8 && !strcmp(out, "My Room!"));
  CHECK(form_get(body, "public", out, sizeof out) == 2 && !strcmp(out, "on"));
  CHECK(form_get(body, "guest_limit", out, sizeof out) == 0);
  CHECK(form_get(body, "missing", out, sizeof out) == -1);
  CHECK(form_get(body, "x", out, sizeof out) == -2);
  CHECK(form_get((struct str){"a=%4", 4}, "a", out, sizeof out) == -2);
  CHECK(form_get((struct str){"a=0123456789", 12}, "a", out, 5) == -2);
  CHECK(form_get((struct str){"ab=1&a=2", 8}, "a", out, sizeof out) == 1 && out[0] == '2');
}

/* ------------------------------------------------------------------ ROOMS ----------------------------------------------------------------- */

static void test_slug(void) {
  char out[CAMUS_ROOM_NAME_MAX + 1];
  CHECK(slugify("My Room!", 8, out, sizeof out) == 7 && !strcmp(out, "my-room"));
  CHECK(slugify("  --A__b--  ", 12, out, sizeof out) == 3 && !strcmp(out, "a-b"));
  CHECK(slugify("Caf\xc3\xa9 2", 7, out, sizeof out) == 5 && !strcmp(out, "caf-2"));
  CHECK(slugify("!!!", 3, out, sizeof out) == 0);
  CHECK(slugify("\xc3\xa9", 2, out, sizeof out) == 0);
  char tiny[4];
  CHECK(slugify("abcdef", 6, tiny, sizeof tiny) == 3 && !strcmp(tiny, "abc"));
}

static struct camus *test_server(void) {
  struct camus_config cfg;
  camus_config_init(&cfg);
  cfg.host = "127.0.0.1";
  cfg.port = 0;
  cfg.udp_port = 0;
  cfg.log_level = CAMUS_LOG_ERROR;
  char err[256];
  struct camus *s = camus_new(&cfg, err, sizeof err);
  if (!s) fprintf(stderr, "camus_new: %s\n", err);
  return s;
}

/* camus_new() holds the settings to their bounds, whatever the caller gives. */
static void test_config(void) {
  struct camus_config cfg;
  camus_config_init(&cfg);
  cfg.host = NULL;
  cfg.port = 0;
  cfg.udp_port = 0;
  cfg.log_level = CAMUS_LOG_ERROR;
  cfg.max_connections = 0;
  cfg.msg_rate = 0;
  struct camus *s = camus_new(&cfg, NULL, 0);
  CHECK(s && s->http.max_conns == CAMUS_MAX_CONNECTIONS && s->cfg.msg_rate == CAMUS_MSG_RATE && s->log_level == CAMUS_LOG_ERROR);
  camus_free(s);
  cfg.max_connections = 1000000;
  s = camus_new(&cfg, NULL, 0);
  CHECK(s && s->http.max_conns == CAMUS_MAX_CONNECTIONS_LIMIT);
  camus_free(s);
}

static void test_rooms_and_tokens(void) {
  struct camus *s = test_server();
  CHECK(s != NULL);
  if (!s) return;
  enum app_err status;
  const char *err;
  struct room *a = room_create(s, (const uint8_t[16]){0}, " Team A ", 8, "pw", 2, true, true, 0, &status, &err);
  CHECK(a && !strcmp(a->id, "team-a") && !strcmp(a->name, "Team A") && a->has_password);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "team a", 6, NULL, 0, true, true, 0, &status, &err) && status == APP_CONFLICT);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "***", 3, NULL, 0, true, true, 0, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "   ", 3, NULL, 0, true, true, 0, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "a\x01", 2, NULL, 0, true, true, 0, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "a\xff", 2, NULL, 0, true, true, 0, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "ok", 2, NULL, 0, true, true, CAMUS_GUEST_LIMIT_MAX + 1, &status, &err) && status == APP_INVALID);
  if (!a) {
    camus_free(s);
    return;
  }
  CHECK(room_password_ok(a, "pw", 2));
  CHECK(!room_password_ok(a, "pW", 2));
  CHECK(!room_password_ok(a, "", 0));
  s->hash_us = 0;
  s->hash_at = s->loop.now;
  CHECK(!hash_allowed(s)); /* no budget left: a guess now would be refused as busy */
  char tok[96];
  token_make(s, a, tok);
  CHECK(token_ok(s, a, (struct str){tok, strlen(tok)}));
  char bad[96];
  memcpy(bad, tok, sizeof bad);
  bad[strlen(bad) - 1] ^= 1;
  CHECK(!token_ok(s, a, (struct str){bad, strlen(bad)}));
  CHECK(!token_ok(s, a, (struct str){tok, strlen(tok) - 1}));
  CHECK(!token_ok(s, a, (struct str){"", 0}));
  CHECK(!token_ok(s, a, (struct str){"1.00", 4}));
  s->hash_us = 1; /* hashing is budgeted in time, and slow under valgrind: a fresh budget */
  struct room *b = room_create(s, (const uint8_t[16]){0}, "Team B", 6, "pw", 2, false, true, 3, &status, &err);
  CHECK(b && !token_ok(s, b, (struct str){tok, strlen(tok)})); /* bound to its room */
  /* An expired proof: re-sign a past expiry with the real key. */
  uint8_t mac[32];
  token_mac(s, a, 1000, mac);
  int n = snprintf(bad, sizeof bad, "1000.");
  hex_encode(bad + n, mac, 32);
  CHECK(!token_ok(s, a, (struct str){bad, strlen(bad)}));
  camus_free(s);
}

/* ------------------------------------------------------------------ STUN ------------------------------------------------------------------ */

/* RFC 5769 test vectors. */
static const uint8_t rfc5769_request[] = {
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73, 0x74, 0x20, 0x63, 0x6c,
    0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff, 0x80, 0x29, 0x00, 0x08, 0x93, 0x2f,
    0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09, 0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76,
    0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14, 0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e,
    0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49, 0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf};
static const uint8_t rfc5769_ipv4[] = {
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43, 0x00, 0x08, 0x00, 0x14, 0x2b, 0x91,
    0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9, 0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7,
    0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96};
static const uint8_t rfc5769_ipv6[] = {
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86, 0xfa, 0x87,
    0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63, 0x74, 0x6f, 0x72, 0x20,
    0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa, 0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25,
    0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14, 0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1,
    0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75, 0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb,
    0x0b, 0x4c};
static const char rfc5769_pwd[] = "VOkJxbRl1RmTxUk/WvJxBt";

static void test_stun(void) {
  struct stun_msg m;
  char ip[64];
  CHECK(crc32_ieee((const uint8_t *)"123456789", 9) == 0xCBF43926u);
  CHECK(stun_parse(rfc5769_request, sizeof rfc5769_request, &m) == 0);
  CHECK(m.type == STUN_BINDING_REQUEST && m.fingerprint && m.fingerprint_ok && m.integrity_at);
  CHECK(m.username_len == 9 && !memcmp(m.username, "evtj:h6vY", 9));
  CHECK(m.has_priority && m.priority == 0x6e0001ff && m.controlled && m.tiebreaker == 0x932ff9b151263b36ull);
  CHECK(stun_integrity_ok(rfc5769_request, sizeof rfc5769_request, &m, rfc5769_pwd, strlen(rfc5769_pwd)));
  CHECK(!stun_integrity_ok(rfc5769_request, sizeof rfc5769_request, &m, "VOkJxbRl1RmTxUk/WvJxBT", 22));
  const uint8_t *responses[] = {rfc5769_ipv4, rfc5769_ipv6};
  size_t sizes[] = {sizeof rfc5769_ipv4, sizeof rfc5769_ipv6};
  const char *want[] = {"192.0.2.1", "2001:db8:1234:5678:11:2233:4455:6677"};
  for (int k = 0; k < 2; k++) {
    CHECK(stun_parse(responses[k], sizes[k], &m) == 0);
    CHECK(m.type == STUN_BINDING_SUCCESS && m.fingerprint_ok && m.has_mapped && addr_port(&m.mapped) == 32853);
    addr_ip(&m.mapped, ip, sizeof ip, false);
    CHECK(!strcmp(ip, want[k]));
    CHECK(stun_integrity_ok(responses[k], sizes[k], &m, rfc5769_pwd, strlen(rfc5769_pwd)));
    /* Our writer makes the same XOR-MAPPED-ADDRESS, and a message our parser and checks accept. */
    uint8_t out[128];
    struct stun_writer w = {out, sizeof out, 0, false};
    stun_begin(&w, STUN_BINDING_SUCCESS, responses[k] + 8);
    stun_xor_address(&w, (const struct sockaddr *)&m.mapped);
    size_t xlen = k ? 24 : 12;
    CHECK(!w.err && w.len == 20 + xlen && !memcmp(out + 20, responses[k] + 36, xlen));
    stun_integrity(&w, rfc5769_pwd, strlen(rfc5769_pwd));
    stun_fingerprint(&w);
    struct stun_msg back;
    CHECK(!w.err && stun_parse(out, w.len, &back) == 0 && back.fingerprint_ok &&
          stun_integrity_ok(out, w.len, &back, rfc5769_pwd, strlen(rfc5769_pwd)));
  }
  /* Hostile shapes */
  bool prefixes = true;
  for (size_t i = 0; i < sizeof rfc5769_request; i++)
    if (stun_parse(rfc5769_request, i, &m) == 0) prefixes = false;
  CHECK(prefixes);
  uint8_t bad[sizeof rfc5769_request];
  memcpy(bad, rfc5769_request, sizeof bad);
  bad[sizeof bad - 1] ^= 1;
  CHECK(stun_parse(bad, sizeof bad, &m) == 0 && m.fingerprint && !m.fingerprint_ok);
  memcpy(bad, rfc5769_request, sizeof bad);
  bad[4] = 0; /* magic cookie */
  CHECK(stun_parse(bad, sizeof bad, &m) != 0);
  memcpy(bad, rfc5769_request, sizeof bad);
  bad[23] = 0xff; /* SOFTWARE longer than the message */
  CHECK(stun_parse(bad, sizeof bad, &m) != 0);
  memcpy(bad, rfc5769_request, sizeof bad);
  bad[3] = 0x54; /* header length disagrees with the datagram */
  CHECK(stun_parse(bad, sizeof bad, &m) != 0);
  memcpy(bad, rfc5769_request, sizeof bad);
  bad[20] = 0x00; bad[21] = 0x33; /* SOFTWARE turned into an unknown comprehension-required attribute */
  CHECK(stun_parse(bad, sizeof bad, &m) == 0 && m.n_unknown == 1 && m.unknown[0] == 0x0033);
  uint8_t tiny[24];
  struct stun_writer w = {tiny, sizeof tiny, 0, false};
  stun_begin(&w, STUN_BINDING_REQUEST, rfc5769_request + 8);
  stun_attr(&w, STUN_A_USERNAME, "abcdefgh", 8);
  CHECK(w.err);
}

/* ------------------------------------------------------------------ SRTP ------------------------------------------------------------------ */

static size_t unhex(const char *h, uint8_t *out) {
  size_t n = 0;
  for (; h[0] && h[1]; h += 2) {
    while (*h == ' ') h++;
    out[n++] = (uint8_t)(hex_value(h[0]) << 4 | hex_value(h[1]));
  }
  return n;
}

/* RFC 3711 B.2 (AES-CM keystream) and B.3 (key derivation); libsrtp's reference packet; then the
 * rules: tampering and replays refused, the rollover counter across a sequence wrap, SRTCP. */
static void test_srtp(void) {
  uint8_t mk[16], ms[14], out[64], want[64];
  unhex("E1F97A0D3E018BE0D64FA32C06DE4139", mk);
  unhex("0EC675AD498AFEEBB6960B3AABE6", ms);
  srtp_derive(mk, ms, 0, out, 16);
  CHECK(unhex("C61E7A93744F39EE10734AFE3FF7A087", want) == 16 && !memcmp(out, want, 16));
  srtp_derive(mk, ms, 1, out, 20);
  CHECK(unhex("CEBE321F6FF7716B6FD4AB49AF256A156D38BAA4", want) == 20 && !memcmp(out, want, 20));
  srtp_derive(mk, ms, 2, out, 14);
  CHECK(unhex("30CBBC08863D8C85D49DB34A9AE1", want) == 14 && !memcmp(out, want, 14));

  struct srtp_keys k;
  memset(&k, 0, sizeof k);
  uint8_t key[16], iv[16];
  unhex("2B7E151628AED2A6ABF7158809CF4F3C", key);
  unhex("F0F1F2F3F4F5F6F7F8F9FAFBFCFD", k.salt);
  mbedtls_aes_init(&k.aes);
  mbedtls_aes_setkey_enc(&k.aes, key, 128);
  srtp_iv(&k, 0, 0, iv);
  memset(out, 0, 48);
  srtp_ctr(&k.aes, iv, out, 48);
  unhex("E03EAD0935C95E80E166B16DD92B4EB4D23513162B02D0F72A43A2FE4A5F97AB41E95B3BB0A2E8DD477901E4FCA894C0", want);
  CHECK(!memcmp(out, want, 48));
  mbedtls_aes_free(&k.aes);

  /* libsrtp's test driver: SSRC 0xCAFEBABE, sequence 0x1234, 16 bytes of 0xAB, under the B.3 master key. */
  struct srtp tx, rx;
  CHECK(srtp_init(&tx, mk, ms) == 0 && srtp_init(&rx, mk, ms) == 0);
  uint8_t pkt[128], plain[28];
  size_t pn = unhex("800f1234decafbadcafebabeabababababababababababababababab", plain);
  memcpy(pkt, plain, pn);
  int n = srtp_protect(&tx, pkt, pn, sizeof pkt);
  size_t wn = unhex("800f1234decafbadcafebabe4e55dc4ce79978d88ca4d215949d2402b78d6acc99ea179b8dbb", want);
  CHECK(n == (int)wn && !memcmp(pkt, want, wn));
  uint8_t copy[128];
  memcpy(copy, pkt, (size_t)n);
  CHECK(srtp_unprotect(&rx, pkt, (size_t)n) == (int)pn && !memcmp(pkt, plain, pn));
  CHECK(srtp_unprotect(&rx, copy, (size_t)n) == SRTP_REPLAYED);
  memcpy(pkt, plain, pn);
  pkt[3] = 0x35; /* the next packet, its payload then changed on the way */
  n = srtp_protect(&tx, pkt, pn, sizeof pkt);
  pkt[20] ^= 1;
  CHECK(srtp_unprotect(&rx, pkt, (size_t)n) == SRTP_AUTH);
  pkt[20] ^= 1;
  CHECK(srtp_unprotect(&rx, pkt, (size_t)n) == (int)pn); /* a refused packet leaves no trace in the window */
  CHECK(srtp_unprotect(&rx, pkt, 11) == SRTP_MALFORMED && srtp_protect(&tx, pkt, 12, 12) == SRTP_MALFORMED);

  /* A sequence that wraps: the receiver follows the rollover counter, and a packet from before the
   * wrap that arrives after it still authenticates; one older than the window does not. */
  bool all = true;
  uint8_t early[64];
  int early_n = 0;
  for (int i = 0; i < 200; i++) {
    uint16_t seq = (uint16_t)(65500 + i);
    uint8_t rtp[64] = {0x80, 0x60};
    put_u16(rtp + 2, seq);
    put_u32(rtp + 8, 0x11223344);
    memset(rtp + 12, i, 20);
    int m = srtp_protect(&tx, rtp, 32, sizeof rtp);
    if (i == 30) { /* held back: delivered late, once the sequence wrapped */
      memcpy(early, rtp, (size_t)m), early_n = m;
      continue;
    }
    if (m != 42 || srtp_unprotect(&rx, rtp, (size_t)m) != 32 || rtp[12] != (uint8_t)i) all = false;
    if (i == 50 && (early_n <= 0 || srtp_unprotect(&rx, early, (size_t)early_n) != 32 || early[12] != 30)) all = false;
  }
  struct srtp_ssrc *st = srtp_ssrc(&rx, 0x11223344, false);
  CHECK(all && st && st->roc == 1 && st->s_l == (uint16_t)(65500 + 199));

  /* SRTCP: encrypted after 8 bytes, E|index and the tag appended; replays and tampering refused. */
  uint8_t rtcp[64] = {0x81, 200, 0, 6};
  put_u32(rtcp + 4, 0x11223344);
  memset(rtcp + 8, 0x5a, 20);
  memcpy(copy, rtcp, 28);
  n = srtcp_protect(&tx, rtcp, 28, sizeof rtcp);
  CHECK(n == 28 + 4 + SRTP_TAG && memcmp(rtcp + 8, copy + 8, 20) != 0 && (rtcp[28] & 0x80));
  memcpy(pkt, rtcp, (size_t)n);
  CHECK(srtcp_unprotect(&rx, rtcp, (size_t)n) == 28 && !memcmp(rtcp, copy, 28));
  CHECK(srtcp_unprotect(&rx, pkt, (size_t)n) == SRTP_REPLAYED);
  memcpy(rtcp, copy, 28);
  n = srtcp_protect(&tx, rtcp, 28, sizeof rtcp);
  rtcp[9] ^= 4;
  CHECK(srtcp_unprotect(&rx, rtcp, (size_t)n) == SRTP_AUTH && srtcp_unprotect(&rx, rtcp, 20) == SRTP_MALFORMED);
  srtp_free(&tx);
  srtp_free(&rx);
}

/* ------------------------------------------------------------------ SDP ------------------------------------------------------------------- */

static char *read_fixture(const char *name, size_t *len) {
  char path[256];
  snprintf(path, sizeof path, "test/fixtures/%s", name);
  FILE *f = fopen(path, "rb");
  if (!f) return NULL;
  char *p = malloc(CAMUS_SDP_MAX * 2);
  *len = fread(p, 1, CAMUS_SDP_MAX * 2 - 1, f);
  p[*len] = 0;
  fclose(f);
  return p;
}

static void test_sdp(void) {
  static const struct {
    const char *file;
    int media, data_index;
    enum sdp_data form;
    int sctp_port;
  } cases[] = {{"chromium-datachannel.sdp", 1, 0, SDP_DATA_NEW, 5000}, {"chromium-av-datachannel.sdp", 3, 2, SDP_DATA_NEW, 5000},
               {"firefox-datachannel.sdp", 1, 0, SDP_DATA_NEW, 5000}, {"aiortc-datachannel.sdp", 1, 0, SDP_DATA_OLD, 5000}};
  static const uint8_t fp[32] = {1, 2, 3};
  const struct sdp_candidate cand = {"127.0.0.1", 5000, 2130706431u};
  const struct sdp_local local = {"00000abcdefghijk", "0123456789abcdef0123456789abcdef", fp, &cand, 1, 65536, 42, NULL, NULL};
  static struct sdp_offer o;
  const char *err = NULL;
  for (size_t k = 0; k < COUNT(cases); k++) {
    size_t len;
    char *text = read_fixture(cases[k].file, &len);
    CHECK(text != NULL);
    if (!text) continue;
    int rc = sdp_parse_offer(text, len, &o, &err);
    if (rc) fprintf(stderr, "%s: %s\n", cases[k].file, err);
    CHECK(rc == 0 && o.n_media == cases[k].media && o.data_index == cases[k].data_index);
    CHECK(o.m[o.data_index].data == cases[k].form && o.m[o.data_index].sctp_port == cases[k].sctp_port);
    CHECK(o.setup == SDP_SETUP_ACTPASS && strlen(o.ufrag) >= 4 && strlen(o.pwd) >= 22 && o.bundle);
    struct buf b = {0};
    CHECK(sdp_write_answer(&b, &o, &local, &err) == 0);
    CHECK(strstr(b.p, "a=ice-lite\r\n") && strstr(b.p, "a=setup:active\r\n") && strstr(b.p, "a=end-of-candidates\r\n"));
    CHECK(strstr(b.p, "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\n"));
    CHECK(strstr(b.p, cases[k].form == SDP_DATA_NEW ? "m=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\n"
                                                    : "m=application 9 DTLS/SCTP 5000\r\nc=") != NULL);
    CHECK(strstr(b.p, "a=fingerprint:sha-256 01:02:03:00:") != NULL);
    if (cases[k].media == 3) {
      CHECK(strstr(b.p, "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\n") && strstr(b.p, "m=video 0 UDP/TLS/RTP/SAVPF 96\r\n"));
      CHECK(strstr(b.p, "a=group:BUNDLE 2\r\n") && strstr(b.p, "a=mid:0\r\n") && strstr(b.p, "a=mid:1\r\n"));
    }
    buf_free(&b);
    /* Truncated at every byte: no crash, and either parsed or refused with a reason. */
    bool sane = true;
    for (size_t i = 0; i < len; i += 7) {
      err = NULL;
      if (sdp_parse_offer(text, i, &o, &err) != 0 && !err) sane = false;
    }
    CHECK(sane);
    /* LF endings and a different attribute order parse the same. */
    char *lf = malloc(len + 1), *q = lf;
    for (size_t i = 0; i < len; i++)
      if (text[i] != '\r') *q++ = text[i];
    CHECK(sdp_parse_offer(lf, (size_t)(q - lf), &o, &err) == 0 && o.n_media == cases[k].media);
    free(lf);
    free(text);
  }
  static const struct {
    const char *sdp, *why;
  } bad[] = {
      {"", "not an SDP"},
      {"v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n", "no data channel"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-pwd:0123456789012345678901\r\n", "ICE credentials"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:short\r\n", "ice-pwd"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:ab\"d\r\n", "ice-ufrag"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\n", "fingerprint"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=ice-ufrag:abcd\r\na=ice-pwd:0123456789012345678901\r\na=fingerprint:sha-1 00:11\r\n", "sha-256"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=fingerprint:sha-256 ZZ:00\r\n", "fingerprint"},
      {"v=0\r\nm=application 9 UDP/DTLS/SCTP webrtc-datachannel\r\na=setup:sideways\r\n", "setup"},
      {"v=0\r\nm=application 99999 UDP/DTLS/SCTP webrtc-datachannel\r\n", "m= line"},
      {"v=0\r\nm=application 9 DTLS/SCTP x\r\n", "needs an SCTP port"}, /* found by fuzzing */
      {"v=0\r\nnot a line\r\n", "malformed"},
      {"v=0\r\na=x\0y\r\n", "malformed"},
  };
  for (size_t k = 0; k < COUNT(bad); k++) {
    err = NULL;
    size_t n = strlen(bad[k].sdp);
    if (strstr(bad[k].why, "malformed") && k == COUNT(bad) - 1) n = 12;
    CHECK(sdp_parse_offer(bad[k].sdp, n, &o, &err) != 0 && err && strstr(err, bad[k].why));
    if (err && !strstr(err, bad[k].why)) fprintf(stderr, "sdp case %zu: %s\n", k, err);
  }
  /* Too many sections, and an overlong line. */
  struct buf b = {0};
  buf_adds(&b, "v=0\r\n");
  for (int i = 0; i <= CAMUS_SDP_MAX_MEDIA; i++) buf_adds(&b, "m=audio 9 RTP/AVP 0\r\n");
  CHECK(sdp_parse_offer(b.p, b.len, &o, &err) != 0 && strstr(err, "too many"));
  b.len = 0;
  buf_adds(&b, "v=0\r\na=");
  for (int i = 0; i < CAMUS_SDP_LINE_MAX; i++) buf_adds(&b, "x");
  CHECK(sdp_parse_offer(b.p, b.len, &o, &err) != 0 && strstr(err, "too long"));
  buf_free(&b);
}

/* ------------------------------------------------------- UDP DEMULTIPLEXER AND ICE ------------------------------------------------------- */

/* Drives a real server over UDP: connectivity checks with right and wrong
 * credentials, plain STUN, and datagrams that belong to nobody. */
/* A UDP socket on 127.0.0.1 (its address in *me) whose reads give up after a second. */
static int loopback_udp(struct sockaddr_storage *me) {
  int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
  addr_parse("127.0.0.1", 0, me);
  bind(fd, (struct sockaddr *)me, addr_len(me));
  socklen_t ml = sizeof *me;
  getsockname(fd, (struct sockaddr *)me, &ml);
  struct timeval tv = {1, 0};
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  return fd;
}

static void test_demux(void) {
  struct camus *s = test_server();
  if (!s) return;
  enum app_err status;
  const char *err;
  struct room *rm = room_create(s, (const uint8_t[16]){0}, "udp", 3, NULL, 0, true, true, 0, &status, &err);
  size_t len;
  char *offer = read_fixture("chromium-datachannel.sdp", &len);
  struct buf answer = {0};
  CHECK(rm && offer && client_offer(s, rm, (const uint8_t[16]){0}, offer, len, &answer, &err) == APP_OK);
  free(offer);
  buf_free(&answer);
  struct rtc *p = NULL;
  for (uint32_t i = 0; i < sessions.cap; i++)
    if (sessions.table[i]) p = sessions.table[i];
  CHECK(p && p->state == RTC_ICE && rm->n_sessions == 1 && rm->n_clients == 0); /* no seat before a check */
  if (!p) {
    camus_free(s);
    return;
  }
  struct sockaddr_storage to, me;
  int fd = loopback_udp(&me);
  addr_parse("127.0.0.1", camus_udp_port(s), &to);
  uint8_t req[256], resp[2048];
  uint8_t txid[12] = "camus-test-1";
  char user[300];
  snprintf(user, sizeof user, "%s:%s", p->ufrag, p->remote_ufrag);
  struct stun_msg m;
  bool hello = false;
  for (int round = 0; round < 4; round++) {
    struct stun_writer w = {req, sizeof req, 0, false};
    stun_begin(&w, STUN_BINDING_REQUEST, txid);
    if (round != 2) stun_attr(&w, STUN_A_USERNAME, user, (uint16_t)strlen(user));
    stun_attr_u32(&w, STUN_A_PRIORITY, 12345);
    if (round == 3) stun_attr(&w, STUN_A_USE_CANDIDATE, NULL, 0);
    if (round != 2) stun_integrity(&w, round == 1 ? "wrong password of 22 ch" : p->pwd, round == 1 ? 23 : strlen(p->pwd));
    stun_fingerprint(&w);
    sendto(fd, req, w.len, 0, (struct sockaddr *)&to, addr_len(&to));
    for (int i = 0; i < 5; i++) camus_poll(s, 20);
    ssize_t n;
    do { /* DTLS from the server (its ClientHello, once checked) may come first */
      n = recv(fd, resp, sizeof resp, 0);
      if (n > 13 && resp[0] == 22) hello = true;
    } while (n > 0 && resp[0] > 3);
    CHECK(n > 0 && stun_parse(resp, (size_t)n, &m) == 0 && m.fingerprint_ok && !memcmp(m.txid, txid, 12));
    if (round == 1) {
      CHECK(m.type == STUN_BINDING_ERROR && m.error_code == 401);
    } else {
      CHECK(m.type == STUN_BINDING_SUCCESS && m.has_mapped && addr_port(&m.mapped) == addr_port(&me));
      if (round != 2) CHECK(stun_integrity_ok(resp, (size_t)n, &m, p->pwd, strlen(p->pwd)));
    }
    txid[11]++;
  }
  /* The valid check moved the peer on: as DTLS client it sent its ClientHello (content type 22). */
  CHECK(p->state == RTC_DTLS && p->n_addrs == 1 && rm->n_clients == 1);
  for (int i = 0; i < 5 && !hello; i++) {
    ssize_t n = recv(fd, resp, sizeof resp, 0);
    hello = n > 13 && resp[0] == 22;
  }
  CHECK(hello);
  /* Garbage in every range is dropped without harm. */
  for (int b = 0; b < 256; b += 5) {
    memset(req, b, 64);
    sendto(fd, req, 64, 0, (struct sockaddr *)&to, addr_len(&to));
  }
  for (int i = 0; i < 5; i++) camus_poll(s, 10);
  CHECK(p->state == RTC_DTLS && !p->dead && sessions.table[p->slot] == p);
  close(fd);
  camus_free(s);
}

/* Datagrams leave in the order they were sent, batched or not (one larger than a queue slot goes at once). */
static void test_udp_batch(void) {
  struct camus *s = test_server();
  if (!s) return;
  struct sockaddr_storage me;
  int fd = loopback_udp(&me);
  static uint8_t out[1500], in[2048];
  static const size_t sizes[] = {10, 20, 1500, 30, 40};
  for (size_t i = 0; i < COUNT(sizes); i++) {
    memset(out, (int)i + 1, sizes[i]);
    udp_send(&s->udp, out, sizes[i], &me);
  }
  for (int i = 0; i < 3 * CAMUS_UDP_BATCH; i++) udp_send(&s->udp, out, 5, &me); /* fills the queue, which empties itself */
  udp_flush(&s->udp);
  bool order = true;
  for (size_t i = 0; i < COUNT(sizes); i++) {
    ssize_t n = recv(fd, in, sizeof in, 0);
    if (n != (ssize_t)sizes[i] || in[0] != i + 1) order = false;
  }
  int rest = 0;
  while (recv(fd, in, sizeof in, MSG_DONTWAIT) == 5) rest++;
  CHECK(order && rest == 3 * CAMUS_UDP_BATCH);
  close(fd);
  camus_free(s);
}

/* Per-address limits count an IPv4 address, or an IPv6 /64; IPv4-mapped IPv6 is IPv4. */
static void test_host_key(void) {
  static const struct {
    const char *a, *b;
    bool same;
  } cases[] = {{"192.0.2.7", "::ffff:192.0.2.7", true},         {"192.0.2.7", "192.0.2.8", false},
               {"2001:db8:1:2::1", "2001:db8:1:2:ffff::9", true}, {"2001:db8:1:2::1", "2001:db8:1:3::1", false},
               {"10.0.0.1", "::a00:1", false}};
  for (size_t i = 0; i < COUNT(cases); i++) {
    struct sockaddr_storage a, b;
    uint8_t ka[16], kb[16];
    CHECK(addr_parse(cases[i].a, 1, &a) == 0 && addr_parse(cases[i].b, 2, &b) == 0);
    host_key(&a, ka);
    host_key(&b, kb);
    CHECK((memcmp(ka, kb, 16) == 0) == cases[i].same);
  }
}

/* ------------------------------------------------------------- LOOP AND MAPS -------------------------------------------------------------- */

static int fired[64], n_fired;
static struct timer timers[64];
static void on_timer(struct timer *t) { fired[n_fired++] = (int)(t - timers); }

/* The loop's descriptors: more than any fixed count, each callback with its own context; a slot
 * freed during a turn gets no callback even if it was ready, and is reused only from the next turn. */
static int io_hits[300];
static struct loop io_loop;
static int io_slots[300];
static void on_io(void *ctx, short re) {
  int i = (int)(intptr_t)ctx;
  io_hits[i] += (re & POLLIN) != 0;
  if (i == 10) loop_io_del(&io_loop, io_slots[11]); /* 11 is ready too, but gone before its turn */
}
static int hook_runs;
static void on_hook(void *ctx) { hook_runs += ctx == &io_loop; }

static void test_loop(void) {
  int fds[300][2];
  bool ok = true;
  for (int i = 0; i < 300; i++) {
    if (pipe(fds[i]) != 0) ok = false;
    io_slots[i] = loop_io_add(&io_loop, fds[i][0], POLLIN, on_io, (void *)(intptr_t)i);
    if (io_slots[i] != i) ok = false;
    if (i % 2 == 0 && write(fds[i][1], "x", 1) != 1) ok = false;
  }
  CHECK(ok && loop_hook_add(&io_loop, on_hook, &io_loop) == 0);
  if (write(fds[11][1], "x", 1) != 1) ok = false;
  CHECK(loop_turn(&io_loop, 1000) == 0 && hook_runs == 1);
  int hits = 0;
  for (int i = 0; i < 300; i++) hits += io_hits[i];
  CHECK(hits == 150 && io_hits[10] == 1 && io_hits[11] == 0 && io_hits[1] == 0 && io_hits[298] == 1);
  CHECK(loop_io_add(&io_loop, fds[11][0], POLLIN, on_io, (void *)(intptr_t)11) == 300); /* 11 is not free yet */
  CHECK(loop_turn(&io_loop, 0) == 0 && hook_runs == 2 && io_hits[11] == 1);
  for (int i = 0; i < 300; i++) close(fds[i][0]), close(fds[i][1]);
  loop_free(&io_loop);
}

static void test_timers(void) {
  struct loop l = {0};
  l.now = 1000;
  for (int i = 0; i < 64; i++) {
    timers[i].fn = on_timer;
    timer_at(&l, &timers[i], 1000 + (uint64_t)((i * 37) % 64));
  }
  timer_stop(&l, &timers[5]);
  timer_at(&l, &timers[6], 5000);
  CHECK(l.n == 63);
  CHECK(timers_timeout(&l, -1) == 0);
  l.now = 1063;
  timers_run(&l);
  CHECK(n_fired == 62);
  bool sorted = true;
  for (int i = 1; i < n_fired; i++)
    if ((fired[i - 1] * 37) % 64 > (fired[i] * 37) % 64) sorted = false;
  CHECK(sorted);
  CHECK(timers_timeout(&l, -1) == 5000 - 1063);
  CHECK(timers_timeout(&l, 10) == 10);
  timer_stop(&l, &timers[6]);
  CHECK(l.n == 0 && timers_timeout(&l, -1) == -1);
  free(l.heap);
}

static void test_amap(void) {
  struct addr_map m = {0};
  static struct rtc peers[300];
  struct sockaddr_storage a[300];
  for (int i = 0; i < 300; i++) {
    char ip[32];
    snprintf(ip, sizeof ip, i % 2 ? "10.0.%d.%d" : "fd00::%x:%x", i / 256, i % 256);
    CHECK(addr_parse(ip, 1000 + i, &a[i]) == 0);
    CHECK(amap_put(&m, &a[i], &peers[i]) == 0);
  }
  bool all = true;
  for (int i = 0; i < 300; i++)
    if (amap_get(&m, &a[i]) != &peers[i]) all = false;
  CHECK(all);
  for (int i = 0; i < 300; i += 3) amap_del(&m, &a[i]);
  all = true;
  for (int i = 0; i < 300; i++)
    if (amap_get(&m, &a[i]) != (i % 3 ? &peers[i] : NULL)) all = false;
  CHECK(all && m.n == 200);
  free(m.e);
}

/* ------------------------------------------------------------------ DCEP ------------------------------------------------------------------ */

static void test_dcep(void) {
  struct dcep_open o;
  const uint8_t open_msg[] = {0x03, 0x00, 0x01, 0x00, 0, 0, 0, 0, 0, 4, 0, 3, 'c', 'h', 'a', 't', 'x', 'y', 'z'};
  CHECK(dcep_parse_open(open_msg, sizeof open_msg, &o) == 0);
  CHECK(o.channel_type == 0 && o.priority == 256 && str_eq(o.label, "chat") && str_eq(o.protocol, "xyz"));
  bool prefixes = true;
  for (size_t i = 0; i < sizeof open_msg; i++)
    if (dcep_parse_open(open_msg, i, &o) == 0) prefixes = false;
  CHECK(prefixes);
  uint8_t m2[sizeof open_msg];
  memcpy(m2, open_msg, sizeof m2);
  m2[1] = 0x05; /* unknown channel type */
  CHECK(dcep_parse_open(m2, sizeof m2, &o) != 0);
  m2[1] = 0x81;
  CHECK(dcep_parse_open(m2, sizeof m2, &o) == 0);
  m2[9] = 200; /* label longer than the message */
  CHECK(dcep_parse_open(m2, sizeof m2, &o) != 0);
  CHECK(dcep_parse_open((const uint8_t *)"\x02", 1, &o) != 0);
  /* What the client role writes, the server role reads back. */
  uint8_t m3[32];
  size_t n3 = dcep_write_open(m3, sizeof m3, "ground-control");
  CHECK(n3 == 26 && dcep_parse_open(m3, n3, &o) == 0 && str_eq(o.label, "ground-control") && o.channel_type == 0 &&
        o.protocol.n == 0);
  CHECK(dcep_write_open(m3, 20, "ground-control") == 0);
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  test_json_suite();
  test_json();
  test_http();
  test_form();
  test_slug();
  test_config();
  test_rooms_and_tokens();
  test_timers();
  test_loop();
  test_amap();
  test_dcep();
  test_stun();
  test_srtp();
  test_sdp();
  test_demux();
  test_udp_batch();
  test_host_key();
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
