// The built-in TURN server (RFC 8656) on the UDP port (and over TCP on the HTTP port), against TURN
// clients we did not write (aioice 0.8, driven by test/turn_client.py, and Chromium) and, for what
// a client should never send, raw STUN from Node: relaying both ways with Send and Data
// indications and with channels; the REST credentials (from --turn-secret, or from the answer to
// an offer and the secret kept in the state directory); the peers it refuses; its quotas and
// lifetimes; hostile datagrams; details of RFC 8656 and RFC 8489.  Where the server falls short of
// the RFCs a test gathers every shortfall it saw and fails with the list.
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, test, assert, run, root, sleep, BIN, launchChromium, turnTcp } from './lib.mjs';
import { MAGIC, stun, stunParse, u16, u32, udpSocket, USERNAME, MESSAGE_INTEGRITY, XOR_MAPPED_ADDRESS, BINDING_SUCCESS, check, newPeer, until } from './stun.mjs';

const PY = '/usr/bin/python3';
const REALM = 'camus';
// TURN's methods (RFC 8656 section 17) and the classes of a message type.
const ALLOCATE = 0x003, REFRESH = 0x004, SEND = 0x006, DATA_M = 0x007, CREATE_PERMISSION = 0x008, CHANNEL_BIND = 0x009;
const INDICATION = 0x010, SUCCESS = 0x100, ERROR = 0x110; // a request's class is 0
// Its attributes (section 18) and RFC 8489's that it uses.
const CHANNEL_NUMBER = 0x000c, LIFETIME = 0x000d, XOR_PEER_ADDRESS = 0x0012, DATA = 0x0013, REALM_A = 0x0014,
  NONCE = 0x0015, XOR_RELAYED_ADDRESS = 0x0016, REQUESTED_ADDRESS_FAMILY = 0x0017, EVEN_PORT = 0x0018,
  REQUESTED_TRANSPORT = 0x0019, SOFTWARE = 0x8022;
const UDP = 17, TCP = 6;
const RELAY_PORTS = [49152, 49407]; // the default --turn-ports

// ------------------------------------------------------------------ credentials and addresses

// REST-API credentials (user "<expiry>:<id>", password base64(HMAC-SHA1(secret, user))) and the
// long-term key RFC 8489 section 9.2.2 makes of them: MD5(user ":" realm ":" password).
function rest(secret, expiry, id = 'test') {
  const user = `${expiry}:${id}`;
  return withKey(user, createHmac('sha1', secret).update(user).digest('base64'));
}
const withKey = (user, pass) => ({ user, pass, key: createHash('md5').update(`${user}:${REALM}:${pass}`).digest() });
const now = () => Math.floor(Date.now() / 1000);

// An XOR-PEER-ADDRESS (or any XOR address) value for ip:port; IPv6 is XORed with the transaction id too.
function xorAddress(ip, port, txid) {
  const v6 = ip.includes(':');
  const raw = v6 ? ipv6Bytes(ip) : Buffer.from(ip.split('.').map(Number));
  const pad = Buffer.concat([u32(MAGIC), txid]);
  return Buffer.concat([Buffer.from([0, v6 ? 2 : 1]), u16(port ^ (MAGIC >>> 16)), Buffer.from(raw.map((b, i) => b ^ pad[i]))]);
}
function ipv6Bytes(ip) {
  const [head, tail = ''] = ip.split('::');
  const h = head ? head.split(':') : [], t = tail ? tail.split(':') : [];
  const words = [...h, ...Array(8 - h.length - t.length).fill('0'), ...t];
  return Buffer.concat(words.map((w) => u16(parseInt(w, 16))));
}
function readXorAddress(v, txid) {
  if (!v || v.length !== 8 || v[1] !== 1) return null;
  const pad = Buffer.concat([u32(MAGIC), txid]);
  return { ip: [0, 1, 2, 3].map((k) => v[4 + k] ^ pad[k]).join('.'), port: v.readUInt16BE(2) ^ (MAGIC >>> 16) };
}
const lifetimeOf = (m) => (m.attrs[LIFETIME] ? m.attrs[LIFETIME].readUInt32BE(0) : null);

// ------------------------------------------------------------------ a raw TURN client (Node)

// A UDP socket on `bind` that speaks TURN to the server by hand.  ask() sends a message and waits
// (at most ms) for the STUN answer with its transaction id: parsed by stunParse (integrityOk checked
// with the client's key), null if none came.  request() signs with the long-term credentials,
// learning a nonce first (and again after a 438).  Over UDP from bind, or over TCP to the HTTP port.
async function turnClient(srv, creds, { bind = '127.0.0.1', tcp = false } = {}) {
  const u = tcp ? await turnTcp(srv.port) : await udpSocket(srv.udpPort, { bind });
  const c = {
    u, creds, nonce: null, port: u.port,
    async ask(msg, txid, ms = 1000, key = c.creds && c.creds.key) {
      const mark = u.got.length;
      await u.send(msg);
      for (const end = Date.now() + ms; Date.now() < end; await sleep(5)) {
        const g = u.got.slice(mark).find((x) => x.data.length >= 20 && x.data.subarray(8, 20).equals(txid));
        if (g) {
          const m = stunParse(g.data, key);
          if (m) m.raw = g.data;
          return m;
        }
      }
      return null;
    },
    // Whatever arrives within ms after sending msg (silence: []).
    async sendAndListen(msg, ms = 300) {
      const mark = u.got.length;
      await u.send(msg);
      await sleep(ms);
      return u.got.slice(mark).map((g) => g.data);
    },
    // An unauthenticated Allocate as a real client's first (REQUESTED-TRANSPORT, LIFETIME, SOFTWARE,
    // FINGERPRINT): the server's 401 gives a realm and a nonce.
    async learnNonce() {
      const { msg, txid } = stun({ type: ALLOCATE, attrs: [[REQUESTED_TRANSPORT, u32(UDP << 24)], [LIFETIME, u32(600)],
        [SOFTWARE, 'camus turn test']] });
      const m = await c.ask(msg, txid);
      assert.ok(m && m.code === 401 && m.attrs[NONCE], `no 401 with a nonce: ${JSON.stringify(m)}`);
      c.nonce = m.attrs[NONCE];
      return m;
    },
    signed(type, attrs = [], { txid = randomBytes(12), creds = c.creds, nonce = c.nonce, realm = REALM, corruptMac, corruptFp } = {}) {
      return stun({ type, txid, attrs: [...attrs, [USERNAME, creds.user], [REALM_A, realm], [NONCE, nonce]], key: creds.key, corruptMac, corruptFp });
    },
    async request(type, attrs = [], opts = {}) {
      if (!c.nonce) await c.learnNonce();
      for (let tries = 0; ; tries++) {
        const { msg, txid } = c.signed(type, typeof attrs === 'function' ? attrs(opts.txid || (opts.txid = randomBytes(12))) : attrs, opts);
        const m = await c.ask(msg, txid, opts.ms, (opts.creds || c.creds).key);
        if (m && m.code === 438 && tries === 0 && !opts.nonce) { c.nonce = m.attrs[NONCE]; opts.txid = undefined; continue; }
        return m;
      }
    },
    allocate: (lifetime, opts = {}) => c.request(ALLOCATE, [[REQUESTED_TRANSPORT, u32((opts.transport ?? UDP) << 24)],
      ...(lifetime === undefined ? [] : [[LIFETIME, u32(lifetime)]]), ...(opts.attrs || [])], opts),
    refresh: (lifetime, opts = {}) => c.request(REFRESH, lifetime === undefined ? [] : [[LIFETIME, u32(lifetime)]], opts),
    permit: (peers, opts = {}) => c.request(CREATE_PERMISSION, (txid) => [].concat(peers).map((p) => [XOR_PEER_ADDRESS, xorAddress(p.ip, p.port || 1, txid)]), opts),
    bind: (channel, p, opts = {}) => c.request(CHANNEL_BIND, (txid) => [[CHANNEL_NUMBER, Buffer.concat([u16(channel), u16(0)])],
      [XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, txid)]], opts),
    sendIndication(p, data, { fp = false } = {}) {
      const txid = randomBytes(12);
      return u.send(stun({ type: SEND | INDICATION, txid, attrs: [[XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, txid)], [DATA, data]], fp }).msg);
    },
    channelData: (channel, data, { len = data.length, pad = 0 } = {}) =>
      u.send(Buffer.concat([u16(channel), u16(len), data, Buffer.alloc(pad)])),
    close: () => u.close(),
  };
  return c;
}

