// The real binary over sockets: rooms API, passwords and tokens, static files, HTTP limits,
// slow clients, connection caps, HTTPS, the command line and signals.
import http from 'node:http';
import net from 'node:net';
import tls from 'node:tls';
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, test, before, after, assert, run, sleep, rawHttp, camusDefine, BIN } from './lib.mjs';

const raw = rawHttp;
const status = (reply) => Number((reply.data.match(/^HTTP\/1\.1 (\d{3})/) || [])[1]);
const count = (s, re) => (s.match(re) || []).length;

// One request to server s from a given local address (127.0.0.0/8 is all loopback): {status, json}.
const fromAddr = (s, addr, method, path, body) => new Promise((resolve, reject) => {
  const data = body === undefined ? undefined : JSON.stringify(body);
  const req = http.request({ host: '127.0.0.1', port: s.port, path, method, localAddress: addr, agent: false,
    headers: { Connection: 'close', ...(data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {}) } }, (res) => {
    let text = '';
    res.on('data', (d) => { text += d; });
    res.on('end', () => resolve({ status: res.statusCode, json: text ? JSON.parse(text) : undefined }));
  });
  req.on('error', reject);
  req.end(data);
});

let srv;
before('start', async () => { srv = await startServer(['--request-timeout', '1', '--max-connections', '20']); });

test('rooms: create, list, get, conflicts and invalid input', async () => {
  let r = await srv.post('/api/rooms', { name: 'My Room!' });
  assert.equal(r.status, 201);
  assert.match(r.json.owner_key, /^[0-9a-f]{32}$/, 'an owner key'); // what it allows: test/moderation.mjs
  assert.deepEqual({ ...r.json, owner_key: undefined }, { id: 'my-room', url: '/rtc/my-room', owner_key: undefined });
  r = await srv.post('/api/rooms', { name: 'my room' });
  assert.equal(r.status, 409);
  r = await srv.hashed('/api/rooms', 'name=Form+Room&public=on&guest_limit=3&password=s3cret', { 'Content-Type': 'application/x-www-form-urlencoded', Origin: srv.url });
  assert.equal(r.status, 201, r.text);
  assert.equal(r.json.id, 'form-room');
  r = await srv.post('/api/rooms', { name: 'Hidden', public: false });
  assert.equal(r.status, 201);
  r = await srv.post('/api/rooms', { name: '  Caf\u00e9 <b>2</b> ' });
  assert.equal(r.json.id, 'caf-b-2-b');
  for (const [body, what] of [[{ name: '***' }, 'no letter'], [{ name: '' }, 'empty'], [{ name: 'x'.repeat(65) }, 'long'],
    [{}, 'missing'], [{ name: 5 }, 'number'], [{ name: 'ok1', guest_limit: 0 }, 'limit 0'],
    [{ name: 'ok2', guest_limit: 1001 }, 'limit 1001'], [{ name: 'ok3', guest_limit: 2.5 }, 'limit 2.5'],
    [{ name: 'ok4', public: 'yes' }, 'public string'], [{ name: 'ok5', password: 'p'.repeat(257) }, 'long password'],
    [{ name: 'ok6', media: 'mcu' }, 'media mcu'], [{ name: 'ok7', media: 1 }, 'media number'], [{ name: 'ok8', media: 'SFU' }, 'media SFU'],
    ['[1,2]', 'array'], ['{"name":', 'truncated'], ['{"name":"a\\ud800"}', 'lone surrogate'], ['\xff', 'bad utf-8']]) {
    r = await srv.post('/api/rooms', body);
    assert.equal(r.status, 400, `${what}: ${r.text}`);
    assert.ok(r.json && typeof r.json.error === 'string', what);
  }
  r = await srv.get('/api/rooms');
  assert.equal(r.status, 200);
  const ids = r.json.map((x) => x.id);
  assert.ok(ids.includes('my-room') && ids.includes('form-room') && !ids.includes('hidden'), ids.join());
  const form = r.json.find((x) => x.id === 'form-room');
  assert.deepEqual(Object.keys(form).sort(), ['active_ago', 'clients', 'guest_limit', 'id', 'media', 'name', 'password']);
  assert.equal(form.media, 'sfu', 'media goes through the server unless the room says otherwise');
  assert.equal(form.guest_limit, 3);
  assert.equal(form.password, true);
  assert.equal(form.clients, 0);
  assert.equal(r.json.find((x) => x.id === 'my-room').guest_limit, null);
  assert.equal(ids[0], 'caf-b-2-b', 'most recently active first');
  assert.ok(!r.text.includes('s3cret'));
  r = await srv.get('/api/rooms/hidden');
  assert.equal(r.status, 200);
  assert.equal(r.json.public, false);
  assert.equal(r.json.media, 'sfu');
  r = await srv.post('/api/rooms', { name: 'Direct', media: 'p2p' });
  assert.equal(r.status, 201, r.text);
  assert.equal((await srv.get('/api/rooms/direct')).json.media, 'p2p');
  r = await srv.post('/api/rooms', 'name=Direct+Form&media=p2p', { 'Content-Type': 'application/x-www-form-urlencoded', Origin: srv.url });
  assert.equal(r.status, 201, r.text);
  assert.equal((await srv.get('/api/rooms/direct-form')).json.media, 'p2p');
  r = await srv.post('/api/rooms', { name: 'Bad media', media: 'mesh' });
  assert.equal(r.json.error, 'media must be "sfu" or "p2p"');
  assert.equal((await srv.get('/api/rooms/nope')).status, 404);
});

