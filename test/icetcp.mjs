// ICE over TCP (RFC 6544, frames as in RFC 4571): the server's answer also offers a passive TCP host
// candidate on its HTTP port, below its UDP one, so that a browser whose UDP is blocked still gets in.
// With UDP dropped (then everything but TCP to the server's one port dropped), SFU rooms of real web
// clients in headless Chromium join, chat and decode each other's video, and each page's one
// RTCPeerConnection is seen to use a TCP candidate pair.  Without a browser: garbage frames on the
// HTTP port get a STUN error or nothing, never take a session, never stop the server, and ordinary
// HTTP on that port goes on working.
// The whole file runs in a network namespace of its own (unshare -rn) whose only interface is
// loopback, so that its firewall (nftables) touches nothing else.
import { execFileSync } from 'node:child_process';
import net from 'node:net';
import { startServer, test, assert, runInOwnNetns, launchChromium, launchKillableChromium, rawHttp, rawRequest, sleep, BIN } from './lib.mjs';
import { newPage, join, waitIn, receivesAll, pcCount, errorLines } from './webclient.mjs';
import { stun, check, newPeer, stunParse, udpSocket, u32, u64, USERNAME, PRIORITY, ICE_CONTROLLING, BINDING_REQUEST,
  BINDING_SUCCESS, BINDING_ERROR, XOR_MAPPED_ADDRESS } from './stun.mjs';

// Under a sanitizer or valgrind the server is slower: time limits stretch.
const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;
const T = (ms) => ms * SLOW;
const say = (line) => console.log('  ' + line);

// Cameras of their own shapes (the fake camera, cropped), small and at 15 frames a second, so that a
// stream is known for whose it is by its aspect ratio; each inside the largest (see sfu.mjs).
const MEMBERS = [['Ana', 320, 240], ['Bob', 240, 240], ['Cleo', 320, 160]].map(([name, width, height]) => ({ name, width, height, fps: 15 }));

// ---------------------------------------------------------------- the firewall (nftables)

// Loads a table of one input chain with these rules.  Input, not output: dropped on output a
// datagram fails at once with EPERM at its sender, which is not what a firewall on the way does.
function firewall(name, rules, policy = 'accept') {
  execFileSync('nft', ['-f', '-'], { input: `table inet ${name} {\n chain in {\n  type filter hook input priority 0; policy ${policy};\n` +
    rules.map((r) => `  ${r}\n`).join('') + ' }\n}\n' });
  return () => execFileSync('nft', ['delete', 'table', 'inet', name]);
}

// Whether a plain STUN Binding request to the server's UDP port is answered within ms.
async function udpAnswered(srv, ms = 400) {
  const u = await udpSocket(srv.udpPort);
  try {
    await u.send(stun({ type: BINDING_REQUEST }).msg);
    for (const end = Date.now() + ms; Date.now() < end && !u.stunReplies().length;) await sleep(20);
    return u.stunReplies().length > 0;
  } finally {
    u.close();
  }
}

// Whether a TCP connection to port opens within ms.
const tcpOpens = (port, ms = 500) => new Promise((ok) => {
  const s = net.connect({ port, host: '127.0.0.1' });
  const done = (v) => { clearTimeout(timer); s.destroy(); ok(v); };
  const timer = setTimeout(() => done(false), ms);
  s.on('connect', () => done(true));
  s.on('error', () => done(false));
});

// ---------------------------------------------------------------- the answer's candidates

const candidates = (sdp) => [...String(sdp).matchAll(/^a=candidate:(\S+) (\d+) (\w+) (\d+) (\S+) (\d+) typ (\w+)(.*)$/gm)]
  .map((m) => ({ line: m[0], component: Number(m[2]), proto: m[3].toLowerCase(), priority: Number(m[4]), ip: m[5], port: Number(m[6]),
    type: m[7], tcptype: (m[8].match(/tcptype (\S+)/) || [])[1] }));

