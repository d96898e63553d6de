// Spoofed sources against the ICE/DTLS transport.
//
// Takeover: an ICE check authenticated with the attacker's *own* session, sent with a victim's
// source address and port forged (a raw IPv4 socket; needs root), must not hand the victim's
// address to the attacker's session or end the victim's session, and goes unanswered.
//
// Amplification: an address that has not shown it receives (the attacker forged it, and never
// answers) gets at most 3x the bytes it sent: DTLS cookies (HelloVerifyRequest) in the server role,
// a byte budget on everything, the server's own ClientHello and its retransmissions included.
// Neither a handshake finished through another address, nor a cookie bound to the victim's
// address but delivered elsewhere, lifts the budget of an address a forged check nominated.
//
// NAT rebinding: a client whose address changes after DTLS is up is checked by the server itself
// (a Binding request keyed with the client's ice-pwd); until the new address answers, it gets at
// most 3x what it sent, and then the data channel runs through it at full rate.
import { spawn } from 'node:child_process';
import dgram from 'node:dgram';
import { startServer, test, assert, run, sleep, launchChromium, pageJoin } from './lib.mjs';
import {
  check, newPeer, stun, stunParse, udpSocket, until, sendForged, clientHello, dtlsRecords, isStun, isDtls, dtlsClient, sctpInit,
  parseAnswer, BINDING_REQUEST, BINDING_SUCCESS, CT_HANDSHAKE, HS_CLIENT_HELLO, HS_HELLO_VERIFY_REQUEST, USE_CANDIDATE,
  ICE_CONTROLLED, ICE_CONTROLLING,
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
// The amplification tests share one room (an address may create 10 rooms a minute).
let ampRoomId;
const ampRoom = async () => (ampRoomId ??= await room('amp'));
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
  const p = await newPeer(srv.url, await ampRoom(), { setup: 'active' });
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
  const p = await newPeer(srv.url, await ampRoom(), { setup: 'actpass' });
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
  const client = await newPeer(srv.url, await ampRoom(), { setup: 'actpass' });
  const serverRole = await newPeer(srv.url, await ampRoom(), { setup: 'active' });
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

// ------------------------------------------------------------------ amplification through the DTLS handshake

// The attacker: a real DTLS client (its certificate in its own offer) on socket R, so the session
// is its own; the victim: V, a socket of ours on 127.0.0.9 whose address the attacker forges, so
// that everything the server sends V is counted against what was sent in V's name.
async function attack() {
  const dtls = await dtlsClient();
  const p = await newPeer(srv.url, await ampRoom(), { setup: 'active', fp: dtls.fingerprint });
  assert.equal(p.setup, 'passive', 'the server is the DTLS server');
  const r = await udpSocket(srv.udpPort), v = await udpSocket(srv.udpPort, { bind: '127.0.0.9' });
  let seen = 0;
  return {
    p, dtls, r, v,
    fromV: (data) => { // counted as V's: the budget of V's address grows with it
      v.sent += data.length;
      v.sentDatagrams++;
      return sendForged([{ src: '127.0.0.9', sport: v.port, dport: srv.udpPort, data }]);
    },
    // Feeds the DTLS client what reached R since the last call, until it has something to send or
    // is done; { out: [] } if nothing came within ms.
    feed: async (ms) => {
      const end = Date.now() + ms;
      for (;;) {
        while (seen < r.got.length) {
          const d = r.got[seen++].data;
          if (!isDtls(d)) continue;
          const x = await dtls.input(d);
          if (x.out.length || x.done) return x;
        }
        if (Date.now() > end) return { out: [], done: false };
        await sleep(10);
      }
    },
    // Each SCTP INIT (in the session's DTLS, from R) makes the server answer an INIT ACK (about 380
    // bytes) to the session's selected address, however often it comes.
    inits: async (n) => {
      for (let i = 0; i < n; i++) {
        for (const d of (await dtls.write(sctpInit())).out) await r.send(d);
        await sleep(50);
      }
    },
    peerId: () => srv.log.map((l) => l.match(new RegExp(`peer ([0-9a-f]{32}): checked 127\\.0\\.0\\.9:${v.port}\\b`))).find(Boolean)?.[1],
    close: () => { dtls.close(); r.close(); v.close(); },
  };
}
const heldBack = (id) => srv.log.filter((l) => id && l.includes(`peer ${id}: `) && l.includes('held back from an unproven address')).length;
const hvrs = (u) => u.dtls().flatMap(dtlsRecords).filter((x) => x.hs && x.hs.type === HS_HELLO_VERIFY_REQUEST).length;

test('amplification, DTLS server role: a handshake finished from R does not prove V, where a forged check moved the session', async () => {
  await server();
  const a = await attack();
  const { r, v, p } = a;
  try {
    await r.send(check(p, { useCandidate: true }).msg);
    await until(() => r.stunReplies().length === 1, 3000, 'the check from R answered');
    for (const d of (await a.dtls.start()).out) await r.send(d); // ClientHello
    let f = await a.feed(3000); // HelloVerifyRequest in, the ClientHello with its cookie out
    assert.ok(f.out.length, 'a HelloVerifyRequest came back to R');
    for (const d of f.out) await r.send(d);
    f = await a.feed(3000); // ServerHello ... ServerHelloDone in, Certificate ... Finished out
    assert.ok(f.out.length, 'the server\'s flight came to R');
    const flight5 = f.out;
    // Before the attacker's Finished: a nominating check with V's address makes V the selected one.
    await a.fromV(check(p, { useCandidate: true }).msg);
    await until(() => v.stunReplies().length === 1, 3000, 'the forged check handled (its answer went to V)');
    for (const d of flight5) await r.send(d);
    f = await a.feed(1000);
    const doneAtR = f.done;
    // The server's Finished belongs where the client's came from.  Were it sent to V instead, the
    // attacker could still compute it (it holds every key of the session): take V's copy then.
    for (const g of v.got) if (!f.done && isDtls(g.data)) f = await a.dtls.input(g.data);
    assert.ok(f.done, 'the attacker finished the handshake');
    await a.inits(10);
    await sleep(800);
    const fv = figures(v, `victim V (${heldBack(a.peerId())} datagrams held back); the server's Finished ${doneAtR ? 'came to R' : 'went to V'}`);
    assert.ok(fv.received <= AMPLIFICATION * fv.sent, `V received ${fv.received} bytes for ${fv.sent} sent in its name (${fv.ratio.toFixed(2)}x > ${AMPLIFICATION}x)`);
    assert.ok(doneAtR, 'the server\'s Finished went back to R, where the client\'s came from');
    assert.ok(heldBack(a.peerId()) >= 5, 'the INIT ACKs meant for V were held back');
  } finally {
    a.close();
  }
}, { timeout: 20000 });

test('amplification, DTLS server role: V\'s ClientHello gets its HelloVerifyRequest at V, not at the selected address R', async () => {
  await server();
  const a = await attack();
  const { r, v, p } = a;
  try {
    // R: the selected address; its checks give it room for the server's whole flight.
    for (let i = 0; i < 5; i++) await r.send(check(p, { useCandidate: i === 0 }).msg);
    await until(() => r.stunReplies().length === 5, 3000, 'the checks from R answered');
    await a.fromV(check(p).msg); // V: one of the session's addresses, not nominated
    await until(() => v.stunReplies().length === 1, 3000, 'the forged check handled (its answer went to V)');
    for (const d of (await a.dtls.start()).out) await a.fromV(d); // a ClientHello "from" V: its cookie is bound to V
    let f = await a.feed(700);
    const cookieAtR = hvrs(r) > 0;
    if (cookieAtR) { // the cookie came to R: the attacker returns it in V's name, and finishes from R
      for (const d of f.out) await a.fromV(d);
      f = await a.feed(2000);
      for (const d of f.out) await r.send(d);
      f = await a.feed(2000);
    }
    await a.fromV(check(p, { useCandidate: true }).msg); // now V is the selected address
    await until(() => v.stunReplies().length === 2, 3000, 'the second forged check handled');
    if (f.done) await a.inits(10);
    await sleep(800);
    const fv = figures(v, `victim V (${heldBack(a.peerId())} datagrams held back); HelloVerifyRequests at R ${hvrs(r)}, at V ${hvrs(v)}; handshake ${f.done ? 'finished' : 'not finished'}`);
    assert.ok(fv.received <= AMPLIFICATION * fv.sent, `V received ${fv.received} bytes for ${fv.sent} sent in its name (${fv.ratio.toFixed(2)}x > ${AMPLIFICATION}x)`);
    assert.equal(hvrs(r), 0, 'no HelloVerifyRequest for V\'s ClientHello at R');
    assert.equal(hvrs(v), 1, 'the HelloVerifyRequest went to V, the address its cookie is bound to');
  } finally {
    a.close();
  }
}, { timeout: 20000 });

// ------------------------------------------------------------------ NAT rebinding

// Two aiortc peers in one room: "a" through a relay of the test's (below), "b" directly.  Lines
// of JSON on stdin and stdout: the offers out, the answers in; then { open: ids }; then commands:
// burst (b sends a n messages of size characters, tagged) and count (what a got of a tag).
const AIORTC_PAIR = `
import asyncio, json, sys, time
import aioice.ice
from aiortc import RTCPeerConnection, RTCSessionDescription
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ['127.0.0.1']
def say(**m):
    print(json.dumps(m), flush=True)
async def main():
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    peers, got = {}, {}
    def on_message(name, text):
        m = json.loads(text)
        if m.get('type') == 'greeting' and not peers[name]['id'].done():
            peers[name]['id'].set_result(m['receiver'])
        elif m.get('type') == 'burst' and name == 'a':
            g = got.setdefault(m['data']['tag'], {'n': 0, 'bytes': 0})
            g['n'] += 1
            g['bytes'] += len(text)
            g['last'] = time.monotonic()
    for name in ('a', 'b'):
        pc = RTCPeerConnection()
        ch = pc.createDataChannel('ground-control')
        peers[name] = {'pc': pc, 'ch': ch, 'id': loop.create_future()}
        ch.on('message', lambda text, name=name: on_message(name, text))
        await pc.setLocalDescription(await pc.createOffer())
        say(offer=name, sdp=pc.localDescription.sdp)
    for _ in peers:
        m = json.loads(await reader.readline())
        await peers[m['answer']]['pc'].setRemoteDescription(RTCSessionDescription(sdp=m['sdp'], type='answer'))
    ids = {name: await asyncio.wait_for(p['id'], 15) for name, p in peers.items()}
    say(open=ids)
    while True:
        line = await reader.readline()
        if not line:
            break
        c = json.loads(line)
        if c['cmd'] == 'burst':
            pad = 'x' * c['size']
            for i in range(c['n']):
                peers['b']['ch'].send(json.dumps({'receiver': ids['a'], 'type': 'burst', 'data': {'tag': c['tag'], 'i': i, 'pad': pad}}))
            say(sent=c['tag'], at=time.monotonic())
        elif c['cmd'] == 'count':
            say(count=got.get(c['tag'], {'n': 0, 'bytes': 0}))
    for p in peers.values():
        await p['pc'].close()
asyncio.run(main())
`;

test('NAT rebinding: the server checks the new address itself; until it answers at most 3x goes there, then the channel runs through it at full rate', async () => {
  await server();
  const roomId = await room('rebind');
  const py = spawn('/usr/bin/python3', ['-c', AIORTC_PAIR], { stdio: ['pipe', 'pipe', 'pipe'] });
  const lines = [];
  let buf = '', err = '';
  py.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0; buf = buf.slice(i + 1)) lines.push(JSON.parse(buf.slice(0, i)));
  });
  py.stderr.on('data', (d) => { err += d; });
  py.on('error', (e) => { err += e.message; });
  py.stdin.on('error', () => {}); // it ended: next() tells
  const say = (o) => py.stdin.write(JSON.stringify(o) + '\n');
  const next = async (key, ms = 15000) => {
    await until(() => lines.some((l) => key in l) || py.exitCode !== null || err.includes('ENOENT'), ms, `aiortc: ${key}`);
    const i = lines.findIndex((l) => key in l);
    if (i < 0) throw new Error(`aiortc ended (exit ${py.exitCode}): ${err.trim().split('\n').slice(-3).join(' / ')}`);
    return lines.splice(i, 1)[0];
  };
  // The relay, a NAT in miniature: a's datagrams reach the server from R, and after the rebinding
  // from R2; what the server sends either comes back to a.  Binding requests to R2 (the server's
  // own checks) are held while `hold` is set.
  const bind = () => new Promise((ok) => { const s = dgram.createSocket('udp4'); s.bind(0, '127.0.0.1', () => ok(s)); });
  const front = await bind(), R = await bind(), R2 = await bind();
  let client = null, up = R, hold = false;
  const ours = []; // transaction ids of the test's own checks from R2
  const r2 = { sent: 0, got: 0, probes: [], answers: [] };
  front.on('message', (d, from) => {
    client = from;
    if (up === R2) {
      r2.sent += d.length;
      if (isStun(d) && d.readUInt16BE(0) === BINDING_SUCCESS) r2.answers.push(stunParse(d));
    }
    up.send(d, srv.udpPort, '127.0.0.1');
  });
  const back = (d) => { if (client) front.send(d, client.port, client.address); };
  R.on('message', back);
  R2.on('message', (d) => {
    r2.got += d.length;
    const m = isStun(d) ? stunParse(d) : null;
    if (m && m.type === BINDING_SUCCESS && ours.some((t) => t.equals(m.txid))) return;
    if (m && m.type === BINDING_REQUEST) {
      r2.probes.push({ d, at: Date.now() });
      if (hold) return;
    }
    back(d);
  });
  try {
    const offers = {};
    for (let k = 0; k < 2; k++) { const o = await next('offer'); offers[o.offer] = o.sdp; }
    const answer = async (sdp) => {
      const res = await srv.post(`/rtc/${roomId}/offer`, { type: 'offer', sdp });
      assert.equal(res.status, 200, res.text);
      return res.json.sdp;
    };
    const answerA = await answer(offers.a), answerB = await answer(offers.b);
    const server = parseAnswer(answerA);
    assert.equal(server.setup, 'active', 'the server is a\'s DTLS client: a finished handshake proves R');
    const aUfrag = offers.a.match(/a=ice-ufrag:(\S+)/)[1], aPwd = offers.a.match(/a=ice-pwd:(\S+)/)[1];
    say({ answer: 'a', sdp: answerA.replace(/ \d+ typ host/, ` ${front.address().port} typ host`) });
    say({ answer: 'b', sdp: answerB });
    const ids = (await next('open', 20000)).open;
    let ntag = 0;
    const burst = async (n, size) => {
      const tag = `t${++ntag}`;
      say({ cmd: 'burst', tag, n, size });
      return { tag, n, at: (await next('sent')).at };
    };
    const arrived = async (b, ms) => { // what a got of burst b within ms; ms: from b's sending to its last message
      const end = Date.now() + ms;
      for (;;) {
        say({ cmd: 'count', tag: b.tag });
        const c = (await next('count')).count;
        if (c.n >= b.n || Date.now() > end) return { n: c.n, bytes: c.bytes, ms: c.last ? Math.round((c.last - b.at) * 1000) : null };
        await sleep(20);
      }
    };
    const N = 16, SIZE = 16000; // 16 messages of 16 kB from b to a: within what the server buffers for a
    const before = await arrived(await burst(N, SIZE), 5000);
    assert.equal(before.n, N, 'through R, a got every message');

    // The rebinding: a's datagrams now come from R2, after a nominating check of a's own from R2.
    hold = true;
    up = R2;
    const t0 = Date.now();
    const own = () => {
      const c = check(server, { remote: aUfrag, useCandidate: true });
      ours.push(c.txid);
      r2.sent += c.msg.length;
      R2.send(c.msg, srv.udpPort, '127.0.0.1');
    };
    own();
    await until(() => r2.probes.length >= 1, 3000, 'the server\'s check at R2');
    const held = await burst(4, SIZE);
    while (Date.now() - t0 < 1500) { // more checks from R2, 5 a second: still one check of the server's a second at most
      own();
      await sleep(200);
    }
    const whileHeld = await arrived(held, 0);
    const limited = { sent: r2.sent, got: r2.got, ms: Date.now() - t0, probes: r2.probes.length };
    const id = ids.a;
    console.log(`  before: ${N} messages of ${SIZE} bytes through R in ${before.ms} ms; after the rebinding, R2 sent ${limited.sent} bytes, ` +
      `got ${limited.got} in ${limited.ms} ms (${(limited.got / limited.sent).toFixed(2)}x), ${limited.probes} checks of the server's, ` +
      `${heldBack(id)} datagrams held back; ${whileHeld.n} of ${held.n} messages through`);
    const m = stunParse(r2.probes[0].d, aPwd);
    assert.equal(m.type, BINDING_REQUEST);
    assert.equal(m.username, `${aUfrag}:${server.ufrag}`, 'USERNAME is "<a\'s ufrag>:<the server\'s>"');
    assert.equal(m.integrityOk, true, 'MESSAGE-INTEGRITY keyed with the ice-pwd of a\'s offer');
    assert.equal(m.fingerprintOk, true, 'FINGERPRINT');
    assert.ok(m.attrs[ICE_CONTROLLED] && !m.attrs[ICE_CONTROLLING] && !m.attrs[USE_CANDIDATE], 'ICE-CONTROLLED, nominating nothing');
    assert.ok(limited.probes <= 1 + Math.ceil(limited.ms / 1000), `${limited.probes} checks in ${limited.ms} ms: one a second at most`);
    assert.ok(limited.got <= AMPLIFICATION * limited.sent, `R2 got ${limited.got} bytes for ${limited.sent} (${(limited.got / limited.sent).toFixed(2)}x > ${AMPLIFICATION}x)`);
    assert.ok(heldBack(id) >= 1 && whileHeld.n < held.n, 'the limit held messages back');

    // a answers the server's checks (aiortc itself, through R2): R2 is proven.
    hold = false;
    const tr = Date.now();
    for (const p of r2.probes) back(p.d);
    await until(() => srv.log.some((l) => l.includes(`peer ${id}: port ${R2.address().port} answered our check: it receives`)), 3000, 'R2 proven');
    assert.ok(r2.answers.some((x) => r2.probes.some((p) => stunParse(p.d).txid.equals(x.txid))), 'aiortc answered through R2');
    const late = await arrived(held, 10000);
    const recovered = Date.now() - tr;
    const g0 = r2.got, s0 = r2.sent;
    const after = await arrived(await burst(N, SIZE), 5000);
    const ratio = (r2.got - g0) / (r2.sent - s0);
    console.log(`  after a answered: the ${held.n} held messages through ${recovered} ms later; ${after.n} messages of ${SIZE} bytes through R2 in ` +
      `${after.ms} ms, R2 sent ${r2.sent - s0} bytes and got ${r2.got - g0} (${ratio.toFixed(1)}x)`);
    assert.equal(late.n, held.n, 'the held messages arrived');
    assert.equal(after.n, N, 'through R2, a got every message');
    assert.ok(after.ms <= Math.max(1000, 10 * before.ms), `through R2 in ${after.ms} ms, through R in ${before.ms} ms`);
    assert.ok(ratio > AMPLIFICATION, 'R2 is no longer held to 3x');
  } finally {
    py.stdin.end();
    await Promise.race([new Promise((ok) => py.once('close', ok)), sleep(1000)]);
    if (py.exitCode === null) py.kill('SIGKILL');
    for (const s of [front, R, R2]) s.close();
  }
}, { timeout: 40000 });