// A peer on ip: records what it gets and answers each datagram with its bytes reversed and
// inverted (what turn_client.py expects), unless quiet.  Its port is never one of the default
// --turn-ports (the server's own address at those ports is open to relaying).
async function peer(ip, { quiet = false } = {}) {
  let s;
  for (;;) {
    s = dgram.createSocket('udp4');
    s.on('error', () => {});
    await new Promise((ok) => s.bind(0, ip, ok));
    const port = s.address().port;
    if (port < RELAY_PORTS[0] || port > RELAY_PORTS[1]) break;
    s.close();
  }
  const got = [];
  s.on('message', (data, from) => {
    got.push({ data, from: `${from.address}:${from.port}` });
    if (!quiet) s.send(Buffer.from(data).reverse().map((b) => b ^ 0xff), from.port, from.address);
  });
  return { s, got, ip, port: s.address().port, sendTo: (data, to) => new Promise((ok) => s.send(data, to.port, to.ip, ok)),
    close: () => { try { s.close(); } catch { /* closed */ } } };
}

// Runs turn_client.py with cfg; onEvent(event, child) hears each JSON line before the last.
// Resolves { status, out (the last JSON line), stderr }.
function aioice(cfg, { onEvent, ms = 30000 } = {}) {
  return new Promise((resolve) => {
    const child = spawn(PY, [join(root, 'test/turn_client.py'), JSON.stringify(cfg)], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '', stderr = '', last = null;
    child.stdout.on('data', (d) => {
      stdout += d;
      for (let i; (i = stdout.indexOf('\n')) >= 0;) {
        const line = stdout.slice(0, i);
        stdout = stdout.slice(i + 1);
        let ev;
        try { ev = JSON.parse(line); } catch { stderr += `(not JSON) ${line}\n`; continue; }
        if (ev.event && onEvent) Promise.resolve(onEvent(ev, child)).catch((e) => { stderr += `onEvent: ${e.stack}\n`; child.stdin.end('\n'); });
        else last = ev;
      }
    });
    child.stderr.on('data', (d) => { stderr += d; });
    child.stdin.on('error', () => {});
    const timer = setTimeout(() => child.kill('SIGKILL'), ms);
    child.on('close', (status) => { clearTimeout(timer); resolve({ status, out: last, stderr }); });
  });
}

// Runs the server with args, expecting it to refuse to start: { status, stderr } (killed after 3 s).
function refusedStart(args) {
  const dir = mkdtempSync(join(tmpdir(), 'camus-turn-'));
  return new Promise((resolve) => {
    const p = spawn(BIN, ['--host', '127.0.0.1', '--port', '0', '--udp-port', '0', '--state-dir', dir, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    p.stderr.on('data', (d) => { stderr += d; });
    const timer = setTimeout(() => p.kill('SIGKILL'), 3000);
    p.on('close', (status) => { clearTimeout(timer); rmSync(dir, { recursive: true, force: true }); resolve({ status, stderr }); });
  });
}

const waitLog = (srv, re, ms, what) => srv.until(() => srv.log.some((l) => re.test(l)), ms, what || String(re));
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
const hex = (b) => b.toString('hex');
const noErrors = (srv) => assert.deepEqual(srv.log.filter((l) => / ERROR /.test(l)), [], 'ERROR lines in the log');
// Whether a UDP port can be bound on all addresses now (false while a relay holds it).
const portFree = (port) => new Promise((ok) => {
  const s = dgram.createSocket('udp4');
  s.once('error', () => ok(false));
  s.bind(port, '0.0.0.0', () => { s.close(); ok(true); });
});

// ------------------------------------------------------------------ the tests

// aioice allocates on the server (over UDP or TCP) with creds and relays, in Send and Data
// indications to a peer on 127.0.0.1 and over a channel to one on 127.0.0.2; meanwhile a third
// peer, and the two before their permissions, send to the relay for nothing.  Checks what
// turn_client.py and the peers saw; resolves { r (its report), relayed, bytes (each way) }.
async function aioiceRelay(srv, creds, { transport = 'udp', release = true } = {}) {
  const sizes = [0, 1, 3, 100, 555, 1000, 1200];
  const A = await peer('127.0.0.1'), B = await peer('127.0.0.2'), stranger = await peer('127.0.0.3');
  try {
    let relayed = null;
    const py = await aioice({ mode: 'relay', transport, server: ['127.0.0.1', transport === 'tcp' ? srv.port : srv.udpPort],
      username: creds.user, password: creds.pass, indication_peer: [A.ip, A.port], channel_peer: [B.ip, B.port], sizes, release }, { ms: 20000,
      async onEvent(ev, child) {
        // Allocated, nothing permitted yet: what the peers send now must reach nobody.
        relayed = { ip: ev.relayed[0], port: ev.relayed[1] };
        for (const p of [A, B, stranger]) await p.sendTo(Buffer.from(`unasked, from ${p.ip}`), relayed);
        await sleep(300);
        child.stdin.write('go\n');
      },
    });
    assert.equal(py.status, 0, py.stderr);
    const r = py.out;
    for (const [name, ok, detail] of r.checks) assert.ok(ok, `${name}: ${JSON.stringify(detail)}`);
    assert.equal(r.checks.length, 5 + 2 * sizes.length);
    assert.deepEqual(r.relayed, [relayed.ip, relayed.port]);
    assert.ok(relayed.port >= RELAY_PORTS[0] && relayed.port <= RELAY_PORTS[1], `relay port ${relayed.port} outside the default --turn-ports`);
    assert.deepEqual(Object.values(r.channels), [[B.ip, B.port]], 'aioice bound one channel, to B');

    // The peers got exactly the bytes sent, in order, from the relayed address.
    const from = `${relayed.ip}:${relayed.port}`;
    assert.deepEqual(A.got.map((g) => hex(g.data)), [...r.sent.indication, r.sent.mixed[1]], 'what A got (Send indications)');
    assert.deepEqual(B.got.map((g) => hex(g.data)), [...r.sent.channel, r.sent.mixed[0]], 'what B got (ChannelData, then a Send indication)');
    for (const g of [...A.got, ...B.got]) assert.equal(g.from, from);
    assert.equal(stranger.got.length, 0);

    // Every answer after the first 401 is signed with the long-term key; the Allocate's gives the
    // client's own address; a release answers LIFETIME 0.
    const answers = r.answers;
    assert.deepEqual(answers[0], { method: 'ALLOCATE', class: 'ERROR', integrity: false, 'ERROR-CODE': [401, 'Unauthorized'] });
    for (const a of answers.slice(1)) assert.ok(a.class === 'RESPONSE' && a.integrity && a.integrity_ok, JSON.stringify(a));
    assert.deepEqual(answers.map((a) => a.method), ['ALLOCATE', 'ALLOCATE', 'CREATE_PERMISSION', 'CHANNEL_BIND', ...(release ? ['REFRESH'] : [])]);
    assert.deepEqual(answers[1]['XOR-MAPPED-ADDRESS'], r.local);
    assert.equal(answers[1].LIFETIME, 600);
    if (release) assert.equal(answers[4].LIFETIME, 0);
    assert.ok(srv.log.some((l) => new RegExp(`turn: 127\\.0\\.0\\.1:${r.local[1]} \\(${esc(creds.user)}\\) allocated relay ${esc(relayed.ip)}:${relayed.port}$`).test(l)),
      'the allocated line');
    return { r, relayed, bytes: 2 * sizes.reduce((a, b) => a + b, 0) + 300 + 200 };
  } finally {
    for (const p of [A, B, stranger]) p.close();
  }
}

test('aioice allocates with --turn-secret credentials and relays both ways, in Send/Data indications and over channels', async () => {
  assert.ok(existsSync(PY), 'needs /usr/bin/python3 with python3-aioice');
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret, '--turn-allow', '127.0.0.0/8']);
  try {
    const creds = rest(secret, now() + 3600, 'aioice');
    const { r, relayed, bytes } = await aioiceRelay(srv, creds);
    // The audit line of the release, with the bytes both ways; the port is free again.
    await waitLog(srv, new RegExp(`turn: 127\\.0\\.0\\.1:${r.local[1]} \\(${esc(creds.user)}\\) released relay port ${relayed.port}: released by its client; ${bytes} bytes relayed out, ${bytes} in, 0 dropped$`),
      2000, `the released line with ${bytes} bytes each way`);
    assert.ok(await portFree(relayed.port), 'the relay port is free again');
    noErrors(srv);
  } finally {
    await srv.stop();
  }
}, { timeout: 30000 });

test('aioice over TCP to the HTTP port: the same relaying; closing the connection ends the allocation', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret, '--turn-allow', '127.0.0.0/8']);
  try {
    const creds = rest(secret, now() + 3600, 'aioice-tcp');
    const { r, relayed, bytes } = await aioiceRelay(srv, creds, { transport: 'tcp', release: false });
    await waitLog(srv, new RegExp(`\\(${esc(creds.user)}\\) released relay port ${relayed.port}: its connection closed; ${bytes} bytes relayed out, ${bytes} in, 0 dropped$`),
      2000, `the released line (connection closed) with ${bytes} bytes each way`);
    assert.ok(await portFree(relayed.port), 'the relay port is free again');
    assert.equal((await srv.get('/api/config')).status, 200, 'HTTP on the same port');
    noErrors(srv);
  } finally {
    await srv.stop();
  }
}, { timeout: 30000 });

