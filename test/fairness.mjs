// Regression tests for findings about fairness and cross-site use: shared tables (DTLS handshake
// slots, rooms, HTTP connections, seats, the failed-password table) that one crowd of addresses
// could fill or flush for everyone, cross-site and DNS-rebinding requests, and a few smaller ones
// (room lookups, expired room ids, the answer's session id, HTTPS suites, --web-dir symlinks,
// --state-dir).  Raw HTTP over net/tls sockets and STUN over dgram, each from chosen loopback
// source addresses (on Linux all of 127.0.0.0/8 can be used as a source).
import net from 'node:net';
import tls from 'node:tls';
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync, symlinkSync, chmodSync, renameSync, rmSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, test, assert, run, sleep, BIN, launchChromium, pageJoin, camusDefine, parseResponses as parseAll } from './lib.mjs';
import { MAGIC, CLIENT_UFRAG, offer, check as stunCheck, stunParse } from './stun.mjs';

const J = JSON.stringify;

async function pool(items, n, fn) {
  const out = new Array(items.length);
  let next = 0;
  await Promise.all(Array.from({ length: Math.min(n, items.length) }, async () => {
    while (next < items.length) { const k = next++; out[k] = await fn(items[k], k); }
  }));
  return out;
}
async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await sleep(20);
  }
}
const range = (n, f) => Array.from({ length: n }, (_, i) => f(i));

// ------------------------------------------------------------------ raw HTTP

const parseResponses = (data) => { const r = parseAll(data); return { responses: r, rest: r.rest }; };

// One request as bytes.  body: an object (sent as JSON) or a string; ctype: its Content-Type (null:
// none); host: the Host header (null: none); headers: more header lines, as [name, value] pairs.
function reqBytes(srv, method, path, { body, ctype = 'application/json', host, headers = [], close = true } = {}) {
  const b = body === undefined ? null : Buffer.from(typeof body === 'string' ? body : J(body), 'utf8');
  let h = `${method} ${path} HTTP/1.1\r\n`;
  const hostValue = host === undefined ? `127.0.0.1:${srv.port}` : host;
  if (hostValue !== null) h += `Host: ${hostValue}\r\n`;
  if (b) h += `Content-Length: ${b.length}\r\n` + (ctype ? `Content-Type: ${ctype}\r\n` : '');
  for (const [k, v] of headers) h += `${k}: ${v}\r\n`;
  if (close) h += 'Connection: close\r\n';
  return Buffer.concat([Buffer.from(h + '\r\n', 'latin1'), b || Buffer.alloc(0)]);
}

// A keep-alive HTTP connection from a chosen source address; requests one at a time.
class Conn {
  constructor(srv, from) {
    this.srv = srv;
    this.data = '';
    this.waiters = [];
    this.closed = false;
    this.sock = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: from });
    this.ready = new Promise((ok, ko) => { this.sock.once('connect', ok); this.sock.once('error', ko); });
    this.sock.on('error', () => {});
    this.sock.on('data', (d) => { this.data += d.toString('latin1'); this.pump(); });
    this.sock.on('close', () => { this.closed = true; this.pump(); });
  }
  pump() {
    const { responses, rest } = parseResponses(this.data);
    this.data = rest;
    for (const r of responses) { const w = this.waiters.shift(); if (w) w.ok(r); }
    if (this.closed) for (const w of this.waiters.splice(0)) w.ok({ status: 0, closed: true, raw: this.data });
  }
  async request(method, path, opts = {}, ms = 5000) {
    await this.ready;
    if (this.closed) return { status: 0, closed: true };
    return new Promise((ok, ko) => {
      const timer = setTimeout(() => ko(new Error(`no answer to ${method} ${path} in ${ms} ms`)), ms);
      this.waiters.push({ ok: (r) => { clearTimeout(timer); ok(r); } });
      this.sock.write(reqBytes(this.srv, method, path, { close: false, ...opts }));
    });
  }
  close() { this.sock.destroy(); }
}

// One request on its own connection (Connection: close) from `from`; the first response, or status 0.
function http(srv, from, method, path, opts = {}, ms = 5000) {
  return new Promise((resolve) => {
    const sock = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: from });
    let data = '', done = false;
    const finish = () => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      resolve(parseResponses(data).responses[0] || { status: 0, raw: data });
    };
    const timer = setTimeout(finish, ms);
    sock.on('data', (d) => { data += d.toString('latin1'); if (parseResponses(data).responses.length) finish(); });
    sock.on('close', finish);
    sock.on('error', () => {});
    sock.on('connect', () => sock.write(reqBytes(srv, method, path, opts)));
  });
}
const post = (srv, from, path, body, opts = {}, ms) => http(srv, from, 'POST', path, { body, ...opts }, ms);
const get = (srv, from, path, opts = {}) => http(srv, from, 'GET', path, opts);

// ------------------------------------------------------------------ SDP offers and STUN checks

// An offer posted from `from`: the HTTP response, and the server's ICE credentials when it was 200.
async function newPeer(srv, from, room, opts = {}) {
  const r = await post(srv, from, `/rtc/${room}/offer`, { sdp: offer(opts), type: 'offer' });
  if (r.status !== 200) return { status: r.status, r };
  const sdp = r.json.sdp;
  return { status: 200, r, sdp, ufrag: sdp.match(/a=ice-ufrag:(\S+)/)[1], pwd: sdp.match(/a=ice-pwd:(\S+)/)[1] };
}

// An authenticated ICE check for peer p (its server ufrag and ice-pwd), with a random tie-breaker.
const check = (p) => stunCheck(p, { tiebreaker: [randomBytes(4).readUInt32BE(0), randomBytes(4).readUInt32BE(0)] });
// The reply to txid among datagrams: its type, and whether its MESSAGE-INTEGRITY is right for key.
function stunReply(got, txid, key) {
  for (const b of got) {
    if (b.length < 20 || b[0] > 1 || b.readUInt32BE(4) !== MAGIC || !b.subarray(8, 20).equals(txid)) continue;
    const m = stunParse(b, key);
    return m && { type: m.type, integrityOk: m.integrityOk };
  }
  return null;
}
// A UDP socket bound to a chosen loopback source address.
async function udpFrom(srv, from) {
  const s = dgram.createSocket('udp4');
  const got = [];
  s.on('message', (m) => got.push(m));
  s.on('error', () => {});
  await new Promise((ok) => s.bind(0, from, ok));
  return { s, got, send: (d) => new Promise((ok) => s.send(d, srv.udpPort, '127.0.0.1', () => ok())), close: () => s.close() };
}
// Sends checks for p (a fresh transaction each `every` ms, as an ICE agent retransmits) until one is
// answered or ms pass: the answer ({type, integrityOk, ms}) or null.
async function checkUntilAnswered(u, p, ms, every = 250) {
  const t0 = Date.now(), txids = [];
  let last = 0;
  for (;;) {
    for (const t of txids) {
      const r = stunReply(u.got, t, p.pwd);
      if (r) return { ...r, ms: Date.now() - t0 };
    }
    if (Date.now() - t0 > ms) return null;
    if (Date.now() - last >= every) {
      const c = check(p);
      txids.push(c.txid);
      last = Date.now();
      await u.send(c.msg);
    }
    await sleep(10);
  }
}

