// Spoofed sources against the ICE/DTLS transport.
//
// Takeover: an ICE check authenticated with the attacker's *own* session, sent with a victim's
// source address and port forged (a raw IPv4 socket; needs root), must not hand the victim's
// address to the attacker's session or end the victim's session, and goes unanswered.
//
// Amplification: an address that has not shown it receives (the attacker forged it, and never
// answers) gets at most 3x the bytes it sent: DTLS cookies (HelloVerifyRequest) in the server role,
// a byte budget on everything, the server's own ClientHello and its retransmissions included.
import { startServer, test, assert, run, sleep, launchChromium, pageJoin } from './lib.mjs';
import {
  check, newPeer, stun, stunParse, udpSocket, until, sendForged, clientHello, dtlsRecords, isStun, isDtls,
  BINDING_SUCCESS, CT_HANDSHAKE, HS_CLIENT_HELLO, HS_HELLO_VERIFY_REQUEST,
} from './stun.mjs';

const AMPLIFICATION = 3;
const WATCH_MS = 8000; // mbedTLS retransmits a flight 0.4, 1.2, 2.8 and 6.0 s after the first

let srv;
const server = async () => {
  if (!srv) srv = await startServer();
  return srv;
};
let nroom = 0;
const room = async (prefix) => {
  const name = `${prefix}-${++nroom}`;
  const r = await srv.post('/api/rooms', { name });
  assert.equal(r.status, 201, r.text);
  return r.json.id;
};
// The addresses the server learned for a session, from its debug log ("peer <id>: checked IP:PORT").
const checkedAddrs = (id) => srv.log.map((l) => l.match(new RegExp(`peer ${id}: checked (\\d+\\.\\d+\\.\\d+\\.\\d+):(\\d+)`)))
  .filter(Boolean).map((m) => ({ ip: m[1], port: Number(m[2]) }));
const takenOver = (since = 0) => srv.log.slice(since).filter((l) => /taken over/.test(l));

// ------------------------------------------------------------------ takeover by a forged-source check

test('a forged-source check with the attacker\'s own credentials does not end a browser\'s session', async () => {
  await server();
  const since = srv.log.length;
  const browser = await launchChromium();
  const marker = await udpSocket(srv.udpPort, { bind: '127.0.0.9' }); // receives the answer to a forged plain request
  try {
    const victimRoom = await room('victim');
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    await page.evaluate(() => { // keep the data channels pageJoin makes within reach
      window.channels = [];
      const make = RTCPeerConnection.prototype.createDataChannel;
      RTCPeerConnection.prototype.createDataChannel = function (...a) { const c = make.apply(this, a); window.channels.push(c); return c; };
    });
    const joined = await pageJoin(page, victimRoom, { echo: false, keep: true });
    assert.equal(joined.status, 200, JSON.stringify(joined));
    const victimId = joined.greeting.receiver;
    assert.match(victimId, /^[0-9a-f]{32}$/);
    const addrs = checkedAddrs(victimId);
    assert.ok(addrs.length >= 1, 'the victim\'s checked address is in the log');
    const selected = await page.evaluate(async () => {
      const st = await window.keep.getStats();
      const all = [...st.values()];
      const transport = all.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
      const pair = transport && st.get(transport.selectedCandidatePairId);
      const local = pair && all.find((s) => s.id === pair.localCandidateId);
      return local ? `${local.address || local.ip}:${local.port}` : null;
    });
    console.log(`  victim ${victimId.slice(0, 8)}: the server checked ${addrs.map((a) => `${a.ip}:${a.port}`).join(', ')}; selected pair's local candidate ${selected}`);
    assert.equal((await srv.get(`/api/rooms/${victimRoom}`)).json.clients, 1);

    // The attacker: its own session, its own credentials, the victim's address.
    const attacker = await newPeer(srv.url, await room('attacker'));
    const forged = [];
    for (const a of addrs) {
      for (const useCandidate of [false, true, false, true]) {
        forged.push({ src: a.ip, sport: a.port, dport: srv.udpPort, data: check(attacker, { useCandidate }).msg });
      }
    }
    // Last, from the same raw socket: a plain Binding request whose forged source is a socket of
    // ours; its answer shows the forged datagrams reach the server, and have been handled.
    const plain = stun();
    forged.push({ src: '127.0.0.9', sport: marker.port, dport: srv.udpPort, data: plain.msg });
    await sendForged(forged);
    await until(() => marker.stunReplies().some((m) => stunParse(m)?.txid.equals(plain.txid)), 3000, 'the forged plain request answered at 127.0.0.9');
    const r = stunParse(marker.stunReplies()[0]);
    assert.equal(r.type, BINDING_SUCCESS);
    assert.equal(`${r.ip}:${r.port}`, `127.0.0.9:${marker.port}`, 'the server saw the forged source');

    await sleep(1500);
    const after = await page.evaluate(async (ms) => {
      const gc = window.channels[0];
      const out = { channel: gc ? gc.readyState : 'none', ice: window.keep.iceConnectionState, pong: false };
      if (out.channel !== 'open') return out;
      const tag = 'after the forged checks ' + Math.random();
      out.pong = await new Promise((ok) => {
        gc.addEventListener('message', (e) => {
          try { const m = JSON.parse(e.data); if (m.type === 'pong' && m.data === tag) ok(true); } catch { /* not ours */ }
        });
        setTimeout(() => ok(false), ms);
        gc.send(JSON.stringify({ receiver: 'ground control', type: 'ping', data: tag }));
      });
      return out;
    }, 4000);
    const clients = (await srv.get(`/api/rooms/${victimRoom}`)).json.clients;
    console.log(`  after ${forged.length - 1} forged checks: victim's channel ${after.channel}, ICE ${after.ice}, pong ${after.pong}, room clients ${clients}`);
    assert.equal(after.channel, 'open', 'the victim\'s data channel is open');
    assert.equal(after.pong, true, 'Ground Control still answers the victim\'s ping');
    assert.equal(clients, 1, 'the victim still has its seat');
    assert.deepEqual(takenOver(since), [], 'no session was closed for a forged check');
    assert.ok(srv.log.some((l) => l.includes(`refused a check from an address of peer ${victimId}`)),
      'the forged checks reached the server and were refused');
  } finally {
    marker.close();
    await browser.close().catch(() => {});
  }
}, { timeout: 45000 });