test('TURN over TCP: an idle allocation lives its LIFETIME, not the HTTP idle timeout', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret, '--idle-timeout', '2']);
  let c;
  try {
    c = await turnClient(srv, rest(secret, now() + 600), { tcp: true });
    const r = await c.allocate(600);
    assert.equal(r.type, ALLOCATE | SUCCESS, `${r.code} ${r.reason}`);
    assert.equal(lifetimeOf(r), 600);
    await sleep(3500); // quiet, as a client between refreshes is (RFC 8656 section 8: one a minute before expiry)
    const again = c.u.closed ? null : await c.refresh(600);
    assert.ok(again && again.type === (REFRESH | SUCCESS), `the allocation granted 600 s was gone after 3.5 s of quiet: ${c.u.closed ? 'connection closed' : JSON.stringify(again)}; ${srv.log.filter((l) => /released/.test(l))}`);
    noErrors(srv);
  } finally {
    if (c) c.close();
    await srv.stop();
  }
}, { timeout: 15000 });

test('credentials: wrong, expired or malformed ones get 401; those in the answer to an offer work, also after a restart', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  let srv = await startServer(['--turn-secret', secret]);
  const dir = mkdtempSync(join(tmpdir(), 'camus-turn-'));
  const clients = [];
  try {
    const good = rest(secret, now() + 600);
    const c = await turnClient(srv, good);
    clients.push(c);
    // A first Allocate without credentials gets a 401 with the realm and a nonce, unsigned.
    const m = await c.learnNonce();
    assert.equal(m.type, ALLOCATE | ERROR);
    assert.equal(m.attrs[REALM_A].toString(), REALM);
    assert.match(m.attrs[NONCE].toString(), /^[0-9a-f]{32}$/);
    assert.ok(!m.attrs[MESSAGE_INTEGRITY] && m.fingerprintOk);

    const refused = {
      'wrong password': withKey(good.user, good.pass.replace(/^./, (x) => (x === 'A' ? 'B' : 'A'))),
      'expired a second ago': rest(secret, now() - 1),
      'another secret': rest('not-' + secret, now() + 600),
      'user without an expiry': withKey('alice', createHmac('sha1', secret).update('alice').digest('base64')),
      'user ":x"': withKey(':x', createHmac('sha1', secret).update(':x').digest('base64')),
      'user "12x:y"': withKey('12x:y', createHmac('sha1', secret).update('12x:y').digest('base64')),
    };
    for (const [what, creds] of Object.entries(refused)) {
      const r = await c.allocate(600, { creds });
      assert.ok(r, `${what}: no answer`);
      assert.equal(r.code, 401, `${what}: ${r.code} ${r.reason}`);
      assert.equal(r.attrs[REALM_A].toString(), REALM, what);
      assert.match(r.attrs[NONCE].toString(), /^[0-9a-f]{32}$/, what);
      assert.ok(!r.attrs[MESSAGE_INTEGRITY], `${what}: a 401 must not be signed`);
    }
    let r = await c.allocate(600, { realm: 'elsewhere' });
    assert.equal(r.code, 401, 'another realm');
    r = await c.allocate(600, { corruptMac: true });
    assert.equal(r.code, 401, 'a MAC off by one bit');
    assert.ok(!srv.log.some((l) => /allocated relay/.test(l)), 'nothing allocated so far');
    r = await c.allocate(600);
    assert.equal(r.type, ALLOCATE | SUCCESS, `the right credentials: ${r.code} ${r.reason}`);
    assert.ok(r.integrityOk);

    // aioice with a wrong password: its retry with the key gets 401 again, and it gives up.
    const py = await aioice({ mode: 'allocate', server: ['127.0.0.1', srv.udpPort], username: good.user, password: good.pass + 'x' }, { ms: 15000 });
    assert.equal(py.status, 0, py.stderr);
    assert.deepEqual(py.out.error, [401, 'Unauthorized']);
    assert.deepEqual(py.out.answers.map((a) => a['ERROR-CODE'][0]), [401, 401]);
    await srv.stop();

    // Without --turn-secret: a random secret, kept in the state directory; the answer to an offer
    // carries credentials for the member, good for 12 hours.
    srv = await startServer(['--state-dir', dir]);
    const stored = readFileSync(join(dir, 'turn-secret'), 'utf8');
    assert.match(stored, /^[0-9a-f]{64}\n$/);
    assert.equal((await srv.post('/api/rooms', { name: 'Relay' })).status, 201);
    const offer = readFileSync(new URL('./fixtures/chromium-datachannel.sdp', import.meta.url), 'utf8');
    const ans = await srv.post('/rtc/relay/offer', { sdp: offer, type: 'offer' });
    assert.equal(ans.status, 200, ans.text);
    const turn = ans.json.turn;
    assert.deepEqual(Object.keys(turn).sort(), ['credential', 'tcp', 'tls', 'udp', 'username']);
    assert.equal(turn.udp, srv.udpPort);
    assert.equal(turn.tcp, srv.port);
    assert.equal(turn.tls, false);
    const [, expiry] = turn.username.match(/^(\d+):(.+)$/) || [];
    assert.ok(Math.abs(Number(expiry) - (now() + 43200)) < 60, `expiry ${expiry}`);
    assert.equal(turn.credential, createHmac('sha1', Buffer.from(stored.trim(), 'hex')).update(turn.username).digest('base64'));
    const second = await srv.post('/rtc/relay/offer', { sdp: offer, type: 'offer' });
    assert.notEqual(second.json.turn.username, turn.username, 'each member gets its own user name');
    for (const which of ['first', 'second']) {
      const a = await aioice({ mode: 'allocate', server: ['127.0.0.1', turn.udp], username: turn.username, password: turn.credential }, { ms: 15000 });
      assert.equal(a.status, 0, a.stderr);
      assert.ok(a.out.relayed, `${which} server: ${JSON.stringify(a.out)}`);
      await waitLog(srv, new RegExp(`\\(${esc(turn.username)}\\) released relay port ${a.out.relayed[1]}: released by its client`), 2000, 'released');
      noErrors(srv);
      if (which === 'second') break;
      // The same credentials at a new server on the same state directory: the secret persisted.
      await srv.stop();
      srv = await startServer(['--state-dir', dir]);
      turn.udp = srv.udpPort;
      assert.equal(readFileSync(join(dir, 'turn-secret'), 'utf8'), stored);
    }
  } finally {
    for (const c of clients) c.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 40000 });

