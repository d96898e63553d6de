// The built-in TURN server (RFC 8656) against coturn's own test client, turnutils_uclient (Debian
// coturn 4.6.1), a TURN client we did not write: it allocates with REST-API credentials computed
// here from --turn-secret, over UDP, over TCP to the HTTP port and over TLS to the HTTPS port, and
// sends its packets through the relay to turnutils_peer (coturn's UDP echo peer), which sends them
// back the same way; every packet must come back.  Then the refusals, with their codes: wrong
// credentials get 401 (uclient does not print the code, so a UDP relay of ours between it and the
// server records the exchange), a peer on loopback without --turn-allow gets 403 (uclient prints
// it), and a stale nonce gets 438 (uclient cannot be made to send one: hand-made STUN).
//
// How uclient is run, and why:
// - `-c` (no RTCP allocation): without it uclient asks for EVEN-PORT with R=1 and then for the
//   reserved port with RESERVATION-TOKEN; reservations are not made here (RFC 8656 lets a server
//   answer 508).  With -c it still adds EVEN-PORT with R=0 to an Allocate at random (one in two):
//   an even port, which a server can give; the last test pins that, without uclient's dice.
// - `-s` (Send and Data indications): uclient 4.6.1 picks channel numbers in RFC 5766's range,
//   0x4000-0x7FFF, and RFC 8656 section 12 makes 0x5000-0x7FFF a 400, so its ChannelBinds would
//   fail three times in four for the client's reason, not the server's.
// - `-z 250` over TLS (a packet every 250 ms, not 20): uclient takes what one SSL_read gives, one
//   TLS record, for one message, while the server writes whatever it queued in a turn of its loop
//   as one record (TLS is a byte stream: that is allowed).  Two echoes relayed in one turn would be
//   one record, and uclient would count the second as lost; spaced out, each gets a turn of its own.
// - Its summary lines give the totals: "tot_send_msgs=N, tot_recv_msgs=N", the bytes, and
//   "Total lost packets N".  uclient waits 1 to 6 s (at random) before sending.
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { startServer, before, test, assert, run, sleep, BIN } from './lib.mjs';
import { stun, stunParse, u32, USERNAME, MESSAGE_INTEGRITY } from './stun.mjs';

const UCLIENT = '/usr/bin/turnutils_uclient', PEER = '/usr/bin/turnutils_peer';
// Under a sanitizer or valgrind the server is slower: time limits stretch.
const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;
const T = (ms) => ms * SLOW;
const say = (line) => console.log('  ' + line);

const REALM = 'camus';
const ALLOCATE = 0x003, REFRESH = 0x004, SUCCESS = 0x100, ERROR = 0x110;
const LIFETIME = 0x000d, REALM_A = 0x0014, NONCE = 0x0015, XOR_RELAYED_ADDRESS = 0x0016,
  REQUESTED_ADDRESS_FAMILY = 0x0017, EVEN_PORT = 0x0018, REQUESTED_TRANSPORT = 0x0019;
const MESSAGES = 16, LENGTH = 120;  // what uclient sends in the relaying tests

// ------------------------------------------------------------------ credentials

// REST-API credentials: user "<expiry>:<id>", password base64(HMAC-SHA1(secret, user)); key is
// the long-term key of RFC 8489 section 9.2.2, MD5(user ":" realm ":" password).
function rest(secret, expiry, id = 'uclient') {
  const user = `${expiry}:${id}`;
  const pass = createHmac('sha1', secret).update(user).digest('base64');
  return { user, pass, key: createHash('md5').update(`${user}:${REALM}:${pass}`).digest() };
}
const now = () => Math.floor(Date.now() / 1000);
const newSecret = () => 'sesame-' + randomBytes(8).toString('hex');
// Relay ports of a server of this file's (--turn-ports): 16 from a random one above the kernel's
// ephemeral ports (32768-60999 here), so that no socket of anyone's takes them by chance and a
// server elsewhere on the machine using the default range (49152-49407) does not starve ours.
function relayPorts({ odd = false } = {}) {
  const min = 61001 + 2 * Math.floor(Math.random() * 2000) + (odd ? 0 : Math.floor(Math.random() * 2));
  return [min, min + 15];
}
const serverArgs = (secret, more = [], ports = relayPorts()) => ['--turn-secret', secret, '--turn-ports', ports.join('-'), ...more];
const esc = (s) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