const logHas = (srv, re) => srv.log.some((l) => re.test(l));
const logCount = (srv, re) => srv.log.filter((l) => re.test(l)).length;

// A DTLS record of epoch 0 carrying a fatal alert (handshake_failure): a DTLS server waiting for
// a ClientHello ends the session at once.
function dtlsFatalAlert() {
  const r = Buffer.alloc(15);
  r[0] = 21; // alert
  r.writeUInt16BE(0xfefd, 1); // DTLS 1.2
  r.writeUIntBE(1, 5, 6); // epoch 0, sequence number 1
  r.writeUInt16BE(2, 11);
  r[13] = 2; // fatal
  r[14] = 40; // handshake_failure
  return r;
}
// Uses a room once, from `from`: an offer in setup:active form (the server is the DTLS server and
// sends nothing first), one authenticated ICE check (the session takes a seat: the room was
// joined), then a fatal DTLS alert that ends the session.
async function joinOnce(srv, from, room) {
  const p = await newPeer(srv, from, room, { setup: 'active' });
  assert.equal(p.status, 200, `offer into ${room} from ${from}: ${p.status} ${p.r.body}`);
  const u = await udpFrom(srv, from);
  try {
    const r = await checkUntilAnswered(u, p, 3000);
    assert.ok(r && r.type === 0x0101 && r.integrityOk, `the check into ${room} from ${from} was answered: ${J(r)}`);
    await u.send(dtlsFatalAlert());
    await sleep(5);
  } finally {
    u.close();
  }
}
const closedCount = (srv) => logCount(srv, /peer \S+: closed: /);

// ------------------------------------------------------------------ A. handshake slots

test('--small: its caps on rooms and sessions hold: beyond them 503, and the server goes on', async () => {
  const ROOMS = camusDefine('CAMUS_SMALL_ROOMS'), PEERS = camusDefine('CAMUS_SMALL_PEERS');
  const PER_MINUTE = camusDefine('CAMUS_ROOMS_PER_HOST'), CONNECTING = camusDefine('CAMUS_HANDSHAKES_PER_HOST');
  const srv = await startServer(['--small']);
  try {
    // Rooms: as many as --small holds, made in turn from enough addresses (each may make PER_MINUTE a minute);
    // one more from the first finds the table full, and none is shed for it (its maker holds as many as any: see B).
    const makers = Math.ceil((ROOMS + 1) / PER_MINUTE);
    let made = 0;
    for (let k = 0; k < ROOMS; k++) made += (await post(srv, `127.0.6.${1 + k % makers}`, '/api/rooms', { name: `small ${k}` })).status === 201;
    assert.equal(made, ROOMS);
    let r = await post(srv, '127.0.6.1', '/api/rooms', { name: 'one too many' });
    assert.equal(r.status, 503, `room ${ROOMS + 1}: ${r.status} ${r.text}`);
    // Sessions: as many offers as --small holds, from enough addresses (each may have CONNECTING connecting at
    // once), into the rooms in turn; one more: 503 "server is full".
    let sessions = 0;
    for (let k = 0; k < PEERS; k++)
      sessions += (await newPeer(srv, `127.0.7.${1 + Math.floor(k / CONNECTING)}`, `small-${k % ROOMS}`)).status === 200;
    assert.equal(sessions, PEERS);
    r = await newPeer(srv, '127.0.7.99', 'small-0');
    assert.equal(r.status, 503, `session ${PEERS + 1}: ${r.status}`);
    assert.match(r.r.body, /server is full/);
    assert.equal((await get(srv, '127.0.0.1', '/api/rooms/small-0')).status, 200, 'the server answers on');
  } finally {
    await srv.stop();
  }
});

test('A. handshake slots: 16 addresses x 16 silent sessions hold all 256; a newcomer\'s check is still answered (one is shed)', async () => {
  const srv = await startServer();
  const socks = [];
  let browser;
  try {
    assert.equal((await post(srv, '127.0.5.200', '/api/rooms', { name: 'slots', public: false })).status, 201);
    // 16 addresses x 16 offers (the per-address cap on sessions connecting) in setup:active form:
    // the server is the DTLS server and waits for a ClientHello that never comes.
    const specs = [];
    for (let a = 1; a <= 16; a++) for (let k = 0; k < 16; k++) specs.push(`127.0.5.${a}`);
    const peers = await pool(specs, 16, async (from) => ({ from, ...(await newPeer(srv, from, 'slots', { setup: 'active' })) }));
    const refused = peers.filter((p) => p.status !== 200);
    assert.equal(refused.length, 0, `offers refused: ${refused.slice(0, 3).map((p) => p.status + ' ' + p.r.body).join('; ')}`);
    // One authenticated check per session, each from its own port: all 256 get a slot, and an answer.
    const answers = await pool(peers, 32, async (p) => {
      const u = p.u = await udpFrom(srv, p.from);
      socks.push(u);
      return checkUntilAnswered(u, p, 3000);
    });
    const ok = answers.filter((r) => r && r.type === 0x0101 && r.integrityOk).length;
    assert.equal(ok, 256, `attacker checks answered with success: ${ok} of 256`);
    assert.ok(!logHas(srv, /handshake shed/), 'nothing shed while slots were free');
    // All 256 slots are held.  An honest newcomer from a 17th address: its check must be answered.
    const honest = await newPeer(srv, '127.0.5.17', 'slots', { setup: 'active' });
    assert.equal(honest.status, 200, honest.r && honest.r.body);
    const u = await udpFrom(srv, '127.0.5.17');
    socks.push(u);
    const r = await checkUntilAnswered(u, honest, 2500);
    assert.ok(r, 'the honest check was answered (the old server leaves it unanswered while 256 silent handshakes hold every slot)');
    assert.equal(r.type, 0x0101, 'a Binding success');
    assert.ok(r.integrityOk, 'signed with the session\'s ice-pwd');
    console.log(`  honest check answered after ${r.ms} ms`);
    await until(() => logHas(srv, /handshake shed/), 1000, '"handshake shed" in the log');
    // Exactly one attacker session gave up its slot (its credentials are gone: a check gets an
    // error); the other 255 and the newcomer live on (a check is answered with success).
    const again = await pool(peers, 32, async (p) => checkUntilAnswered(p.u, p, 2000, 500));
    const types = again.map((r) => (r ? r.type : 'none'));
    assert.equal(types.filter((t) => t === 0x0101).length, 255, `attacker sessions still alive: ${J(types)}`);
    assert.equal(types.filter((t) => t === 0x0111).length, 1, 'one attacker session was shed');
    const r2 = await checkUntilAnswered(u, honest, 2000);
    assert.ok(r2 && r2.type === 0x0101, 'the newcomer\'s session lives on');
    // An honest join from Chromium (from 127.0.0.1) meanwhile: its data channel opens.
    if (existsSync('/usr/bin/chromium')) {
      browser = await launchChromium();
      const page = await browser.newPage();
      await page.goto(srv.url + '/');
      const j = await pageJoin(page, 'slots', { echo: false });
      assert.equal(j.status, 200, J(j));
      assert.equal(j.greeting.type, 'greeting');
      assert.equal(j.pong.type, 'pong');
      console.log(`  Chromium joined while the slots were full: channel open in ${Math.round(j.openMs)} ms`);
      const sheds = srv.log.filter((l) => /handshake shed/.test(l)).length;
      assert.ok(sheds >= 2, `another handshake shed for Chromium (${sheds})`);
    } else {
      console.log('  (no /usr/bin/chromium: the browser join is skipped)');
    }
  } finally {
    if (browser) await browser.close().catch(() => {});
    for (const u of socks) u.close();
  }
  await srv.stop();
}, { timeout: 60000 });