test('policy: loopback, private, link-local and other closed ranges are refused (403) and get nothing; --turn-allow opens one', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  let srv = await startServer(['--turn-secret', secret]);
  const P = await peer('127.0.0.1', { quiet: true });
  let c;
  try {
    c = await turnClient(srv, rest(secret, now() + 600));
    assert.equal((await c.allocate(600)).type, ALLOCATE | SUCCESS);
    const closed = [P.ip, '127.8.9.10', '10.0.0.1', '192.168.1.1', '169.254.1.1', '172.16.0.1', '172.31.255.254', '100.64.0.1',
      '0.0.0.0', '224.0.0.1', '239.255.255.250', '255.255.255.255', '::1', 'fe80::1', 'fc00::1', 'fd12:3456::1', 'ff02::1', '::'];
    for (const ip of closed) {
      const r = await c.permit({ ip, port: P.port });
      assert.ok(r, `${ip}: no answer`);
      // For an IPv6 peer of this IPv4 relay, 443 (Peer Address Family Mismatch) refuses as well.
      assert.ok(r.code === 403 || (ip.includes(':') && r.code === 443), `CreatePermission for ${ip}: ${r.type.toString(16)} ${r.code} ${r.reason}`);
      assert.ok(r.integrityOk, `${ip}: the 403 is signed`);
    }
    for (const [i, ip] of ['127.0.0.1', '10.1.2.3', '192.168.0.7'].entries()) {
      const r = await c.bind(0x4000 + i, { ip, port: P.port });
      assert.equal(r.code, 403, `ChannelBind to ${ip}`);
    }
    // One closed peer among open ones: the whole request is refused.
    assert.equal((await c.permit([{ ip: '198.51.100.7' }, { ip: '10.0.0.1' }])).code, 403);
    // Addresses outside those ranges are permitted (nothing is sent to them).
    for (const ip of ['198.51.100.7', '203.0.113.9', '8.8.8.8', '172.32.0.1', '100.128.0.1', '169.255.0.1']) {
      const r = await c.permit({ ip });
      assert.equal(r.type, CREATE_PERMISSION | SUCCESS, `${ip}: ${r.code} ${r.reason}`);
      assert.ok(r.integrityOk);
    }
    // Data for the loopback peer goes nowhere, in a Send indication or on a channel.
    await c.sendIndication({ ip: P.ip, port: P.port }, Buffer.from('let me in'));
    await c.channelData(0x4000, Buffer.from('let me in too'));
    await sleep(300);
    assert.equal(P.got.length, 0, 'the loopback peer got something');
    noErrors(srv);
    c.close();
    await srv.stop();

    // --turn-allow 127.0.0.2/32: that one address, not its neighbours.
    srv = await startServer(['--turn-secret', secret, '--turn-allow', '127.0.0.2/32']);
    const Q = await peer('127.0.0.2', { quiet: true });
    try {
      c = await turnClient(srv, rest(secret, now() + 600));
      assert.equal((await c.allocate(600)).type, ALLOCATE | SUCCESS);
      assert.equal((await c.permit({ ip: '127.0.0.1' })).code, 403);
      assert.equal((await c.permit({ ip: '127.0.0.3' })).code, 403);
      assert.equal((await c.permit({ ip: '127.0.0.2' })).type, CREATE_PERMISSION | SUCCESS);
      await c.sendIndication({ ip: Q.ip, port: Q.port }, Buffer.from('allowed'));
      await c.sendIndication({ ip: P.ip, port: P.port }, Buffer.from('not allowed'));
      await srv.until(() => Q.got.length === 1, 2000, 'the allowed peer gets its datagram');
      assert.equal(Q.got[0].data.toString(), 'allowed');
      await sleep(200);
      assert.equal(P.got.length, 0);
    } finally {
      Q.close();
    }
    // A range that is no range keeps the server from starting.
    const bad = await refusedStart(['--turn-allow', '127.0.0.0/33']);
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /--turn-allow/);
    noErrors(srv);
  } finally {
    if (c) c.close();
    P.close();
    await srv.stop();
  }
}, { timeout: 30000 });

// In a page: a relay-only peer connection gathering with the TURN server at urls; resolves to its
// candidates once it has a relay one, has finished, or 5 s have passed.
async function gatherRelay(page, urls, turn) {
  return page.evaluate(async ({ urls, username, credential }) => {
    const pc = new RTCPeerConnection({ iceServers: [{ urls, username, credential }], iceTransportPolicy: 'relay' });
    pc.createDataChannel('x');
    const cands = [];
    const done = new Promise((ok) => {
      pc.onicecandidate = (e) => { if (e.candidate) cands.push(e.candidate.candidate); if (!e.candidate || / typ relay /.test(e.candidate.candidate)) ok(); };
      setTimeout(ok, 5000);
    });
    await pc.setLocalDescription(await pc.createOffer());
    await done;
    pc.close();
    return cands;
  }, { urls, username: turn.username, credential: turn.credential });
}