test('amplification, DTLS server role: a junk record from V does not send the server\'s flight (and its ServerHello) to V', async () => {
  await server();
  const a = await attack();
  const { r, v, p } = a;
  try {
    await r.send(check(p, { useCandidate: true }).msg);
    await until(() => r.stunReplies().length === 1, 3000, 'the check from R answered');
    await a.fromV(check(p).msg); // V: one of the session's addresses, not nominated
    await until(() => v.stunReplies().length === 1, 3000, 'the forged check handled (its answer went to V)');
    for (const d of (await a.dtls.start()).out) await r.send(d);
    let f = await a.feed(3000);
    for (const d of f.out) await r.send(d); // the cookie returned from R: the ServerHello proves R
    f = await a.feed(3000);
    assert.ok(f.out.length, 'the server\'s flight came to R');
    const flight5 = f.out;
    // One DTLS record in V's name that the server drops, then silence: the server retransmits its flight.
    await a.fromV(Buffer.concat([Buffer.from([23, 0xfe, 0xfd, 0, 1]), Buffer.alloc(6), Buffer.from([0, 8]), Buffer.alloc(8)]));
    await sleep(1000);
    await a.feed(0); // (the retransmissions that came to R)
    for (const d of flight5) await r.send(d);
    f = await a.feed(1000);
    assert.ok(f.done, 'the attacker finished the handshake from R');
    await a.fromV(check(p, { useCandidate: true }).msg); // now V is the selected address
    await until(() => v.stunReplies().length >= 2, 3000, 'the second forged check handled');
    await a.inits(10);
    await sleep(800);
    const fv = figures(v, `victim V (${heldBack(a.peerId())} datagrams held back)`);
    assert.ok(fv.received <= AMPLIFICATION * fv.sent, `V received ${fv.received} bytes for ${fv.sent} sent in its name (${fv.ratio.toFixed(2)}x > ${AMPLIFICATION}x)`);
  } finally {
    a.close();
  }
}, { timeout: 20000 });


test('stop', async () => { if (srv) await srv.stop(); });

await run();