// ------------------------------------------------------------------ B. rooms

test('B. rooms: 100 addresses x 10 private rooms fill the table; a newcomer still creates one (an empty room of an address that made the most is shed)', async () => {
  const srv = await startServer();
  const addrs = range(100, (i) => `127.0.6.${i + 1}`);
  const statuses = await pool(addrs, 25, async (from, a) => {
    const c = new Conn(srv, from);
    const out = [];
    try {
      for (let k = 0; k < 10; k++) out.push((await c.request('POST', '/api/rooms', { body: { name: `flood-${a}-${k}`, public: false } })).status);
    } finally {
      c.close();
    }
    return out;
  });
  const created = statuses.flat().filter((s) => s === 201).length;
  assert.equal(created, 1000, `rooms created: ${created} (statuses ${[...new Set(statuses.flat())]})`);
  // The table is full: a new address creates a room.
  const r = await post(srv, '127.0.6.200', '/api/rooms', { name: 'newcomer', public: false });
  assert.equal(r.status, 201, `a newcomer's room when the table is full: ${r.status} ${r.body} (old server: 503 "too many rooms")`);
  assert.equal(r.json.id, 'newcomer');
  const g = await get(srv, '127.0.6.201', '/api/rooms/newcomer');
  assert.equal(g.status, 200, g.body);
  assert.equal(g.json.id, 'newcomer');
  const shed = srv.log.filter((l) => /: shed: /.test(l));
  assert.equal(shed.length, 1, `one room shed: ${J(shed)}`);
  assert.match(shed[0], /room flood-\d+-\d+: shed: nobody in it, and its creator's address made the most rooms/);
  // An attacker address that made 10 this minute still may not make an 11th.
  const r11 = await post(srv, '127.0.6.1', '/api/rooms', { name: 'eleventh', public: false });
  assert.ok([429, 503].includes(r11.status), `an attacker's 11th room: ${r11.status} ${r11.body}`);
  await srv.stop();
}, { timeout: 30000 });

test('B3. rooms: 100 addresses x 10 rooms, each holding a bare offer (no ICE check), fill the table; a newcomer still creates one', async () => {
  const srv = await startServer();
  const addrs = range(100, (i) => `127.0.40.${i + 1}`);
  await pool(addrs, 25, async (from, a) => {
    const c = new Conn(srv, from);
    try {
      for (let k = 0; k < 10; k++) {
        const r = await c.request('POST', '/api/rooms', { body: { name: `bare-${a}-${k}`, public: false } });
        assert.equal(r.status, 201, r.body);
        const o = await newPeer(srv, from, `bare-${a}-${k}`); // a bare offer: its session never checks
        assert.equal(o.status, 200);
      }
    } finally {
      c.close();
    }
  });
  const r = await post(srv, '127.0.41.1', '/api/rooms', { name: 'newcomer', public: false });
  assert.equal(r.status, 201, `a newcomer's room while bare offers sit in every room: ${r.status} ${r.body}`);
  assert.equal(srv.log.filter((l) => /: shed: nobody in it/.test(l)).length, 1, 'one room shed');
  assert.ok(srv.log.some((l) => /closed: its room was shed/.test(l)), 'its bare session closed with it');
  await srv.stop();
}, { timeout: 30000 });

test('B2. rooms: 100 addresses x 10 rooms, each joined once and now empty, fill the table; a newcomer still creates one', async () => {
  const srv = await startServer();
  const t0 = Date.now();
  await pool(range(100, (i) => `127.0.19.${i + 1}`), 25, async (from, a) => {
    const c = new Conn(srv, from);
    try {
      for (let k = 0; k < 10; k++) {
        const r = await c.request('POST', '/api/rooms', { body: { name: `used-${a}-${k}`, public: false } });
        assert.equal(r.status, 201, `room ${k} from ${from}: ${r.status} ${r.body}`);
        await joinOnce(srv, from, `used-${a}-${k}`);
      }
    } finally {
      c.close();
    }
  });
  await until(() => closedCount(srv) >= 1000, 5000, 'all 1000 sessions ended');
  console.log(`  1000 rooms made, joined once and left in ${Date.now() - t0} ms`);
  // Every room is empty (no session) and was joined: none is "never joined" to shed.
  const r = await post(srv, '127.0.19.200', '/api/rooms', { name: 'newcomer', public: false });
  assert.equal(r.status, 201, `a newcomer's room when the table is full of used, empty rooms: ${r.status} ${r.body} (old servers: 503 "too many rooms")`);
  assert.equal((await get(srv, '127.0.19.201', '/api/rooms/newcomer')).status, 200);
  const shed = srv.log.filter((l) => /: shed: /.test(l));
  assert.equal(shed.length, 1, `one room shed: ${J(shed)}`);
  assert.match(shed[0], /room used-\d+-\d+: shed: nobody in it, and its creator's address made the most rooms/);
  await srv.stop();
}, { timeout: 30000 });

// ------------------------------------------------------------------ C. connections

test('C. connections: 10 addresses x 10 idle keep-alive connections fill --max-connections 100; a newcomer is served', async () => {
  const srv = await startServer(['--max-connections', '100', '--idle-timeout', '30']);
  const conns = [];
  try {
    for (let a = 1; a <= 10; a++) for (let k = 0; k < 10; k++) conns.push(new Conn(srv, `127.0.7.${a}`));
    const st = await pool(conns, 20, (c) => c.request('GET', '/api/config'));
    assert.ok(st.every((r) => r.status === 200), `idle connections set up: ${st.map((r) => r.status).filter((s) => s !== 200)}`);
    // All 100 are open and idle.  An honest client from an 11th address:
    const r = await get(srv, '127.0.7.50', '/api/config');
    assert.equal(r.status, 200, `an honest GET /api/config with the table full: ${r.status} (old server: 503)`);
    assert.equal(typeof r.json.stun_port, 'number');
    await until(() => conns.some((c) => c.closed), 2000, 'an idle connection of the heaviest address closed');
    const shed = conns.filter((c) => c.closed).length;
    assert.ok(shed >= 1 && shed <= 2, `idle connections shed: ${shed}`);
    assert.ok(logHas(srv, /http#\d+: shed \(127\.0\.7\.\d+ holds the most connections\)/), 'the shed is logged');
  } finally {
    for (const c of conns) c.close();
  }
  await srv.stop();
}, { timeout: 30000 });

test('C2. connections: 10 addresses x 10 connections, each one byte into a request, fill --max-connections 100; a newcomer is served', async () => {
  const srv = await startServer(['--max-connections', '100']);
  const socks = [];
  try {
    for (let a = 1; a <= 10; a++) for (let k = 0; k < 10; k++) {
      const s = net.connect({ port: srv.port, host: '127.0.0.1', localAddress: `127.0.20.${a}` });
      s.on('error', () => {});
      s.on('connect', () => s.write('G')); // one byte of a request: busy, never idle
      socks.push(s);
    }
    await until(() => socks.every((s) => s.bytesWritten === 1 || s.closed), 3000, '100 connections open, a byte sent on each');
    await sleep(200); // the server has read every first byte
    assert.ok(socks.every((s) => !s.closed), 'all 100 held open');
    // No connection is idle.  An honest client from an 11th address:
    const t0 = Date.now();
    const r = await get(srv, '127.0.20.50', '/api/config');
    assert.equal(r.status, 200, `an honest GET /api/config with the table full of half-sent requests: ${r.status} ${r.body || r.raw} (old servers: 503)`);
    assert.equal(typeof r.json.stun_port, 'number');
    console.log(`  the newcomer served in ${Date.now() - t0} ms`);
    await until(() => socks.some((s) => s.closed), 2000, 'a connection of the heaviest address closed');
    const shed = socks.filter((s) => s.closed).length;
    assert.equal(shed, 1, `connections shed: ${shed}`);
    assert.ok(logHas(srv, /http#\d+: shed \(127\.0\.20\.\d+ holds the most connections\)/), 'the shed is logged');
  } finally {
    for (const s of socks) s.destroy();
  }
  await srv.stop();
}, { timeout: 30000 });

// ------------------------------------------------------------------ D. seats

test('D. seats: bare offers take no seat; only sessions past their ICE check fill a room', async () => {
  const srv = await startServer();
  const socks = [];
  try {
    const from = '127.0.8.1';
    assert.equal((await post(srv, '127.0.8.200', '/api/rooms', { name: 'pair', guest_limit: 2, public: false })).status, 201);
    const peers = [];
    for (let k = 0; k < 5; k++) peers.push(await newPeer(srv, from, 'pair'));
    assert.deepEqual(peers.map((p) => p.status), [200, 200, 200, 200, 200],
      `5 bare offers into a room of 2: ${peers.map((p) => p.status + (p.status !== 200 ? ' ' + p.r.body : '')).join(', ')} (old server: the 3rd is refused, "room is full")`);
    const clients = async () => (await get(srv, '127.0.8.201', '/api/rooms/pair')).json.clients;
    assert.equal(await clients(), 0, 'bare offers hold no seat');
    for (const p of peers.slice(0, 2)) {
      const u = await udpFrom(srv, from);
      socks.push(u);
      const r = await checkUntilAnswered(u, p, 2000);
      assert.ok(r && r.type === 0x0101 && r.integrityOk, 'a checked session is answered');
    }
    assert.equal(await clients(), 2, 'two checked sessions hold the two seats');
    // A third session's check finds the room full: unanswered, and the session ends.
    const u3 = await udpFrom(srv, from);
    socks.push(u3);
    const c3 = check(peers[2]);
    await u3.send(c3.msg);
    await until(() => logHas(srv, /peer .*closed: room is full/), 2000, '"room is full" in the log');
    await sleep(200);
    assert.equal(stunReply(u3.got, c3.txid, peers[2].pwd), null, 'the third check is not answered');
    const again = await checkUntilAnswered(u3, peers[2], 600);
    assert.ok(!again || again.type === 0x0111, `a retransmission is not answered with success (its session is gone): ${J(again)}`);
    assert.equal(await clients(), 2);
    const p6 = await newPeer(srv, '127.0.8.2', 'pair');
    assert.equal(p6.status, 403);
    assert.equal(p6.r.json.error, 'room is full');
  } finally {
    for (const u of socks) u.close();
  }
  await srv.stop();
}, { timeout: 30000 });

// ------------------------------------------------------------------ E. passwords

// A join with a password from `from`; a "server busy" 429 (the hash budget) is retried after a while.
async function joinRoom(srv, from, room, password) {
  for (let i = 0; ; i++) {
    const r = await post(srv, from, `/rtc/${room}/join`, { password });
    if (r.status === 429 && /busy/.test(r.body) && i < 40) { await sleep(100); continue; }
    return r;
  }
}

test('E1. passwords: an address\'s failed-guess count survives 300 other addresses touching the table', async () => {
  const srv = await startServer();
  assert.equal((await post(srv, '127.0.9.200', '/api/rooms', { name: 'vault', password: 'right', public: false })).status, 201);
  assert.equal((await post(srv, '127.0.9.201', '/api/rooms', { name: 'lobby', public: false })).status, 201);
  const X = '127.0.9.1';
  for (let k = 0; k < 10; k++) {
    const r = await joinRoom(srv, X, 'vault', `wrong-${k}`);
    assert.equal(r.status, 403, `guess ${k}: ${r.status} ${r.body}`);
  }
  assert.equal((await joinRoom(srv, X, 'vault', 'wrong-10')).status, 429, 'the 11th guess in a minute is refused');
  // 300 other addresses each get a slot in the table (a join of an open room).
  const others = [...range(250, (i) => `127.0.10.${i + 1}`), ...range(50, (i) => `127.0.11.${i + 1}`)];
  const st = await pool(others, 20, async (from) => (await post(srv, from, '/rtc/lobby/join', {})).status);
  assert.ok(st.every((s) => s === 200), `joins of the open room: ${[...new Set(st)]}`);
  const r = await joinRoom(srv, X, 'vault', 'wrong-11');
  assert.equal(r.status, 429, `X after 300 other addresses: ${r.status} ${r.body} (old server: X's slot was evicted, it may guess again)`);
  assert.equal((await joinRoom(srv, X, 'vault', 'right')).status, 429, 'even with the right password, for the rest of the minute');
  await srv.stop();
}, { timeout: 30000 });

test('E2. passwords: at most 30 wrong guesses a minute on one room from all addresses together', async () => {
  const srv = await startServer();
  assert.equal((await post(srv, '127.0.12.200', '/api/rooms', { name: 'crowd', password: 'right', public: false })).status, 201);
  assert.equal((await post(srv, '127.0.12.201', '/api/rooms', { name: 'other', password: 'right', public: false })).status, 201);
  for (let a = 1; a <= 30; a++) {
    const r = await joinRoom(srv, `127.0.12.${a}`, 'crowd', `guess-${a}`);
    assert.equal(r.status, 403, `wrong guess ${a}: ${r.status} ${r.body}`);
  }
  for (let a = 31; a <= 40; a++) {
    const r = await joinRoom(srv, `127.0.12.${a}`, 'crowd', 'right');
    assert.equal(r.status, 429, `address ${a} with the right password after 30 wrong ones: ${r.status} ${r.body} (old server: 200)`);
    assert.equal(r.json.error, 'too many wrong passwords for this room: try again in a minute');
  }
  const o = await joinRoom(srv, '127.0.12.41', 'other', 'right');
  assert.equal(o.status, 200, `another room is unaffected: ${o.status} ${o.body}`);
  assert.match(o.json.token, /^\d+\.[0-9a-f]{64}$/);
  await srv.stop();
}, { timeout: 30000 });

test('E3. passwords: hashing is budgeted in time: a burst of 100 guesses from 100 addresses gets ~0.5 s of it, then 250 ms a second', async () => {
  const srv = await startServer();
  const rooms = ['b0', 'b1', 'b2', 'b3', 'cal'];
  for (const [k, name] of rooms.entries()) {
    assert.equal((await post(srv, `127.0.13.${200 + k}`, '/api/rooms', { name, password: 'right', public: false })).status, 201);
  }
  // What one hash costs the server here (10 paced wrong guesses).
  await sleep(1050);
  let cpu0 = srv.cpuMs();
  for (let k = 0; k < 10; k++) assert.equal((await joinRoom(srv, '127.0.13.250', 'cal', `w${k}`)).status, 403);
  const perHash = Math.max(2, (srv.cpuMs() - cpu0) / 10);
  const busyError = 'the server is busy: try again in a second';
  // burst(n, base): n wrong guesses at once from addresses base+1..base+n; what they cost.
  const burst = async (n, base) => {
    const cpu1 = srv.cpuMs(), start = Date.now();
    const rs = await Promise.all(range(n, (i) => post(srv, `127.0.13.${base + i + 1}`, `/rtc/b${i % 4}/join`, { password: `wrong-${base + i}` }, {}, 10000)));
    const out = { start, end: Date.now(), cpu: srv.cpuMs() - cpu1 };
    out.ms = out.end - start;
    out.hashed = rs.filter((r) => r.status === 403).length;
    out.busy = rs.filter((r) => r.status === 429 && r.json && r.json.error === 'the server is busy: try again in a second').length;
    assert.equal(out.hashed + out.busy, n, `statuses: ${J(rs.map((r) => r.status))}`);
    return out;
  };
  // The budget: 250 ms of hashing a second, saved up to 0.5 s; a hash begun within it may run over.
  // (The server counts a hash's time on the clock, at least its CPU time: CPU bounds are safe.)
  const allowed = (ms, hashes) => 500 + 250 * ms / 1000 + hashes * perHash;
  await sleep(1000);
  const during = sleep(30).then(async () => { const t = Date.now(); await get(srv, '127.0.13.150', '/api/config'); return Date.now() - t; });
  const b1 = await burst(100, 0);
  console.log(`  burst: ${b1.hashed} hashed, ${b1.busy} "busy", in ${b1.ms} ms; server CPU ${b1.cpu} ms (one hash ~${perHash.toFixed(1)} ms); a GET meanwhile took ${await during} ms`);
  assert.ok(b1.busy >= 1, `none refused as "busy": all ${b1.hashed} hashed (23ca4ad: all 100, ~3 s of CPU)`);
  const allow1 = allowed(b1.ms, 1);
  assert.ok(b1.cpu <= allow1 * 1.2 + 100, `server CPU for the burst ${b1.cpu} ms: more than ${Math.round(allow1)} ms of hashing and 100 ms besides`);
  // The saved budget is spent: 40 more guesses a second later get only what a second and a bit adds.
  await sleep(1000);
  const b2 = await burst(40, 100);
  const allow2 = allowed(b2.end - b1.start, 2);
  console.log(`  ${b2.start - b1.end} ms later: ${b2.hashed} hashed, ${b2.busy} "busy"; server CPU ${b2.cpu} ms (both: ${b1.cpu + b2.cpu} ms, allowed ~${Math.round(allow2)} ms of hashing)`);
  assert.ok(b2.busy >= 1, `none of the next 40 refused as "busy" (${b2.hashed} hashed)`);
  assert.ok(b1.cpu + b2.cpu <= allow2 * 1.2 + 150, `server CPU for both bursts (${b2.end - b1.start} ms): ${b1.cpu + b2.cpu} ms, more than ${Math.round(allow2)} ms of hashing and 150 ms besides`);
  await srv.stop();
}, { timeout: 30000 });

// ------------------------------------------------------------------ F. cross-site requests, DNS rebinding

test('F. cross-site POSTs refused (Origin checked; without Origin only JSON); --allowed-hosts; duplicate headers', async () => {
  const srv = await startServer();
  const self = `http://127.0.0.1:${srv.port}`;
  const form = 'application/x-www-form-urlencoded';
  const from = '127.0.16.1';
  const cases = [], problems = [];
  // Every case is tried; the test fails at the end with the list of those that went wrong.
  const expect = async (label, p, status, re) => {
    const r = await p;
    cases.push(label);
    if (!(Array.isArray(status) ? status : [status]).includes(r.status)) problems.push(`${label}: ${r.status} ${r.body.slice(0, 100)} (want ${status})`);
    else if (re && !re.test(r.json && r.json.error || '')) problems.push(`${label}: error ${r.body}`);
    return r;
  };
  const xo = /^cross-origin request refused/;
  await expect('form POST /api/rooms from http://evil.example', post(srv, from, '/api/rooms', 'name=evil1', { ctype: form, headers: [['Origin', 'http://evil.example']] }), 403, xo);
  await expect('form POST /api/rooms without Origin', post(srv, from, '/api/rooms', 'name=evil2', { ctype: form }), 403, xo);
  await expect('form POST /api/rooms from this server\'s own origin', post(srv, from, '/api/rooms', 'name=own&public=on', { ctype: form, headers: [['Origin', self]] }), 201);
  await expect('JSON POST /api/rooms without Origin', post(srv, from, '/api/rooms', { name: 'xo', public: false }), 201);
  await expect('JSON POST /api/rooms from a foreign origin', post(srv, from, '/api/rooms', { name: 'evil3' }, { headers: [['Origin', 'http://evil.example']] }), 403, xo);
  await expect('JSON POST /api/rooms with Origin null', post(srv, from, '/api/rooms', { name: 'evil4' }, { headers: [['Origin', 'null']] }), 403, xo);
  await expect('JSON POST with this origin but another port', post(srv, from, '/api/rooms', { name: 'evil5' }, { headers: [['Origin', `http://127.0.0.1:${srv.port + 1}`]] }), 403, xo);
  await expect('JSON POST with this origin over https', post(srv, from, '/api/rooms', { name: 'evil6' }, { headers: [['Origin', `https://127.0.0.1:${srv.port}`]] }), 403, xo);
  const sdp = J({ sdp: offer(), type: 'offer' });
  await expect('text/plain offer from a foreign origin', post(srv, from, '/rtc/xo/offer', sdp, { ctype: 'text/plain', headers: [['Origin', 'http://evil.example']] }), 403, xo);
  await expect('text/plain offer without Origin', post(srv, from, '/rtc/xo/offer', sdp, { ctype: 'text/plain' }), 403, xo);
  await expect('form join from a foreign origin', post(srv, from, '/rtc/xo/join', 'password=x', { ctype: form, headers: [['Origin', 'http://evil.example']] }), 403, xo);
  await expect('JSON offer from this origin', post(srv, from, '/rtc/xo/offer', sdp, { headers: [['Origin', self]] }), 200);
  await expect('JSON join without Origin', post(srv, from, '/rtc/xo/join', {}), 200);
  await expect('GET with a foreign Origin (not state-changing)', get(srv, from, '/api/rooms/xo', { headers: [['Origin', 'http://evil.example']] }), 200);
  // Headers whose second copy would make the request ambiguous.
  await expect('two Host headers', get(srv, from, '/api/config', { headers: [['Host', 'evil.example']] }), 400);
  await expect('two Origin headers', post(srv, from, '/api/rooms', { name: 'evil7' }, { headers: [['Origin', self], ['Origin', 'http://evil.example']] }), 400);
  await expect('two Content-Type headers', post(srv, from, '/api/rooms', { name: 'evil8' }, { headers: [['Content-Type', 'text/plain']] }), 400);
  for (const id of ['evil1', 'evil2', 'evil3', 'evil4', 'evil5', 'evil6', 'evil7', 'evil8'])
    if ((await get(srv, '127.0.16.2', `/api/rooms/${id}`)).status !== 404) problems.push(`room ${id} was made`);
  await srv.stop();
  // DNS rebinding: a server told its names answers no other Host.
  let s2;
  try {
    s2 = await startServer(['--allowed-hosts', 'localhost']);
  } catch (e) {
    problems.push(`--allowed-hosts: ${e.message.split('\n').slice(0, 3).join(' ')}`);
  }
  if (s2) {
    await expect('--allowed-hosts localhost: Host evil.example', get(s2, from, '/api/config', { host: 'evil.example' }), 421);
    await expect('--allowed-hosts localhost: Host evil.example:port', get(s2, from, '/api/config', { host: `evil.example:${s2.port}` }), 421);
    await expect('--allowed-hosts localhost: Host 127.0.0.1:port', get(s2, from, '/', { host: `127.0.0.1:${s2.port}` }), 421);
    await expect('--allowed-hosts localhost: no Host', get(s2, from, '/api/config', { host: null }), [400, 421]);
    await expect('--allowed-hosts localhost: Host localhost:port', get(s2, from, '/api/config', { host: `localhost:${s2.port}` }), 200);
    await expect('--allowed-hosts localhost: Host LOCALHOST', get(s2, from, '/api/config', { host: 'LOCALHOST' }), 200);
    await expect('--allowed-hosts localhost: POST from its own origin', post(s2, from, '/api/rooms', { name: 'ok' }, { host: `localhost:${s2.port}`, headers: [['Origin', `http://localhost:${s2.port}`]] }), 201);
    await s2.stop();
  }
  console.log(`  ${cases.length} requests`);
  assert.deepEqual(problems, [], `${problems.length} problems in ${cases.length} cases:\n  ${problems.join('\n  ')}`);
}, { timeout: 30000 });

// ------------------------------------------------------------------ G. smaller ones

test('G1. room lookups: after 30 unknown ids in a minute, every room lookup from that address is 429', async () => {
  const srv = await startServer();
  assert.equal((await post(srv, '127.0.14.200', '/api/rooms', { name: 'known', public: false })).status, 201);
  const M = '127.0.14.1';
  const c = new Conn(srv, M);
  try {
    for (let k = 0; k < 30; k++) assert.equal((await c.request('GET', `/api/rooms/guess-${k}`)).status, 404, `miss ${k}`);
  } finally {
    c.close();
  }
  const known = await get(srv, M, '/api/rooms/known');
  assert.equal(known.status, 429, `an existing room from the guessing address: ${known.status} (old server: 200, so guesses tell)`);
  assert.equal((await get(srv, M, '/rtc/known')).status, 429, 'GET /rtc/<id> too');
  assert.equal((await get(srv, M, '/api/rooms/guess-99')).status, 429, 'and an unknown one');
  assert.equal((await post(srv, M, '/rtc/known/join', {})).status, 429, 'and POST /rtc/<id>/join');
  assert.equal((await get(srv, '127.0.14.2', '/api/rooms/known')).status, 200, 'another address is unaffected');
  assert.equal((await get(srv, '127.0.14.2', '/rtc/known')).status, 200);
  await srv.stop();
});

test('G1b. room lookups: 256 addresses fill the per-address table, a 257th makes 30 misses; fresh addresses are not locked out', async () => {
  const srv = await startServer();
  assert.equal((await post(srv, '127.0.21.200', '/api/rooms', { name: 'known', public: false })).status, 201);
  // With the room's creator, 256 addresses take every slot of the per-address table: 255 others
  // ask for one unknown room each.
  const crowd = range(255, (i) => `127.0.${22 + (i >> 7)}.${(i & 127) + 1}`);
  const st = await pool(crowd, 32, async (from) => (await get(srv, from, '/api/rooms/nope')).status);
  assert.ok(st.every((x) => x === 404), `the crowd's lookups: ${[...new Set(st)]}`);
  // A 257th address guesses 30 unknown ids, and is then refused.
  const M = '127.0.24.1';
  const c = new Conn(srv, M);
  try {
    for (let k = 0; k < 30; k++) assert.equal((await c.request('GET', `/api/rooms/guess-${k}`)).status, 404, `miss ${k}`);
  } finally {
    c.close();
  }
  assert.equal((await get(srv, M, '/api/rooms/known')).status, 429, 'the guesser is refused after 30 misses (23ca4ad: 200, no limit)');
  // Fresh addresses meanwhile: every room lookup works (not counted with the guesser's).
  for (let k = 1; k <= 5; k++) {
    const from = `127.0.25.${k}`;
    const got = [(await get(srv, from, '/api/rooms/known')).status, (await get(srv, from, '/rtc/known')).status,
      (await post(srv, from, '/rtc/known/join', {})).status, (await get(srv, from, '/api/rooms/nope')).status];
    assert.deepEqual(got, [200, 200, 200, 404], `fresh address ${from}: GET /api/rooms/known, GET /rtc/known, POST /rtc/known/join, an unknown room (2e00da5: all 429, the guesser's misses counted in a slot every newcomer shares)`);
  }
  const made = await post(srv, '127.0.25.9', '/api/rooms', { name: 'fresh', public: false });
  assert.equal(made.status, 201, `a fresh address makes a room: ${made.status} ${made.body}`);
  // The guesser's count outlives the newcomers (each did less than it).
  assert.equal((await get(srv, M, '/api/rooms/known')).status, 429, 'the guesser is still refused');
  await srv.stop();
});

test('G2. an expired room\'s id is kept for its creator if the room was joined; a never-joined one\'s is not', async () => {
  const srv = await startServer(['--room-expiry', '1']);
  const A = '127.0.15.1', B = '127.0.15.2';
  assert.equal((await post(srv, A, '/api/rooms', { name: 'team', public: false })).status, 201);
  assert.equal((await post(srv, A, '/api/rooms', { name: 'solo', public: false })).status, 201);
  await joinOnce(srv, '127.0.15.3', 'team'); // someone took a seat in "team", then left
  await until(() => logHas(srv, /room team: expired/) && logHas(srv, /room solo: expired/), 5000, '"team" and "solo" expired');
  const b = await post(srv, B, '/api/rooms', { name: 'team', public: false });
  assert.equal(b.status, 409, `another address takes the joined room's id: ${b.status} ${b.body} (23ca4ad: 201)`);
  assert.equal(b.json.error, 'a room with this id ended lately: for a day, only its creator may make it again');
  const a = await post(srv, A, '/api/rooms', { name: 'team', public: false });
  assert.equal(a.status, 201, `its creator makes it again: ${a.status} ${a.body}`);
  // Nobody ever took a seat in "solo": its id keeps nobody out (such rooms cost nothing to make).
  const s = await post(srv, B, '/api/rooms', { name: 'solo', public: false });
  assert.equal(s.status, 201, `another address takes a never-joined room's id: ${s.status} ${s.body}`);
  await srv.stop();
});

test('G2b. tombstones: a joined room\'s id stays reserved while 1100 never-joined and 1000 joined rooms of other addresses end', async () => {
  const srv = await startServer(['--room-expiry', '1']);
  const A = '127.0.26.1', B = '127.0.26.2';
  const t0 = Date.now();
  assert.equal((await post(srv, A, '/api/rooms', { name: 'team', public: false })).status, 201);
  await joinOnce(srv, A, 'team');
  await until(() => logHas(srv, /room team: expired/), 5000, '"room team: expired" in the log');
  assert.equal((await post(srv, B, '/api/rooms', { name: 'team', public: false })).status, 409, 'reserved for its creator (23ca4ad: 201)');
  const expired = () => logCount(srv, /room \S+: expired/);
  // Rooms of 10 each from `count` other addresses (127.0.<net>.x), each joined once if `join`; then
  // all of them expire.
  const wave = async (prefix, net, count, join) => {
    const before = expired();
    await pool(range(count, (i) => `127.0.${net + (i >> 7)}.${(i & 127) + 1}`), 25, async (from, a) => {
      const c = new Conn(srv, from);
      try {
        for (let k = 0; k < 10; k++) {
          const name = `${prefix}-${a}-${k}`;
          const r = await c.request('POST', '/api/rooms', { body: { name, public: false } });
          assert.equal(r.status, 201, `${name} from ${from}: ${r.status} ${r.body}`);
          if (join) await joinOnce(srv, from, name);
        }
      } finally {
        c.close();
      }
    });
    await until(() => expired() >= before + count * 10, 8000, `${count * 10} "${prefix}" rooms expired`);
  };
  // 1100 rooms nobody joined end, in two waves (the table holds 1000): they leave no tombstone
  // (2e00da5: a ring of the last 1000 ids that ended, "team" overwritten).
  await wave('idle', 27, 55, false);
  await wave('idle2', 28, 55, false);
  const b1 = await post(srv, B, '/api/rooms', { name: 'team', public: false });
  assert.equal(b1.status, 409, `after 1100 never-joined rooms of others ended: ${b1.status} ${b1.body}`);
  // 1000 joined rooms of 100 other addresses end: with "team", 1001 tombstones for 1000 places;
  // an address that made 10 of them loses its oldest, not A (1).
  await wave('used', 29, 100, true);
  const b2 = await post(srv, B, '/api/rooms', { name: 'team', public: false });
  assert.equal(b2.status, 409, `after 1000 joined rooms of others ended: ${b2.status} ${b2.body}`);
  const a = await post(srv, A, '/api/rooms', { name: 'team', public: false });
  assert.equal(a.status, 201, `its creator makes it again: ${a.status} ${a.body}`);
  // The tombstone given up was one of the crowd's: exactly one "used" id is free again, to anyone.
  const freed = [];
  await pool(range(1000, (i) => `used-${Math.floor(i / 10)}-${i % 10}`), 25, async (name, i) => {
    const r = await post(srv, `127.0.${31 + (i >> 7 & 3)}.${(i & 127) + 1}`, '/api/rooms', { name, public: false });
    if (r.status === 201) freed.push(name);
    else assert.equal(r.status, 409, `${name}: ${r.status} ${r.body}`);
  });
  assert.equal(freed.length, 1, `ids of the crowd's joined rooms free again: ${J(freed)}`);
  assert.match(freed[0], /^used-\d+-0$/, 'the oldest of its creator\'s');
  console.log(`  ${Date.now() - t0} ms`);
  await srv.stop();
}, { timeout: 40000 });

test('G3. the answer\'s session id (o=) is random, not (slot << 32 | generation)', async () => {
  const srv = await startServer();
  assert.equal((await post(srv, '127.0.17.200', '/api/rooms', { name: 'ids', public: false })).status, 201);
  const ids = [];
  for (let k = 0; k < 4; k++) {
    const p = await newPeer(srv, `127.0.17.${k + 1}`, 'ids');
    assert.equal(p.status, 200);
    ids.push(BigInt(p.sdp.match(/^o=- (\d+) /m)[1]));
  }
  console.log(`  o= ids: ${ids.join(' ')}`);
  assert.equal(new Set(ids).size, 4, 'all differ');
  const slotForm = (id) => (id >> 32n) < (1n << 20n) && (id & 0xffffffffn) < (1n << 20n);
  for (const id of ids) {
    assert.ok(id < (1n << 63n), 'at most 63 bits');
    assert.ok(!slotForm(id), `id ${id} = (${id >> 32n} << 32) | ${id & 0xffffffffn}: a table slot and a generation, guessable`);
  }
  for (let k = 1; k < 4; k++) {
    const d = ids[k] > ids[k - 1] ? ids[k] - ids[k - 1] : ids[k - 1] - ids[k];
    assert.ok(d > (1n << 40n), `consecutive ids ${ids[k - 1]} and ${ids[k]} are close`);
  }
  await srv.stop();
});

// A TLS connection with the given options: 'ok' (and the response to a GET) or the error.
function tlsTry(srv, opts, { request = false } = {}) {
  return new Promise((resolve) => {
    const s = tls.connect({ host: '127.0.0.1', port: srv.port, rejectUnauthorized: false, ...opts });
    let data = '', done = false;
    const finish = (v) => { if (done) return; done = true; clearTimeout(timer); s.destroy(); resolve(v); };
    const timer = setTimeout(() => finish({ error: 'timeout' }), 5000);
    s.on('error', (e) => finish({ error: e.code || e.message }));
    s.on('secureConnect', () => {
      if (!request) return finish({ ok: true, cipher: s.getCipher().name, version: s.getProtocol() });
      s.write(reqBytes(srv, 'GET', '/api/config'));
    });
    s.on('data', (d) => {
      data += d.toString('latin1');
      const r = parseResponses(data).responses[0];
      if (r) finish({ ok: true, cipher: s.getCipher().name, response: r });
    });
    s.on('close', () => finish({ error: 'closed', data }));
  });
}

test('G4. HTTPS: Strict-Transport-Security; CBC suites refused, AEAD accepted', async () => {
  const srv = await startServer(['--tls']);
  const problems = [];
  const r = await tlsTry(srv, {}, { request: true });
  assert.ok(r.ok, `HTTPS GET: ${J(r)}`);
  assert.equal(r.response.status, 200);
  if (!/max-age=\d+/.test(r.response.headers['strict-transport-security'] || '')) problems.push('no Strict-Transport-Security on an HTTPS response');
  const tls12 = { minVersion: 'TLSv1.2', maxVersion: 'TLSv1.2' };
  const cbc = await tlsTry(srv, { ...tls12, ciphers: 'ECDHE-ECDSA-AES128-SHA' });
  if (cbc.ok) problems.push(`a TLS 1.2 client offering only ECDHE-ECDSA-AES128-SHA (CBC) got through with ${cbc.cipher}`);
  const cbc2 = await tlsTry(srv, { ...tls12, ciphers: 'ECDHE-ECDSA-AES256-SHA384:ECDHE-ECDSA-AES128-SHA256' });
  if (cbc2.ok) problems.push(`a TLS 1.2 client offering only CBC-SHA2 suites got through with ${cbc2.cipher}`);
  const gcm = await tlsTry(srv, { ...tls12, ciphers: 'ECDHE-ECDSA-AES128-GCM-SHA256' });
  if (!gcm.ok || gcm.cipher !== 'ECDHE-ECDSA-AES128-GCM-SHA256') problems.push(`ECDHE-ECDSA-AES128-GCM-SHA256 refused: ${J(gcm)}`);
  console.log(`  CBC: ${cbc.error || 'accepted ' + cbc.cipher}; CBC-SHA2: ${cbc2.error || 'accepted ' + cbc2.cipher}; GCM: ${gcm.version || gcm.error}`);
  assert.deepEqual(problems, [], problems.join('\n'));
  await srv.stop();
});

test('G5. --web-dir serves regular files, not symbolic links out of the directory', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-web-'));
  const outside = mkdtempSync(join(tmpdir(), 'camus-outside-'));
  const secret = 'secret-' + randomBytes(8).toString('hex');
  try {
    writeFileSync(join(outside, 'secret.txt'), secret + '\n');
    writeFileSync(join(dir, 'index.html'), '<!doctype html><title>t</title>');
    writeFileSync(join(dir, 'hello.txt'), 'hello\n');
    symlinkSync(join(outside, 'secret.txt'), join(dir, 'leak.txt'));
    symlinkSync('/etc/hostname', join(dir, 'hostname.txt'));
    const srv = await startServer(['--web-dir', dir]);
    const ok = await get(srv, '127.0.18.1', '/hello.txt');
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'hello\n');
    const leak = await get(srv, '127.0.18.1', '/leak.txt');
    assert.equal(leak.status, 404, `a symlink to a file outside --web-dir: ${leak.status} ${leak.body.slice(0, 80)}`);
    assert.ok(!leak.body.includes(secret), 'its content is not served');
    assert.equal((await get(srv, '127.0.18.1', '/hostname.txt')).status, 404, 'a symlink to /etc/hostname');
    await srv.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
    rmSync(outside, { recursive: true, force: true });
  }
});

// Runs the server with args until it listens (then stops it) or exits: { started, code, log }.
function tryStart(args, ms = 10000) {
  return new Promise((resolve) => {
    const proc = spawn(BIN, ['--host', '127.0.0.1', '--port', '0', '--udp-port', '0', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '', done = false, started = false;
    const finish = (v) => { if (done) return; done = true; clearTimeout(timer); resolve({ ...v, log }); };
    const timer = setTimeout(() => { proc.kill('SIGKILL'); finish({ started, code: 'timeout' }); }, ms);
    proc.stderr.on('data', (d) => {
      log += d.toString();
      if (!started && /listening on/.test(log)) { started = true; proc.kill('SIGTERM'); }
    });
    proc.on('exit', (code) => finish({ started, code }));
  });
}

test('G6a. --state-dir writable by others (0777) with --tls: the server refuses to start, naming it', async () => {
  const open = mkdtempSync(join(tmpdir(), 'camus-state-open-'));
  try {
    chmodSync(open, 0o777);
    const r = await tryStart(['--tls', '--state-dir', open]);
    assert.ok(!r.started, `started with a world-writable state directory (mode 0777)\n${r.log}`);
    assert.notEqual(r.code, 0);
    assert.ok(r.log.includes(open), `the message names the directory: ${r.log}`);
  } finally {
    rmSync(open, { recursive: true, force: true });
  }
});

test('G6b. --state-dir whose cert.pem is a symbolic link: the server refuses to start (cannot load)', async () => {
  const linked = mkdtempSync(join(tmpdir(), 'camus-state-link-'));
  const elsewhere = mkdtempSync(join(tmpdir(), 'camus-elsewhere-'));
  try {
    // cert.pem made by the server, then moved elsewhere and replaced by a link to it.
    const made = await tryStart(['--tls', '--state-dir', linked]);
    assert.ok(made.started, `first start makes the certificate: ${made.log}`);
    assert.ok(existsSync(join(linked, 'cert.pem')) && existsSync(join(linked, 'key.pem')));
    renameSync(join(linked, 'cert.pem'), join(elsewhere, 'cert.pem'));
    symlinkSync(join(elsewhere, 'cert.pem'), join(linked, 'cert.pem'));
    const r = await tryStart(['--tls', '--state-dir', linked]);
    assert.ok(!r.started, `started with cert.pem a symbolic link in the state directory\n${r.log}`);
    assert.notEqual(r.code, 0);
    assert.match(r.log, /cannot load/, r.log);
    assert.ok(r.log.includes(join(linked, 'cert.pem')), `names the file: ${r.log}`);
  } finally {
    for (const d of [linked, elsewhere]) rmSync(d, { recursive: true, force: true });
  }
});

await run();