test('Chromium gets relay candidates with the answer\'s credentials, over UDP and TCP, and two of its connections talk through the relay', async () => {
  const srv = await startServer([]);
  const browser = await launchChromium();
  const wrong = [];
  let c;
  try {
    assert.equal((await srv.post('/api/rooms', { name: 'Chrome' })).status, 201);
    const offer = readFileSync(new URL('./fixtures/chromium-datachannel.sdp', import.meta.url), 'utf8');
    const turn = (await srv.post('/rtc/chrome/offer', { sdp: offer, type: 'offer' })).json.turn;
    // Chromium's first Allocate carries REQUESTED-TRANSPORT and nothing else: 28 bytes (seen from
    // Chromium 156); RFC 8489 section 9.2.4 answers it 401 with a realm and a nonce.
    const { msg, txid } = stun({ type: ALLOCATE, attrs: [[REQUESTED_TRANSPORT, u32(UDP << 24)]], fp: false });
    assert.equal(msg.length, 28);
    for (const tcp of [false, true]) {
      c = await turnClient(srv, null, { tcp });
      const m = await c.ask(msg, txid, 500);
      c.close();
      if (!m || m.code !== 401) wrong.push(`a 28-byte Allocate over ${tcp ? 'TCP' : 'UDP'} (Chromium's first) got ${m ? m.code : 'no answer'}, not a 401`);
    }
    const page = await browser.newPage();
    const relays = {};
    for (const [transport, port] of [['udp', turn.udp], ['tcp', turn.tcp]]) {
      const cands = await gatherRelay(page, `turn:127.0.0.1:${port}?transport=${transport}`, turn);
      relays[transport] = cands.find((x) => / typ relay /.test(x));
      if (!relays[transport]) wrong.push(`Chromium gathered no relay candidate over ${transport}: ${JSON.stringify(cands)}`);
      else assert.match(relays[transport], / udp \d+ 127\.0\.0\.1 (\d+) typ relay /);
    }
    if (relays.udp) {
      // Two relay-only connections of one page: each reaches the other's relay port (the server's
      // own address at a relay port, which it allows without --turn-allow).
      const res = await page.evaluate(async ({ urls, username, credential }) => {
        const cfg = { iceServers: [{ urls, username, credential }], iceTransportPolicy: 'relay' };
        const a = new RTCPeerConnection(cfg), b = new RTCPeerConnection(cfg);
        a.onicecandidate = (e) => e.candidate && b.addIceCandidate(e.candidate);
        b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
        const dc = a.createDataChannel('relay');
        const got = new Promise((ok) => { b.ondatachannel = (e) => { e.channel.onmessage = (m) => ok(m.data); }; });
        await a.setLocalDescription();
        await b.setRemoteDescription(a.localDescription);
        await b.setLocalDescription();
        await a.setRemoteDescription(b.localDescription);
        try {
          await new Promise((ok, ko) => { dc.onopen = ok; setTimeout(() => ko(new Error('no channel: ' + a.connectionState)), 8000); });
        } catch (e) { return { error: String(e) }; }
        dc.send('through camus');
        const msg = await Promise.race([got, new Promise((r) => setTimeout(() => r(null), 3000))]);
        const st = await a.getStats();
        let pair;
        st.forEach((s) => { if (s.type === 'transport' && s.selectedCandidatePairId) pair = st.get(s.selectedCandidatePairId); });
        const types = pair ? [st.get(pair.localCandidateId).candidateType, st.get(pair.remoteCandidateId).candidateType] : null;
        a.close();
        b.close();
        return { msg, types };
      }, { urls: `turn:127.0.0.1:${turn.udp}?transport=udp`, username: turn.username, credential: turn.credential });
      assert.deepEqual(res, { msg: 'through camus', types: ['relay', 'relay'] });
      await waitLog(srv, /released relay port \d+: released by its client; [1-9]\d* bytes relayed out, [1-9]\d* in, 0 dropped$/, 3000, 'a release with bytes relayed');
    }
    noErrors(srv);
    assert.deepEqual(wrong, []);
  } finally {
    if (c) c.close();
    await browser.close();
    await srv.stop();
  }
}, { timeout: 40000 });

test("the server's own address: open at its media and relay ports only, and a permission got so opens no other port", async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret]); // its own address is 127.0.0.1
  const P = await peer('127.0.0.1', { quiet: true });
  let c;
  try {
    c = await turnClient(srv, rest(secret, now() + 600));
    assert.equal((await c.allocate(600)).type, ALLOCATE | SUCCESS);
    assert.equal((await c.permit({ ip: '127.0.0.1', port: srv.port })).code, 403, 'own address, HTTP port');
    assert.equal((await c.permit({ ip: '127.0.0.1', port: P.port })).code, 403, 'own address, another port');
    assert.equal((await c.bind(0x4010, { ip: '127.0.0.1', port: srv.port })).code, 403, 'a channel to the HTTP port');
    for (const [what, port] of [['media port', srv.udpPort], ['a relay port', RELAY_PORTS[1]]]) {
      const r = await c.permit({ ip: '127.0.0.1', port });
      assert.equal(r.type, CREATE_PERMISSION | SUCCESS, `own address, ${what}: ${r.code} ${r.reason}`);
    }
    // A permission is for an address, whatever the port (RFC 8656 section 9): the one got for the
    // media port must not let data through to the rest of the address, here a loopback service.
    await c.sendIndication({ ip: P.ip, port: P.port }, Buffer.from("through the media port's permission"));
    await c.sendIndication({ ip: '127.0.0.1', port: srv.port }, Buffer.from('GET / HTTP/1.0\r\n\r\n'));
    await sleep(300);
    assert.deepEqual(P.got.map((g) => g.data.toString()), [], 'a loopback service reached through the permission for the own media port');
    noErrors(srv);
  } finally {
    if (c) c.close();
    P.close();
    await srv.stop();
  }
}, { timeout: 20000 });

test('a member reaching the media port only through TURN: its ICE check is answered back through the relay, in a Data indication and on a channel', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret]); // its own address, and candidate, is 127.0.0.1
  let c;
  try {
    assert.equal((await srv.post('/api/rooms', { name: 'Inside' })).status, 201);
    const p = await newPeer(srv.url, 'inside');
    c = await turnClient(srv, rest(secret, now() + 600));
    let r = await c.allocate(600);
    assert.equal(r.type, ALLOCATE | SUCCESS);
    const relayed = readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid);
    const media = { ip: '127.0.0.1', port: srv.udpPort };
    assert.equal((await c.permit(media)).type, CREATE_PERMISSION | SUCCESS);
    // The answer to a check is a Binding success to the relayed address, the one the server saw it from.
    const answered = (b, what) => {
      const m = stunParse(b, p.pwd);
      assert.ok(m && m.type === BINDING_SUCCESS && m.integrityOk, `${what}: not a signed Binding success`);
      assert.deepEqual(readXorAddress(m.attrs[XOR_MAPPED_ADDRESS], m.txid), relayed, `${what}: seen from the relayed address`);
    };
    const viaSend = check(p);
    const mark = c.u.got.length;
    await c.sendIndication(media, viaSend.msg);
    await until(() => c.u.got.length > mark, 2000, 'a Data indication');
    const data = stunParse(c.u.got[mark].data);
    assert.equal(data.type, DATA_M | INDICATION, 'a Data indication');
    assert.deepEqual(readXorAddress(data.attrs[XOR_PEER_ADDRESS], data.txid), media, 'from the media port');
    answered(data.attrs[DATA], 'Send/Data');
    assert.equal((await c.bind(0x4001, media)).type, CHANNEL_BIND | SUCCESS);
    const mark2 = c.u.got.length;
    const viaChannel = check(p);
    await c.channelData(0x4001, viaChannel.msg);
    await until(() => c.u.got.slice(mark2).some((g) => g.data.readUInt16BE(0) === 0x4001), 2000, 'ChannelData back');
    const cd = c.u.got.slice(mark2).find((g) => g.data.readUInt16BE(0) === 0x4001).data;
    answered(cd.subarray(4, 4 + cd.readUInt16BE(2)), 'ChannelData');
    // TURN inside TURN is not carried to the media port: an Allocate sent there gets nothing.
    const before = c.u.got.length;
    await c.channelData(0x4001, stun({ type: ALLOCATE, attrs: [[REQUESTED_TRANSPORT, u32(UDP << 24)]] }).msg);
    await sleep(300);
    assert.equal(c.u.got.length, before, 'an Allocate relayed to the media port was answered');
    noErrors(srv);
  } finally {
    if (c) c.close();
    await srv.stop();
  }
}, { timeout: 20000 });