// ------------------------------------------------------------------ coturn's programs

const live = new Set(); // the children of ours still running: killed (by PID) if we leave early
process.on('exit', () => { for (const c of live) try { c.kill('SIGKILL'); } catch { /* gone */ } });

function spawnTracked(file, args) {
  const child = spawn(file, args.map(String), { stdio: ['ignore', 'pipe', 'pipe'] });
  live.add(child);
  child.on('close', () => live.delete(child));
  child.on('error', () => {});
  return child;
}

// Kills a child of ours by its PID and waits (at most 2 s) until it is gone.
async function kill(child) {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const gone = new Promise((ok) => { child.once('close', ok); setTimeout(ok, 2000); });
  child.kill('SIGKILL');
  await gone;
}

// Runs turnutils_uclient with args, killed after ms: { status, out (stdout and stderr), timedOut, ms }.
function uclient(args, { ms = T(25000) } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const child = spawnTracked(UCLIENT, args);
    let out = '', timedOut = false;
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { out += d; });
    child.on('error', (e) => { out += `spawn ${UCLIENT}: ${e.message}\n`; });
    const timer = setTimeout(() => { timedOut = true; child.kill('SIGKILL'); }, ms);
    child.on('close', (status, signal) => {
      clearTimeout(timer);
      resolve({ status, signal, out, timedOut, ms: Date.now() - t0 });
    });
  });
}

// What uclient's output says: its totals (null when it printed none), and every "error NNN (reason)"
// it printed (of Allocate, Refresh, CreatePermission or ChannelBind).
function summary(out) {
  const last = (re) => [...out.matchAll(re)].pop() || null;
  const msgs = last(/start_mclient: tot_send_msgs=(\d+), tot_recv_msgs=(\d+)/g);
  const bytes = last(/start_mclient: tot_send_bytes ~ (\d+), tot_recv_bytes ~ (\d+)/g);
  const lost = last(/Total lost packets (\d+) \([^)]*\), total send dropped (\d+)/g);
  return {
    sent: msgs && Number(msgs[1]), received: msgs && Number(msgs[2]),
    bytesSent: bytes && Number(bytes[1]), bytesReceived: bytes && Number(bytes[2]),
    lost: lost && Number(lost[1]), dropped: lost && Number(lost[2]),
    errors: [...new Set([...out.matchAll(/error (\d{3}) \(([^)\n]*)\)/g)].map((m) => `${m[1]} ${m[2]}`))],
  };
}
const tail = (u) => `uclient exited ${u.status}${u.signal ? ' ' + u.signal : ''}${u.timedOut ? ' (killed: timed out)' : ''} after ${u.ms} ms; its output ends:\n` +
  u.out.trim().split('\n').slice(-15).map((l) => '    ' + l).join('\n');

// A UDP port on 127.0.0.1 free a moment ago (an ephemeral one: never among our servers' relay ports).
async function freeUdpPort() {
  const s = dgram.createSocket('udp4');
  await new Promise((ok) => s.bind(0, '127.0.0.1', ok));
  const port = s.address().port;
  s.close();
  return port;
}

