// The web client keeps its place when Ground Control's connection drops (issue: "clients that
// survive network changes"), in headless Chromium: one page's connection to the server is cut
// (nftables drops its datagrams), the page says it lost the server and is reconnecting, comes back
// by itself as the same member (the server resumes it from the token of its last answer), and
// everyone sees, hears and chats with everyone again; a page that leaves does not come back.  The
// whole file runs in a network namespace of its own (runInOwnNetns), so that the cuts touch
// nothing else.
import { execFileSync } from 'node:child_process';
import { startServer, test, assert, runInOwnNetns, launchChromium, BIN } from './lib.mjs';
import { newPage as webPage, join, waitIn, receivesAll, errorLines } from './webclient.mjs';

// Under a sanitizer or valgrind the server is slower: time limits stretch.
const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;
const T = (ms) => ms * SLOW;
const say = (line) => console.log('  ' + line);

// Small cameras of different shapes (see sfu.mjs), 15 frames a second: three pages fit on two cores.
const SHAPES = { Ana: [320, 240], Bob: [240, 240], Cleo: [320, 160] };

// A member `name`: {name, page}, its page keeping its room-infos, and its offers to the server
// noted: page.offers = [{body, status, answer}].
async function newPage(browser, name) {
  const [width, height] = SHAPES[name];
  const page = await webPage(browser, { width, height, fps: 15 });
  page.offers = [];
  const byRequest = new Map();
  const isOffer = (r) => r.method() === 'POST' && /\/rtc\/[^/]+\/offer$/.test(new URL(r.url()).pathname);
  page.on('request', (r) => {
    if (!isOffer(r)) return;
    const o = { body: JSON.parse(r.postData() || '{}'), status: null, answer: null };
    byRequest.set(r, o);
    page.offers.push(o);
  });
  page.on('response', async (res) => {
    const o = byRequest.get(res.request());
    if (!o) return;
    o.status = res.status();
    o.answer = await res.json().catch(() => null);
  });
  return { name, page };
}

async function chat(page, text) {
  await page.fill('#chat-input', text);
  await page.press('#chat-input', 'Enter');
}
const inLog = (page, text) => page.waitForSelector(`#chat-log li:has-text("${text}")`, { timeout: T(5000) });

// ---- the cut

// The local UDP port of the path a connection of `m`'s page uses now (getStats): Ground Control's
// (peer null), or the one to member `peer` (P2P).
async function pathPort(m, peer = null) {
  const sel = await m.page.evaluate(async (peer) => {
    const c = window.camus, pc = peer ? c.peers.get(peer).pc : c.state.gc.pc;
    const st = await pc.getStats();
    for (const s of st.values()) {
      if (s.type !== 'transport' || !s.selectedCandidatePairId) continue;
      const pair = st.get(s.selectedCandidatePairId), local = st.get(pair.localCandidateId);
      return { port: local.port, protocol: local.protocol };
    }
    return null;
  }, peer);
  assert.ok(sel && sel.protocol === 'udp', `${m.name}'s connection to ${peer ? 'a peer' : 'the server'} goes over UDP: ${JSON.stringify(sel)}`);
  return sel.port;
}

// The local UDP ports of a member's paths to the server: the one its page uses now, and every one
// the server checked for it.
async function udpPorts(m, srv) {
  const now = await pathPort(m);
  const checked = srv.log.map((l) => l.match(new RegExp(`peer ${m.id}: checked \\S+:(\\d+)( over TCP)?`))).filter((x) => x && !x[2]).map((x) => Number(x[1]));
  return [...new Set([now, ...checked])];
}

// Two tables on the input hook (both ways of a datagram on loopback pass it): the member's UDP
// ports (`udp`), and all TCP to or from the server's HTTP port (`tcp`), which is where ICE over TCP
// goes too: Chromium keeps a TCP path to the server as a backup and moves to it when UDP stops,
// and which connection on that port is the member's is not known before it is made.  So while the
// TCP cut is on, every page's TCP to the server is cut; the others' connections go over UDP and
// do not notice (the tests check that they never reconnect).
const cuts = new Set();
function cut(name, rules) {
  execFileSync('nft', ['-f', '-'], { input: `table inet camus_cut_${name} {\n chain in {\n  type filter hook input priority 0;\n` +
    rules.map((r) => `  ${r} drop\n`).join('') + ' }\n}\n' });
  cuts.add(name);
}
function uncut(name) {
  for (const n of name ? [name] : [...cuts]) {
    if (cuts.delete(n)) execFileSync('nft', ['delete', 'table', 'inet', `camus_cut_${n}`]);
  }
}