// The quotas as camus.c has them, so that the test follows the code.
const camusC = readFileSync(join(root, 'camus.c'), 'utf8');
const quota = (name) => Number(camusC.match(new RegExp(`#define ${name} (\\d+)`))[1]);

test('quotas: allocations per member and per address (the next gets 486); Refresh with LIFETIME 0 frees one and its port', async () => {
  const PER_HOST = quota('CAMUS_TURN_PER_HOST'), PER_MEMBER = quota('CAMUS_TURN_PER_MEMBER');
  assert.ok(PER_MEMBER > 1 && PER_MEMBER < PER_HOST, `per member ${PER_MEMBER}, per address ${PER_HOST}`);
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret]);
  const member = (k) => rest(secret, now() + 600, `member-${k}`);
  const cs = [];
  const client = async (creds, bind = '127.0.0.1') => {
    const c = await turnClient(srv, creds, { bind });
    cs.push(c);
    return c;
  };
  try {
    // Member 0 takes its quota from 127.0.0.1; its next is refused, signed.
    const ports = [], first = [];
    for (let i = 0; i < PER_MEMBER; i++) {
      const c = await client(member(0));
      const r = await c.allocate(600);
      assert.equal(r.type, ALLOCATE | SUCCESS, `allocation ${i + 1} of member 0: ${r.code} ${r.reason}`);
      assert.ok(r.integrityOk);
      assert.deepEqual(readXorAddress(r.attrs[XOR_MAPPED_ADDRESS], r.txid), { ip: '127.0.0.1', port: c.port });
      assert.equal(lifetimeOf(r), 600);
      ports.push(readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid).port);
      first.push(c);
    }
    let r = await (await client(member(0))).allocate(600);
    assert.equal(r.code, 486, `member 0's allocation ${PER_MEMBER + 1}: ${r.code} ${r.reason}`);
    assert.ok(r.integrityOk, 'the 486 is signed');
    r = await (await client(member(0), '127.0.0.9')).allocate(600);
    assert.equal(r.code, 486, `member 0 from another address: ${r.code} ${r.reason}`);

    // Other members fill the address's quota; the next member from it is refused, another address is not.
    for (let k = 1; ports.length < PER_HOST; k++) {
      for (let i = 0; i < PER_MEMBER && ports.length < PER_HOST; i++) {
        r = await (await client(member(k))).allocate(600);
        assert.equal(r.type, ALLOCATE | SUCCESS, `allocation ${ports.length + 1} of 127.0.0.1: ${r.code} ${r.reason}`);
        ports.push(readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid).port);
      }
    }
    assert.equal(new Set(ports).size, PER_HOST, `${PER_HOST} relay ports`);
    r = await (await client(member(99))).allocate(600);
    assert.equal(r.code, 486, `allocation ${PER_HOST + 1} of 127.0.0.1: ${r.code} ${r.reason}`);

    // From another address, by hand, to send its Allocate twice: a retransmission gets the same answer.
    const other = await client(member(99), '127.0.0.9');
    await other.learnNonce();
    const req = other.signed(ALLOCATE, [[REQUESTED_TRANSPORT, u32(UDP << 24)]]);
    r = await other.ask(req.msg, req.txid);
    assert.equal(r.type, ALLOCATE | SUCCESS, 'another address has its own quota');
    const relay = readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid).port;
    r = await other.ask(req.msg, req.txid);
    assert.equal(r.type, ALLOCATE | SUCCESS, `the same Allocate again: ${r.code} ${r.reason}`);
    assert.equal(readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid).port, relay, 'the same relay');
    assert.equal(await portFree(ports[0]), false, 'a relay port in use can be bound by another');

    // A new Allocate (another transaction) on a 5-tuple that has one: 437.
    r = await first[1].allocate(600);
    assert.equal(r.code, 437, 'a second allocation on one 5-tuple');
    assert.ok(r.integrityOk);

    // Release member 0's first: LIFETIME 0 answered, the audit line, the port free, both quotas have room again.
    const creds = first[0].creds;
    r = await first[0].refresh(0);
    assert.equal(r.type, REFRESH | SUCCESS);
    assert.ok(r.integrityOk);
    assert.equal(lifetimeOf(r), 0);
    await waitLog(srv, new RegExp(`turn: 127\\.0\\.0\\.1:${first[0].port} \\(${esc(creds.user)}\\) released relay port ${ports[0]}: released by its client; 0 bytes relayed out, 0 in, 0 dropped$`), 2000, 'released by its client');
    assert.ok(await portFree(ports[0]), 'the released port is free');
    r = await first[0].refresh(600);
    assert.equal(r.code, 437, 'a refresh of what was released');
    r = await (await client(member(0))).allocate(600);
    assert.equal(r.type, ALLOCATE | SUCCESS, `member 0 once one of its own is released: ${r.code} ${r.reason}`);
    assert.equal(srv.log.filter((l) => /allocated relay/.test(l)).length, PER_HOST + 2);
    noErrors(srv);
  } finally {
    for (const c of cs) c.close();
    await srv.stop();
  }
}, { timeout: 30000 });

test('lifetimes as RFC 8656 sections 7.2 and 8.2 compute them: at least the default (600 s), at most 3600 s', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret]);
  const creds = rest(secret, now() + 600);
  const cs = [];
  const wrong = [];
  const want = (what, got, expected) => { if (got !== expected) wrong.push(`${what}: LIFETIME ${got}, RFC 8656 gives ${expected}`); };
  try {
    for (const [asked, expected] of [[undefined, 600], [10, 600], [0, 600], [599, 600], [601, 601], [3600, 3600], [99999, 3600]]) {
      const c = await turnClient(srv, creds);
      cs.push(c);
      const r = await c.allocate(asked);
      assert.equal(r.type, ALLOCATE | SUCCESS, `Allocate with LIFETIME ${asked}: ${r.code} ${r.reason}`);
      want(`Allocate asking ${asked}`, lifetimeOf(r), expected);
    }
    const c = cs[0];
    for (const [asked, expected] of [[undefined, 600], [10, 600], [99999, 3600], [1200, 1200]]) {
      const r = await c.refresh(asked);
      assert.equal(r.type, REFRESH | SUCCESS, `Refresh with LIFETIME ${asked}: ${r.code} ${r.reason}`);
      assert.ok(r.integrityOk);
      want(`Refresh asking ${asked}`, lifetimeOf(r), expected);
    }
    noErrors(srv);
    assert.deepEqual(wrong, []);
  } finally {
    for (const x of cs) x.close();
    await srv.stop();
  }
}, { timeout: 20000 });

