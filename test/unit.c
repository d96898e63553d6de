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
  cfg.turn_secret = "unit"; /* the TURN relay on, with no state directory made */
  cfg.state_dir = "";       /* rooms in memory only */
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
  cfg.turn_secret = "unit";
  cfg.state_dir = "";
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
  struct room *a = room_create(s, (const uint8_t[16]){0}, " Team A ", 8, "pw", 2, true, true, 0, (char[33]){0}, &status, &err);
  CHECK(a && !strcmp(a->id, "team-a") && !strcmp(a->name, "Team A") && a->has_password);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "team a", 6, NULL, 0, true, true, 0, (char[33]){0}, &status, &err) && status == APP_CONFLICT);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "***", 3, NULL, 0, true, true, 0, (char[33]){0}, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "   ", 3, NULL, 0, true, true, 0, (char[33]){0}, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "a\x01", 2, NULL, 0, true, true, 0, (char[33]){0}, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "a\xff", 2, NULL, 0, true, true, 0, (char[33]){0}, &status, &err) && status == APP_INVALID);
  CHECK(!room_create(s, (const uint8_t[16]){0}, "ok", 2, NULL, 0, true, true, CAMUS_GUEST_LIMIT_MAX + 1, (char[33]){0}, &status, &err) && status == APP_INVALID);
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
  struct room *b = room_create(s, (const uint8_t[16]){0}, "Team B", 6, "pw", 2, false, true, 3, (char[33]){0}, &status, &err);
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
    stun_xor_address(&w, STUN_A_XOR_MAPPED_ADDRESS, (const struct sockaddr *)&m.mapped);
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

static int srtp_used(const struct srtp *s) {
  int n = 0;
  for (int i = 0; i < CAMUS_SRTP_SSRCS; i++) n += s->ssrc[i].used;
  return n;
}

/* An RTP packet of ssrc (seq, 20 bytes of payload), or an RTCP receiver report from it, protected with
 * s and the sender state st; its length. */
static size_t srtp_test_packet(struct srtp *s, struct srtp_ssrc *st, bool rtcp, uint32_t ssrc, uint16_t seq, uint8_t *out) {
  uint8_t rtp[32] = {0x80, 0x60}, rr[28] = {0x81, 201, 0, 6};
  put_u16(rtp + 2, seq);
  put_u32(rtp + 8, ssrc);
  memset(rtp + 12, 0x3c, 20);
  put_u32(rr + 4, ssrc);
  memcpy(out, rtcp ? rr : rtp, rtcp ? 28 : 32);
  int n = rtcp ? srtcp_protect_with(s, st, out, 28, 64) : srtp_protect_with(s, st, out, 32, 64);
  return n > 0 ? (size_t)n : 0;
}

/* Per-SSRC state: a packet that fails its check leaves none, so that forged SSRCs cannot fill the table
 * (100 of them, then a genuine packet of a new SSRC is still taken); genuine ones fill it to
 * CAMUS_SRTP_SSRCS.  Senders may hold their own state (srtp_protect_with, srtcp_protect_with). */
static void test_srtp_ssrcs(void) {
  uint8_t mk[16], ms[14], other[16], pkt[64], copy[64];
  unhex("E1F97A0D3E018BE0D64FA32C06DE4139", mk);
  unhex("0EC675AD498AFEEBB6960B3AABE6", ms);
  memcpy(other, mk, 16);
  other[0] ^= 1; /* a key the receiver does not have */
  struct srtp tx, rx, forger;
  CHECK(srtp_init(&tx, mk, ms) == 0 && srtp_init(&rx, mk, ms) == 0 && srtp_init(&forger, other, ms) == 0);
  for (int rtcp = 0; rtcp < 2; rtcp++) {
    bool refused = true;
    int before = srtp_used(&rx);
    for (uint32_t i = 0; i < 100; i++) {
      struct srtp_ssrc st = {0};
      size_t n = srtp_test_packet(&forger, &st, rtcp, 0x1000 + i, (uint16_t)i, pkt);
      if (i % 2) memset(pkt + n - SRTP_TAG, 0, SRTP_TAG); /* or no tag worth the name */
      int r = rtcp ? srtcp_unprotect(&rx, pkt, n) : srtp_unprotect(&rx, pkt, n);
      if (r != SRTP_AUTH) refused = false;
    }
    CHECK(refused && srtp_used(&rx) == before);
    struct srtp_ssrc st = {0};
    size_t n = srtp_test_packet(&tx, &st, rtcp, 0x2000 + (uint32_t)rtcp, 7, pkt);
    CHECK(n && (rtcp ? srtcp_unprotect(&rx, pkt, n) == 28 : srtp_unprotect(&rx, pkt, n) == 32));
    CHECK(srtp_used(&rx) == before + 1 && srtp_ssrc(&rx, 0x2000 + (uint32_t)rtcp, false));
  }
  /* A forged packet of a known SSRC changes nothing of its state. */
  struct srtp_ssrc saved[CAMUS_SRTP_SSRCS], st = {0};
  memcpy(saved, rx.ssrc, sizeof saved);
  size_t n = srtp_test_packet(&forger, &st, false, 0x2000, 8, pkt);
  CHECK(srtp_unprotect(&rx, pkt, n) == SRTP_AUTH && !memcmp(saved, rx.ssrc, sizeof saved));
  st = (struct srtp_ssrc){.rtcp_next = 5}; /* an index not received yet: refused by its tag, not as a replay */
  n = srtp_test_packet(&forger, &st, true, 0x2001, 0, pkt);
  CHECK(srtcp_unprotect(&rx, pkt, n) == SRTP_AUTH && !memcmp(saved, rx.ssrc, sizeof saved));
  /* Genuine SSRCs fill the table; one more is refused as SRTP_FULL (after its check), the others still pass. */
  bool taken = true;
  for (uint32_t i = 2; i < CAMUS_SRTP_SSRCS; i++) {
    st = (struct srtp_ssrc){0};
    n = srtp_test_packet(&tx, &st, false, 0x3000 + i, 1, pkt);
    if (srtp_unprotect(&rx, pkt, n) != 32) taken = false;
  }
  CHECK(taken && srtp_used(&rx) == CAMUS_SRTP_SSRCS);
  st = (struct srtp_ssrc){0};
  n = srtp_test_packet(&tx, &st, false, 0x4000, 1, pkt);
  CHECK(srtp_unprotect(&rx, pkt, n) == SRTP_FULL);
  st = (struct srtp_ssrc){0};
  n = srtp_test_packet(&tx, &st, true, 0x4000, 0, pkt);
  CHECK(srtcp_unprotect(&rx, pkt, n) == SRTP_FULL && srtp_used(&rx) == CAMUS_SRTP_SSRCS);
  st = (struct srtp_ssrc){0};
  n = srtp_test_packet(&tx, &st, false, 0x2000, 8, pkt); /* a known SSRC's next packet */
  CHECK(srtp_unprotect(&rx, pkt, n) == 32);

  /* A sender's own state: nothing kept in its srtp; the rollover counter across a wrap; a packet sent
   * again (a retransmission) is the same bytes as the first time, and leaves the state where it was. */
  struct srtp tx2, rx2;
  CHECK(srtp_init(&tx2, mk, ms) == 0 && srtp_init(&rx2, mk, ms) == 0);
  st = (struct srtp_ssrc){0};
  uint8_t first[64];
  size_t first_n = 0;
  bool all = true;
  for (uint16_t seq = 65530; seq != 10; seq++) {
    n = srtp_test_packet(&tx2, &st, false, 0x5000, seq, pkt);
    if (seq == 65533) memcpy(first, pkt, n), first_n = n;
    if (n != 42 || srtp_unprotect(&rx2, pkt, n) != 32) all = false;
  }
  CHECK(all && srtp_used(&tx2) == 0 && st.ssrc == 0x5000 && st.roc == 1 && st.s_l == 9);
  n = srtp_test_packet(&tx2, &st, false, 0x5000, 65533, pkt);
  CHECK(n == first_n && !memcmp(pkt, first, n) && st.roc == 1 && st.s_l == 9);
  CHECK(srtp_unprotect(&rx2, pkt, n) == SRTP_REPLAYED);
  /* SRTCP: each sender state counts its own index (E set); the receiver keeps a window per SSRC. */
  struct srtp_ssrc sa = {0}, sb = {0};
  n = srtp_test_packet(&tx2, &sa, true, 0x6000, 0, pkt);
  CHECK(n == 28 + 4 + SRTP_TAG && get_u32(pkt + 28) == 0x80000000u && sa.rtcp_next == 1 && sa.ssrc == 0x6000);
  memcpy(copy, pkt, n);
  CHECK(srtcp_unprotect(&rx2, pkt, n) == 28 && srtcp_unprotect(&rx2, copy, n) == SRTP_REPLAYED);
  n = srtp_test_packet(&tx2, &sa, true, 0x6000, 0, pkt);
  CHECK(get_u32(pkt + 28) == 0x80000001u && srtcp_unprotect(&rx2, pkt, n) == 28);
  n = srtp_test_packet(&tx2, &sb, true, 0x6001, 0, pkt);
  CHECK(get_u32(pkt + 28) == 0x80000000u && srtcp_unprotect(&rx2, pkt, n) == 28 && srtp_used(&tx2) == 0);
  /* SRTCP sent unencrypted (E clear, RFC 3711 3.4): authenticated, and left as it is. */
  uint8_t rr[64] = {0x81, 201, 0, 6};
  put_u32(rr + 4, 0x7000);
  memset(rr + 8, 0x5a, 20);
  put_u32(rr + 28, 5);
  srtp_tag(&tx2.rtcp, rr, 28, rr + 28, rr + 32);
  memcpy(copy, rr, 42);
  CHECK(srtcp_unprotect(&rx2, rr, 42) == 28 && !memcmp(rr, copy, 42) && srtcp_unprotect(&rx2, copy, 42) == SRTP_REPLAYED);
  CHECK(srtp_protect_with(&tx2, &st, pkt, 11, 64) == SRTP_MALFORMED &&
        srtp_protect_with(&tx2, &st, pkt, 32, 41) == SRTP_MALFORMED); /* no room for the tag */
  pkt[0] = 0x40;
  CHECK(srtcp_protect_with(&tx2, &sa, pkt, 28, 64) == SRTP_MALFORMED &&
        srtcp_protect_with(&tx2, &sa, copy, 7, 64) == SRTP_MALFORMED);
  srtp_free(&tx);
  srtp_free(&rx);
  srtp_free(&forger);
  srtp_free(&tx2);
  srtp_free(&rx2);
}