test('passwords: join, tokens, cookies, offers and the attempt limit', async () => {
  let r = await srv.hashed('/rtc/form-room/join', { password: 'wrong' });
  assert.equal(r.status, 403);
  assert.equal(r.json.error, 'wrong password');
  r = await srv.hashed('/rtc/form-room/join', { password: 's3cret' });
  assert.equal(r.status, 200);
  const token = r.json.token;
  assert.match(token, /^\d+\.[0-9a-f]{64}$/);
  const cookie = r.headers.get('set-cookie');
  assert.match(cookie, /^camus_form-room=\d+\.[0-9a-f]{64}; Path=\/rtc\/form-room; Max-Age=\d+; HttpOnly; SameSite=Strict/);
  const bad = { sdp: 'v=0', type: 'offer' };
  r = await srv.post('/rtc/form-room/offer', bad);
  assert.equal(r.status, 403);
  assert.equal(r.json.error, 'password required');
  r = await srv.post('/rtc/form-room/offer', { ...bad, token: token.slice(0, -1) + (token.endsWith('0') ? '1' : '0') });
  assert.equal(r.status, 403, 'tampered token');
  r = await srv.post('/rtc/form-room/offer', { ...bad, token });
  assert.equal(r.status, 400, 'a valid token passes the check and reaches the SDP parser');
  r = await srv.post('/rtc/form-room/offer', bad, { Cookie: cookie.split(';')[0] });
  assert.equal(r.status, 400, 'the cookie works too');
  await srv.hashed('/api/rooms', { name: 'Other', password: 'x' });
  r = await srv.post('/rtc/other/offer', { ...bad, token });
  assert.equal(r.status, 403, 'a token for another room');
  assert.equal((await srv.post('/rtc/nope/offer', bad)).status, 404);
  assert.equal((await srv.post('/rtc/nope/join', {})).status, 404);
  r = await srv.post('/rtc/my-room/join', {});
  assert.equal(r.status, 200, 'rooms without a password admit everyone');
  // The attempt limit, from an address of its own: its window (a minute) opens with its first wrong password,
  // not with whatever this address did before (under emulation the tests above may take most of a minute).
  // A hash the server has no time for yet is answered 429 "busy" and tried again, as srv.hashed does.
  const limit = camusDefine('CAMUS_JOIN_FAILS');
  const attempt = async (password) => {
    for (const end = Date.now() + 60000; ;) {
      const a = await fromAddr(srv, '127.0.9.1', 'POST', '/rtc/other/join', { password });
      if (!(a.status === 429 && /busy/.test(a.json.error)) || Date.now() > end) return a;
      await sleep(250);
    }
  };
  const t0 = Date.now(), answers = [];
  for (let i = 0; i < limit + 2; i++) answers.push(`${(r = await attempt('no')).status} ${r.json.error}`);
  answers.push(`${(r = await attempt('x')).status} ${r.json.error}`);
  assert.deepEqual(answers, [...Array(limit).fill('403 wrong password'), ...Array(3).fill('429 too many attempts')],
    `the attempts, in ${Date.now() - t0} ms (the window is a minute)`);
  r = await srv.hashed('/rtc/other/join', { password: 'x' });
  assert.equal(r.status, 200, 'another address is not held to that one\'s attempts');
});