// Before any browser: the answer to an offer carries a passive TCP host candidate on the HTTP port,
// below every UDP candidate.  Without it nothing below can work: the test stops here, saying so.
async function answerHasTcp(srv) {
  const room = await srv.post('/api/rooms', { name: 'Candidates' });
  assert.equal(room.status, 201, 'a room for the offer: ' + room.text);
  const peer = await newPeer(srv.url, room.json.id);
  const all = candidates(peer.answer);
  const show = all.map((c) => c.line).join(' | ') || '(none)';
  const tcp = all.filter((c) => c.proto === 'tcp'), udp = all.filter((c) => c.proto === 'udp');
  assert.ok(tcp.length, `no TCP candidate in the server's answer (its candidates: ${show})`);
  for (const c of tcp) {
    assert.equal(c.tcptype, 'passive', `a TCP candidate that is not passive: ${c.line}`);
    assert.equal(c.type, 'host', `a TCP candidate that is not a host one: ${c.line}`);
    assert.equal(c.port, srv.port, `a TCP candidate not on the HTTP port ${srv.port}: ${c.line}`);
    assert.equal(c.component, 1, c.line);
    for (const u of udp) assert.ok(c.priority < u.priority, `a TCP candidate above a UDP one: ${c.line} vs ${u.line}`);
  }
  assert.ok(udp.length, `no UDP candidate in the answer: ${show}`);
  return all;
}

// ---------------------------------------------------------------- pages

// In a page: Ground Control's RTCPeerConnection (the page's first) as getStats sees it: its states,
// the selected candidate pair (the transport's, else a nominated succeeded one) with both ends, and
// every pair, one line each.
async function iceState() {
  const pc = (window.camus && window.camus.state.gc && window.camus.state.gc.pc) || window.__camus.all[0];
  if (!pc) return { pc: 'none' };
  const stats = [...(await pc.getStats()).values()];
  const byId = new Map(stats.map((s) => [s.id, s]));
  const end = (c) => c && { protocol: c.protocol, address: c.address, port: c.port, tcpType: c.tcpType, type: c.candidateType };
  const text = (c) => (c ? `${c.protocol} ${c.address}:${c.port}${c.tcpType ? ' ' + c.tcpType : ''}` : '?');
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const sel = (transport && byId.get(transport.selectedCandidatePairId)) ||
    stats.find((s) => s.type === 'candidate-pair' && s.nominated && s.state === 'succeeded');
  const remote = pc.currentRemoteDescription ? pc.currentRemoteDescription.sdp : '';
  const media = stats.filter((s) => s.type === 'inbound-rtp').reduce((n, s) => n + (s.bytesReceived || 0) + (s.headerBytesReceived || 0), 0);
  return {
    pc: pc.connectionState, ice: pc.iceConnectionState, mediaBytesIn: media,
    selected: sel && { state: sel.state, nominated: sel.nominated, bytesSent: sel.bytesSent, bytesReceived: sel.bytesReceived,
      rtt: sel.currentRoundTripTime, local: end(byId.get(sel.localCandidateId)), remote: end(byId.get(sel.remoteCandidateId)) },
    pairs: stats.filter((s) => s.type === 'candidate-pair')
      .map((p) => `${text(byId.get(p.localCandidateId))} -> ${text(byId.get(p.remoteCandidateId))} ${p.state}${p.nominated ? ' nominated' : ''}`),
    answerCandidates: remote.split('\r\n').filter((l) => l.startsWith('a=candidate:')).filter((l, i, a) => a.indexOf(l) === i),
  };
}

// Joins (with the page's own limit on reaching the server, 15 s); a join that fails says what ICE saw.
async function joinOverTcp(m, url) {
  try {
    m.id = await join(m.page, url, m.name, T(20000), () => { m.clickAt = Date.now(); });
  } catch (err) {
    const ice = await m.page.evaluate(iceState).catch((e) => ({ unreadable: String(e) }));
    throw new Error(`${m.name} did not join: ${err.message}\n  ${m.name}'s ICE: ${JSON.stringify(ice)}`);
  }
  m.joinMs = Date.now() - m.clickAt;
}