// turnutils_peer on 127.0.0.1, once it is seen to echo a datagram: { port, close() }.
async function echoPeer() {
  for (let attempt = 0; attempt < 5; attempt++) {
    const port = await freeUdpPort();
    const child = spawnTracked(PEER, ['-L', '127.0.0.1', '-p', port]);
    child.stdout.resume();
    child.stderr.resume();
    const probe = dgram.createSocket('udp4');
    probe.on('error', () => {});
    await new Promise((ok) => probe.bind(0, '127.0.0.1', ok));
    const token = 'echo? ' + randomBytes(6).toString('hex');
    let echoed = false;
    probe.on('message', (d) => { if (d.toString() === token) echoed = true; });
    for (let i = 0; i < 30 && !echoed && child.exitCode === null; i++) {
      probe.send(token, port, '127.0.0.1');
      await sleep(100);
    }
    probe.close();
    if (echoed) return { port, close: () => kill(child) };
    await kill(child); // its port was taken in the meantime, or it did not start: another port
  }
  throw new Error('turnutils_peer never echoed');
}

// A UDP socket on 127.0.0.1 that records what it gets and answers nothing: a peer that must get nothing.
async function silentPeer() {
  const s = dgram.createSocket('udp4');
  s.on('error', () => {});
  const got = [];
  s.on('message', (d, from) => got.push(`${from.address}:${from.port} ${d.length} bytes`));
  await new Promise((ok) => s.bind(0, '127.0.0.1', ok));
  return { port: s.address().port, got, close: () => s.close() };
}

// A UDP relay of ours between uclient and the server that keeps every STUN message both ways
// (parsed by stunParse): seen [{ from: 'client' | 'server', m }].  One socket towards the server
// per client address (at most 16), so that the server sees each client as a 5-tuple of its own.
async function recordingRelay(serverPort) {
  const front = dgram.createSocket('udp4');
  front.on('error', () => {});
  await new Promise((ok) => front.bind(0, '127.0.0.1', ok));
  const backs = new Map(), seen = [];
  front.on('message', (data, from) => {
    const client = `${from.address}:${from.port}`;
    let back = backs.get(client);
    if (!back) {
      if (backs.size >= 16) return;
      back = dgram.createSocket('udp4');
      back.on('error', () => {});
      back.on('message', (d) => { seen.push({ from: 'server', client, m: stunParse(d) }); front.send(d, from.port, from.address); });
      back.bind(0, '127.0.0.1');
      backs.set(client, back);
    }
    seen.push({ from: 'client', client, m: stunParse(data) });
    back.send(data, serverPort, '127.0.0.1');
  });
  return { port: front.address().port, seen, close: () => { front.close(); for (const b of backs.values()) b.close(); } };
}

// ------------------------------------------------------------------ a hand-made STUN client

// A UDP socket on 127.0.0.1 (port: a given one, or any) that asks the server at serverPort and waits
// (at most ms) for the answer with the transaction id: stunParse()d with key, or null.
async function stunClient({ port = 0 } = {}) {
  const s = dgram.createSocket('udp4');
  s.on('error', () => {});
  const got = [];
  s.on('message', (d) => got.push(d));
  await new Promise((ok, ko) => { s.once('error', ko); s.bind(port, '127.0.0.1', () => { s.off('error', ko); ok(); }); });
  const c = {
    port: s.address().port,
    async ask(serverPort, { msg, txid }, key, ms = T(2000)) {
      const mark = got.length;
      s.send(msg, serverPort, '127.0.0.1');
      for (const end = Date.now() + ms; Date.now() < end; await sleep(5)) {
        const d = got.slice(mark).find((x) => x.length >= 20 && x.subarray(8, 20).equals(txid));
        if (d) return stunParse(d, key);
      }
      return null;
    },
    // An Allocate without credentials, as a client's first: the 401 gives the nonce to sign with.
    async nonce(serverPort) {
      const r = await c.ask(serverPort, stun({ type: ALLOCATE, attrs: allocateAttrs() }));
      assert.ok(r && r.code === 401 && r.attrs[NONCE], `no 401 with a nonce: ${JSON.stringify(r)}`);
      return r.attrs[NONCE].toString();
    },
    close: () => s.close(),
  };
  return c;
}
const allocateAttrs = (more = []) => [[REQUESTED_TRANSPORT, u32(17 << 24)], [LIFETIME, u32(600)], ...more];
const signed = (type, attrs, creds, nonce) =>
  stun({ type, attrs: [...attrs, [USERNAME, creds.user], [REALM_A, REALM], [NONCE, nonce]], key: creds.key });