// ---- conditions checked inside a page (waitIn): '' when true, else what is missing

// The page says it lost the server and is reconnecting (the banner, and window.camus.connection).
function showsReconnecting() {
  const bar = document.getElementById('conn-status');
  if (window.camus.connection !== 'reconnecting') return `connection: ${window.camus.connection}`;
  return !bar.hidden && /reconnecting/i.test(bar.textContent) ? '' : `banner: ${bar.hidden ? '(hidden)' : bar.textContent}`;
}

// The page is back (by itself: one reconnect), and says so.
function showsReconnected() {
  const c = window.camus, bar = document.getElementById('conn-status');
  if (c.connection !== 'connected' || c.reconnects !== 1) return `connection: ${c.connection}, reconnects: ${c.reconnects}`;
  if (c.outages()[0].sameId === null) return 'no greeting yet';
  if (!c.me.id || !c.state.gc || c.state.gc.dc.readyState !== 'open') return 'no channel to the server';
  return !bar.hidden && /reconnected/i.test(bar.textContent) ? '' : `banner: ${bar.hidden ? '(hidden)' : bar.textContent}`;
}

// SFU: the camera (or `label`) of each of `who` ({id, name}) decodes 5 frames more than when this
// wait (tag) first saw it.
async function camerasAdvance({ who, tag, label = 'camera' }) {
  const s = await window.__camus.streams();
  const seen = (window.__seen ||= {})[tag] ||= {};
  const wrong = [];
  for (const m of who) {
    const cam = s.find((x) => x.peer === m.id && x.label === label);
    if (!cam) { wrong.push(`${m.name}: no ${label}`); continue; }
    const key = `${m.id}:${cam.mid}`;
    if (!(key in seen)) seen[key] = cam.frames;
    if (cam.frames < seen[key] + 5) wrong.push(`${m.name}: ${cam.frames - seen[key]} new frames`);
  }
  return wrong.join(', ');
}