/* --------------------------------------------------------------- RTP, RTCP ---------------------------------------------------------------- */

/* RTP headers (RFC 3550 5.1), with CSRCs, padding and header extensions in both of RFC 8285's forms
 * (the packets of its figures in 4.2 and 4.3); every prefix of a packet is read or refused whole. */
static void test_rtp(void) {
  struct rtp_hdr h;
  uint8_t p[128];
  size_t n, len;
  const uint8_t *v;
  /* Marker, payload type 96, sequence 0x1234, timestamp 123456, SSRC 0xcafebabe, 4 bytes of payload. */
  n = unhex("80e01234 0001e240 cafebabe deadbeef", p);
  CHECK(n == 16 && rtp_parse(p, n, &h) == 0);
  CHECK(h.marker && h.pt == 96 && h.seq == 0x1234 && h.ts == 123456 && h.ssrc == 0xcafebabe);
  CHECK(h.payload == 12 && h.payload_len == 4 && h.ext_profile == 0 && h.ext_len == 0);
  CHECK(!rtp_ext_find(p, &h, 1, &len));
  bool prefixes = true;
  for (size_t i = 0; i <= n; i++)
    if ((rtp_parse(p, i, &h) == 0) != (i >= 12) || (i >= 12 && h.payload_len != i - 12)) prefixes = false;
  CHECK(prefixes);
  static const char *const versions[] = {"00601234 00000000 cafebabe", "40601234 00000000 cafebabe",
                                         "c0601234 00000000 cafebabe"};
  for (size_t k = 0; k < COUNT(versions); k++) CHECK(rtp_parse(p, unhex(versions[k], p), &h) == -1);
  /* Two CSRCs: the payload starts after them. */
  n = unhex("82600001 00000000 11111111 22222222 33333333", p);
  CHECK(rtp_parse(p, n, &h) == 0 && h.payload == 20 && h.payload_len == 0);
  CHECK(rtp_parse(p, n - 1, &h) == -1);
  p[0] = 0x8f; /* 15 CSRCs claimed, 2 there */
  CHECK(rtp_parse(p, n, &h) == -1);
  /* Padding: its count is the last byte, and counts itself. */
  n = unhex("a0600001 00000000 11111111 aabb0002", p);
  CHECK(rtp_parse(p, n, &h) == 0 && h.payload == 12 && h.payload_len == 2);
  p[n - 1] = 4; /* all of the payload is padding */
  CHECK(rtp_parse(p, n, &h) == 0 && h.payload_len == 0);
  p[n - 1] = 5; /* more padding than payload */
  CHECK(rtp_parse(p, n, &h) == -1);
  p[n - 1] = 0; /* a count of zero */
  CHECK(rtp_parse(p, n, &h) == -1);
  CHECK(rtp_parse(p, 12, &h) == -1); /* padding, no payload: the count would be the SSRC's last byte */

  /* RFC 8285 4.2: one-byte elements, ID 1 (1 byte), ID 2 (2 bytes), two bytes of padding, ID 3 (4 bytes). */
  n = unhex("90600001 00000000 11111111 bede0003 10aa21bb cc000033 01020304 7879", p);
  CHECK(rtp_parse(p, n, &h) == 0 && h.ext_profile == 0xBEDE && h.ext_at == 16 && h.ext_len == 12);
  CHECK(h.payload == 28 && h.payload_len == 2 && p[h.payload] == 'x');
  CHECK((v = rtp_ext_find(p, &h, 1, &len)) && len == 1 && v == p + 17 && v[0] == 0xaa);
  CHECK((v = rtp_ext_find(p, &h, 2, &len)) && len == 2 && v[0] == 0xbb && v[1] == 0xcc);
  CHECK((v = rtp_ext_find(p, &h, 3, &len)) && len == 4 && !memcmp(v, "\x01\x02\x03\x04", 4));
  CHECK(!rtp_ext_find(p, &h, 4, &len) && !rtp_ext_find(p, &h, 0, &len) && !rtp_ext_find(p, &h, 15, &len));
  prefixes = true;
  for (size_t i = 0; i < 28; i++)
    if (rtp_parse(p, i, &h) == 0) prefixes = false;
  CHECK(prefixes && rtp_parse(p, 28, &h) == 0 && h.payload_len == 0);
  /* RFC 8285 4.3: two-byte elements, ID 1 (empty), ID 2 (1 byte), one byte of padding, ID 3 (4 bytes);
   * the profile's low 4 bits are the application's. */
  n = unhex("90600001 00000000 11111111 10000003 01000201 dd000304 01020304", p);
  CHECK(rtp_parse(p, n, &h) == 0 && h.ext_profile == 0x1000 && h.payload == 28 && h.payload_len == 0);
  CHECK((v = rtp_ext_find(p, &h, 1, &len)) && len == 0 && v == p + 18);
  CHECK((v = rtp_ext_find(p, &h, 2, &len)) && len == 1 && v[0] == 0xdd);
  CHECK((v = rtp_ext_find(p, &h, 3, &len)) && len == 4 && v[3] == 4 && !rtp_ext_find(p, &h, 4, &len));
  p[13] = 0x0f;
  CHECK(rtp_parse(p, n, &h) == 0 && (v = rtp_ext_find(p, &h, 3, &len)) && len == 4);
  p[12] = 0x12; /* profile 0x120f: neither form, so no elements */
  CHECK(rtp_parse(p, n, &h) == 0 && h.ext_profile == 0x120f && !rtp_ext_find(p, &h, 2, &len));
  /* Hostile elements: ID 15 ends the walk; an element or length byte past the end is not read. */
  static const struct {
    const char *hex;
    unsigned id;
    int len; /* -1: not found */
  } ext[] = {
      {"90600001 00000000 11111111 bede0001 f010aa00", 1, -1},      /* ID 15, then ID 1 */
      {"90600001 00000000 11111111 bede0001 13aabbcc", 1, -1},      /* 4 bytes claimed, 3 there */
      {"90600001 00000000 11111111 bede0001 00000012", 1, -1},      /* its value would be past the end */
      {"90600001 00000000 11111111 bede0001 000010aa", 1, 1},       /* after padding */
      {"90600001 00000000 11111111 10000001 00000005", 5, -1},      /* ID 5 without its length byte */
      {"90600001 00000000 11111111 10000001 0503aabb", 5, -1},      /* 3 bytes claimed, 2 there */
      {"90600001 00000000 11111111 10000001 0502aabb", 5, 2},
      {"90600001 00000000 11111111 10000001 ff00ee00", 0xff, 0},    /* two-byte IDs go to 255 */
      {"90600001 00000000 11111111 bede0000", 1, -1},               /* no elements at all */
  };
  for (size_t k = 0; k < COUNT(ext); k++) {
    n = unhex(ext[k].hex, p);
    len = 99;
    v = rtp_parse(p, n, &h) == 0 ? rtp_ext_find(p, &h, ext[k].id, &len) : NULL;
    CHECK(ext[k].len < 0 ? v == NULL : (v != NULL && len == (size_t)ext[k].len && v >= p + 16 && v + len <= p + n));
  }
  CHECK(rtp_parse(p, unhex("90600001 00000000 11111111 bede0002 10aa0000", p), &h) == -1); /* 8 bytes claimed, 4 there */
  CHECK(rtp_parse(p, unhex("90600001 00000000 11111111 bede", p), &h) == -1);             /* a cut extension header */

  /* What the SFU writes reads back: a one-byte mid extension (RFC 8843) when the receiver has one. */
  static const struct {
    bool padding, marker;
    uint8_t pt;
    unsigned mid_ext;
    const char *mid;
    size_t hl;
  } w[] = {{false, true, 98, 9, "1", 20},       {true, false, 111, 4, "0123456789abcdef", 36},
           {false, false, 96, 4, "0123456789abcdefg", 12}, /* too long for a one-byte element: none */
           {false, false, 96, 0, "1", 12},      {true, true, 127, 14, "", 12}};
  for (size_t k = 0; k < COUNT(w); k++) {
    memset(p, 0x55, sizeof p);
    size_t hl = rtp_write_header(p, w[k].padding, w[k].marker, w[k].pt, 65535, 0xfffffff0u, 0x01020304, w[k].mid_ext, w[k].mid);
    CHECK(hl == w[k].hl && (p[0] & 0xef) == (w[k].padding ? 0xa0 : 0x80) && ((p[0] & 0x10) != 0) == (hl > 12));
    p[hl] = 1; /* a padding count, when the bit is set */
    CHECK(rtp_parse(p, hl + 1, &h) == 0 && h.marker == w[k].marker && h.pt == w[k].pt && h.seq == 65535 &&
          h.ts == 0xfffffff0u && h.ssrc == 0x01020304 && h.payload == hl && h.payload_len == (w[k].padding ? 0 : 1));
    v = rtp_ext_find(p, &h, w[k].mid_ext, &len);
    CHECK(hl == 12 ? v == NULL : (v && len == strlen(w[k].mid) && !memcmp(v, w[k].mid, len)));
    bool zeros = true; /* the extension's own padding is zeros */
    for (size_t i = hl > 12 ? 17 + strlen(w[k].mid) : hl; i < hl; i++) zeros = zeros && p[i] == 0;
    CHECK(zeros);
  }
}

/* VP8's payload descriptor (RFC 7741 4.2) in front of the first byte of its payload header (4.3),
 * whose P bit is 0 on a keyframe. */