function relayedPort(m) {
  const v = m.attrs[XOR_RELAYED_ADDRESS];
  return v && v.length === 8 ? v.readUInt16BE(2) ^ 0x2112 : null;
}

// ------------------------------------------------------------------ the server's side

const noErrors = (srv) => assert.deepEqual(srv.log.filter((l) => / ERROR /.test(l)), [], 'ERROR lines in the server log');
const SANITIZER = /AddressSanitizer|LeakSanitizer|UndefinedBehaviorSanitizer|runtime error:/;
// Stops the server (which fails on a nonzero exit: a sanitizer's report makes one) and checks its log.
async function stopClean(srv) {
  await srv.stop();
  const reports = srv.log.filter((l) => SANITIZER.test(l));
  assert.deepEqual(reports, [], 'a sanitizer report in the server log');
}

// ------------------------------------------------------------------ the tests

before("coturn's turnutils_uclient and turnutils_peer are installed (Debian package coturn)", async () => {
  for (const f of [UCLIENT, PEER]) assert.ok(existsSync(f), `${f} is missing: apt-get install coturn`);
});

// uclient allocates over transport with credentials from the server's secret, relays MESSAGES
// packets of LENGTH bytes to turnutils_peer in Send indications and gets each back in a Data
// indication; the server logs the allocation and, at its release, the bytes each way.
async function relayThroughUclient(transport) {
  const secret = newSecret();
  const srv = await startServer(serverArgs(secret, ['--turn-allow', '127.0.0.0/8', ...(transport === 'tls' ? ['--tls'] : [])]));
  let peer;
  try {
    peer = await echoPeer();
    const creds = rest(secret, now() + 600, `uclient-${transport}`);
    const flags = { udp: [], tcp: ['-t'], tls: ['-t', '-S', '-z', 250] }[transport];
    const u = await uclient([...flags, '-s', '-c', '-n', MESSAGES, '-l', LENGTH, '-u', creds.user, '-w', creds.pass,
      '-p', transport === 'udp' ? srv.udpPort : srv.port, '-e', '127.0.0.1', '-r', peer.port, '127.0.0.1']);
    const s = summary(u.out);
    const hint = s.errors.some((e) => e.startsWith('508')) ? ' (an Allocate of uclient\'s with EVEN-PORT, R=0: see the EVEN-PORT test)' : '';
    assert.deepEqual(s.errors, [], `uclient was refused${hint}:\n${tail(u)}`);
    assert.equal(u.status, 0, tail(u));
    assert.equal(s.sent, MESSAGES, `packets sent:\n${tail(u)}`);
    assert.equal(s.received, MESSAGES, `packets received back:\n${tail(u)}`);
    assert.equal(s.lost, 0, `packets lost:\n${tail(u)}`);
    assert.equal(s.dropped, 0, `packets uclient could not send:\n${tail(u)}`);
    assert.deepEqual([s.bytesSent, s.bytesReceived], [MESSAGES * LENGTH, MESSAGES * LENGTH], 'bytes sent and received');
    assert.ok(!/ERROR/.test(u.out), `uclient complained:\n${tail(u)}`);

    // The server's account: allocated for this user; released with every byte relayed both ways.
    const bytes = MESSAGES * LENGTH;
    const user = esc(creds.user);
    assert.ok(srv.log.some((l) => new RegExp(`turn: 127\\.0\\.0\\.1:\\d+ \\(${user}\\) allocated relay 127\\.0\\.0\\.1:\\d+$`).test(l)), 'the allocated line');
    const released = new RegExp(`\\(${user}\\) released relay port \\d+: (released by its client|its connection closed); ${bytes} bytes relayed out, ${bytes} in, 0 dropped$`);
    await srv.until(() => srv.log.some((l) => released.test(l)), T(3000), `a released line with ${bytes} bytes each way`);
    if (transport !== 'udp') {
      const over = transport === 'tls' ? 'TURN over TLS' : 'TURN over TCP';
      assert.ok(srv.log.some((l) => l.endsWith(': ' + over)), `the server did not log "${over}"`);
    }
    noErrors(srv);
    say(`${transport}: ${s.received}/${s.sent} packets of ${LENGTH} bytes back through the relay, ${s.lost} lost; uclient took ${u.ms} ms`);
  } finally {
    if (peer) await peer.close();
    await stopClean(srv);
  }
}