// P2P: the video from each of `who` ({id, name}), on its own peer connection, decodes 5 frames
// more than when this wait (tag) first saw it, and shows in its tile.
async function peersAdvance({ who, tag }) {
  const seen = (window.__seen ||= {})[tag] ||= {};
  const wrong = [];
  for (const m of who) {
    const p = window.camus.peers.get(m.id);
    if (!p) { wrong.push(`${m.name}: no peer`); continue; }
    let frames = 0;
    for (const s of (await p.pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    if (!(m.id in seen)) seen[m.id] = frames;
    if (frames < seen[m.id] + 5) wrong.push(`${m.name}: ${frames - seen[m.id]} new frames (${p.pc.connectionState}, ${p.pc.signalingState})`);
    else if (!(p.video.videoWidth > 0)) wrong.push(`${m.name}: the tile plays nothing`);
  }
  return wrong.join(', ');
}

// ----

const others = (m, all) => all.filter((x) => x !== m).map(({ id, name }) => ({ id, name }));
const wait = (m, pred, arg, ms, what) => waitIn(m.page, pred, arg, T(ms), `${what} at ${m.name}'s`);
// What each page had and said, for a failure that needs more than one page to explain: its own
// camera and microphone (a fake device that failed to start leaves a page that sends nothing), the
// sections it sends on, and its last console warnings.
async function pagesSaid(all) {
  const said = await Promise.all(all.map(async (m) => {
    const own = await m.page.evaluate(() => {
      const c = window.camus, t = (x) => (x ? `${x.readyState}${x.enabled ? '' : ' (off)'}` : 'none');
      return `camera ${t(c.me.cam)}, mic ${t(c.me.mic)}, connection ${c.connection}`;
    }).catch((e) => `unreadable: ${e.message}`);
    return `${m.name}: ${own}; console: ${m.page.warnings.slice(-5).join(' | ') || '(nothing)'}`;
  }));
  return said.join(' / ');
}
const waitAll = async (all, ms, what) => {
  try {
    await Promise.all(all.map((m) => wait(m, receivesAll, others(m, all), ms, what)));
  } catch (e) {
    throw new Error(`${e.message}; the pages: ${await pagesSaid(all)}`);
  }
};
const members = (m) => m.page.evaluate(() => window.camus.members().map((c) => ({ id: c.id, username: c.username })));
const outage = (m) => m.page.evaluate(() => window.camus.outages()[0] || null);
// A member whose connection to the server never dropped: 'connected, no drop'.
const steady = (m) => m.page.evaluate(() => `${window.camus.connection}, ${window.camus.outages().length ? window.camus.outages().map((o) => o.why).join('; ') : 'no drop'}`);

// Cuts `m`'s connection to the server; resolves once its page says it is reconnecting, with when
// (ms since the cut).  The TCP cut ends then (the page is to reconnect over HTTP), and the UDP one
// too unless keep: the member's old paths stay dead (a network change) rather than coming back.
// more: other local UDP ports of the member's to cut as well (its paths to peers).
async function dropServer(m, srv, keep, more = []) {
  const ports = [...await udpPorts(m, srv), ...more];
  const t0 = Date.now();
  cut('udp', ports.flatMap((p) => [`udp sport ${p}`, `udp dport ${p}`]));
  cut('tcp', [`tcp sport ${srv.port}`, `tcp dport ${srv.port}`]);
  try {
    const seen = await wait(m, showsReconnecting, null, 30000, 'the reconnecting banner');
    return { t0, ports, detectMs: Math.round(seen - t0) };
  } finally {
    uncut('tcp');
    if (!keep) uncut('udp');
  }
}

// After `m`'s reconnect (its outage o): the same member, with its id; or, only from a server that
// gives no resume token (one from before resumption), a new member (its name is checked by the
// caller).  m.id becomes its id now.
async function judgeId(m, o) {
  const id = await m.page.evaluate(() => window.camus.me.id);
  if (o.sameId) {
    assert.equal(id, m.id, `${m.name}'s id`);
    return;
  }
  const token = m.page.offers[0].answer && m.page.offers[0].answer.resume;
  assert.ok(typeof token !== 'string', `${m.name} came back as a new member (${m.id.slice(0, 8)}… is now ${id.slice(0, 8)}…), although ` +
    `the server's first answer gave a resume token and her reconnect offer carried ${JSON.stringify(m.page.offers[1].body.resume)}`);
  say(`${m.name} came back with a new id: the server gave no resume token (a camus from before resumption)`);
  m.id = id;
}

// Her reconnect: one offer more, carrying the token of the answer before it (if there was one).
function checkOffers(m) {
  const offers = m.page.offers;
  assert.ok(offers.length >= 2, `${m.name} offered again: ${offers.length} offers`);
  const token = offers[0].answer && offers[0].answer.resume;
  if (typeof token === 'string') assert.equal(offers[1].body.resume, token, 'the reconnect offer carries the resume token of the first answer');
  else assert.ok(!('resume' in offers[1].body), 'no token was given, none is sent');
  assert.equal(offers[offers.length - 1].status, 200, 'the last offer was answered');
}

test('SFU room of three: one page loses the server for a while, comes back by itself as the same member', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const created = await srv.post('/api/rooms', { name: 'Drop Sfu', media: 'sfu' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const all = await Promise.all(['Ana', 'Bob', 'Cleo'].map((n) => newPage(browser, n)));
    await Promise.all(all.map(async (m) => { m.id = await join(m.page, url, m.name, T(20000)); }));
    const [ana, bob, cleo] = all;
    await waitAll(all, 20000, 'everyone decoding');
    await chat(ana.page, 'before the cut, from Ana');
    await chat(bob.page, 'before the cut, from Bob');
    for (const m of all) await Promise.all([inLog(m.page, 'before the cut, from Ana'), inLog(m.page, 'before the cut, from Bob')]);
    // Ana shares her screen: it is to come back too.
    await ana.page.click('#toggle-screen');
    const anaOnly = [{ id: ana.id, name: 'Ana' }];
    await Promise.all([bob, cleo].map((m) => wait(m, camerasAdvance, { who: anaOnly, tag: 'screen', label: 'screen' }, 15000, "Ana's screen")));
    // What must survive at Ana's: her tiles (the same elements), her camera (the same track, live).
    await ana.page.evaluate(() => {
      for (const p of window.camus.peers.values()) p.tile.dataset.before = 'yes';
      window.__cam = window.camus.me.cam;
    });
    const roomInfosBefore = await Promise.all([bob, cleo].map((m) => m.page.evaluate(() => window.__camus.roomInfos.length)));

    const { t0, ports, detectMs } = await dropServer(ana, srv, false);
    const back = await wait(ana, showsReconnected, null, 20000, 'reconnected');
    const o = await outage(ana);
    const backMs = Math.round(back - t0);
    checkOffers(ana);
    await judgeId(ana, o);
    const decoded = await Promise.all(all.map((m) => wait(m, camerasAdvance, { who: others(m, all), tag: 'after' }, 20000, 'cameras decoding again')));
    await Promise.all([bob, cleo].map((m) => wait(m, camerasAdvance, { who: anaOnly, tag: 'screen after', label: 'screen' }, 15000, "Ana's screen again")));
    say(`Ana's datagrams (UDP port ${ports}) and all TCP to the server dropped: her page said "reconnecting" after ${detectMs} ms (${o.why}), ` +
      `was back after ${backMs} ms (${Math.round(o.backAt - o.lostAt)} ms after it noticed, ${o.attempts} ${o.attempts === 1 ? 'try' : 'tries'}, ` +
      `${o.sameId ? 'the same member' : 'a new member'}); everyone decoding everyone again ${Math.round(Math.max(...decoded) - t0)} ms after the cut`);
    // The others' lists: never two Anas, not Ana leaving (if she was resumed), three members at the end.
    for (const [i, m] of [bob, cleo].entries()) {
      const infos = (await m.page.evaluate(() => window.__camus.roomInfos)).slice(roomInfosBefore[i]).map((l) => l.clients);
      const twice = infos.find((l) => l.filter((c) => c.username === 'Ana').length > 1);
      assert.ok(!twice, `${m.name}'s member list showed two Anas: ${JSON.stringify(twice)}`);
      if (o.sameId) assert.ok(infos.every((l) => l.some((c) => c.id === ana.id)), `${m.name} saw Ana leave`);
      const list = await members(m);
      assert.deepEqual(list.map((c) => c.username).sort(), ['Ana', 'Bob', 'Cleo'], `${m.name}'s members at the end`);
      assert.ok(list.some((c) => c.id === ana.id), `${m.name} lists Ana's id`);
    }
    assert.equal((await members(ana)).length, 3, "Ana's members at the end");
    for (const m of [bob, cleo]) assert.equal(await steady(m), 'connected, no drop', `${m.name}'s connection to the server`);
    // Ana kept her chat, her tiles and her camera.
    for (const text of ['before the cut, from Ana', 'before the cut, from Bob']) await inLog(ana.page, text);
    const kept = await ana.page.evaluate(() => ({
      tiles: [...window.camus.peers.values()].filter((p) => p.tile.isConnected && p.tile.dataset.before === 'yes').length,
      cam: window.__cam === window.camus.me.cam && window.camus.me.cam.readyState === 'live',
      name: document.querySelector('#self-tile .label').textContent,
      grid: document.querySelectorAll('#grid .tile').length,
      ownScreen: document.querySelectorAll('#grid .tile.self.screen').length,
    }));
    assert.deepEqual(kept, { tiles: 2, cam: true, name: 'Ana (you)', grid: 4, ownScreen: 1 }, "Ana's page after the reconnect (2 members, herself, her screen)");
    // Everyone receives everyone again (each camera and microphone once), and chats both ways.
    await waitAll(all, 10000, 'everyone');
    await chat(ana.page, 'after the cut, from Ana');
    await chat(cleo.page, 'after the cut, from Cleo');
    for (const m of all) await Promise.all([inLog(m.page, 'after the cut, from Ana'), inLog(m.page, 'after the cut, from Cleo')]);
  } finally {
    uncut(null);
    await browser.close();
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
}, { timeout: T(80000) });

// A network change in a P2P room: Ana's paths to the server and to Bob both die (their UDP ports
// stay cut), so her video and Bob's come back only over the new paths an ICE restart of their
// pair finds, signalled through her new session.  The room has a password: her reconnect offer is
// admitted by the proof of her first join (its cookie), as that offer was.
test('P2P room of two with a password: a network change, back as the same member, the pair restarts ICE', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const created = await srv.post('/api/rooms', { name: 'Drop P2p', media: 'p2p', password: 'swordfish' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const all = await Promise.all(['Ana', 'Bob'].map((n) => newPage(browser, n)));
    await Promise.all(all.map(async (m) => { m.id = await join(m.page, url, m.name, T(20000), () => m.page.fill('#room-password', 'swordfish')); }));
    const [ana, bob] = all;
    await Promise.all(all.map((m) => wait(m, peersAdvance, { who: others(m, all), tag: 'before' }, 20000, 'video')));
    await chat(bob.page, 'before the cut, from Bob');
    await inLog(ana.page, 'before the cut, from Bob');
    const ufrag = (m, id) => m.page.evaluate((id) => {
      const d = window.camus.peers.get(id).pc.currentRemoteDescription;
      return d && (d.sdp.match(/a=ice-ufrag:(\S+)/) || [])[1];
    }, id);
    const before = { atAna: await ufrag(ana, bob.id), atBob: await ufrag(bob, ana.id) };
    const polite = await ana.page.evaluate((id) => window.camus.peers.get(id).polite, bob.id);
    await bob.page.evaluate((id) => { window.__peer = window.camus.peers.get(id); }, ana.id);

    let t0, ports, detectMs, o, decoded;
    try {
      ({ t0, ports, detectMs } = await dropServer(ana, srv, true, [await pathPort(ana, bob.id)]));
      await wait(ana, showsReconnected, null, 20000, 'reconnected');
      o = await outage(ana);
      checkOffers(ana);
      await judgeId(ana, o);
      decoded = await Promise.all(all.map((m) => wait(m, peersAdvance, { who: others(m, all), tag: 'after' }, 20000, 'video again')));
    } finally {
      uncut('udp');
    }
    say(`Ana's UDP ports ${ports} (to the server, to Bob) cut for good, all TCP to the server for a while: "reconnecting" after ${detectMs} ms ` +
      `(${o.why}), back ${Math.round(o.backAt - o.lostAt)} ms later (${o.attempts} ${o.attempts === 1 ? 'try' : 'tries'}, ` +
      `${o.sameId ? 'the same member' : 'a new member'}); both decoding each other ${Math.round(Math.max(...decoded) - t0)} ms after the cut, ` +
      `the restart made by ${polite ? 'Bob, told by Ana' : 'Ana'} (the impolite side)`);
    if (o.sameId) {
      // The pair was not made anew but restarted: new ICE credentials both ways, Bob's connection the same.
      assert.notEqual(await ufrag(ana, bob.id), before.atAna, "Bob's ICE credentials at Ana's are new");
      assert.notEqual(await ufrag(bob, ana.id), before.atBob, "Ana's ICE credentials at Bob's are new");
      assert.ok(await bob.page.evaluate((id) => window.__peer === window.camus.peers.get(id), ana.id), "Bob's connection to Ana is the one he had");
    }
    // (A new member's old session, its path dead, would stay listed until consent freshness drops it.)
    for (const m of all) assert.deepEqual((await members(m)).map((c) => c.username).sort(), ['Ana', 'Bob'], `${m.name}'s members`);
    assert.equal(await steady(bob), 'connected, no drop', "Bob's connection to the server");
    await inLog(ana.page, 'before the cut, from Bob');
    await chat(ana.page, 'after the cut, from Ana');
    await chat(bob.page, 'after the cut, from Bob');
    for (const m of all) await Promise.all([inLog(m.page, 'after the cut, from Ana'), inLog(m.page, 'after the cut, from Bob')]);
  } finally {
    uncut(null);
    await browser.close();
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
}, { timeout: T(70000) });

test('Leave is no drop: the page that leaves makes no new offer', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const created = await srv.post('/api/rooms', { name: 'Drop Leave', media: 'sfu' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const all = await Promise.all(['Ana', 'Bob'].map((n) => newPage(browser, n)));
    await Promise.all(all.map(async (m) => { m.id = await join(m.page, url, m.name, T(20000)); }));
    const [ana, bob] = all;
    await wait(bob, (id) => (window.camus.members().some((c) => c.id === id) ? '' : 'no Ana'), ana.id, 10000, 'Ana listed');
    // The lobby Leave goes to answers 204, so that the page stays (a 204 navigates nowhere) and
    // what it does after leaving can be watched.
    await ana.page.route((u) => u.pathname === '/', (route) => route.fulfill({ status: 204, body: '' }));
    await ana.page.evaluate(() => { window.__dc = window.camus.state.gc.dc; });
    assert.equal(ana.page.offers.length, 1, 'one offer before leaving');
    await ana.page.click('#leave');
    await wait(bob, (id) => (window.camus.members().some((c) => c.id === id) ? 'Ana still listed' : ''), ana.id, 5000, 'Ana gone');
    // Past the first tries' waits (0.5 s ±30 %, then 1 s) and the 4 s a 'disconnected' connection is given.
    await ana.page.waitForTimeout(5000);
    const after = await ana.page.evaluate(() => ({
      path: location.pathname, dc: window.__dc.readyState, connection: window.camus.connection,
      reconnects: window.camus.reconnects, outages: window.camus.outages().length, banner: !document.getElementById('conn-status').hidden,
    }));
    assert.deepEqual(after, { path: new URL(url).pathname, dc: 'closed', connection: 'left', reconnects: 0, outages: 0, banner: false },
      'the page after Leave');
    assert.equal(ana.page.offers.length, 1, 'no offer after leaving');
    assert.ok(srv.log.some((l) => l.includes(`peer ${ana.id}: closed: said bye`)), 'the server heard the bye');
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: T(40000) });

// A drop (here the page closes its own channel) after which the server refuses the page for good:
// the proof of its password is gone (its cookies cleared).  The page stops at once, says why, and
// offers Rejoin, which starts over at the join form.
test('a reconnect refused for good: "Could not reconnect" at once, no more tries, Rejoin goes back to the join form', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const created = await srv.post('/api/rooms', { name: 'Drop Refused', media: 'sfu', password: 'swordfish' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const ana = await newPage(browser, 'Ana');
    ana.id = await join(ana.page, url, ana.name, T(20000), () => ana.page.fill('#room-password', 'swordfish'));
    await ana.page.context().clearCookies();
    await ana.page.evaluate(() => window.camus.state.gc.dc.close());
    await wait(ana, () => {
      const c = window.camus, bar = document.getElementById('conn-status');
      if (c.connection !== 'failed') return `connection: ${c.connection}`;
      return !bar.hidden && /could not reconnect.*password/i.test(bar.textContent) && !document.getElementById('rejoin').hidden ? '' : `banner: ${bar.textContent}`;
    }, null, 10000, 'Could not reconnect');
    await ana.page.waitForTimeout(2000); // past the next try's wait, had there been one
    const o = await outage(ana);
    assert.equal(o.attempts, 1, 'one try');
    assert.equal(o.backAt, null);
    assert.deepEqual(ana.page.offers.map((x) => [x.status, x.answer && x.answer.error]), [[200, undefined], [403, 'password required']], 'the offers');
    await ana.page.click('#rejoin');
    await ana.page.waitForSelector('#prejoin:not([hidden]) #password-row:not([hidden])', { timeout: T(10000) });
    assert.equal(await ana.page.inputValue('#display-name'), 'Ana', 'the name is kept for the join form');
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: T(30000) });

await runInOwnNetns(import.meta.url);