// In a page (waitIn): each of `who` has a camera here that decodes 10 frames more than when this
// wait first saw it.
async function keepsDecoding(who) {
  const s = await window.__camus.streams();
  const seen = window.__seen || (window.__seen = {});
  const short = [];
  for (const m of who) {
    const cam = s.find((x) => x.peer === m.id && x.label === 'camera');
    const f = cam ? cam.frames : 0;
    if (!(m.id in seen)) seen[m.id] = f;
    if (f < seen[m.id] + 10) short.push(`${m.name}'s camera: ${f - seen[m.id]} frames more`);
  }
  return short.join(', ');
}

const others = (m, all) => all.filter((x) => x !== m).map(({ id, name, width, height }) => ({ id, name, width, height }));

// Waits at every page in parallel; resolves when the last one saw it, in ms after t0.
const everywhere = async (ms, pred, arg, limit, what, t0) =>
  Math.round(Math.max(...await Promise.all(ms.map((m) => waitIn(m.page, pred, typeof arg === 'function' ? arg(m) : arg, T(limit), `${what} at ${m.name}'s`)))) - t0);

// An SFU room of these members, all joined through the web client with the firewall up: they
// chat, decode each other's cameras, and every page's selected candidate pair is TCP to the
// server's HTTP port; the server says for each "over TCP".
async function roomOverTcp(srv, browser, members, label) {
  const created = await srv.post('/api/rooms', { name: `Over TCP ${label}`, media: 'sfu' });
  assert.equal(created.status, 201, 'room created: ' + created.text);
  const url = `${srv.url}/rtc/${created.json.id}`;
  for (const m of members) m.page = await newPage(m.browser || browser, m);
  await Promise.all(members.map((m) => joinOverTcp(m, url)));
  // Times from the first join click: pages load and start their cameras in parallel first.
  const t0 = Math.min(...members.map((m) => m.clickAt));
  const joined = Math.max(...members.map((m) => m.clickAt + m.joinMs)) - t0;
  const decoding = await everywhere(members, receivesAll, (m) => others(m, members), 20000, 'everyone', t0);
  const more = await everywhere(members, keepsDecoding, (m) => others(m, members), 10000, 'frames decoded going on', t0);
  say(`${label}: join click to call shown ${members.map((m) => `${m.name} ${m.joinMs}`).join(', ')} ms (all in ${joined} ms from the first click); ` +
    `first frames decoded at every page from all the others ${decoding} ms after the first click; 10 frames more from each by ${more} ms`);

  // The data channel carries more than the join: a chat line from the first reaches the others.
  const line = `over tcp ${label} ${Date.now()}`;
  await members[0].page.fill('#chat-input', line);
  await members[0].page.press('#chat-input', 'Enter');
  for (const m of members.slice(1)) await m.page.waitForSelector(`#chat-log li:has-text("${line}")`, { timeout: T(5000) });

  for (const m of members) {
    assert.equal(await pcCount(m.page), 1, `${m.name}'s RTCPeerConnections`);
    const ice = await m.page.evaluate(iceState);
    const s = ice.selected;
    const why = `${m.name}'s ICE: ${JSON.stringify(ice)}`;
    assert.ok(s, `no selected candidate pair: ${why}`);
    assert.equal(s.state, 'succeeded', why);
    assert.equal(s.local && s.local.protocol, 'tcp', `the selected pair is not TCP at the page's end: ${why}`);
    assert.equal(s.remote && s.remote.protocol, 'tcp', `the selected pair is not TCP at the server's end: ${why}`);
    assert.equal(s.remote.port, srv.port, `the selected pair does not end at the HTTP port ${srv.port}: ${why}`);
    // The media is bundled on this one pair: what the page's inbound RTP streams got came over it.
    assert.ok(ice.mediaBytesIn > 5000, `too little media came in: ${why}`);
    assert.ok(s.bytesReceived >= ice.mediaBytesIn, `the media came in on another pair: ${why}`);
    say(`${m.name}: ${s.local.protocol} ${s.local.address}:${s.local.port} (${s.local.tcpType}) -> ${s.remote.address}:${s.remote.port}, ` +
      `${s.bytesReceived} bytes in (${ice.mediaBytesIn} of them RTP), ${s.bytesSent} out, rtt ${s.rtt} s`);
  }
  const tcpLines = srv.log.filter((l) => /over TCP/.test(l));
  for (const m of members) {
    assert.ok(tcpLines.some((l) => l.includes(m.id)),
      `no "over TCP" line in the server's log for ${m.name} (${m.id}); its "over TCP" lines: ${JSON.stringify(tcpLines.slice(-10))}`);
  }
  for (const m of members) {
    const w = m.page.warnings.filter((x) => !/Invalid username/.test(x));
    if (w.length) say(`${m.name}'s console: ${w.slice(0, 5).join(' | ')}`);
  }
}

