// The server restarts under its pages (issue: "a page whose server restarts is back in its room,
// with video, within 5 s of the server answering again, without a reload"), in headless Chromium:
// two pages in a room, the server killed with SIGKILL and started again at once on the same
// --state-dir and the same ports; from the moment the new process answers /healthz, each page must
// be back in the call within 5 s by itself: its connection to Ground Control made again, the same
// room, the same page (no reload), its name and chat log kept, a member list of exactly the two of
// them (no ghost of a session the old process had, nobody twice), and the other page's video
// decoding again.  Once for an SFU room (media through the server, so it stops at the kill) and
// once for a P2P room (media page to page, which the server's death does not touch, but the pages
// come back as new members, so their pairs are made anew).  When a page is late the failure says
// what it did and when: when it noticed the loss and why, each offer it made, when it was back.
// The whole file runs in a network namespace of its own (runInOwnNetns): the browsers see only
// loopback.
import { mkdtempSync, rmSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join as pathJoin } from 'node:path';
import { randomBytes } from 'node:crypto';
import { startServer, test, assert, runInOwnNetns, launchChromium, sleep, BIN } from './lib.mjs';
import { newPage as webPage, join, waitIn, errorLines } from './webclient.mjs';

// Under a sanitizer or valgrind the server is slower: waits for the setup stretch, the 5 s do not.
const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;
const T = (ms) => ms * SLOW;
const BACK_MS = 5000; // the requirement: back, with video, this long after the new server answers
const say = (line) => console.log('  ' + line);

// Small cameras of different shapes, 15 frames a second (as reconnect.mjs): two pages and the
// server fit on two cores.
const SHAPES = { Ana: [320, 240], Bob: [240, 240] };

// Runs in each page before its scripts: notes each offer the page POSTs, when (wall clock, ms) and
// how it ended: window.__offers = [{at, status, doneAt}].
function keepOffers() {
  const rec = window.__offers = [];
  const fetch0 = window.fetch;
  window.fetch = function (url, init) {
    const p = fetch0.apply(this, arguments);
    if (init && init.method === 'POST' && /\/rtc\/[^/]+\/offer$/.test(String(url)) && rec.length < 100) {
      const o = { at: performance.timeOrigin + performance.now(), status: null, doneAt: null };
      rec.push(o);
      p.then((r) => { o.status = r.status; }, () => { o.status = 'failed'; }).finally(() => { o.doneAt = performance.timeOrigin + performance.now(); });
    }
    return p;
  };
}

// A member `name`: {name, page}; its page keeps its room-infos and its offers, and the test counts
// the documents it loads (page.loads).
async function newPage(browser, name) {
  const [width, height] = SHAPES[name];
  const page = await webPage(browser, { width, height, fps: 15 });
  await page.context().addInitScript(keepOffers);
  page.loads = 0;
  page.on('load', () => { page.loads++; });
  return { name, page };
}

async function chat(page, text) {
  await page.fill('#chat-input', text);
  await page.press('#chat-input', 'Enter');
}
const inLog = (page, text) => page.waitForSelector(`#chat-log li:has-text("${text}")`, { timeout: T(5000) });

// ---- conditions checked inside a page (waitIn): '' when true, else what is missing