test('guest limit: offers that never make an ICE check take no seat', async () => {
  await srv.post('/api/rooms', { name: 'Duo', guest_limit: 1 });
  const offer = readFileSync(new URL('./fixtures/chromium-datachannel.sdp', import.meta.url), 'utf8');
  for (let k = 0; k < 3; k++) {
    const r = await srv.post('/rtc/duo/offer', { sdp: offer, type: 'offer' });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.type, 'answer');
  }
  assert.equal((await srv.get('/api/rooms/duo')).json.clients, 0); // the seat goes to the first to check (hostile.mjs)
});

test('pages and static files: types, ETags, 304, HEAD, 404', async () => {
  let r = await srv.get('/');
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/html; charset=utf-8');
  for (const [h, v] of [['x-content-type-options', 'nosniff'], ['referrer-policy', 'no-referrer'], ['x-frame-options', 'DENY']])
    assert.equal(r.headers.get(h), v);
  assert.match(r.headers.get('content-security-policy'), /default-src 'self'.*frame-ancestors 'none'/);
  const etag = r.headers.get('etag');
  assert.match(etag, /^"[0-9a-f]+-[0-9a-f]+"$/);
  assert.ok(r.headers.get('cache-control'));
  r = await srv.get('/', { 'If-None-Match': etag });
  assert.equal(r.status, 304);
  assert.equal(r.text, '');
  r = await srv.request('HEAD', '/');
  assert.equal(r.status, 200);
  assert.equal(r.text, '');
  assert.ok(Number(r.headers.get('content-length')) > 0);
  assert.equal((await srv.get('/rtc/my-room')).status, 200);
  r = await srv.get('/rtc/no-such-room');
  assert.equal(r.status, 404);
  assert.match(r.headers.get('content-type'), /text\/html/);
  assert.equal((await srv.get('/nope.js')).status, 404);
  assert.equal((await srv.get('/../camus.c')).status, 404);
  assert.equal((await srv.get('/%2e%2e/camus.c')).status, 404);
  assert.equal((await srv.get('/api/nope')).status, 404);
  r = await srv.request('DELETE', '/api/rooms');
  assert.equal(r.status, 405);
  assert.match(r.headers.get('allow'), /GET/);
  assert.equal(status(await raw(srv.port, 'BREW / HTTP/1.1\r\n\r\n')), 501);
});

test('HTTP limits answer with a clear 4xx and close', async () => {
  const cases = [
    ['GET /' + 'a'.repeat(9000) + ' HTTP/1.1\r\n\r\n', 414],
    ['GET / HTTP/1.1\r\n' + 'X-A: ' + 'b'.repeat(17000) + '\r\n\r\n', 431],
    ['GET / HTTP/1.1\r\n' + Array.from({ length: 65 }, (_, i) => `X-${i}: y\r\n`).join('') + '\r\n', 431],
    ['POST /api/rooms HTTP/1.1\r\nContent-Length: 70000\r\n\r\n', 413],
    ['POST /api/rooms HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n', 501],
    ['POST /api/rooms HTTP/1.1\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\n{}', 400],
    ['POST /api/rooms HTTP/1.1\r\nContent-Length: abc\r\n\r\n', 400],
    ['POST /api/rooms HTTP/1.1\r\n\r\n', 411],
    ['GET / HTTP/1.1\r\nBad Header\r\n\r\n', 400],
    ['GET / HTTP/3.0\r\n\r\n', 400],
    ['\x02\x03\x04\r\n\r\n', 400],
  ];
  for (const [req, want] of cases) {
    const r = await raw(srv.port, req);
    assert.equal(status(r), want, JSON.stringify(req.slice(0, 60)));
    assert.ok(r.closed, `closed after ${want}`);
    assert.match(r.data, /Connection: close/);
  }
  // A first byte of 0 or 1 is ICE over TCP (an RFC 4571 length): frames that are not ours get no
  // answer, and a length longer than any datagram of ours closes the connection.
  const ice = await raw(srv.port, '\x00\x01\x02\r\n\r\n');
  assert.ok(ice.closed && ice.data === '', `ICE-TCP garbage: closed without a word (${JSON.stringify(ice.data)})`);
});