test('uclient over UDP: allocates with REST credentials and gets every packet back from turnutils_peer through the relay', () => relayThroughUclient('udp'), { timeout: T(40000) });
test('uclient over TCP to the HTTP port: the same', () => relayThroughUclient('tcp'), { timeout: T(40000) });
test('uclient over TLS to the HTTPS port (--tls): the same', () => relayThroughUclient('tls'), { timeout: T(40000) });

test('wrong credentials: every answer uclient gets is a 401 with realm "camus" and a nonce, also to its signed retry, and it gives up', async () => {
  const secret = newSecret();
  const srv = await startServer(serverArgs(secret, ['--turn-allow', '127.0.0.0/8']));
  const relay = await recordingRelay(srv.udpPort);
  try {
    const good = rest(secret, now() + 600);
    const cases = {
      'a wrong password': { ...good, pass: createHmac('sha1', secret + 'x').update(good.user).digest('base64') },
      'a user name whose expiry has passed': rest(secret, now() - 60),
      'credentials of another secret': rest('not-' + secret, now() + 600),
    };
    for (const [what, creds] of Object.entries(cases)) {
      relay.seen.length = 0;
      const u = await uclient(['-s', '-c', '-n', 1, '-u', creds.user, '-w', creds.pass, '-p', relay.port, '-e', '127.0.0.1', '-r', 9, '127.0.0.1'], { ms: T(15000) });
      assert.ok(!u.timedOut && u.status !== 0, `${what}: uclient did not give up:\n${tail(u)}`);
      assert.match(u.out, /Cannot complete Allocation/, `${what}:\n${tail(u)}`);
      const asked = relay.seen.filter((x) => x.from === 'client').map((x) => x.m);
      const answers = relay.seen.filter((x) => x.from === 'server').map((x) => x.m);
      assert.ok(answers.length >= 2, `${what}: ${answers.length} answers`);
      assert.equal(answers.length, asked.length, `${what}: requests left unanswered`);
      const nonces = new Set();
      for (const [i, m] of answers.entries()) {
        const where = `${what}, answer ${i + 1}`;
        assert.ok(m, `${where}: not STUN`);
        assert.equal(m.type, ALLOCATE | ERROR, `${where}: type 0x${m.type.toString(16)} (${m.code} ${m.reason})`);
        assert.equal(m.code, 401, `${where}: ${m.code} ${m.reason}`);
        assert.equal(m.attrs[REALM_A] && m.attrs[REALM_A].toString(), REALM, `${where}: REALM`);
        assert.match(m.attrs[NONCE] ? m.attrs[NONCE].toString() : '', /^[0-9a-f]{32}$/, `${where}: NONCE`);
        assert.ok(!m.attrs[MESSAGE_INTEGRITY], `${where}: a 401 is not signed`);
        nonces.add(m.attrs[NONCE].toString());
      }
      // Its first Allocate had no credentials; after the 401 it signed with ours and the server's nonce.
      assert.ok(asked[0] && !asked[0].attrs[MESSAGE_INTEGRITY], `${what}: uclient's first Allocate was signed`);
      const retries = asked.slice(1);
      assert.ok(retries.length >= 1);
      for (const m of retries) {
        assert.ok(m && m.attrs[MESSAGE_INTEGRITY], `${what}: a retry without MESSAGE-INTEGRITY`);
        assert.equal(m.username, creds.user, what);
        assert.equal(m.attrs[REALM_A].toString(), REALM, what);
        assert.ok(nonces.has(m.attrs[NONCE].toString()), `${what}: uclient signed with a nonce the server did not give`);
      }
      say(`${what}: ${answers.length} answers to uclient, all 401 with realm and nonce; uclient gave up after ${u.ms} ms`);
    }
    assert.ok(!srv.log.some((l) => /allocated relay/.test(l)), 'something was allocated');
    noErrors(srv);
  } finally {
    relay.close();
    await stopClean(srv);
  }
}, { timeout: T(40000) });