test('hostile datagrams on the UDP port: silence or the right error, nothing relayed, the server stays up', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret, '--turn-allow', '127.0.0.0/8']);
  const creds = rest(secret, now() + 600);
  const P = await peer('127.0.0.1', { quiet: true });
  const cs = [];
  const client = async (bind) => { const c = await turnClient(srv, creds, { bind }); cs.push(c); return c; };
  const silent = async (c, what, msg, ms = 250) => assert.deepEqual((await c.sendAndListen(msg, ms)).map(hex), [], `${what}: an answer`);
  try {
    const p = { ip: P.ip, port: P.port };
    // No allocation: ChannelData and Send indications are dropped without a word.
    const lone = await client();
    await silent(lone, 'ChannelData without an allocation', Buffer.concat([u16(0x4000), u16(5), Buffer.from('hello')]));
    let txid = randomBytes(12);
    await silent(lone, 'a Send indication without an allocation', stun({ type: SEND | INDICATION, txid,
      attrs: [[XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, txid)], [DATA, Buffer.from('hello')]] }).msg);
    // Requests other than Allocate without an allocation: 437, signed.
    for (const [what, ask] of [['CreatePermission', () => lone.permit(p)], ['ChannelBind', () => lone.bind(0x4000, p)], ['Refresh', () => lone.refresh(600)]]) {
      const r = await ask();
      assert.equal(r && r.code, 437, `${what} before Allocate`);
      assert.ok(r.integrityOk, `${what}: the 437 is signed`);
    }

    // Allocate: a bogus nonce gets 438 with a fresh one (and the realm), which then works; so does
    // a nonce given to another client address.
    const c = await client();
    await c.learnNonce();
    const fresh = c.nonce;
    for (const [what, nonce] of [['made up', 'f'.repeat(32)], ['not hex', 'z'.repeat(32)], ['too short', 'abc'], ['expired', '0000000000000001' + fresh.subarray(16).toString()]]) {
      const r = await c.allocate(600, { nonce: Buffer.from(nonce) });
      assert.equal(r && r.code, 438, `a ${what} nonce: ${r && r.code}`);
      assert.match(r.attrs[NONCE].toString(), /^[0-9a-f]{32}$/);
      assert.equal(r.attrs[REALM_A].toString(), REALM);
      assert.ok(!r.attrs[MESSAGE_INTEGRITY]);
    }
    const other = await client('127.0.0.4');
    let r = await other.allocate(600, { nonce: fresh });
    assert.equal(r.code, 438, "another address's nonce");
    r = await c.allocate(600, { transport: TCP });
    assert.equal(r.code, 442, `REQUESTED-TRANSPORT TCP: ${r.code} ${r.reason}`);
    assert.ok(r.integrityOk, 'the 442 is signed');
    r = await c.request(ALLOCATE, [[LIFETIME, u32(600)]]);
    assert.equal(r.code, 400, 'no REQUESTED-TRANSPORT');
    r = await c.allocate(600, { attrs: [[REQUESTED_ADDRESS_FAMILY, Buffer.from([2, 0, 0, 0])]] });
    assert.equal(r.code, 440, `REQUESTED-ADDRESS-FAMILY IPv6: ${r.code} ${r.reason}`);
    r = await c.allocate(600, { attrs: [[EVEN_PORT, Buffer.from([0x80])]] });
    assert.equal(r.code, 508, `EVEN-PORT with R (a reservation): ${r.code} ${r.reason}`);
    txid = randomBytes(12);
    r = await c.ask(stun({ type: ALLOCATE, txid, attrs: [[REQUESTED_TRANSPORT, u32(UDP << 24)], [SOFTWARE, 'x'.repeat(40)]], key: creds.key }).msg, txid);
    assert.equal(r && r.code, 400, 'MESSAGE-INTEGRITY without USERNAME, REALM and NONCE');
    r = await c.allocate(600);
    assert.equal(r.type, ALLOCATE | SUCCESS, `after all that: ${r.code} ${r.reason}`);
    const relay = readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid);

    // With an allocation: nothing reaches a peer without a permission; ChannelData on an unbound
    // channel, or claiming more bytes than it has, is dropped.
    await c.sendIndication(p, Buffer.from('no permission yet'));
    await c.channelData(0x4001, Buffer.from('no channel yet'));
    // Requests about the allocation from another 5-tuple: 437; with other credentials: 441.
    assert.equal((await other.permit(p)).code, 437);
    const mallory = rest(secret, now() + 600, 'mallory');
    r = await c.permit(p, { creds: mallory });
    assert.equal(r.code, 441, `another user on the allocation: ${r.code} ${r.reason}`);
    // Channel numbers outside 0x4000-0x4FFF, and a channel or peer bound twice: 400.
    assert.equal((await c.bind(0x3fff, p)).code, 400);
    assert.equal((await c.bind(0x5000, p)).code, 400);
    assert.equal((await c.bind(0x4001, p)).type, CHANNEL_BIND | SUCCESS);
    assert.equal((await c.bind(0x4001, p)).type, CHANNEL_BIND | SUCCESS, 'a refresh of the same binding');
    assert.equal((await c.bind(0x4002, p)).code, 400, 'the peer on a second channel');
    assert.equal((await c.bind(0x4001, { ip: p.ip, port: p.port + 1 })).code, 400, 'the channel to a second peer');
    await sleep(200);
    assert.equal(P.got.length, 0, `the peer got ${P.got.map((g) => g.data.toString())}`);
    await c.channelData(0x4001, Buffer.from('too short'), { len: 100 });
    await c.channelData(0x4002, Buffer.from('unbound'));
    await c.channelData(0x4001, Buffer.from('padded'), { pad: 2 }); // over UDP padding is allowed
    await c.channelData(0x4001, Buffer.alloc(0));                    // and 0 is a valid length
    await srv.until(() => P.got.length >= 2, 2000, 'ChannelData relayed');
    await sleep(200);
    assert.deepEqual(P.got.map((g) => g.data.toString()), ['padded', ''], 'what the peer got');
    for (const g of P.got) assert.equal(g.from, `${relay.ip}:${relay.port}`);

    // Garbled and truncated messages of TURN's: silence.
    const ok = c.signed(ALLOCATE, [[REQUESTED_TRANSPORT, u32(UDP << 24)]]).msg;
    const lies = (len) => { const b = Buffer.from(ok); b.writeUInt16BE(len, 2); return b; };
    const withAttr = (type, value, len) => c.signed(REFRESH, [[type, value, len]]).msg;
    const garbage = {
      'a STUN length past the datagram': lies(ok.length - 20 + 4),
      'a STUN length short of the datagram': lies(ok.length - 20 - 8),
      'cut in the middle': ok.subarray(0, 60),
      'cut to its header': ok.subarray(0, 20),
      'an attribute longer than the message': withAttr(LIFETIME, u32(600), 400),
      'LIFETIME of 3 bytes': withAttr(LIFETIME, Buffer.alloc(3), 3),
      'CHANNEL-NUMBER of 2 bytes': withAttr(CHANNEL_NUMBER, u16(0x4000), 2),
      'REQUESTED-TRANSPORT of 8 bytes': withAttr(REQUESTED_TRANSPORT, Buffer.alloc(8), 8),
      'a USERNAME of 600 bytes': c.signed(REFRESH, [], { creds: { ...creds, user: 'u'.repeat(600) } }).msg,
      'a REALM of 800 bytes': c.signed(REFRESH, [], { realm: 'r'.repeat(800) }).msg,
      'a bad FINGERPRINT': c.signed(REFRESH, [], { corruptFp: true }).msg,
      'MESSAGE-INTEGRITY of 19 bytes': stun({ type: REFRESH, attrs: [[MESSAGE_INTEGRITY, Buffer.alloc(19)]] }).msg,
      'a success answer sent to the server': stun({ type: ALLOCATE | SUCCESS, attrs: [[LIFETIME, u32(600)]] }).msg,
      'an error answer sent to the server': stun({ type: REFRESH | ERROR, attrs: [[0x0009, Buffer.from([0, 0, 4, 1])]] }).msg,
      'a Data indication from the client': (() => { const t = randomBytes(12); return stun({ type: DATA_M | INDICATION, txid: t,
        attrs: [[XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, t)], [DATA, Buffer.from('data?')]] }).msg; })(),
      'a Send request': (() => { const t = randomBytes(12); return c.signed(SEND, [[XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, t)], [DATA, Buffer.from('x')]], { txid: t }).msg; })(),
      'a Connect request (RFC 6062), which it does not do': c.signed(0x00a, []).msg,
      'ChannelData of 3 bytes': Buffer.from([0x40, 0x01, 0x00]),
      'ChannelData of 1 byte': Buffer.from([0x40]),
      'ChannelData with length 65535': Buffer.concat([u16(0x4001), u16(0xffff), Buffer.from('abc')]),
      'ChannelData on 0x4fff': Buffer.concat([u16(0x4fff), u16(3), Buffer.from('abc')]),
      'a magic cookie and nothing else': Buffer.concat([u16(ALLOCATE), u16(0), u32(MAGIC)]),
      '2000 bytes of 0xff after a TURN header': Buffer.concat([u16(CREATE_PERMISSION), u16(1996), u32(MAGIC), Buffer.alloc(1996 + 12, 0xff)]),
    };
    for (const [what, msg] of Object.entries(garbage)) await silent(c, what, msg, 120);
    // A malformed peer address is a bad request (signed: the request was authenticated).
    r = await c.request(CREATE_PERMISSION, [[XOR_PEER_ADDRESS, Buffer.from([0, 3, 1, 2, 3, 4, 5, 6])]]);
    assert.equal(r.code, 400, 'an XOR-PEER-ADDRESS of family 3');
    assert.ok(r.integrityOk);
    // Random datagrams with a first byte of STUN's or of TURN channels' (but channel 0x4001's).
    const mark = c.u.got.length;
    for (let i = 0; i < 200; i++) {
      const b = randomBytes(1 + (i * 37) % 700);
      b[0] = i % 2 ? 0x41 + (i % 15) : i % 4;
      await c.u.send(b);
    }
    await sleep(300);
    assert.equal(c.u.got.length, mark, 'answers to random datagrams');
    assert.equal(P.got.length, 2, `the peer got more: ${P.got.slice(2).map((g) => hex(g.data).slice(0, 40))}`);

    // Still up: the HTTP side answers, the allocation still relays, nobody logged an ERROR.
    assert.equal((await srv.get('/api/config')).status, 200);
    await c.channelData(0x4001, Buffer.from('still here'));
    await srv.until(() => P.got.length === 3, 2000, 'relaying after the garbage');
    assert.equal(P.got[2].data.toString(), 'still here');
    const d = await client('127.0.0.5');
    assert.equal((await d.allocate(600)).type, ALLOCATE | SUCCESS, 'a new allocation after the garbage');
    assert.equal(srv.proc.exitCode, null);
    noErrors(srv);
  } finally {
    for (const x of cs) x.close();
    P.close();
    await srv.stop();
  }
}, { timeout: 30000 });