test('keep-alive, pipelining and HTTP/1.0', async () => {
  let r = await raw(srv.port, 'GET /api/rooms/my-room HTTP/1.1\r\n\r\nGET /api/rooms/hidden HTTP/1.1\r\n\r\nGET /api/rooms/nope HTTP/1.1\r\nConnection: close\r\n\r\n');
  assert.equal(count(r.data, /HTTP\/1\.1 \d{3}/g), 3);
  assert.match(r.data, /"id":"my-room"[\s\S]*"id":"hidden"[\s\S]*404 Not Found/);
  assert.ok(r.closed);
  r = await raw(srv.port, ['GET /api/rooms/my-room HTTP/1.1\r\nHo', 'st: x\r\n\r\n', 'GET /api/rooms/hidden HTTP/1.1\r\n\r\n'], { ms: 500, gap: 50 });
  assert.equal(count(r.data, /HTTP\/1\.1 200/g), 2, 'requests split across packets');
  r = await raw(srv.port, 'GET /api/rooms HTTP/1.0\r\n\r\n');
  assert.equal(status(r), 200);
  assert.ok(r.closed, 'HTTP/1.0 closes');
});

test('a slow client gets 408 and does not hold up others', async () => {
  const slow = raw(srv.port, ['GET / HTTP/1.1\r\n', 'X: y\r\n'], { ms: 4000, gap: 300 });
  const t0 = Date.now();
  const r = await srv.get('/api/rooms');
  assert.equal(r.status, 200);
  assert.ok(Date.now() - t0 < 500, 'served at once');
  const s = await slow;
  assert.equal(status(s), 408);
  assert.ok(s.closed);
  const silent = await raw(srv.port, [], { ms: 4000 });
  assert.ok(silent.closed && silent.data === '', 'a silent connection is closed quietly');
});

test('the connection cap refuses extra clients with 503; fds come back', async () => {
  const fds0 = srv.fds();
  const socks = [];
  for (let i = 0; i < 20; i++) {
    const s = net.connect(srv.port, '127.0.0.1');
    s.on('error', () => {});
    await new Promise((ok) => s.on('connect', ok));
    socks.push(s);
  }
  await sleep(100);
  const extra = await raw(srv.port, 'GET /api/rooms HTTP/1.1\r\n\r\n', { ms: 2000 });
  assert.equal(status(extra), 503);
  for (const s of socks) s.destroy();
  await srv.until(async () => (await srv.get('/api/rooms')).status === 200, 3000, 'served again');
  await srv.until(() => srv.fds() <= fds0, 3000, `fds back to ${fds0}`);
  // A burst of 200 short connections.
  for (let k = 0; k < 10; k++) await Promise.all(Array.from({ length: 20 }, () => raw(srv.port, 'GET /api/rooms HTTP/1.0\r\n\r\n')));
  await srv.until(() => srv.fds() <= fds0, 3000, 'fds back after a burst');
});

after('stop', async () => { await srv.stop(); });

test('empty rooms expire', async () => {
  const s = await startServer(['--room-expiry', '1']);
  try {
    await s.post('/api/rooms', { name: 'brief' });
    assert.equal((await s.get('/api/rooms/brief')).status, 200);
    await s.until(async () => (await s.get('/api/rooms/brief')).status === 404, 4000, 'room expired');
  } finally {
    await s.stop();
  }
});

function fingerprintOf(port) {
  return new Promise((resolve, reject) => {
    const sock = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false }, () => {
      const fp = sock.getPeerCertificate().fingerprint256;
      sock.destroy();
      resolve(fp);
    });
    sock.on('error', reject);
  });
}

test('HTTPS: self-signed certificate made once, kept, and printed', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-tls-'));
  const a = await startServer(['--tls', '--state-dir', dir]);
  const fpLine = () => a.log.map((l) => l.match(/fingerprint SHA-256 ([0-9A-F:]{95})/)).find(Boolean);
  await a.until(fpLine, 2000, 'the certificate fingerprint line');
  const printed = fpLine()[1];
  assert.equal(a.scheme, 'https');
  assert.equal(await fingerprintOf(a.port), printed);
  const r = await raw(a.port, 'GET /api/rooms HTTP/1.1\r\nConnection: close\r\n\r\n', { secure: true });
  assert.equal(status(r), 200);
  const c = await raw(a.port, 'POST /api/rooms HTTP/1.1\r\nContent-Type: application/json\r\nContent-Length: 15\r\nConnection: close\r\n\r\n{"name":"tls1"}', { secure: true });
  assert.equal(status(c), 201);
  await a.stop();
  assert.ok(existsSync(join(dir, 'cert.pem')) && existsSync(join(dir, 'key.pem')));
  const b = await startServer(['--tls', '--state-dir', dir]);
  assert.equal(await fingerprintOf(b.port), printed, 'the same certificate on the next start');
  await b.stop();
  rmSync(dir, { recursive: true, force: true });
});