static void test_vp8(void) {
  static const struct {
    const char *hex;
    bool key;
  } cases[] = {
      {"1000", true},             /* S, partition 0, P = 0 */
      {"109d", false},            /* P = 1: an interframe */
      {"0000", false},            /* not the start of a partition */
      {"1100", false},            /* the start of partition 1 */
      {"3000", true},             /* N (non-reference) and S */
      {"9080 0500", true},        /* X, I: a 7-bit picture id */
      {"9080 851200", true},      /* a 15-bit picture id */
      {"9080 8512 01", false},
      {"90f0 8512 03 40 00", true}, /* I (15 bits), L (TL0PICIDX), T and K (one byte) */
      {"90f0 05 03 40 00", true},   /* the same with a 7-bit picture id */
      {"9040 03 00", true},         /* L alone */
      {"9010 20 00", true},         /* K alone */
      {"9000 00", true},            /* X with no fields */
      {"", false},
      {"10", false},              /* no payload header */
      {"90", false},              /* X without its byte */
      {"9080", false},            /* I without the picture id */
      {"9080 85", false},         /* a 15-bit picture id cut */
      {"90f0 8512 0340", false},  /* everything but the payload header */
  };
  uint8_t p[16];
  for (size_t k = 0; k < COUNT(cases); k++) {
    size_t n = unhex(cases[k].hex, p);
    bool key = vp8_keyframe(p, n);
    if (key != cases[k].key) fprintf(stderr, "vp8 case %zu (%s)\n", k, cases[k].hex);
    CHECK(key == cases[k].key);
    bool prefixes = true; /* a keyframe's descriptor cut anywhere is not one */
    for (size_t i = 0; cases[k].key && i < n; i++)
      if (vp8_keyframe(p, i)) prefixes = false;
    CHECK(prefixes);
  }
}

/* Compound RTCP (RFC 3550 6.1): SR with a report block, SDES, BYE; cut anywhere but at a packet's end it is
 * refused.  Then what the SFU writes: RR (6.4.2), PLI and generic NACK (RFC 4585 6.3.1, 6.2.1), REMB. */
