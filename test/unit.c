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
    if (e->d_name[0] == 'y') {
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

static void test_rooms_and_tokens(void) {
  struct camus *s = test_server();
  CHECK(s != NULL);
  if (!s) return;
  int status;
  const char *err;
  struct room *a = room_create(s, " Team A ", 8, "pw", 2, true, 0, &status, &err);
  CHECK(a && !strcmp(a->id, "team-a") && !strcmp(a->name, "Team A") && a->has_password);
  CHECK(!room_create(s, "team a", 6, NULL, 0, true, 0, &status, &err) && status == 409);
  CHECK(!room_create(s, "***", 3, NULL, 0, true, 0, &status, &err) && status == 400);
  CHECK(!room_create(s, "   ", 3, NULL, 0, true, 0, &status, &err) && status == 400);
  CHECK(!room_create(s, "a\x01", 2, NULL, 0, true, 0, &status, &err) && status == 400);
  CHECK(!room_create(s, "a\xff", 2, NULL, 0, true, 0, &status, &err) && status == 400);
  CHECK(!room_create(s, "ok", 2, NULL, 0, true, CAMUS_GUEST_LIMIT_MAX + 1, &status, &err) && status == 400);
  if (!a) {
    camus_free(s);
    return;
  }
  CHECK(room_password_ok(a, "pw", 2));
  CHECK(!room_password_ok(a, "pW", 2));
  CHECK(!room_password_ok(a, "", 0));
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
  struct room *b = room_create(s, "Team B", 6, "pw", 2, false, 3, &status, &err);
  CHECK(b && !token_ok(s, b, (struct str){tok, strlen(tok)})); /* bound to its room */
  /* An expired proof: re-sign a past expiry with the real key. */
  uint8_t mac[32];
  token_mac(s, a, 1000, mac);
  int n = snprintf(bad, sizeof bad, "1000.");
  hex_encode(bad + n, mac, 32);
  CHECK(!token_ok(s, a, (struct str){bad, strlen(bad)}));
  camus_free(s);
}

/* ------------------------------------------------------------- LOOP AND MAPS -------------------------------------------------------------- */

static int fired[64], n_fired;
static struct timer timers[64];
static void on_timer(struct timer *t) { fired[n_fired++] = (int)(t - timers); }

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
  static struct peer peers[300];
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
}

int main(int argc, char **argv) {
  (void)argc, (void)argv;
  log_level = CAMUS_LOG_ERROR;
  test_json_suite();
  test_json();
  test_http();
  test_form();
  test_slug();
  test_rooms_and_tokens();
  test_timers();
  test_amap();
  test_dcep();
  printf("unit: %d passed, %d failed\n", passed, failed);
  return failed ? 1 : 0;
}