test('HTTPS with a given certificate and key', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-tls-'));
  const key = join(dir, 'k.pem'), cert = join(dir, 'c.pem');
  const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
    '-subj', '/CN=localhost', '-days', '1', '-keyout', key, '-out', cert]);
  assert.equal(gen.status, 0, 'openssl is needed to make a test certificate');
  const want = spawnSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' })
    .stdout.trim().split('=')[1];
  const s = await startServer(['--cert', cert, '--key', key]);
  assert.equal(await fingerprintOf(s.port), want);
  await s.stop();
  rmSync(dir, { recursive: true, force: true });
});

// A certificate renewed on disk (as an ACME client does) is taken on SIGHUP by new connections; a
// connection made before goes on with the old one; a file that does not load leaves the old in use.
test('SIGHUP reloads the certificate and key without dropping anyone', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-tls-'));
  const key = join(dir, 'k.pem'), cert = join(dir, 'c.pem');
  const make = (cn) => {
    const gen = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes',
      '-subj', `/CN=${cn}`, '-days', '1', '-keyout', key, '-out', cert]);
    assert.equal(gen.status, 0, 'openssl is needed to make a test certificate');
    return spawnSync('openssl', ['x509', '-in', cert, '-noout', '-fingerprint', '-sha256'], { encoding: 'utf8' }).stdout.trim().split('=')[1];
  };
  const first = make('first');
  const s = await startServer(['--cert', cert, '--key', key]);
  try {
    assert.equal(await fingerprintOf(s.port), first);
    // A keep-alive connection made with the first certificate.
    const old = tls.connect({ port: s.port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((ok, ko) => { old.once('secureConnect', ok); old.once('error', ko); });
    const ask = (sock) => new Promise((ok, ko) => {
      let got = '';
      const on = (d) => { got += d; if (/\r\n\r\n[\s\S]*\}$/.test(got)) { sock.off('data', on); ok(got); } };
      sock.on('data', on);
      sock.once('error', ko);
      sock.write('GET /api/config HTTP/1.1\r\nHost: x\r\n\r\n');
    });
    assert.match(await ask(old), /^HTTP\/1\.1 200/);
    const second = make('second');
    assert.notEqual(second, first);
    s.proc.kill('SIGHUP');
    await s.until(() => s.log.some((l) => l.includes(`reload: new connections get the certificate ${second}`)), 5000, 'the reload');
    assert.equal(await fingerprintOf(s.port), second, 'a new connection gets the new certificate');
    assert.match(await ask(old), /^HTTP\/1\.1 200/, 'the old connection goes on');
    assert.equal(old.getPeerX509Certificate().fingerprint256, first);
    old.destroy();
    // A broken file: the certificate in use stays.
    writeFileSync(cert, 'not a certificate');
    s.proc.kill('SIGHUP');
    await s.until(() => s.log.some((l) => /reload: the certificate in use stays/.test(l)), 5000, 'the refused reload');
    assert.equal(await fingerprintOf(s.port), second);
    const fresh = tls.connect({ port: s.port, host: '127.0.0.1', rejectUnauthorized: false });
    await new Promise((ok, ko) => { fresh.once('secureConnect', ok); fresh.once('error', ko); });
    assert.match(await ask(fresh), /^HTTP\/1\.1 200/, 'and it serves');
    fresh.destroy();
  } finally {
    await s.stop();
    rmSync(dir, { recursive: true, force: true });
  }
});