static void test_rtcp(void) {
  uint8_t p[256];
  struct rtcp_pkt r;
  struct rtcp_report rep;
  size_t at = 0;
  size_t n = unhex("81c8000c 11223344 83aa7e80 00000000 00001000 00000010 00000a00"
                   "55667788 40fffffe 0001ffff 00000020 7e800000 00010000"
                   "81ca0003 11223344 0105 63616d75 7300"
                   "81cb0001 11223344",
                   p);
  CHECK(n == 76);
  CHECK(rtcp_next(p, n, &at, &r) == 1 && r.pt == RTCP_SR && r.count == 1 && r.body == p + 4 && r.len == 48 && at == 52);
  rtcp_report_read(r.body + 24, &rep);
  CHECK(rep.ssrc == 0x55667788 && rep.fraction_lost == 0x40 && rep.lost == -2 && rep.highest == 0x1ffff &&
        rep.jitter == 0x20 && rep.lsr == 0x7e800000 && rep.dlsr == 0x10000);
  CHECK(rtcp_next(p, n, &at, &r) == 1 && r.pt == RTCP_SDES && r.count == 1 && r.len == 12 && !memcmp(r.body + 6, "camus", 5));
  CHECK(rtcp_next(p, n, &at, &r) == 1 && r.pt == RTCP_BYE && r.len == 4 && get_u32(r.body) == 0x11223344);
  CHECK(rtcp_next(p, n, &at, &r) == 0 && at == n);
  bool cuts = true;
  for (size_t i = 0; i <= n; i++) {
    int rc, k = 0;
    at = 0;
    while ((rc = rtcp_next(p, i, &at, &r)) == 1)
      if (r.body + r.len > p + i || at > i || ++k > 3) cuts = false;
    bool boundary = i == 0 || i == 52 || i == 68 || i == 76;
    if (rc != (boundary ? 0 : -1) || (boundary && at != i)) cuts = false;
  }
  CHECK(cuts);
  uint8_t q[76];
  memcpy(q, p, n);
  q[52] = 0x01; /* version 0 in the second packet */
  at = 0;
  CHECK(rtcp_next(q, n, &at, &r) == 1 && rtcp_next(q, n, &at, &r) == -1 && at == 52);
  at = 0;
  CHECK(rtcp_next(p, unhex("80c90000", p), &at, &r) == 1 && r.len == 0 && rtcp_next(p, 4, &at, &r) == 0);
  at = 0;
  CHECK(rtcp_next(p, unhex("80c90002 11223344", p), &at, &r) == -1 && at == 0);
  at = 0;
  CHECK(rtcp_next(p, unhex("80c9ffff 11223344", p), &at, &r) == -1); /* a length past any datagram */
  /* The cumulative loss is 24 bits, signed. */
  static const struct {
    const char *hex;
    int32_t lost;
  } lost[] = {{"000000", 0}, {"7fffff", 8388607}, {"800000", -8388608}, {"ffffff", -1}, {"000102", 258}};
  for (size_t k = 0; k < COUNT(lost); k++) {
    uint8_t b[24] = {0};
    unhex(lost[k].hex, b + 5);
    rtcp_report_read(b, &rep);
    CHECK(rep.lost == lost[k].lost);
  }

  /* Writers: exact bytes, 0 when short of room, and what they write walks back. */
  uint8_t want[64];
  struct rtcp_report rr = {0x55667788, 0x40, -2, 0x1ffff, 0x20, 0x7e800000, 0x10000};
  CHECK(rtcp_write_rr(p, 8, 0xaabbccdd, NULL) == 8 && unhex("80c90001 aabbccdd", want) == 8 && !memcmp(p, want, 8));
  CHECK(rtcp_write_rr(p, 7, 0xaabbccdd, NULL) == 0 && rtcp_write_rr(p, 31, 0xaabbccdd, &rr) == 0);
  n = unhex("81c90007 aabbccdd 55667788 40fffffe 0001ffff 00000020 7e800000 00010000", want);
  CHECK(rtcp_write_rr(p, 32, 0xaabbccdd, &rr) == 32 && n == 32 && !memcmp(p, want, 32));
  at = 0;
  CHECK(rtcp_next(p, 32, &at, &r) == 1 && r.pt == RTCP_RR && r.count == 1 && r.len == 28);
  rtcp_report_read(r.body + 4, &rep);
  CHECK(rep.ssrc == rr.ssrc && rep.fraction_lost == rr.fraction_lost && rep.lost == rr.lost && rep.highest == rr.highest &&
        rep.jitter == rr.jitter && rep.lsr == rr.lsr && rep.dlsr == rr.dlsr);
  static const int32_t clamp[][2] = {{0x1000000, 0x7fffff}, {-0x900000, -0x800000}, {INT32_MIN, -0x800000},
                                     {-0x800000, -0x800000}};
  for (size_t k = 0; k < COUNT(clamp); k++) {
    rr.lost = clamp[k][0];
    rtcp_write_rr(p, sizeof p, 1, &rr);
    rtcp_report_read(p + 8, &rep);
    CHECK(rep.lost == clamp[k][1]);
  }
  n = unhex("81ce0002 aabbccdd 55667788", want);
  CHECK(rtcp_write_pli(p, 12, 0xaabbccdd, 0x55667788) == 12 && !memcmp(p, want, n) && rtcp_write_pli(p, 11, 1, 2) == 0);
  n = unhex("81cd0003 aabbccdd 55667788 12348001", want);
  CHECK(rtcp_write_nack(p, 16, 0xaabbccdd, 0x55667788, 0x1234, 0x8001) == 16 && !memcmp(p, want, n) &&
        rtcp_write_nack(p, 15, 1, 2, 3, 4) == 0);
  /* REMB: 1 Mbit/s is 250000 << 2; the count of SSRCs leads the bitrate word. */
  uint32_t ssrcs[256] = {0x55667788, 0x99aabbcc};
  n = unhex("8fce0005 aabbccdd 00000000 52454d42 010bd090 55667788", want);
  CHECK(rtcp_write_remb(p, 24, 0xaabbccdd, 1000000, ssrcs, 1) == 24 && !memcmp(p, want, n));
  CHECK(rtcp_write_remb(p, 28, 0xaabbccdd, 1000000, ssrcs, 2) == 28 && p[3] == 6 && p[16] == 2 && get_u32(p + 24) == 0x99aabbcc);
  CHECK(rtcp_write_remb(p, 23, 1, 1000000, ssrcs, 1) == 0 && rtcp_write_remb(p, sizeof p, 1, 1, ssrcs, 0) == 0);
  static uint8_t big[20 + 4 * 256];
  CHECK(rtcp_write_remb(big, sizeof big, 1, 1, ssrcs, 256) == 0 && rtcp_write_remb(big, sizeof big, 1, 1, ssrcs, 255) == 1040);
  static const uint64_t rates[] = {0, 1, 0x3ffff, 0x40000, 0x40001, 2500000, 123456789, 1ull << 40, UINT64_MAX};
  bool exact = true;
  for (size_t k = 0; k < COUNT(rates); k++) {
    rtcp_write_remb(p, sizeof p, 1, rates[k], ssrcs, 1);
    uint32_t word = get_u32(p + 16), exp = word >> 18 & 63, mantissa = word & 0x3ffff;
    uint64_t back = (uint64_t)mantissa << exp;
    /* Rounded down, by less than one unit of the exponent chosen; the smallest exponent that fits. */
    if (back > rates[k] || rates[k] - back >= 1ull << exp || (exp && mantissa < 0x20000)) exact = false;
  }
  CHECK(exact);
  /* A compound as media_rtcp_send() makes one: RR first, then feedback. */
  size_t len = rtcp_write_rr(p, sizeof p, 7, NULL);
  len += rtcp_write_pli(p + len, sizeof p - len, 7, 8);
  len += rtcp_write_nack(p + len, sizeof p - len, 7, 8, 100, 0);
  len += rtcp_write_remb(p + len, sizeof p - len, 7, 300000, ssrcs, 2);
  static const uint8_t types[][2] = {{RTCP_RR, 0}, {RTCP_PSFB, RTCP_FMT_PLI}, {RTCP_RTPFB, RTCP_FMT_NACK},
                                     {RTCP_PSFB, RTCP_FMT_AFB}};
  at = 0;
  bool walked = len == 8 + 12 + 16 + 28;
  for (size_t k = 0; k < COUNT(types); k++)
    walked = walked && rtcp_next(p, len, &at, &r) == 1 && r.pt == types[k][0] && r.count == types[k][1];
  CHECK(walked && rtcp_next(p, len, &at, &r) == 0);
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
  const struct sdp_candidate cand[2] = {{"127.0.0.1", 5000, 2130706431u, false}, {"127.0.0.1", 8080, 1518338047u, true}};
  const struct sdp_local local = {"00000abcdefghijk", "0123456789abcdef0123456789abcdef", fp, cand, 2, 65536, 42, NULL, NULL};
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
    CHECK(strstr(b.p, "a=candidate:2 1 tcp 1518338047 127.0.0.1 8080 typ host tcptype passive\r\n"));
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

/* Replaces the nth occurrence of from in text (every one, if nth < 0) by to, of the same length.
 * Returns how many it replaced. */
static int text_edit(char *text, const char *from, const char *to, int nth) {
  size_t n = strlen(from);
  int k = 0, done = 0;
  if (strlen(to) != n) return -1;
  for (char *p = text; (p = strstr(p, from)) != NULL; p += n, k++)
    if (nth < 0 || k == nth) memcpy(p, to, n), done++;
  return done;
}

/* Whether section i of an SDP (0: the first m= line) has needle, or with want false, has it not. */
static bool sdp_section_has(const char *sdp, int i, const char *needle, bool want) {
  const char *p = sdp;
  for (int k = 0; k <= i && p; k++) {
    p = strstr(p, "\r\nm=");
    if (p) p += 2;
  }
  if (!p) return false;
  const char *end = strstr(p + 1, "\r\nm=");
  size_t len = end ? (size_t)(end - p) + 2 : strlen(p);
  char *sec = malloc(len + 1);
  memcpy(sec, p, len);
  sec[len] = 0;
  bool has = strstr(sec, needle) != NULL;
  if (has != want) fprintf(stderr, "sdp section %d %s \"%s\":\n%s", i, want ? "lacks" : "has", needle, sec);
  free(sec);
  return has == want;
}

/* Audio and video sections: what the SFU reads of an offer (sdp_rtp_attribute), and the answer it
 * writes from a plan per section (recvonly, sendonly with a=msid and a=ssrc, inactive, refused). */
static void test_sdp_media(void) {
  static const struct {
    enum sdp_kind kind;
    const char *name, *value;
    int rc, pt, mid_ext;
    uint32_t ssrc;
  } attrs[] = {
      {SDP_VIDEO, "rtpmap", "96 VP8/90000", 0, 96, 0, 0},
      {SDP_VIDEO, "rtpmap", "96 vp8/90000", 0, 96, 0, 0},
      {SDP_VIDEO, "rtpmap", "98 VP9/90000", 0, -1, 0, 0},
      {SDP_VIDEO, "rtpmap", "127 VP8/90000", 0, 127, 0, 0},
      {SDP_VIDEO, "rtpmap", "128 VP8/90000", -1, -1, 0, 0},
      {SDP_VIDEO, "rtpmap", "x VP8/90000", -1, -1, 0, 0},
      {SDP_VIDEO, "rtpmap", "", -1, -1, 0, 0},
      {SDP_AUDIO, "rtpmap", "111 opus/48000/2", 0, 111, 0, 0},
      {SDP_AUDIO, "rtpmap", "111 OPUS/48000/2", 0, 111, 0, 0},
      {SDP_AUDIO, "rtpmap", "111 opus/48000", 0, -1, 0, 0},
      {SDP_AUDIO, "rtpmap", "96 VP8/90000", 0, -1, 0, 0}, /* another kind's codec */
      {SDP_VIDEO, "rtpmap", "111 opus/48000/2", 0, -1, 0, 0},
      {SDP_VIDEO, "extmap", "4 urn:ietf:params:rtp-hdrext:sdes:mid", 0, -1, 4, 0},
      {SDP_VIDEO, "extmap", "4/recvonly urn:ietf:params:rtp-hdrext:sdes:mid", 0, -1, 4, 0},
      {SDP_VIDEO, "extmap", "14 urn:ietf:params:rtp-hdrext:sdes:mid", 0, -1, 14, 0},
      {SDP_VIDEO, "extmap", "15 urn:ietf:params:rtp-hdrext:sdes:mid", 0, -1, 0, 0},  /* two-byte ids: not used */
      {SDP_VIDEO, "extmap", "255 urn:ietf:params:rtp-hdrext:sdes:mid", 0, -1, 0, 0},
      {SDP_VIDEO, "extmap", "256 urn:ietf:params:rtp-hdrext:sdes:mid", -1, -1, 0, 0},
      {SDP_VIDEO, "extmap", "0 urn:ietf:params:rtp-hdrext:sdes:mid", -1, -1, 0, 0},
      {SDP_VIDEO, "extmap", "/sendonly urn:ietf:params:rtp-hdrext:sdes:mid", -1, -1, 0, 0},
      {SDP_VIDEO, "extmap", "3 urn:ietf:params:rtp-hdrext:sdes:rtp-stream-id", 0, -1, 0, 0},
      {SDP_VIDEO, "extmap", "3 urn:ietf:params:rtp-hdrext:sdes:mid-not", 0, -1, 0, 0},
      {SDP_VIDEO, "ssrc", "3157627856 cname:BABTVXd3leiEG8Wo", 0, -1, 0, 3157627856u},
      {SDP_VIDEO, "ssrc", "4294967295 cname:x", 0, -1, 0, 4294967295u},
      {SDP_VIDEO, "ssrc", "4294967296 cname:x", -1, -1, 0, 0},
      {SDP_VIDEO, "ssrc", "cname:x", -1, -1, 0, 0},
      {SDP_VIDEO, "ssrc-group", "FID 2583404429 200315010", 0, -1, 0, 2583404429u},
      {SDP_VIDEO, "ssrc-group", "SIM 1 2 3", 0, -1, 0, 0},
      {SDP_VIDEO, "ssrc-group", "FID x", -1, -1, 0, 0},
      {SDP_VIDEO, "fmtp", "96 x=1", 0, -1, 0, 0},
  };
  for (size_t k = 0; k < COUNT(attrs); k++) {
    struct sdp_media m = {.media = attrs[k].kind, .pt = -1};
    const char *v = attrs[k].value;
    int rc = sdp_rtp_attribute(&m, (struct str){attrs[k].name, strlen(attrs[k].name)}, (struct str){v, strlen(v)});
    if (rc != attrs[k].rc || m.pt != attrs[k].pt || m.mid_ext != attrs[k].mid_ext || m.ssrc != attrs[k].ssrc)
      fprintf(stderr, "sdp attribute case %zu: a=%s:%s\n", k, attrs[k].name, v);
    CHECK(rc == attrs[k].rc && m.pt == attrs[k].pt && m.mid_ext == attrs[k].mid_ext && m.ssrc == attrs[k].ssrc);
  }
  /* In sequence: the first codec of its kind wins, an FID group names the stream whatever came before,
   * directions and flags are read. */
  static const char *const seq[][2] = {{"rtpmap", "100 VP8/90000"}, {"rtpmap", "96 VP8/90000"}, {"ssrc", "5 cname:a"},
                                       {"ssrc", "6 cname:b"},       {"ssrc-group", "FID 7 8"},    {"ssrc", "9 cname:c"},
                                       {"recvonly", ""},            {"rtcp-mux", ""},             {"rtcp-rsize", ""}};
  struct sdp_media m = {.media = SDP_VIDEO, .pt = -1};
  bool ok = true;
  for (size_t k = 0; k < COUNT(seq); k++)
    if (sdp_rtp_attribute(&m, (struct str){seq[k][0], strlen(seq[k][0])}, (struct str){seq[k][1], strlen(seq[k][1])}) != 0)
      ok = false;
  CHECK(ok && m.pt == 100 && m.ssrc == 7 && m.dir == SDP_RECVONLY && m.rtcp_mux && m.rtcp_rsize);
  static const char *const dirs[] = {"sendrecv", "sendonly", "recvonly", "inactive"};
  for (int d = 0; d < 4; d++) {
    CHECK(sdp_rtp_attribute(&m, (struct str){dirs[d], strlen(dirs[d])}, (struct str){"", 0}) == 0 && m.dir == (enum sdp_dir)d);
  }

  /* A real offer: Chromium's microphone and camera with a data channel. */
  size_t len;
  char *text = read_fixture("chromium-av-datachannel.sdp", &len);
  CHECK(text != NULL);
  if (!text) return;
  static struct sdp_offer o, back;
  const char *err = NULL;
  CHECK(sdp_parse_offer(text, len, &o, &err) == 0 && o.n_media == 3 && o.data_index == 2 && o.bundle);
  const struct sdp_media *a = &o.m[0], *v = &o.m[1], *d = &o.m[2];
  CHECK(a->media == SDP_AUDIO && a->dir == SDP_SENDRECV && a->pt == 111 && a->mid_ext == 4 && a->ssrc == 3157627856u &&
        a->rtcp_mux && a->rtcp_rsize && !strcmp(a->mid, "0"));
  CHECK(v->media == SDP_VIDEO && v->dir == SDP_SENDRECV && v->pt == 96 && v->mid_ext == 4 && v->ssrc == 2583404429u &&
        v->rtcp_mux && v->rtcp_rsize && !strcmp(v->mid, "1"));
  CHECK(d->media == SDP_OTHER && d->data == SDP_DATA_NEW && d->pt == -1 && !d->ssrc);

  static const uint8_t fp[32] = {1, 2, 3};
  const struct sdp_candidate cand = {"127.0.0.1", 5000, 2130706431u, false};
  struct sdp_plan plan[CAMUS_SDP_MAX_MEDIA];
  memset(plan, 0, sizeof plan);
  plan[0] = (struct sdp_plan){.dir = SDP_RECVONLY, .accept = true};
  plan[1] = (struct sdp_plan){.dir = SDP_SENDONLY, .accept = true, .ssrc = 305419896};
  snprintf(plan[1].msid, sizeof plan[1].msid, "0123456789abcdef0123456789abcdef-camera t7");
  struct sdp_local l = {"00000abcdefghijk", "0123456789abcdef0123456789abcdef", fp, &cand, 1, 65536, 42, plan, NULL};
  struct buf b = {0};
  CHECK(sdp_write_answer(&b, &o, &l, &err) == 0 && strstr(b.p, "a=group:BUNDLE 0 1 2\r\n"));
  CHECK(sdp_section_has(b.p, 0, "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n", true));
  CHECK(sdp_section_has(b.p, 0,
                        "a=recvonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
                        "a=rtpmap:111 opus/48000/2\r\na=fmtp:111 minptime=10;useinbandfec=1\r\n",
                        true));
  CHECK(sdp_section_has(b.p, 0, "a=setup:active\r\n", true) && sdp_section_has(b.p, 0, "a=ice-ufrag:00000abcdefghijk\r\n", true));
  CHECK(sdp_section_has(b.p, 0, "a=ssrc", false) && sdp_section_has(b.p, 0, "a=msid", false) &&
        sdp_section_has(b.p, 0, "a=rtcp-fb", false) && sdp_section_has(b.p, 0, "max-message-size", false));
  CHECK(sdp_section_has(b.p, 0, "a=candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host\r\na=end-of-candidates\r\n", true));
  CHECK(sdp_section_has(b.p, 1, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", true));
  CHECK(sdp_section_has(b.p, 1,
                        "a=sendonly\r\na=rtcp-mux\r\na=rtcp-rsize\r\na=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
                        "a=rtpmap:96 VP8/90000\r\na=rtcp-fb:96 nack\r\na=rtcp-fb:96 nack pli\r\na=rtcp-fb:96 ccm fir\r\n"
                        "a=rtcp-fb:96 goog-remb\r\na=msid:0123456789abcdef0123456789abcdef-camera t7\r\n"
                        "a=ssrc:305419896 cname:camus\r\n",
                        true));
  CHECK(sdp_section_has(b.p, 1, "a=fmtp", false) && sdp_section_has(b.p, 2, "a=max-message-size:65536\r\n", true));
  /* The answer reads back (as an offer would): the same sections, ours as we said. */
  CHECK(sdp_parse_offer(b.p, b.len, &back, &err) == 0 && back.n_media == 3 && back.bundle && back.data_index == 2);
  CHECK(back.m[0].media == SDP_AUDIO && back.m[0].dir == SDP_RECVONLY && back.m[0].pt == 111 && back.m[0].mid_ext == 4 &&
        back.m[0].ssrc == 0 && back.m[0].rtcp_mux);
  CHECK(back.m[1].media == SDP_VIDEO && back.m[1].dir == SDP_SENDONLY && back.m[1].pt == 96 && back.m[1].ssrc == 305419896);
  /* Inactive: accepted, no track; an idle slot keeps the SSRC it had, if any.  A later answer keeps
   * the DTLS role the first one gave. */
  plan[1].dir = SDP_INACTIVE;
  l.setup = "passive";
  b.len = 0;
  CHECK(sdp_write_answer(&b, &o, &l, &err) == 0 && strstr(b.p, "a=group:BUNDLE 0 1 2\r\n"));
  CHECK(sdp_section_has(b.p, 1, "a=inactive\r\na=rtcp-mux\r\n", true) && sdp_section_has(b.p, 1, "a=msid", false) &&
        sdp_section_has(b.p, 1, "a=ssrc:305419896 cname:camus\r\n", true) && sdp_section_has(b.p, 1, "a=setup:passive\r\n", true) &&
        sdp_section_has(b.p, 2, "a=setup:passive\r\n", true));
  plan[1].ssrc = 0;
  b.len = 0;
  CHECK(sdp_write_answer(&b, &o, &l, &err) == 0 && sdp_section_has(b.p, 1, "a=ssrc", false) &&
        sdp_parse_offer(b.p, b.len, &back, &err) == 0 && back.m[1].dir == SDP_INACTIVE && back.m[1].ssrc == 0);
  /* Refused: port 0, its mid kept, out of the bundle; nothing else said of it. */
  plan[0].accept = false;
  b.len = 0;
  CHECK(sdp_write_answer(&b, &o, &l, &err) == 0 && strstr(b.p, "a=group:BUNDLE 1 2\r\n"));
  CHECK(sdp_section_has(b.p, 0, "m=audio 0 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\n", true) &&
        sdp_section_has(b.p, 0, "a=ice-ufrag", false) && sdp_section_has(b.p, 0, "a=rtpmap", false));
  plan[0].accept = true;
  buf_free(&b);
  /* What a plan cannot accept: no BUNDLE, no rtcp-mux, no VP8, no mid. */
  static const struct {
    const char *from, *to;
    int nth;
    const char *bundle; /* the answer's group, NULL: none */
  } refuse[] = {
      {"a=group:BUNDLE", "a=xroup:BUNDLE", 0, NULL},
      {"a=rtcp-mux\r\n", "a=rtcp-mix\r\n", 1, "a=group:BUNDLE 0 2\r\n"},
      {"a=rtpmap:96 VP8/90000", "a=rtpmap:96 VP7/90000", 0, "a=group:BUNDLE 0 2\r\n"},
      {"a=mid:1\r\n", "a=mix:1\r\n", 0, "a=group:BUNDLE 0 2\r\n"},
      {"m=video 9 ", "m=video 0 ", 0, "a=group:BUNDLE 0 2\r\n"}, /* refused by the offer itself */
      {"UDP/TLS/RTP/SAVPF 96", "UDP/TLS/RTP/SAVP  96", 0, "a=group:BUNDLE 0 2\r\n"},
  };
  for (size_t k = 0; k < COUNT(refuse); k++) {
    char *t = malloc(len + 1);
    memcpy(t, text, len + 1);
    CHECK(text_edit(t, refuse[k].from, refuse[k].to, refuse[k].nth) == 1);
    struct buf ans = {0};
    CHECK(sdp_parse_offer(t, len, &o, &err) == 0 && sdp_write_answer(&ans, &o, &l, &err) == 0);
    CHECK(refuse[k].bundle ? strstr(ans.p, refuse[k].bundle) != NULL : strstr(ans.p, "a=group") == NULL);
    CHECK(sdp_section_has(ans.p, 1, "m=video 0 ", true) && sdp_section_has(ans.p, 1, "a=rtpmap", false));
    CHECK(sdp_section_has(ans.p, 0, refuse[k].bundle ? "m=audio 9 " : "m=audio 0 ", true));
    buf_free(&ans);
    free(t);
  }
  /* Port 0 with a=bundle-only (RFC 8843 7.3.3, how Firefox offers a new section in a bundle) is live. */
  CHECK(text_edit(text, "m=video 9 ", "m=video 0 ", 0) == 1 &&
        text_edit(text, "a=rtcp-xr:rcvr-rtt=all", "a=bundle-only\r\na=xx:yy", 1) == 1);
  b = (struct buf){0};
  CHECK(sdp_parse_offer(text, len, &o, &err) == 0 && o.m[1].media == SDP_VIDEO && o.m[1].bundle_only && o.m[1].port == 0);
  CHECK(sdp_write_answer(&b, &o, &l, &err) == 0 && strstr(b.p, "a=group:BUNDLE 0 1 2\r\n") &&
        sdp_section_has(b.p, 1, "m=video 9 UDP/TLS/RTP/SAVPF 96\r\n", true));
  buf_free(&b);
  /* A malformed attribute in an audio or video section fails the offer. */
  text_edit(text, "a=rtpmap:111 opus", "a=rtpmap:1x1 opus", 0);
  err = NULL;
  CHECK(sdp_parse_offer(text, len, &o, &err) != 0 && err && strstr(err, "bad audio or video attribute"));
  free(text);
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
  struct room *rm = room_create(s, (const uint8_t[16]){0}, "udp", 3, NULL, 0, true, true, 0, (char[33]){0}, &status, &err);
  size_t len;
  char *offer = read_fixture("chromium-datachannel.sdp", &len);
  struct buf answer = {0};
  CHECK(rm && offer && client_offer(s, rm, (const uint8_t[16]){0}, offer, len, false, ROLE_GUEST, NULL, (char[33]){0}, &answer, &err) == APP_OK);
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
  /* An ICE-TCP path is another path than the same address and port by UDP, for IPv4 and IPv6; a
   * mapped IPv4 address made canonical is the IPv4 one. */
  for (int v6 = 0; v6 < 2; v6++) {
    struct sockaddr_storage u, t;
    CHECK(addr_parse(v6 ? "2001:db8::ff" : "192.0.2.7", 443, &u) == 0);
    t = u;
    addr_set_tcp(&t);
    CHECK(addr_is_tcp(&t) && !addr_is_tcp(&u) && !addr_same(&u, &t) && addr_same(&t, &t));
    struct addr_key ku = addr_key(&u), kt = addr_key(&t);
    CHECK(addr_hash(&ku) != addr_hash(&kt) && addr_port(&t) == 443);
  }
  struct sockaddr_storage m, v4, canon;
  CHECK(addr_parse("::ffff:192.0.2.7", 9, &m) == 0 && addr_parse("192.0.2.7", 9, &v4) == 0);
  const struct sockaddr_storage *c = addr_canonical(&m, &canon);
  CHECK(c == &canon && addr_same(c, &v4) && addr_canonical(&v4, &canon) == &v4);
}

/* ------------------------------------------------------------------- TURN ------------------------------------------------------------------ */

static bool peer_ok(const struct turn *t, const char *ip, int port) {
  struct sockaddr_storage a;
  return addr_parse(ip, port, &a) == 0 && turn_port_ok(t, turn_peer_kind(t, &a), addr_port(&a));
}

/* The relay's policy, ranges, nonces and credentials, and TURN's attributes read and written. */
static void test_turn(void) {
  struct cidr c;
  CHECK(cidr_parse("10.0.0.0/8", &c) == 0 && c.family == AF_INET && c.bits == 8);
  CHECK(cidr_parse("1.2.3.4", &c) == 0 && c.bits == 32 && cidr_has(&c, AF_INET, (const uint8_t[16]){1, 2, 3, 4}));
  CHECK(!cidr_has(&c, AF_INET, (const uint8_t[16]){1, 2, 3, 5}));
  CHECK(cidr_parse("fe80::/10", &c) == 0 && c.family == AF_INET6 && c.bits == 10);
  CHECK(cidr_has(&c, AF_INET6, (const uint8_t[16]){0xfe, 0xbf}) && !cidr_has(&c, AF_INET6, (const uint8_t[16]){0xfe, 0xc0}));
  CHECK(cidr_parse("10.0.0.0/33", &c) != 0 && cidr_parse("x/8", &c) != 0 && cidr_parse("/8", &c) != 0 &&
        cidr_parse("10.0.0.0/", &c) != 0 && cidr_parse("10.0.0.0/8x", &c) != 0);

  static struct turn t;
  struct sockaddr_storage own[1];
  memset(&t, 0, sizeof t);
  addr_parse("192.0.2.10", 0, &own[0]);
  t.own = own, t.n_own = 1, t.port_min = 50000, t.port_max = 50010, t.media_port = 4000;
  CHECK(peer_ok(&t, "8.8.8.8", 3478) && peer_ok(&t, "2001:db8::1", 9));
  static const char *const closed[] = {"10.1.2.3", "172.16.0.1", "192.168.1.1", "127.0.0.1", "169.254.1.1", "100.64.0.1",
                                       "0.0.0.0", "224.0.0.1", "255.255.255.255", "::1", "::", "fe80::1", "fd00::1",
                                       "ff02::1", "::ffff:10.1.2.3", "::ffff:127.0.0.1"};
  for (size_t i = 0; i < COUNT(closed); i++) CHECK(!peer_ok(&t, closed[i], 5000));
  CHECK(!peer_ok(&t, "8.8.8.8", 0));
  CHECK(peer_ok(&t, "192.0.2.10", 50005) && peer_ok(&t, "192.0.2.10", 4000) && !peer_ok(&t, "192.0.2.10", 80) &&
        !peer_ok(&t, "192.0.2.10", 50011));
  CHECK(cidr_parse("10.0.0.0/8", &t.allow[0]) == 0);
  t.n_allow = 1;
  CHECK(peer_ok(&t, "10.1.2.3", 5000) && peer_ok(&t, "::ffff:10.1.2.3", 5000) && !peer_ok(&t, "11.0.0.1", 0));

  /* Nonces: good for their client until they run out, and not forgeable. */
  struct sockaddr_storage me, other;
  char nonce[33];
  addr_parse("203.0.113.5", 40000, &me);
  addr_parse("203.0.113.5", 40001, &other);
  memset(t.nonce_key, 7, sizeof t.nonce_key);
  turn_nonce(&t, &me, (uint64_t)time(NULL) + 60, nonce);
  CHECK(strlen(nonce) == 32 && turn_nonce_ok(&t, &me, (const uint8_t *)nonce, 32));
  CHECK(!turn_nonce_ok(&t, &other, (const uint8_t *)nonce, 32) && !turn_nonce_ok(&t, &me, (const uint8_t *)nonce, 31));
  nonce[31] ^= 1;
  CHECK(!turn_nonce_ok(&t, &me, (const uint8_t *)nonce, 32));
  turn_nonce(&t, &me, (uint64_t)time(NULL) - 1, nonce);
  CHECK(!turn_nonce_ok(&t, &me, (const uint8_t *)nonce, 32));

  /* Credentials: a request signed with MD5(user:realm:password) of the REST form checks; with
   * another secret, a past expiry or a user name of another form, it does not. */
  memcpy(t.secret, "s3cret", 6);
  t.secret_len = 6;
  char user[64], pass[32], text[160];
  turn_credentials(&t, "0123456789abcdef0123456789abcdef", user, pass);
  CHECK(strchr(user, ':') && strlen(pass) == 28);
  uint8_t key[16], got[16], buf[512];
  snprintf(text, sizeof text, "%s:%s:%s", user, TURN_REALM, pass);
  mbedtls_md5_ret((const uint8_t *)text, strlen(text), key);
  turn_nonce(&t, &me, (uint64_t)time(NULL) + 60, nonce);
  struct sockaddr_storage peers[5];
  for (int i = 0; i < 5; i++) addr_parse("198.51.100.7", 1000 + i, &peers[i]);
  for (int round = 0; round < 4; round++) {
    const char *u = round == 2 ? "1000:expired" : round == 3 ? "nocolon" : user;
    struct stun_writer w = {buf, sizeof buf, 0, false};
    stun_begin(&w, TURN_ALLOCATE | STUN_REQUEST, (const uint8_t *)"abcdefghijkl");
    stun_attr_u32(&w, TURN_A_REQUESTED_TRANSPORT, 17u << 24);
    stun_attr_u32(&w, TURN_A_LIFETIME, 1234);
    stun_attr_u32(&w, TURN_A_CHANNEL_NUMBER, 0x4001u << 16);
    stun_attr(&w, TURN_A_DATA, "payload", 7);
    for (int i = 0; i < 5; i++) stun_xor_address(&w, TURN_A_XOR_PEER_ADDRESS, (const struct sockaddr *)&peers[i]);
    stun_attr(&w, STUN_A_USERNAME, u, (uint16_t)strlen(u));
    stun_attr(&w, STUN_A_REALM, TURN_REALM, sizeof TURN_REALM - 1);
    stun_attr(&w, STUN_A_NONCE, nonce, 32);
    stun_integrity(&w, key, 16);
    stun_fingerprint(&w);
    CHECK(!w.err);
    struct stun_msg m;
    CHECK(stun_parse(buf, w.len, &m) == 0 && STUN_METHOD(m.type) == TURN_ALLOCATE && STUN_CLASS(m.type) == STUN_REQUEST);
    CHECK(m.transport == 17 && m.has_lifetime && m.lifetime == 1234 && m.has_channel && m.channel == 0x4001);
    CHECK(m.has_data && m.data_len == 7 && !memcmp(m.data, "payload", 7) && !m.n_unknown && !m.reserves);
    CHECK(m.n_peers == 4 && m.too_many_peers && addr_same(&m.peers[3], &peers[3]));
    CHECK(m.realm_len == 5 && m.nonce_len == 32 && turn_nonce_ok(&t, &me, m.nonce, m.nonce_len));
    if (round == 1) memcpy(t.secret, "other!", 6);
    CHECK(turn_key(&t, buf, w.len, &m, got) == (round == 0));
    if (round == 0) CHECK(!memcmp(got, key, 16));
    memcpy(t.secret, "s3cret", 6);
  }
}

/* ------------------------------------------------------------------ MEDIA ----------------------------------------------------------------- */

/* The retransmission cache: a ring by sequence number, the newest packet owning its slot; one larger
 * than a slot is not kept (and the older one in its slot is gone); the sequence wraps. */
static void test_nack_slots(unsigned slots) {
  struct nack_cache *nc = nack_new(slots);
  static uint8_t pkt[NACK_SLOT_BYTES + 1];
  const struct nack_slot *sl;
  if (!nc) return;
  CHECK(!nack_get(nc, 0) && !nack_get(nc, 65535)); /* empty slots, whatever their seq reads */
  for (int i = 0; i < (int)slots; i++) {
    memset(pkt, i, 32);
    nack_put(nc, pkt, 20 + (size_t)i % 7, (uint16_t)(1000 + i));
  }
  bool all = true;
  for (int i = 0; i < (int)slots; i++) {
    sl = nack_get(nc, (uint16_t)(1000 + i));
    if (!sl || sl->seq != 1000 + i || sl->len != 20 + i % 7 || sl->data[0] != (uint8_t)i || sl->data[sl->len - 1] != (uint8_t)i)
      all = false;
  }
  CHECK(all);
  CHECK(!nack_get(nc, 999) && !nack_get(nc, 1000 + slots)); /* slots of newer and of older packets */
  memset(pkt, 0xee, sizeof pkt);
  nack_put(nc, pkt, 40, 1000 + slots);
  CHECK(!nack_get(nc, 1000) && (sl = nack_get(nc, 1000 + slots)) && sl->len == 40 && sl->data[39] == 0xee);
  nack_put(nc, pkt, NACK_SLOT_BYTES, 1001);
  CHECK((sl = nack_get(nc, 1001)) && sl->len == NACK_SLOT_BYTES && sl->data[NACK_SLOT_BYTES - 1] == 0xee);
  nack_put(nc, pkt, NACK_SLOT_BYTES + 1, 1002);
  CHECK(!nack_get(nc, 1002) && !nack_get(nc, 1002 - slots) && !nack_get(nc, 1002 + slots));
  nack_put(nc, pkt, NACK_SLOT_BYTES + 1, 1001); /* the packet already in the slot goes too */
  CHECK(!nack_get(nc, 1001) && nack_get(nc, 1003));
  /* Across the wrap (65535, then 0), the newest packets are found by their own numbers. */
  free(nc);
  if (!(nc = nack_new(slots))) return;
  uint16_t first = (uint16_t)(65536 - (int)slots / 2);
  for (int i = 0; i < (int)slots; i++) {
    memset(pkt, i, 4);
    nack_put(nc, pkt, 4, (uint16_t)(first + i));
  }
  int kept = 0, newest = 0;
  bool run = true, right = true;
  for (int i = (int)slots - 1; i >= 0; i--) {
    sl = nack_get(nc, (uint16_t)(first + i));
    if (sl && (sl->data[0] != (uint8_t)i || sl->seq != (uint16_t)(first + i))) right = false;
    kept += sl != NULL;
    run = run && sl != NULL;
    newest += run;
  }
  /* The slot count divides 65536 (a static assertion in camus.c): the ring keeps its whole depth across the wrap. */
  CHECK(right && newest == (int)slots && kept == (int)slots);
  free(nc);
}

/* The cache of a server's published videos, and the shorter one of --small. */
static void test_nack(void) {
  test_nack_slots(CAMUS_NACK_SLOTS);
  test_nack_slots(CAMUS_SMALL_NACK_SLOTS);
}

/* The browser's side of a member's session in an SFU room, which the test plays. */
struct sfu_end {
  struct rtc *p;
  struct client *c;
  int fd; /* its socket, where the server's datagrams to it arrive */
  struct sockaddr_storage addr;
  struct srtp tx, rx; /* its SRTP, out and in */
};

/* A member of rm: a session made from the offer sdp, checked over ICE from the end's own socket, with
 * DTLS-SRTP keys as if its handshake had agreed on them (60 bytes from seed), its message channel open. */
static bool sfu_join(struct camus *s, struct room *rm, const char *sdp, size_t len, struct sfu_end *e, uint8_t seed) {
  struct buf answer = {0};
  const char *err = NULL;
  uint32_t slot = 0;
  memset(e, 0, sizeof *e);
  e->fd = -1;
  while (slot < sessions.cap && sessions.table[slot]) slot++;
  enum app_err rc = client_offer(s, rm, (const uint8_t[16]){0}, sdp, len, false, ROLE_GUEST, NULL, (char[33]){0}, &answer, &err);
  buf_free(&answer);
  if (rc != APP_OK || slot >= sessions.cap || !(e->p = sessions.table[slot])) return false;
  e->c = e->p->user;
  e->fd = loopback_udp(&e->addr);
  uint8_t req[256], txid[12] = "camus-sfu-00";
  char user[300];
  txid[11] = seed;
  snprintf(user, sizeof user, "%s:%s", e->p->ufrag, e->p->remote_ufrag);
  struct stun_writer w = {req, sizeof req, 0, false};
  stun_begin(&w, STUN_BINDING_REQUEST, txid);
  stun_attr(&w, STUN_A_USERNAME, user, (uint16_t)strlen(user));
  stun_attr_u32(&w, STUN_A_PRIORITY, 12345);
  stun_attr(&w, STUN_A_USE_CANDIDATE, NULL, 0);
  stun_integrity(&w, e->p->pwd, strlen(e->p->pwd));
  stun_fingerprint(&w);
  udp_input(&s->udp, req, w.len, &e->addr);
  if (e->p->state != RTC_DTLS || e->p->n_addrs != 1 || e->p->dtls_server || !(e->p->srtp_master = malloc(60))) return false;
  for (int i = 0; i < 60; i++) e->p->srtp_master[i] = (uint8_t)(seed + i);
  e->p->dtls_up = true;
  e->p->addrs[e->p->sel].proven = true;
  /* The browser is the DTLS server (the offer said actpass): it sends with the server's key and salt. */
  const uint8_t *m = e->p->srtp_master;
  if (srtp_init(&e->tx, m + 16, m + 46) != 0 || srtp_init(&e->rx, m, m + 32) != 0) return false;
  rtc_set_state(e->p, RTC_OPEN); /* as once SCTP is up; no SCTP socket: messages to it go nowhere */
  e->p->ch[0] = (struct channel){.sid = 1, .type = 0, .open = true};
  client_open(s, e->p, &e->p->ch[0]);
  return e->c->member && e->c->media;
}

static void sfu_leave(struct sfu_end *e) {
  if (e->fd >= 0) close(e->fd);
  if (e->p) e->p->dtls_up = false; /* its handshake never finished: no close_notify */
  srtp_free(&e->tx);
  srtp_free(&e->rx);
}

/* An offer from e to Ground Control, as its page sends it over the data channel. */
static void sfu_offer(struct sfu_end *e, const char *sdp) {
  struct buf b = {0};
  buf_adds(&b, "{\"type\":\"offer\",\"receiver\":\"ground control\",\"data\":{\"sdp\":");
  json_write_str(&b, sdp, strlen(sdp));
  buf_adds(&b, ",\"tracks\":{\"1\":\"camera\"}}}");
  msg_input(e->c, b.p, b.len);
  buf_free(&b);
}

/* An RTP packet from e's browser, through the UDP port. */
static void sfu_rtp(struct camus *s, struct sfu_end *e, uint8_t pt, bool marker, uint16_t seq, uint32_t ts, uint32_t ssrc,
                    const uint8_t *payload, size_t n) {
  uint8_t pkt[256];
  size_t hl = rtp_write_header(pkt, false, marker, pt, seq, ts, ssrc, 0, "");
  memcpy(pkt + hl, payload, n);
  int len = srtp_protect(&e->tx, pkt, hl + n, sizeof pkt);
  if (len > 0) udp_input(&s->udp, pkt, (size_t)len, &e->addr);
}

/* An RTCP compound from e's browser: an empty receiver report, then fb[0..n). */
static void sfu_rtcp(struct camus *s, struct sfu_end *e, const uint8_t *fb, size_t n) {
  uint8_t pkt[256];
  size_t len = rtcp_write_rr(pkt, sizeof pkt, 0x0b0b0b0b, NULL);
  memcpy(pkt + len, fb, n);
  int pn = srtcp_protect(&e->tx, pkt, len + n, sizeof pkt);
  if (pn > 0) udp_input(&s->udp, pkt, (size_t)pn, &e->addr);
}

#define SFU_NONE (-100)

/* The next RTP (with rtcp, RTCP) datagram the server sent e: as it came in wire[0..*wn), decrypted in
 * out; its length, an SRTP_ error, or SFU_NONE when no more came. */
static int sfu_recv(struct camus *s, struct sfu_end *e, bool rtcp, uint8_t *wire, size_t *wn, uint8_t *out) {
  udp_flush(&s->udp);
  for (;;) {
    ssize_t n = recv(e->fd, wire, 2048, MSG_DONTWAIT);
    if (n <= 0) return SFU_NONE;
    if (wire[0] < 128 || wire[0] > 191 || rtcp_is(wire, (size_t)n) != rtcp) continue;
    *wn = (size_t)n;
    memcpy(out, wire, (size_t)n);
    return rtcp ? srtcp_unprotect(&e->rx, out, (size_t)n) : srtp_unprotect(&e->rx, out, (size_t)n);
  }
}

/* Whether the next RTCP to e is an empty RR from our ssrc, then a PLI about media. */
static bool sfu_got_pli(struct camus *s, struct sfu_end *e, uint32_t media) {
  static uint8_t wire[2048], out[2048];
  size_t wn, at = 0;
  struct rtcp_pkt r1, r2;
  int n = sfu_recv(s, e, true, wire, &wn, out);
  return n > 0 && rtcp_next(out, (size_t)n, &at, &r1) == 1 && r1.pt == RTCP_RR && r1.count == 0 &&
         get_u32(r1.body) == e->c->media->ssrc && rtcp_next(out, (size_t)n, &at, &r2) == 1 && r2.pt == RTCP_PSFB &&
         r2.count == RTCP_FMT_PLI && r2.len == 8 && get_u32(r2.body + 4) == media && rtcp_next(out, (size_t)n, &at, &r2) == 0;
}

/* The SFU on a real server: a publisher (Chromium's offer: microphone and camera) and a viewer (the same
 * offer, receiving), both members with SRTP.  What the viewer gets: its own payload types, SSRCs and
 * mid extension id; sequence numbers and timestamps that continue its own (a new source starts at the
 * last + 1, and 960 (audio) or 3000 (video) later); video only from a keyframe; NACKed packets again,
 * byte for byte, in the numbers they had (a retransmission does not rebase); keyframe requests go up. */
static void test_sfu(void) {
  struct camus *s = test_server();
  if (!s) return;
  enum app_err status;
  const char *err;
  struct room *rm = room_create(s, (const uint8_t[16]){0}, "sfu", 3, NULL, 0, true, true, 0, (char[33]){0}, &status, &err);
  size_t len;
  char *pub = read_fixture("chromium-av-datachannel.sdp", &len), *view = malloc(len + 1), *pub2 = malloc(len + 1);
  CHECK(rm && rm->sfu && pub && view && pub2);
  if (!rm || !pub || !view || !pub2) {
    free(pub), free(view), free(pub2);
    camus_free(s);
    return;
  }
  memcpy(view, pub, len + 1);
  memcpy(pub2, pub, len + 1);
  /* The viewer receives both, numbers VP8 98 and the mid extension 9; the publisher's second offer
   * sends its camera with a new SSRC. */
  CHECK(text_edit(view, "a=sendrecv", "a=recvonly", -1) == 2 && text_edit(view, "a=rtpmap:96 VP8/", "a=rtpmap:96 VP6/", 0) == 1 &&
        text_edit(view, "a=rtpmap:98 VP9/", "a=rtpmap:98 VP8/", 0) == 1 &&
        text_edit(view, "a=extmap:4 " SDP_MID_URI, "a=extmap:9 " SDP_MID_URI, -1) == 2);
  CHECK(text_edit(pub2, "2583404429", "2583404430", -1) == 3);
  struct sfu_end a, b;
  bool joined = sfu_join(s, rm, pub, len, &a, 1);
  joined = sfu_join(s, rm, view, len, &b, 101) && joined;
  CHECK(joined && rm->n_clients == 2 && rm->members == a.c && a.c->next_member == b.c);
  if (!joined) goto done;

  sfu_offer(&a, pub);
  struct media *am = a.c->media, *bm = b.c->media;
  struct track *ta = NULL, *tv = NULL;
  for (int i = 0; i < CAMUS_SFU_TRACKS; i++)
    if (am->tracks[i].used) *(am->tracks[i].kind == SDP_AUDIO ? &ta : &tv) = &am->tracks[i];
  CHECK(ta && ta->ssrc == 3157627856u && ta->pt == 111 && ta->mid_ext == 4 && ta->label == TRACK_MIC && !strcmp(ta->mid, "0"));
  CHECK(tv && tv->ssrc == 2583404429u && tv->pt == 96 && tv->label == TRACK_CAMERA && !strcmp(tv->mid, "1"));
  CHECK(bm->n_subs == 0);
  sfu_offer(&b, view);
  struct sub *sa = NULL, *sv = NULL;
  for (int i = 0; i < bm->n_subs; i++) *(bm->subs[i]->kind == SDP_AUDIO ? &sa : &sv) = bm->subs[i];
  CHECK(bm->n_subs == 2 && am->n_subs == 0 && sa && sv && ta && tv);
  if (!sa || !sv || !ta || !tv) goto done;
  CHECK(sa->src == ta && sa->pt == 111 && sa->mid_ext == 9 && sa->rebase && !sa->need_key);
  CHECK(sv->src == tv && sv->pt == 98 && sv->mid_ext == 9 && sv->rebase && sv->need_key && sv->ssrc != sa->ssrc);
  CHECK(sfu_got_pli(s, &a, tv->ssrc)); /* the new viewer needs a keyframe */
  s->loop.now += 1000; /* the publisher's byte budget fills */

  static uint8_t wire[2048], out[2048], key1[2048], key2[2048];
  size_t wn = 0, key1_n = 0, key2_n = 0, el;
  struct rtp_hdr h;
  const uint8_t *ext;
  int n;
  /* Audio: the first packet continues the viewer's numbers; later ones keep the offset, gaps and all. */
  static const uint8_t voice[20] = {0xa1, 0xa2, 0xa3};
  uint16_t seq0 = sa->last_seq;
  uint32_t ts0 = sa->last_ts;
  static const struct {
    uint16_t seq;
    uint32_t ts;
    uint16_t out_seq; /* from seq0 */
    uint32_t out_ts;  /* from ts0 */
  } audio[] = {{1000, 50000, 1, 960},  {1001, 50960, 2, 1920}, {1003, 52880, 4, 3840}, /* a gap */
               {1002, 51920, 3, 2880}, /* late */ {1004, 53840, 5, 4800}};
  for (size_t k = 0; k < COUNT(audio); k++) {
    sfu_rtp(s, &a, 111, k == 0, audio[k].seq, audio[k].ts, 3157627856u, voice, sizeof voice);
    n = sfu_recv(s, &b, false, wire, &wn, out);
    CHECK(n == 12 + 8 + 20 && rtp_parse(out, (size_t)n, &h) == 0 && h.pt == 111 && h.ssrc == sa->ssrc && h.marker == (k == 0));
    CHECK(h.seq == (uint16_t)(seq0 + audio[k].out_seq) && h.ts == ts0 + audio[k].out_ts);
    CHECK(h.payload_len == 20 && !memcmp(out + h.payload, voice, 20));
    CHECK((ext = rtp_ext_find(out, &h, 9, &el)) && el == 1 && ext[0] == '0');
  }
  CHECK(!sa->rebase && sa->last_seq == (uint16_t)(seq0 + 5) && sa->last_ts == ts0 + 4800);
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SFU_NONE);

  /* Video: nothing before a keyframe (RFC 7741: S, partition 0, P clear), then the same arithmetic. */
  static const uint8_t inter[] = {0x10, 0x01, 0x02, 0x03}, key[] = {0x90, 0x80, 0x05, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a};
  uint16_t vseq0 = sv->last_seq;
  uint32_t vts0 = sv->last_ts;
  sfu_rtp(s, &a, 96, false, 7000, 900000, 2583404429u, inter, sizeof inter);
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SFU_NONE && sv->need_key);
  CHECK(sfu_got_pli(s, &a, 2583404429u)); /* asked again on the waiting viewer's behalf (CAMUS_PLI_MS passed) */
  sfu_rtp(s, &a, 96, false, 7001, 903000, 2583404429u, key, sizeof key);
  n = sfu_recv(s, &b, false, wire, &wn, out);
  if (n > 0) memcpy(key1, wire, wn), key1_n = wn;
  CHECK(n > 0 && rtp_parse(out, (size_t)n, &h) == 0 && h.pt == 98 && h.ssrc == sv->ssrc && !sv->need_key);
  CHECK(h.seq == (uint16_t)(vseq0 + 1) && h.ts == vts0 + 3000 && h.payload_len == sizeof key &&
        !memcmp(out + h.payload, key, sizeof key));
  CHECK((ext = rtp_ext_find(out, &h, 9, &el)) && el == 1 && ext[0] == '1');
  sfu_rtp(s, &a, 96, true, 7002, 903000, 2583404429u, inter, sizeof inter);
  n = sfu_recv(s, &b, false, wire, &wn, out);
  if (n > 0) memcpy(key2, wire, wn), key2_n = wn;
  CHECK(n > 0 && rtp_parse(out, (size_t)n, &h) == 0 && h.marker && h.seq == (uint16_t)(vseq0 + 2) && h.ts == vts0 + 3000);

  /* A NACK (RFC 4585 6.2.1) for both, in the viewer's numbers: each comes again as it was. */
  uint8_t fb[64];
  size_t fl = rtcp_write_nack(fb, sizeof fb, 0x0b0b0b0b, sv->ssrc, (uint16_t)(vseq0 + 1), 1);
  sfu_rtcp(s, &b, fb, fl);
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SRTP_REPLAYED && wn == key1_n && !memcmp(wire, key1, wn));
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SRTP_REPLAYED && wn == key2_n && !memcmp(wire, key2, wn));
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SFU_NONE && bm->n.retransmitted == 2);
  fl = rtcp_write_nack(fb, sizeof fb, 0x0b0b0b0b, sv->ssrc, (uint16_t)(vseq0 - 5), 0); /* never sent: not in the cache */
  sfu_rtcp(s, &b, fb, fl);
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SFU_NONE && bm->n.retransmitted == 2);
  /* ... so it is asked of the publisher, in the publisher's numbers (7000 came in as vseq0). */
  n = sfu_recv(s, &a, true, wire, &wn, out);
  bool up = false;
  struct rtcp_pkt rp;
  for (size_t at = 0; n > 0 && rtcp_next(out, (size_t)n, &at, &rp) == 1;)
    if (rp.pt == RTCP_RTPFB && rp.count == RTCP_FMT_NACK && rp.len == 12)
      up = get_u32(rp.body + 4) == 2583404429u && get_u16(rp.body + 8) == (uint16_t)(7000 - 5) && get_u16(rp.body + 10) == 0;
  CHECK(up);
  /* A PLI from the viewer goes up as one about the publisher's own SSRC (once CAMUS_PLI_MS passed). */
  s->loop.now += CAMUS_PLI_MS;
  fl = rtcp_write_pli(fb, sizeof fb, 0x0b0b0b0b, sv->ssrc);
  sfu_rtcp(s, &b, fb, fl);
  CHECK(sfu_got_pli(s, &a, 2583404429u));
  sfu_rtcp(s, &b, fb, fl); /* at once again: held back */
  CHECK(sfu_recv(s, &a, true, wire, &wn, out) == SFU_NONE);

  /* A new source on the camera's section: a retransmission still goes in the old numbers and leaves the
   * rebase for the new source, whose keyframe continues the viewer's numbers. */
  sfu_offer(&a, pub2);
  CHECK(tv->ssrc == 2583404430u && sv->src == tv && sv->rebase && sv->need_key);
  fl = rtcp_write_nack(fb, sizeof fb, 0x0b0b0b0b, sv->ssrc, (uint16_t)(vseq0 + 2), 0);
  sfu_rtcp(s, &b, fb, fl);
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SRTP_REPLAYED && wn == key2_n && !memcmp(wire, key2, wn) && sv->rebase);
  uint32_t unknown = am->n.unknown;
  sfu_rtp(s, &a, 96, false, 7003, 906000, 2583404429u, key, sizeof key); /* the old source: no longer known */
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) == SFU_NONE && am->n.unknown == unknown + 1);
  static const struct {
    uint16_t seq;
    uint32_t ts;
    bool key;
    uint16_t out_seq;
    uint32_t out_ts;
  } video[] = {{30000, 123456, true, 3, 6000}, {30001, 123456, false, 4, 6000}, {30002, 126456, false, 5, 9000}};
  for (size_t k = 0; k < COUNT(video); k++) {
    sfu_rtp(s, &a, 96, false, video[k].seq, video[k].ts, 2583404430u, video[k].key ? key : inter,
            video[k].key ? sizeof key : sizeof inter);
    n = sfu_recv(s, &b, false, wire, &wn, out);
    CHECK(n > 0 && rtp_parse(out, (size_t)n, &h) == 0 && h.pt == 98 && h.ssrc == sv->ssrc);
    CHECK(h.seq == (uint16_t)(vseq0 + video[k].out_seq) && h.ts == vts0 + video[k].out_ts);
  }
  CHECK(!sv->rebase && !sv->need_key);

  /* Nothing but a packet that passes SRTP gets through: forged, replayed, from an address nobody checked. */
  uint32_t forwarded = am->n.forwarded, auth = a.p->media.auth, replayed = a.p->media.replayed;
  uint8_t pkt[64];
  size_t hl = rtp_write_header(pkt, false, false, 111, 1005, 54800, 3157627856u, 0, "");
  memset(pkt + hl, 0, 30);
  udp_input(&s->udp, pkt, hl + 30, &a.addr);
  int pn = srtp_protect(&a.tx, pkt, hl + 20, sizeof pkt);
  memcpy(key1, pkt, (size_t)pn);
  udp_input(&s->udp, pkt, (size_t)pn, &a.addr);
  udp_input(&s->udp, key1, (size_t)pn, &a.addr);
  memcpy(pkt, key1, (size_t)pn);
  pkt[3] ^= 1;
  struct sockaddr_storage stranger;
  addr_parse("127.0.0.1", 9, &stranger);
  udp_input(&s->udp, pkt, (size_t)pn, &stranger);
  CHECK(a.p->media.auth == auth + 1 && a.p->media.replayed == replayed + 1 && am->n.forwarded == forwarded + 1);
  CHECK(sfu_recv(s, &b, false, wire, &wn, out) > 0 && sfu_recv(s, &b, false, wire, &wn, out) == SFU_NONE);
done:
  sfu_leave(&a);
  sfu_leave(&b);
  free(pub);
  free(view);
  free(pub2);
  camus_free(s);
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
  test_srtp_ssrcs();
  test_rtp();
  test_vp8();
  test_rtcp();
  test_sdp();
  test_sdp_media();
  test_demux();
  test_udp_batch();
  test_host_key();
  test_turn();
  test_nack();
  test_sfu();
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