test('RFC details: 420 lists the unknown attributes, 443 for a peer of the other family, no truncated datagrams relayed', async () => {
  const secret = 'sesame-' + randomBytes(8).toString('hex');
  const srv = await startServer(['--turn-secret', secret, '--turn-allow', '127.0.0.0/8']);
  const creds = rest(secret, now() + 600);
  const P = await peer('127.0.0.1', { quiet: true });
  let c;
  const wrong = [];
  try {
    c = await turnClient(srv, creds);
    // RFC 8489 section 6.3.1.1: a 420 carries UNKNOWN-ATTRIBUTES listing them.
    let r = await c.allocate(600, { attrs: [[0x0031, u32(7)]] });
    assert.equal(r.code, 420, `an unknown comprehension-required attribute: ${r.code} ${r.reason}`);
    if (!r.unknown || !r.unknown.includes(0x0031)) wrong.push(`420 without UNKNOWN-ATTRIBUTES 0x0031 (RFC 8489 section 6.3.1.1): ${JSON.stringify(r.unknown)}`);
    r = await c.allocate(600);
    assert.equal(r.type, ALLOCATE | SUCCESS);
    const relay = readXorAddress(r.attrs[XOR_RELAYED_ADDRESS], r.txid);
    // RFC 8656 sections 10.2 and 12.2: an IPv6 peer for an IPv4 relay is 443.
    for (const [what, ask] of [['CreatePermission', () => c.permit({ ip: '2001:db8::1', port: 9 })], ['ChannelBind', () => c.bind(0x4123, { ip: '2001:db8::1', port: 9 })]]) {
      r = await ask();
      if (!r || r.code !== 443) wrong.push(`${what} for 2001:db8::1 on an IPv4 relay: ${r && (r.code || 'success')}, RFC 8656 wants 443`);
    }
    // A peer's datagram larger than the server reads: relayed whole or not at all, never cut.
    assert.equal((await c.bind(0x4000, { ip: P.ip, port: P.port })).type, CHANNEL_BIND | SUCCESS);
    const mark = c.u.got.length;
    for (const n of [1400, 1900, 2100, 4000]) await P.sendTo(Buffer.alloc(n, n & 255), relay);
    await sleep(400);
    const sizes = c.u.got.slice(mark).map((g) => g.data).filter((d) => d[0] === 0x40).map((d) => [d.readUInt16BE(2), d.length - 4]);
    for (const n of [1400, 1900]) if (!sizes.some(([l]) => l === n)) wrong.push(`a ${n}-byte datagram from the peer did not arrive`);
    for (const [len, got] of sizes) if (![1400, 1900, 2100, 4000].includes(len) || got !== len) wrong.push(`a peer's datagram arrived as ChannelData of ${len} bytes (${got} there)`);
    noErrors(srv);
    assert.deepEqual(wrong, []);
  } finally {
    if (c) c.close();
    P.close();
    await srv.stop();
  }
}, { timeout: 20000 });

await run();