test('a peer the server does not relay to: without --turn-allow, 127.0.0.1 gets 403 to uclient\'s CreatePermission and to its ChannelBind, and nothing reaches it', async () => {
  const secret = newSecret();
  const srv = await startServer(serverArgs(secret));
  const peer = await silentPeer();
  try {
    const creds = rest(secret, now() + 600, 'uclient-403');
    for (const [what, flags, said] of [['CreatePermission (-s)', ['-s'], /create permission error (\d{3})/], ['ChannelBind', [], /channel bind: error (\d{3})/]]) {
      const u = await uclient([...flags, '-c', '-n', 5, '-u', creds.user, '-w', creds.pass, '-p', srv.udpPort, '-e', '127.0.0.1', '-r', peer.port, '127.0.0.1'], { ms: T(15000) });
      const s = summary(u.out);
      assert.ok(!u.timedOut, tail(u));
      const m = u.out.match(said);
      assert.ok(m, `${what}: uclient did not report a refused ${what} (errors: ${s.errors.join('; ') || 'none'}):\n${tail(u)}`);
      assert.equal(Number(m[1]), 403, `${what}:\n${tail(u)}`);
      assert.notEqual(u.status, 0, `${what}: uclient went on after the 403:\n${tail(u)}`);
      say(`${what} for 127.0.0.1:${peer.port}: uclient got ${m[1]} and stopped`);
    }
    await sleep(200);
    assert.deepEqual(peer.got, [], 'what reached the peer');
    assert.equal(srv.log.filter((l) => /allocated relay/.test(l) && l.includes(`(${creds.user})`)).length >= 2, true, 'uclient allocated before it asked for the peer');
    noErrors(srv);
  } finally {
    peer.close();
    await stopClean(srv);
  }
}, { timeout: T(40000) });