test('a forged-source check gets no answer, and the address\'s own session keeps answering', async () => {
  await server();
  const since = srv.log.length;
  // The victim is a socket of ours on 127.0.0.9, so whatever the server sends to its address is seen.
  const victimRoom = await room('victim');
  const victim = await newPeer(srv.url, victimRoom, { setup: 'active', ufrag: 'VicT' });
  const v = await udpSocket(srv.udpPort, { bind: '127.0.0.9' });
  try {
    await v.send(check(victim, { remote: 'VicT', useCandidate: true }).msg);
    await until(() => v.stunReplies().length === 1, 3000, 'the victim\'s check answered');
    assert.equal(stunParse(v.stunReplies()[0], victim.pwd).integrityOk, true);
    const victimId = srv.log.map((l) => l.match(new RegExp(`peer ([0-9a-f]{32}): checked 127\\.0\\.0\\.9:${v.port}\\b`))).find(Boolean)?.[1];
    assert.ok(victimId, 'the server learned the victim\'s address');

    const attacker = await newPeer(srv.url, await room('attacker'));
    const checks = [false, true, false, true].map((useCandidate) => check(attacker, { useCandidate }));
    const plain = stun();
    await sendForged([...checks.map((c) => ({ src: '127.0.0.9', sport: v.port, dport: srv.udpPort, data: c.msg })),
      { src: '127.0.0.9', sport: v.port, dport: srv.udpPort, data: plain.msg }]);
    // The plain request went last: once it is answered, the checks before it have been handled.
    await until(() => v.stunReplies().some((m) => stunParse(m)?.txid.equals(plain.txid)), 3000, 'the forged plain request answered');
    await sleep(200);
    const answered = v.stunReplies().map((m) => stunParse(m)).filter((m) => checks.some((c) => c.txid.equals(m.txid)));
    const own = check(victim, { remote: 'VicT' });
    await v.send(own.msg);
    await until(() => v.stunReplies().some((m) => stunParse(m)?.txid.equals(own.txid)), 3000, 'the victim\'s next check answered')
      .catch(() => {});
    const ownReply = v.stunReplies().map((m) => stunParse(m, victim.pwd)).find((m) => m.txid.equals(own.txid));
    console.log(`  forged checks answered: ${answered.length} of ${checks.length}; victim's own check after them: ` +
      (ownReply ? `${ownReply.type === BINDING_SUCCESS ? 'success' : 'error ' + ownReply.code}` : 'no answer'));
    assert.deepEqual(takenOver(since), [], 'no session was closed for a forged check');
    assert.equal(answered.length, 0, 'the forged checks got no answer');
    assert.ok(ownReply && ownReply.type === BINDING_SUCCESS && ownReply.integrityOk, 'the victim\'s session still answers its checks');
    assert.ok(srv.log.some((l) => l.includes(`refused a check from an address of peer ${victimId}`)), 'refusal logged');
  } finally {
    v.close();
  }
});

// ------------------------------------------------------------------ amplification