test('UDP blocked: an SFU room of 3 Chromium pages connects through ICE over TCP, data channel and video', async () => {
  const srv = await startServer();
  let browser, open = null;
  try {
    await answerHasTcp(srv);
    assert.ok(await udpAnswered(srv), 'the server answers STUN over UDP before the firewall');
    open = firewall('camus_noudp', ['meta l4proto udp drop']);
    assert.ok(!(await udpAnswered(srv)), 'STUN over UDP is still answered with UDP dropped');
    browser = await launchChromium();
    await roomOverTcp(srv, browser, MEMBERS.map((m) => ({ ...m })), 'UDP dropped');
  } finally {
    if (open) open();
    if (browser) await browser.close();
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
}, { timeout: T(50000) });

test("only TCP to the server's one port: an SFU room of 2 pages connects over it", async () => {
  const srv = await startServer();
  const other = net.createServer((s) => s.destroy());
  await new Promise((ok) => other.listen(0, '127.0.0.1', ok));
  let browser, crashy, open = null;
  try {
    await answerHasTcp(srv);
    crashy = await launchKillableChromium(); // the test talks to it over a TCP port of its own, let through below
    assert.ok(await tcpOpens(other.address().port), 'another TCP port opens before the firewall');
    open = firewall('camus_tcponly', [`tcp dport ${srv.port} accept`, `tcp sport ${srv.port} accept`,
      `tcp dport ${crashy.port} accept`, `tcp sport ${crashy.port} accept`], 'drop'); // and the test's line to a browser
    assert.ok(!(await udpAnswered(srv)), 'STUN over UDP is still answered');
    assert.ok(!(await tcpOpens(other.address().port)), 'another TCP port still opens');
    assert.equal((await srv.get('/api/config')).status, 200, 'HTTP through the firewall');
    browser = await launchChromium();
    const members = MEMBERS.slice(0, 2).map((m) => ({ ...m }));
    members[1].browser = crashy;
    await roomOverTcp(srv, browser, members, 'only TCP to the HTTP port');
    // Bob's browser dies: its TCP connection closes, and so does his session, at once rather than
    // after 30 s without consent; Ana sees him go.
    const bob = members[1], t0 = Date.now();
    crashy.kill();
    await srv.until(() => srv.log.some((l) => l.includes(`peer ${bob.id}: closed: its TCP connection closed`)), T(5000),
      'the session of a killed browser closed with its TCP connection');
    const left = await waitIn(members[0].page, async (id) => (window.camus.members().some((m) => m.id === id) ? 'Bob still listed' : ''),
      bob.id, T(5000), 'Bob gone from the list at Ana\'s');
    say(`a killed browser's session closed with its TCP connection; gone from the others' list ${Math.round(left - t0)} ms after the kill`);
  } finally {
    if (open) open();
    other.close();
    if (crashy) await crashy.close();
    if (browser) await browser.close();
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
}, { timeout: T(45000) });

// ---------------------------------------------------------------- raw TCP

const frame = (b) => Buffer.concat([Buffer.from([b.length >> 8, b.length & 255]), b]);

// One TCP connection to the server's port: sends chunks `gap` ms apart (then half-closes if `end`),
// collects what comes back until the server closes, done(bytes) holds, or ms pass.
function tcpTalk(port, chunks, { gap = 0, end = false, ms = 2000, done = () => false } = {}) {
  return new Promise((resolve) => {
    const s = net.connect({ port, host: '127.0.0.1' });
    const got = [];
    let closed = false, reset = false, settled = false, localPort;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      s.destroy();
      resolve({ data: Buffer.concat(got), closed, reset, localPort });
    };
    const timer = setTimeout(finish, ms);
    s.on('data', (d) => { got.push(d); if (done(Buffer.concat(got))) finish(); });
    s.on('close', () => { closed = true; finish(); });
    s.on('error', (e) => { if (e.code === 'ECONNRESET' || e.code === 'EPIPE') reset = true; });
    s.on('connect', async () => {
      localPort = s.localPort;
      for (const c of chunks) {
        if (s.destroyed || closed) break;
        s.write(c);
        if (gap) await sleep(gap);
      }
      if (end && !s.destroyed && !closed) s.end();
    });
  });
}

// The RFC 4571 frames in bytes: {frames, rest} (rest: what follows the last whole frame).
function unframe(b) {
  const frames = [];
  let i = 0;
  while (i + 2 <= b.length && i + 2 + b.readUInt16BE(i) <= b.length) {
    frames.push(b.subarray(i + 2, i + 2 + b.readUInt16BE(i)));
    i += 2 + b.readUInt16BE(i);
  }
  return { frames, rest: b.subarray(i) };
}

const dump = (b) => `${b.length} bytes: ${b.subarray(0, 48).toString('hex')} ${JSON.stringify(b.subarray(0, 48).toString('latin1'))}`;

// What the server sent back is nothing, or whole frames each a STUN Binding error for one of txids.
function onlyStunErrors(what, data, txids) {
  if (!data.length) return 0;
  assert.ok(!/^HTTP\//.test(data.toString('latin1')), `${what}: answered with HTTP: ${dump(data)}`);
  const { frames, rest } = unframe(data);
  assert.equal(rest.length, 0, `${what}: not whole RFC 4571 frames: ${dump(data)}`);
  for (const f of frames) {
    const m = stunParse(f);
    assert.ok(m, `${what}: a frame that is not STUN: ${dump(f)}`);
    assert.equal(m.type, BINDING_ERROR, `${what}: a STUN answer that is not a Binding error (type 0x${m.type.toString(16)}): ${dump(f)}`);
    assert.ok(txids.some((t) => t.equals(m.txid)), `${what}: an answer to no request of ours: ${dump(f)}`);
  }
  return frames.length;
}

test('garbage ICE-TCP frames on the HTTP port: a STUN error or nothing, no session taken, the server stays up', async () => {
  const srv = await startServer();
  try {
    const room = await srv.post('/api/rooms', { name: 'Raw TCP', media: 'sfu' });
    assert.equal(room.status, 201, room.text);
    const peer = await newPeer(srv.url, room.json.id);

    // A check for a real session with a bad MESSAGE-INTEGRITY; one for a username nobody has; then a
    // length prefix of 65535 followed by little, and the end of the connection.
    const badMac = check(peer, { corruptMac: true });
    const stranger = stun({ attrs: [[USERNAME, Buffer.from('nosuchufrag:HoSt')], [PRIORITY, u32(0x6e7f1eff)], [ICE_CONTROLLING, u64(1, 2)]],
      key: 'not the password of anyone' });
    const tooLong = Buffer.concat([Buffer.from([0xff, 0xff]), Buffer.from('\x00\x01\x00\x00\x21\x12\xa4\x42 and no more', 'latin1')]);
    const r = await tcpTalk(srv.port, [frame(badMac.msg), frame(stranger.msg), tooLong], { gap: 300, end: true, ms: T(3000) });
    const errors = onlyStunErrors('bad integrity, unknown username, overlong frame', r.data, [badMac.txid, stranger.txid]);

    // Each alone, on a connection of its own, left open.
    for (const [what, m] of [['bad integrity', badMac], ['unknown username', stranger]]) {
      const one = await tcpTalk(srv.port, [frame(m.msg)], { ms: T(800), done: (b) => unframe(b).frames.length > 0 });
      onlyStunErrors(what, one.data, [m.txid]);
    }
    // A STUN header whose length disagrees with its frame's.
    const liar = stun({ attrs: [[USERNAME, Buffer.from(`${peer.ufrag}:HoSt`)]], key: peer.pwd, lenDelta: 8 });
    onlyStunErrors('STUN length unlike its frame', (await tcpTalk(srv.port, [frame(liar.msg)], { ms: T(800) })).data, [liar.txid]);

    assert.equal(srv.proc.exitCode, null, 'the server exited');
    assert.equal((await srv.get('/')).status, 200, 'GET / after the garbage');
    const took = srv.log.filter((l) => /\bpeer [0-9a-f]{32}:.*over TCP/.test(l));
    assert.deepEqual(took, [], 'garbage took a session over TCP');
    assert.ok(srv.log.some((l) => /over TCP/.test(l)), 'the server never said it saw ICE over TCP: were the frames read as HTTP?');
    say(`garbage answered with ${errors} STUN error(s) (${r.closed ? 'then closed' : 'left open'}); the server answers GET / after it`);

    // The control: a right check, framed, gets a Binding success signed with the session's password
    // that maps our port, so that the silence above is refusal, not deafness.
    const good = check(peer);
    const ok = await tcpTalk(srv.port, [frame(good.msg)], { ms: T(2000), done: (b) => unframe(b).frames.length > 0 });
    const f = unframe(ok.data).frames;
    assert.ok(f.length, `no framed answer to a right check over TCP: ${dump(ok.data)} (closed: ${ok.closed})`);
    const m = stunParse(f[0], peer.pwd);
    assert.ok(m && m.type === BINDING_SUCCESS && m.txid.equals(good.txid), `the answer to a right check: ${dump(f[0])}`);
    assert.ok(m.integrityOk, 'the success is not signed with the session password');
    assert.ok(m.attrs[XOR_MAPPED_ADDRESS] && m.port === ok.localPort, `XOR-MAPPED-ADDRESS ${m.ip}:${m.port}, not our port ${ok.localPort}`);
  } finally {
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
}, { timeout: T(20000) });

test('ordinary HTTP on the same port still works: GET /api/config, GET /, a request a byte at a time, two on one connection', async () => {
  const srv = await startServer();
  try {
    const cfg = await srv.get('/api/config');
    assert.equal(cfg.status, 200, cfg.text);
    assert.ok(cfg.json && typeof cfg.json === 'object', 'JSON from /api/config: ' + cfg.text);
    const page = await srv.get('/');
    assert.equal(page.status, 200);
    assert.match(page.text, /<html/i);
    // The first bytes decide: given one at a time, the server must wait for enough of them.
    const dribble = [...rawRequest('GET', '/api/config')].map((b) => Buffer.from([b]));
    const d = await rawHttp(srv.port, dribble, { gap: 2, want: 1, ms: T(5000) });
    assert.deepEqual(d.statuses, [200], 'a request a byte at a time: ' + d.data.slice(0, 200));
    const two = await rawHttp(srv.port, [Buffer.concat([rawRequest('GET', '/api/config', { close: false }), rawRequest('GET', '/')])], { want: 2, ms: T(5000) });
    assert.deepEqual(two.statuses, [200, 200], 'two requests on one connection: ' + two.data.slice(0, 200));
  } finally {
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
}, { timeout: T(15000) });

await runInOwnNetns(import.meta.url);