test('a stale nonce gets 438 with realm "camus" and a fresh nonce, unsigned; the request sent again with that nonce succeeds (hand-made STUN)', async () => {
  const secret = newSecret();
  let srv = await startServer(serverArgs(secret));
  const creds = rest(secret, now() + 3600, 'stale');
  const a = await stunClient(), b = await stunClient();
  let a2;
  // The answer to a request signed with a nonce that is no longer good: 438 and what to use instead.
  const stale = (r, used, what) => {
    assert.ok(r, `${what}: no answer`);
    assert.equal(r.code, 438, `${what}: ${r.code ? `${r.code} ${r.reason}` : `type 0x${r.type.toString(16)}`}`);
    assert.equal(r.attrs[REALM_A] && r.attrs[REALM_A].toString(), REALM, `${what}: REALM`);
    const fresh = r.attrs[NONCE] ? r.attrs[NONCE].toString() : '';
    assert.match(fresh, /^[0-9a-f]{32}$/, `${what}: NONCE`);
    assert.notEqual(fresh, used, `${what}: the same nonce again`);
    assert.ok(!r.attrs[MESSAGE_INTEGRITY], `${what}: a 438 is not signed`);
    assert.ok(r.fingerprintOk, `${what}: FINGERPRINT`);
    return fresh;
  };
  try {
    const mine = await a.nonce(srv.udpPort), theirs = await b.nonce(srv.udpPort);
    const expired = (now() - 1).toString(16).padStart(16, '0') + mine.slice(16);
    let fresh;
    for (const [what, nonce] of [["another client address's nonce", theirs], ['a nonce of its form whose time has passed', expired]]) {
      const r = await a.ask(srv.udpPort, signed(ALLOCATE, allocateAttrs(), creds, nonce), creds.key);
      fresh = stale(r, nonce, `Allocate with ${what}`);
    }
    let r = await a.ask(srv.udpPort, signed(ALLOCATE, allocateAttrs(), creds, fresh), creds.key);
    assert.equal(r && r.type, ALLOCATE | SUCCESS, `Allocate with the nonce of the 438: ${r && r.code} ${r && r.reason}`);
    assert.ok(r.integrityOk, 'the success is signed with our key');
    // A Refresh of that allocation with a stale nonce: 438, then it works with the new one.
    r = await a.ask(srv.udpPort, signed(REFRESH, [[LIFETIME, u32(600)]], creds, expired), creds.key);
    const again = stale(r, expired, 'Refresh with a nonce whose time has passed');
    r = await a.ask(srv.udpPort, signed(REFRESH, [[LIFETIME, u32(0)]], creds, again), creds.key);
    assert.equal(r && r.type, REFRESH | SUCCESS, `Refresh with the nonce of the 438: ${r && r.code} ${r && r.reason}`);
    assert.ok(r.integrityOk);

    // A nonce from the server's previous run (same secret, same client address): stale after a restart.
    const port = a.port;
    a.close();
    await stopClean(srv);
    srv = await startServer(serverArgs(secret));
    a2 = await stunClient({ port });
    r = await a2.ask(srv.udpPort, signed(ALLOCATE, allocateAttrs(), creds, again), creds.key);
    const next = stale(r, again, "Allocate with the previous run's nonce");
    r = await a2.ask(srv.udpPort, signed(ALLOCATE, allocateAttrs(), creds, next), creds.key);
    assert.equal(r && r.type, ALLOCATE | SUCCESS, `Allocate after the restart's 438: ${r && r.code} ${r && r.reason}`);
    noErrors(srv);
  } finally {
    for (const c of [a, b, a2]) if (c) try { c.close(); } catch { /* closed */ }
    await stopClean(srv);
  }
}, { timeout: T(20000) });

test('EVEN-PORT without the R bit (uclient -c adds it to one Allocate in two) gets an even relay port, as RFC 8656 section 7.2 asks of a server that can give one', async () => {
  const secret = newSecret();
  // Relay ports from an odd one: a server that took the next free port whatever EVEN-PORT says
  // would give that odd one first, then even and odd ones in turn.
  const range = relayPorts({ odd: true });
  const srv = await startServer(serverArgs(secret, [], range));
  const creds = rest(secret, now() + 600, 'even');
  const cs = [], ports = [];
  try {
    // What uclient -c then sends: REQUESTED-TRANSPORT, LIFETIME, EVEN-PORT (R=0), REQUESTED-ADDRESS-FAMILY (IPv4).
    const attrs = [[REQUESTED_TRANSPORT, u32(17 << 24)], [LIFETIME, u32(777)], [EVEN_PORT, Buffer.from([0x00])],
      [REQUESTED_ADDRESS_FAMILY, Buffer.from([1, 0, 0, 0])]];
    for (let i = 0; i < 3; i++) {
      const c = await stunClient();
      cs.push(c);
      const r = await c.ask(srv.udpPort, signed(ALLOCATE, attrs, creds, await c.nonce(srv.udpPort)), creds.key);
      assert.ok(r, 'no answer');
      assert.equal(r.type, ALLOCATE | SUCCESS, `Allocate ${i + 1} with EVEN-PORT R=0 refused: ${r.code} ${r.reason}`);
      assert.ok(r.integrityOk);
      ports.push(relayedPort(r));
    }
    for (const p of ports) assert.ok(p >= range[0] && p <= range[1] && p % 2 === 0, `relay ports ${ports.join(', ')}: not all even ones of ${range.join('-')}`);
    assert.equal(new Set(ports).size, 3, `relay ports ${ports.join(', ')}`);
    say(`EVEN-PORT R=0: relay ports ${ports.join(', ')}`);
    noErrors(srv);
  } finally {
    for (const x of cs) x.close();
    await stopClean(srv);
  }
}, { timeout: T(15000) });

await run();