// What came back to a socket, by kind, and the totals.
function figures(u, label) {
  const got = u.got.map((g) => g.data);
  const stunN = got.filter(isStun), dtlsN = got.filter(isDtls);
  const hsTypes = dtlsN.flatMap((d) => dtlsRecords(d).filter((r) => r.hs).map((r) => r.hs.type));
  const received = u.received();
  const f = { sent: u.sent, sentDatagrams: u.sentDatagrams, received, datagrams: got.length, stun: stunN.length, dtls: dtlsN.length, hsTypes,
    ratio: received / u.sent };
  console.log(`  ${label}: sent ${f.sent} bytes in ${f.sentDatagrams} datagrams, received ${f.received} bytes in ${f.datagrams} ` +
    `(${f.stun} STUN, ${f.dtls} DTLS; handshake types ${JSON.stringify(hsTypes)}): ${f.ratio.toFixed(2)}x`);
  return f;
}

test('amplification, DTLS server role: one check and one ClientHello get a HelloVerifyRequest, at most 3x back', async () => {
  await server();
  const p = await newPeer(srv.url, await room('amp'), { setup: 'active' });
  assert.equal(p.setup, 'passive', 'the server is the DTLS server');
  const u = await udpSocket(srv.udpPort);
  try {
    await u.send(check(p, { useCandidate: true }).msg);
    await until(() => u.stunReplies().length === 1, 3000, 'the check answered');
    assert.equal(stunParse(u.stunReplies()[0], p.pwd).integrityOk, true, 'answered with integrity');
    await u.send(clientHello());
    await sleep(WATCH_MS); // silence: count everything that comes back meanwhile
    const f = figures(u, 'server role, check + ClientHello');
    assert.ok(f.received <= AMPLIFICATION * f.sent, `received ${f.received} bytes for ${f.sent} sent (${f.ratio.toFixed(2)}x > ${AMPLIFICATION}x)`);
    const first = u.dtls()[0];
    assert.ok(first, 'the ClientHello was answered');
    const recs = dtlsRecords(first);
    assert.ok(recs.length >= 1 && recs[0].type === CT_HANDSHAKE && recs[0].hs, 'the answer is a handshake record');
    assert.equal(recs[0].hs.type, HS_HELLO_VERIFY_REQUEST, 'the answer to a ClientHello without a cookie is a HelloVerifyRequest');
  } finally {
    u.close();
  }
}, { timeout: 20000 });

test('amplification, DTLS client role: one check gets the ClientHello, and at most 3x back', async () => {
  await server();
  const p = await newPeer(srv.url, await room('amp'), { setup: 'actpass' });
  assert.equal(p.setup, 'active', 'the server is the DTLS client');
  const u = await udpSocket(srv.udpPort);
  try {
    await u.send(check(p, { useCandidate: true }).msg);
    await until(() => u.stunReplies().length === 1, 3000, 'the check answered');
    await sleep(WATCH_MS);
    const f = figures(u, 'client role, one check');
    assert.ok(f.received <= AMPLIFICATION * f.sent, `received ${f.received} bytes for ${f.sent} sent (${f.ratio.toFixed(2)}x > ${AMPLIFICATION}x)`);
    // Not vacuous: the budget lets the first flight through.
    const ch = u.dtls().flatMap(dtlsRecords).find((r) => r.type === CT_HANDSHAKE && r.hs && r.hs.type === HS_CLIENT_HELLO);
    assert.ok(ch, 'the server\'s ClientHello arrived');
  } finally {
    u.close();
  }
}, { timeout: 20000 });

test('amplification: checks every second for 8 s, in either role, still get at most 3x back', async () => {
  await server();
  const client = await newPeer(srv.url, await room('amp'), { setup: 'actpass' });
  const serverRole = await newPeer(srv.url, await room('amp'), { setup: 'active' });
  const uc = await udpSocket(srv.udpPort), us = await udpSocket(srv.udpPort);
  try {
    const t0 = Date.now();
    for (let k = 0; Date.now() - t0 < WATCH_MS; k++) {
      await uc.send(check(client, { useCandidate: k === 0 }).msg);
      await us.send(check(serverRole, { useCandidate: k === 0 }).msg);
      if (k === 0) {
        await until(() => us.stunReplies().length === 1, 3000, 'the check answered');
        await us.send(clientHello());
      }
      await sleep(Math.max(0, t0 + 1000 * (k + 1) - Date.now()));
    }
    await sleep(500);
    const fc = figures(uc, 'client role, a check a second');
    const fs = figures(us, 'server role, ClientHello and a check a second');
    assert.ok(fc.stun >= 2 && fs.stun >= 2, 'the checks were answered');
    assert.ok(fc.received <= AMPLIFICATION * fc.sent, `client role: received ${fc.received} bytes for ${fc.sent} sent (${fc.ratio.toFixed(2)}x)`);
    assert.ok(fs.received <= AMPLIFICATION * fs.sent, `server role: received ${fs.received} bytes for ${fs.sent} sent (${fs.ratio.toFixed(2)}x)`);
  } finally {
    uc.close();
    us.close();
  }
}, { timeout: 20000 });

test('stop', async () => { if (srv) await srv.stop(); });

await run();