// The page is back by itself after the restart: connected again (one reconnect, no reload: the
// marker set before the kill is there), on a connection made after the kill, in the same room, and
// the member list the new server gave it holds exactly itself (under its name) and `other`.  With
// video: besides, the video of `other` decodes again, 5 frames more than when this wait first saw
// its stream, on a connection made after the kill, and its tile plays it (SFU: the camera the new
// Ground Control connection carries; P2P: the video on the connection to the member now listed as
// `other`).
async function back({ marker, room, me, other, video }) {
  const c = window.camus;
  if (window.__marker !== marker) return 'the page was loaded again (its marker is gone)';
  if (decodeURIComponent(location.pathname) !== `/rtc/${room}`) return `at ${location.pathname}`;
  if (c.connection !== 'connected' || c.reconnects < 1) return `connection: ${c.connection}, reconnects: ${c.reconnects}`;
  const gc = c.state.gc;
  if (!gc || window.__oldPcs.has(gc.pc) || gc.dc.readyState !== 'open' || !c.me.id) return 'no new channel to the server';
  const list = c.members();
  const names = list.map((x) => x.username).sort().join();
  if (list.length !== 2 || new Set(list.map((x) => x.id)).size !== 2 || names !== [me, other].sort().join()) return `members: ${JSON.stringify(list)}`;
  if (!list.some((x) => x.id === c.me.id && x.username === me)) return `not listed as itself (${c.me.id}): ${JSON.stringify(list)}`;
  if (!video) return '';
  const them = list.find((x) => x.username === other), p = c.peers.get(them.id);
  if (!p) return `no tile for ${other}`;
  let frames = null, pc;
  if (c.media === 'sfu') {
    pc = gc.pc;
    const cam = (await window.__camus.streams()).find((x) => x.peer === them.id && x.label === 'camera');
    if (cam) frames = cam.frames;
  } else {
    pc = p.pc;
    if (window.__oldPcs.has(pc)) return `the connection to ${other} is still the one from before the kill`;
    for (const s of (await pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') frames = (frames || 0) + (s.framesDecoded || 0);
  }
  if (frames === null) return `no video from ${other} yet (${pc.connectionState})`;
  const seen = window.__seen ||= new Map();
  if (!seen.has(them.id) || seen.get(them.id).pc !== pc) seen.set(them.id, { pc, frames });
  if (frames < seen.get(them.id).frames + 5) return `${frames - seen.get(them.id).frames} new frames from ${other} (${pc.connectionState})`;
  return p.video && p.video.videoWidth > 0 && p.avatar.hidden ? '' : `the tile of ${other} plays nothing`;
}

// Before the kill: everyone decodes the other (any connection).
async function videoNow({ other }) {
  const c = window.camus, them = c.members().find((x) => x.username === other);
  if (!them || !c.peers.get(them.id)) return `no ${other}`;
  const p = c.peers.get(them.id);
  let frames = 0;
  if (c.media === 'sfu') {
    const cam = (await window.__camus.streams()).find((x) => x.peer === them.id && x.label === 'camera');
    frames = cam ? cam.frames : 0;
  } else {
    for (const s of (await p.pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
  }
  return frames >= 5 && p.video.videoWidth > 0 ? '' : `${frames} frames from ${other}`;
}

// What a page says of itself now: its connection to Ground Control and the state of its drops.
const snapshot = (m) => m.page.evaluate(() => {
  const c = window.camus, gc = c.state.gc;
  return { connection: c.connection, pc: gc ? `${gc.pc.connectionState}/${gc.pc.iceConnectionState}${window.__oldPcs.has(gc.pc) ? ' (old)' : ' (new)'}` : 'none',
    gcStates: window.__gcStates || [], offers: window.__offers.map((o) => ({ ...o })),
    outages: c.outages().map((o) => ({ ...o, lostAt: o.lostAt + performance.timeOrigin, backAt: o.backAt === null ? null : o.backAt + performance.timeOrigin })) };
}).catch((e) => ({ unreadable: e.message }));

// ---- the restart

// Polls GET /healthz every 20 ms: resolves the wall-clock time of the first 200.
async function firstAnswer(url, ms) {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(20)) {
    try {
      const r = await fetch(url + '/healthz', { signal: AbortSignal.timeout(500) });
      if (r.status === 200) return Date.now();
    } catch { /* not up yet */ }
  }
  throw new Error(`/healthz did not answer within ${ms} ms`);
}

// Kills srv with SIGKILL and starts it again at once on the state directory dir and srv's ports.
// Resolves {srv (the new one), killAt, upAt: when /healthz first answered (wall clock)}.
async function killAndRestart(srv, dir) {
  const gone = new Promise((ok) => srv.proc.once('exit', ok));
  const killAt = Date.now();
  srv.proc.kill('SIGKILL');
  await gone;
  rmSync(srv.stateDir, { recursive: true, force: true }); // startServer's own directory, unused
  const up = firstAnswer(`http://127.0.0.1:${srv.port}`, T(10000));
  up.catch(() => {});
  const again = await startServer(['--state-dir', dir, '--port', String(srv.port), '--udp-port', String(srv.udpPort)]);
  assert.equal(again.port, srv.port, 'the same HTTP port');
  assert.equal(again.udpPort, srv.udpPort, 'the same UDP port');
  return { srv: again, killAt, upAt: await up };
}

// How a page came back, for the report: relative to the new server's first answer (t0).
function story(m, snap, t0, killAt) {
  const rel = (t) => (t === null || t === undefined ? '-' : `${t - t0 >= 0 ? '+' : ''}${Math.round(t - t0)}`);
  const o = (snap.outages || [])[0];
  const offers = (snap.offers || []).slice(1).map((x) => `${rel(x.at)}${x.status ? ` (${x.status} at ${rel(x.doneAt)})` : ''}`).join(', ');
  const states = (snap.gcStates || []).map((x) => `${x.state} at ${Math.round(x.at - killAt)} ms`).join(', ');
  return `${m.name}: its connection to the old server ${states ? `went ${states} after the kill` : 'never changed state'}; noticed the loss ${o ? `${Math.round(o.lostAt - killAt)} ms after the kill (${rel(o.lostAt)}): "${o.why}"` : 'never'}, ` +
    `${o ? o.attempts : 0} tries, offers at ${offers || 'none'}, back at ${o ? rel(o.backAt) : '-'}`;
}

// Two pages in a room of `media`; the server killed and started again; each page judged.
async function restartCase(media) {
  const dir = mkdtempSync(pathJoin(tmpdir(), 'camus-restart-'));
  let srv = await startServer(['--state-dir', dir]);
  const browser = await launchChromium();
  const roomName = `Restart ${media} ${randomBytes(3).toString('hex')}`;
  let stopped;
  try {
    const created = await srv.post('/api/rooms', { name: roomName, media });
    assert.equal(created.status, 201, created.text);
    const room = created.json.id;
    const url = `${srv.url}/rtc/${room}`;
    const all = await Promise.all(['Ana', 'Bob'].map((n) => newPage(browser, n)));
    await Promise.all(all.map(async (m) => { m.id = await join(m.page, url, m.name, T(20000)); }));
    const [ana, bob] = all;
    ana.other = 'Bob';
    bob.other = 'Ana';
    await Promise.all(all.map((m) => waitIn(m.page, videoNow, { other: m.other }, T(20000), `video at ${m.name}'s before the kill`)));
    await chat(ana.page, 'before the restart, from Ana');
    await chat(bob.page, 'before the restart, from Bob');
    for (const m of all) await Promise.all([inLog(m.page, 'before the restart, from Ana'), inLog(m.page, 'before the restart, from Bob')]);
    const marker = randomBytes(8).toString('hex');
    for (const m of all) {
      assert.equal(m.page.loads, 1, `${m.name}'s page loaded once`);
      await m.page.evaluate((marker) => {
        window.__marker = marker;
        const c = window.camus;
        window.__oldPcs = new Set([c.state.gc.pc, ...[...c.peers.values()].map((p) => p.pc).filter(Boolean)]);
        window.__infosBefore = window.__camus.roomInfos.length;
        // How Ground Control's connection of before the kill saw it die (for the report).
        const pc = c.state.gc.pc, states = window.__gcStates = [];
        const note = () => states.push({ at: performance.timeOrigin + performance.now(), state: `${pc.connectionState}/${pc.iceConnectionState}` });
        pc.addEventListener('connectionstatechange', note);
        pc.addEventListener('iceconnectionstatechange', note);
      }, marker);
    }
    const idsBefore = all.map((m) => m.id);

    // What must hold once the pages are back: run after the timing is measured.
    async function afterRestart() {
      // No reload (the marker, one load), the same room, names and chat logs kept.
      for (const m of all) {
        assert.equal(m.page.loads, 1, `${m.name}'s page was loaded again`);
        const kept = await m.page.evaluate(() => ({ marker: window.__marker, path: location.pathname, self: document.querySelector('#self-tile .label').textContent,
          name: window.camus.me.name }));
        assert.deepEqual(kept, { marker, path: `/rtc/${room}`, self: `${m.name} (you)`, name: m.name }, `${m.name}'s page after the restart`);
        for (const text of ['before the restart, from Ana', 'before the restart, from Bob']) await inLog(m.page, text);
      }
      // The member lists since the restart: never a ghost (an id of before, or a third member), never anyone twice.
      const ids = await Promise.all(all.map((m) => m.page.evaluate(() => window.camus.me.id)));
      for (const m of all) {
        const infos = await m.page.evaluate(() => window.__camus.roomInfos.slice(window.__infosBefore));
        assert.ok(infos.length >= 1, `${m.name} got a member list from the new server`);
        for (const { at, clients } of infos) {
          const when = `${m.name}'s list at +${Math.round(at - t0)} ms: ${JSON.stringify(clients)}`;
          assert.ok(clients.every((c) => ids.includes(c.id)), `a ghost in ${when} (ids now ${ids}, before ${idsBefore})`);
          assert.equal(new Set(clients.map((c) => c.username)).size, clients.length, `someone twice in ${when}`);
        }
      }
      const info = await srv.get(`/api/rooms/${room}`);
      assert.equal(info.status, 200, 'the room is there after the restart');
      assert.equal(info.json.clients, 2, 'the server holds two members');
      say(`  ids before ${idsBefore.map((x) => x.slice(0, 8))}, after ${ids.map((x) => x.slice(0, 8))} (${ids.every((x, i) => x === idsBefore[i]) ? 'the same members' : 'new members'})`);
      // And the call goes on: a chat each way.
      await chat(ana.page, 'after the restart, from Ana');
      await chat(bob.page, 'after the restart, from Bob');
      for (const m of all) await Promise.all([inLog(m.page, 'after the restart, from Ana'), inLog(m.page, 'after the restart, from Bob')]);
    }

    const r = await killAndRestart(srv, dir);
    srv = r.srv;
    const t0 = r.upAt;
    const atUp = await Promise.all(all.map(snapshot));
    const times = await Promise.all(all.map(async (m) => {
      const arg = { marker, room, me: m.name, other: m.other };
      // Waited for much longer than required, so that a late page is measured, not only failed.
      const [backAt, videoAt] = await Promise.all([
        waitIn(m.page, back, arg, T(30000), `${m.name} back`).catch((e) => e),
        waitIn(m.page, back, { ...arg, video: true }, T(30000), `${m.name}'s video from ${m.other} back`).catch((e) => e),
      ]);
      return { backAt, videoAt };
    }));
    const snaps = await Promise.all(all.map(snapshot));
    const upMs = t0 - r.killAt;
    say(`${media}: killed, started again, /healthz answered ${upMs} ms after the kill (t0); load average ${loadavg()[0].toFixed(1)} on ${cpus().length} CPUs`);
    for (const [i, m] of all.entries()) {
      const t = times[i], fmt = (x) => (x instanceof Error ? `not within ${T(30000)} ms (${x.message.split('waiting for ')[1]})` : `+${Math.round(x - t0)} ms`);
      say(`  ${story(m, snaps[i], t0, r.killAt)}; in the call at ${fmt(t.backAt)}, ${m.other}'s video decoding at ${fmt(t.videoAt)}` +
        `; at t0: ${atUp[i].connection}, Ground Control ${atUp[i].pc}`);
    }
    // The requirement, page by page.
    const late = [];
    for (const [i, m] of all.entries()) {
      for (const [what, at] of [['back in the call', times[i].backAt], [`decoding ${m.other}'s video`, times[i].videoAt]]) {
        if (at instanceof Error) late.push(`${m.name} not ${what} at all: ${at.message}`);
        else if (at - t0 > BACK_MS) late.push(`${m.name} ${what} ${Math.round(at - t0)} ms after the server answered again (at most ${BACK_MS})`);
      }
    }
    const lateSaid = `late pages: ${late.join('; ')}\n  ${all.map((m, i) => story(m, snaps[i], t0, r.killAt)).join('\n  ')}`;
    // A page that never came back leaves nothing more to check; one that came back late is checked
    // for the rest all the same (its lateness is the failure then, unless something else is wrong too).
    if (times.some((t) => t.backAt instanceof Error || t.videoAt instanceof Error)) assert.fail(lateSaid);
    try {
      await afterRestart();
    } catch (e) {
      if (late.length) e.message = `${lateSaid}\n  and besides: ${e.message}`;
      throw e;
    }
    assert.deepEqual(late, [], lateSaid);
  } finally {
    await browser.close();
    stopped = srv.stop().catch((e) => e); // SIGTERM: it must exit 0
    await stopped;
    rmSync(dir, { recursive: true, force: true });
  }
  const e = await stopped;
  if (e) throw e;
  assert.deepEqual(errorLines(srv.log), [], 'ERROR lines in the new server\'s log');
}

test('SFU room of two: the server killed (SIGKILL) and started again on the same state and ports; both pages back with video within 5 s, no reload',
  () => restartCase('sfu'), { timeout: T(120000) });

test('P2P room of two: the server killed (SIGKILL) and started again on the same state and ports; both pages back with video within 5 s, no reload',
  () => restartCase('p2p'), { timeout: T(120000) });

await runInOwnNetns(import.meta.url);