test('command line: --help, --version, bad options, SIGTERM', async () => {
  let r = spawnSync(BIN, ['--help'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /--port N/);
  r = spawnSync(BIN, ['--version'], { encoding: 'utf8' });
  assert.equal(r.status, 0);
  assert.match(r.stdout, /^camus \d+\.\d+\.\d+/);
  for (const args of [['--bogus'], ['--port'], ['--port', '70000'], ['--host', 'not-an-ip', '--port', '0'], ['--log-level', 'loud'], ['--cert', 'x']]) {
    r = spawnSync(BIN, args, { encoding: 'utf8', timeout: 5000 });
    assert.ok(r.status === 2 || r.status === 1, `${args.join(' ')} -> ${r.status}`);
    assert.ok(r.stderr.length > 0);
  }
  const s = await startServer();
  await s.stop(); // asserts exit code 0 after SIGTERM
  assert.ok(s.log.some((l) => /INFO .*shutting down/.test(l)));
});

test("the operator's view: /healthz, /metrics from loopback or with its token, JSON log lines", async () => {
  const s = await startServer(['--metrics-token', 'op3rator']);
  const parse = (text) => {
    const v = {};
    for (const line of text.split('\n')) {
      if (!line || line.startsWith('# HELP ') || line.startsWith('# TYPE ')) continue;
      const m = line.match(/^([a-z_]+(?:\{[a-z_]+="[^"]*"\})?) (\d+)$/);
      assert.ok(m, `a line of the exposition format: ${JSON.stringify(line)}`);
      v[m[1]] = Number(m[2]);
    }
    return v;
  };
  try {
    let r = await s.get('/healthz');
    assert.equal(r.status, 200);
    assert.equal(r.json.status, 'ok');
    assert.ok(Number.isInteger(r.json.uptime_seconds));
    r = await s.get('/metrics');
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type'), /^text\/plain; version=0\.0\.4/);
    const before = parse(r.text);
    for (const k of ['camus_rooms', 'camus_members', 'camus_sessions{state="open"}', 'camus_udp_packets_total{direction="in"}',
      'camus_http_responses_total{code="2xx"}', 'camus_turn_allocations', 'camus_resident_memory_bytes', 'camus_open_fds', 'camus_uptime_seconds'])
      assert.ok(k in before, `${k} in /metrics`);
    assert.ok(before.camus_resident_memory_bytes > 100000 && before.camus_open_fds >= 3, JSON.stringify(before));
    assert.equal((await s.post('/api/rooms', { name: 'Metered' })).status, 201);
    const text = (await s.get('/metrics')).text;
    const after = parse(text);
    assert.equal(after.camus_rooms, before.camus_rooms + 1);
    // Prometheus's own linter (Debian's prometheus package) takes it, warnings and all.
    const lint = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8', timeout: 20000 });
    assert.equal(lint.status, 0, `promtool check metrics: ${lint.error || ''}${lint.stdout}${lint.stderr}`);
    assert.equal((lint.stdout + lint.stderr).trim(), '', `promtool has remarks: ${lint.stdout}${lint.stderr}`);
    assert.ok(after['camus_http_responses_total{code="2xx"}'] >= before['camus_http_responses_total{code="2xx"}'] + 2);
    assert.equal((await s.post('/metrics', {})).status, 405);
  } finally {
    await s.stop();
  }
  // Where loopback is not among --metrics-from, only the token opens them.
  // --metrics-addr: a listener of the operator's own, serving /metrics and /healthz to whoever reaches it, nothing else.
  const t = await startServer(['--metrics-from', '10.0.0.0/8', '--metrics-token', 'op3rator', '--metrics-addr', '127.0.0.1:0']);
  try {
    const mport = Number(t.log.map((l) => (l.match(/metrics on http:\/\/127\.0\.0\.1:(\d+)\/metrics/) || [])[1]).find(Boolean));
    assert.ok(mport > 0 && mport !== t.port, 'the metrics listener logs its port');
    const own = async (path, init) => { const res = await fetch(`http://127.0.0.1:${mport}${path}`, init); return { status: res.status, text: await res.text() }; };
    let m = await own('/metrics');
    assert.equal(m.status, 200);
    assert.match(m.text, /^camus_rooms \d+$/m);
    assert.equal((await own('/healthz')).status, 200);
    assert.equal((await own('/api/rooms')).status, 404, 'the API is not on the metrics listener');
    assert.equal((await own('/')).status, 404, 'nor the pages');
    assert.equal((await own('/metrics', { method: 'POST', body: '{}', headers: { 'Content-Type': 'application/json' } })).status, 405);
    let r = await t.get('/metrics');
    assert.equal(r.status, 403);
    assert.match(r.json.error, /operator/);
    assert.equal((await t.get('/metrics', { Authorization: 'Bearer op3rator-' })).status, 403);
    assert.equal((await t.get('/metrics', { Authorization: 'Basic op3rator' })).status, 403);
    r = await t.get('/metrics', { Authorization: 'Bearer op3rator' });
    assert.equal(r.status, 200);
    assert.equal((await t.get('/healthz')).status, 200, 'health is for anyone');
  } finally {
    await t.stop();
  }
  const bad = spawnSync(BIN, ['--port', '0', '--udp-port', '0', '--state-dir', '', '--metrics-addr', 'localhost:9090'], { encoding: 'utf8', timeout: 5000 });
  assert.notEqual(bad.status, 0, 'a --metrics-addr that is not numeric');
  assert.match(bad.stderr, /--metrics-addr needs HOST:PORT/);
  // --log-format json: one object a line, with time, level and msg.
  const dir = mkdtempSync(join(tmpdir(), 'camus-json-'));
  const p = spawn(BIN, ['--port', '0', '--udp-port', '0', '--state-dir', dir, '--log-format', 'json'], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  p.stderr.on('data', (d) => { err += d; });
  for (let i = 0; i < 100 && !/listening on/.test(err); i++) await sleep(20);
  p.kill('SIGTERM');
  await new Promise((ok) => p.on('close', ok));
  const lines = err.trim().split('\n').map((l) => JSON.parse(l));
  assert.ok(lines.length >= 2 && lines.every((o) => /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/.test(o.time) && ['error', 'warn', 'info', 'debug'].includes(o.level) && typeof o.msg === 'string'), err);
  assert.ok(lines.some((o) => /listening on/.test(o.msg)) && lines.some((o) => /shutting down/.test(o.msg)));
  rmSync(dir, { recursive: true, force: true });
  assert.notEqual(spawnSync(BIN, ['--log-format', 'xml'], { encoding: 'utf8', timeout: 5000 }).status, 0);
});

test('per-address limits: rooms created, connections open, sessions connecting', async () => {
  const s = await startServer();
  const from = (addr, method, path, body) => fromAddr(s, addr, method, path, body);
  try {
    // Rooms: ten a minute from one address; others are not affected.
    for (let i = 0; i < 10; i++) assert.equal((await from('127.0.0.1', 'POST', '/api/rooms', { name: `r${i}` })).status, 201);
    let r = await from('127.0.0.1', 'POST', '/api/rooms', { name: 'r10' });
    assert.equal(r.status, 429);
    assert.match(r.json.error, /too many rooms created from your address/);
    assert.equal((await from('127.0.0.2', 'POST', '/api/rooms', { name: 'r10' })).status, 201);
    // Sessions connecting: sixteen at once from one address.
    const offer = readFileSync(new URL('./fixtures/chromium-datachannel.sdp', import.meta.url), 'utf8');
    for (let i = 0; i < 16; i++)
      assert.equal((await from('127.0.0.3', 'POST', '/rtc/r0/offer', { sdp: offer, type: 'offer' })).status, 200);
    r = await from('127.0.0.3', 'POST', '/rtc/r0/offer', { sdp: offer, type: 'offer' });
    assert.equal(r.status, 429);
    assert.match(r.json.error, /too many sessions connecting from your address/);
    assert.equal((await from('127.0.0.4', 'POST', '/rtc/r0/offer', { sdp: offer, type: 'offer' })).status, 200);
    // Connections: 64 open from one address; the 65th is told 429 and closed; another address gets in.
    await sleep(200);
    const fds = s.fds();
    const socks = [];
    for (let i = 0; i < 64; i++) {
      const c = net.connect({ port: s.port, host: '127.0.0.1', localAddress: '127.0.0.5' });
      c.on('error', () => {});
      socks.push(c);
      await new Promise((ok) => c.on('connect', ok));
    }
    await s.until(() => s.fds() >= fds + 64, 2000, 'the server to accept 64 connections');
    const extra = await new Promise((resolve) => {
      const c = net.connect({ port: s.port, host: '127.0.0.1', localAddress: '127.0.0.5' });
      let data = '';
      c.on('data', (d) => { data += d; });
      c.on('close', () => resolve(data));
      c.on('error', () => {});
    });
    assert.match(extra, /^HTTP\/1\.1 429 Too Many Requests/);
    assert.equal((await from('127.0.0.6', 'GET', '/api/rooms')).status, 200);
    for (const c of socks) c.destroy();
    await s.until(() => s.fds() <= fds, 2000, 'the connections to close');
    assert.equal((await from('127.0.0.5', 'GET', '/api/rooms')).status, 200);
  } finally {
    await s.stop();
  }
});

await run();
