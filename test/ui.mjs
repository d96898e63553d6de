// The room as people compare it with Meet and Jitsi (issue 15), in headless Chromium: the layout
// measured at 1280x800, 1920x1080 and on a phone (390x844, touch) for 1, 2, 4, 6 and 9 people, each
// person a page of its own (screenshots in test/out/ui-<size>-<people>.png); a screen shared in P2P
// and SFU rooms taking the stage while the sharer's camera still decodes; devices changed, plugged
// and lost mid-call; a keyboard-only walk from joining to leaving and rejoining; and axe-core in
// the pages, light and dark, with no serious or critical violation.
import { mkdirSync, readFileSync } from 'node:fs';
import { join as path } from 'node:path';
import { startServer, test, assert, run, sleep, chromiumArgs, inCall, root, BIN } from './lib.mjs';
import { waitIn, pageSetup } from './webclient.mjs';

const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;
const T = (ms) => ms * SLOW;
const OUT = path(root, 'test/out');
mkdirSync(OUT, { recursive: true });
const AXE_SOURCE = readFileSync(path(root, 'test/node_modules/axe-core/axe.min.js'), 'utf8');
const say = (line) => console.log('  ' + line);

// Three fake cameras (to switch between: the first gives I420 frames, the third MJPEG; the second's
// are Y16, which no encoder takes), small and at 10 frames a second: nine pages sending and decoding
// each other fit on two cores.
async function launch() {
  const { chromium } = await import('playwright-core');
  const args = chromiumArgs.map((a) => (a === '--use-fake-device-for-media-stream' ? `${a}=device-count=3` : a));
  return chromium.launch({ executablePath: '/usr/bin/chromium', args });
}
function smallCamera() {
  const md = navigator.mediaDevices;
  if (!md) return;
  const gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => gum(c && c.video ? { ...c, video: { ...(typeof c.video === 'object' ? c.video : {}), width: 320, height: 240, frameRate: { max: 10 } } } : c);
}
// The others of the nine: a smaller camera still (160x120) and no microphone, so that the pages
// watched are not starved by the ones watching.  (At most 5 frames a second would be lighter still,
// but fake cameras opened at once by several pages that ask for 5 then often deliver no frame at all.)
function extraPerson() {
  const md = navigator.mediaDevices, gum = md.getUserMedia.bind(md);
  md.getUserMedia = (c) => (c && c.video ? gum({ video: { width: 160, height: 120, frameRate: { max: 10 } } })
    : Promise.reject(new DOMException('no microphone here', 'NotFoundError')));
}

const PHONE = { viewport: { width: 390, height: 844 }, isMobile: true, hasTouch: true, deviceScaleFactor: 1 };
async function newPage(browser, options = { viewport: { width: 1280, height: 800 } }, init = null) {
  const context = await browser.newContext(options);
  await context.addInitScript(pageSetup); // what each page receives, to say so when a wait fails
  await context.addInitScript(init === extraPerson ? extraPerson : smallCamera);
  if (init && init !== extraPerson) await context.addInitScript(init);
  const page = await context.newPage();
  page.errors = [];
  page.dialogs = 0;
  page.on('pageerror', (e) => page.errors.push(e.message));
  page.on('dialog', (d) => { page.dialogs++; d.dismiss().catch(() => {}); });
  return page;
}

async function join(page, url, name) {
  await page.goto(url);
  await page.fill('#display-name', name);
  await page.click('#join-button');
  await inCall(page, T(20000));
  await waitIn(page, () => (window.camus.me.id ? '' : 'no id'), null, T(10000), `${name}'s id`);
  return page.evaluate(() => window.camus.me.id);
}
// Waits in the page; one that does not see it in time adds what it receives from the server (SFU
// rooms) and its last messages with Ground Control to the error.
const wait = (page, pred, arg, ms, what) => waitIn(page, pred, arg, T(ms), what).catch(async (err) => {
  const seen = await page.evaluate(async () => {
    const s = (await window.__camus.streams()).map((x) => `${x.peer.slice(0, 6)}:${x.label}:${x.mid}:${x.kind === 'video' ? `${x.frames}f ${x.packets}p ${x.w}x${x.h}` : `${x.packets}p`}`);
    const trace = window.__camus.trace.filter((x) => !/ping|pong/.test(x.type)).slice(-12).map((x) => `${Math.round(performance.now() - x.t)} ms ago ${x.dir} ${x.type}`);
    return `streams: ${s.join(' ')}; last messages: ${trace.join(', ')}`;
  }).catch((e) => String(e));
  throw new Error(`${err.message}\n  ${seen}`);
});

// ---- in the page: '' when true, else what is missing

// n members listed, every video shown decodes, and the tiles have not moved for 300 ms.
function settled(n) {
  const c = window.camus;
  if (c.members().length !== n) return `${c.members().length} members, not ${n}`;
  const shown = [...document.querySelectorAll('#grid > .tile')].filter((t) => getComputedStyle(t).display !== 'none');
  for (const t of shown) {
    const v = t.querySelector('video'), a = t.querySelector('.avatar');
    if (a && !a.hidden) return `${t.getAttribute('aria-label')} shows its avatar`;
    if (!(v.videoWidth > 0)) return `${t.getAttribute('aria-label')} shows no frame yet`;
  }
  const sig = shown.map((t) => { const r = t.getBoundingClientRect(); return [r.x, r.y, r.width, r.height].map(Math.round).join(); }).join(';');
  if (sig !== window.__sig) { window.__sig = sig; window.__since = performance.now(); }
  return performance.now() - window.__since >= 300 ? '' : 'tiles moving';
}

// What the page shows: the viewport, how far the document scrolls past it, the grid's box, and per
// tile shown its box and, for a video, how much of the tile is bars (not the picture) and how much of
// the picture is cropped away.
function measure() {
  const de = document.documentElement, g = document.getElementById('grid').getBoundingClientRect();
  const tiles = [...document.querySelectorAll('#grid > .tile')].filter((t) => getComputedStyle(t).display !== 'none').map((t) => {
    const r = t.getBoundingClientRect(), v = t.querySelector('video'), vr = v.getBoundingClientRect();
    const out = { x: r.x, y: r.y, w: r.width, h: r.height, pip: t.classList.contains('pip'), screen: t.classList.contains('screen'),
      self: t.id === 'self-tile', stage: t.classList.contains('on-stage'), name: t.getAttribute('aria-label'), bars: null, cropped: null };
    if (v.videoWidth > 0) {
      const fit = getComputedStyle(v).objectFit;
      const s = (fit === 'cover' ? Math.max : Math.min)(vr.width / v.videoWidth, vr.height / v.videoHeight);
      const cw = v.videoWidth * s, ch = v.videoHeight * s;
      const seen = Math.min(cw, vr.width, r.width) * Math.min(ch, vr.height, r.height);
      out.bars = 1 - seen / (r.width * r.height);
      out.cropped = 1 - seen / (cw * ch);
    }
    return out;
  });
  const controls = [...document.querySelectorAll('.controls button, header.bar button')].filter((b) => b.offsetParent)
    .map((b) => { const r = b.getBoundingClientRect(); return { id: b.id, x: r.x, y: r.y, w: r.width, h: r.height }; });
  return { vw: innerWidth, vh: innerHeight, sx: de.scrollWidth - innerWidth, sy: de.scrollHeight - innerHeight,
    grid: { x: g.x, y: g.y, w: g.width, h: g.height }, tiles, controls, pager: !document.getElementById('pager').hidden };
}

// The width the best grid of n cells of aspect a gets in w x h (gap 8 px around and between): as room.js should find it.
function bestWidth(n, a, w, h) {
  let best = 0;
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    best = Math.max(best, Math.min((w - 16 - 8 * (cols - 1)) / cols, ((h - 16 - 8 * (rows - 1)) / rows) * a));
  }
  return best;
}

const distinct = (xs) => new Set(xs.map(Math.round)).size;
const overlap = (a, b) => a.x < b.x + b.w - 1 && b.x < a.x + a.w - 1 && a.y < b.y + b.h - 1 && b.y < a.y + a.h - 1;

// Checks a grid layout of n people (all of them on one page) and returns a line about it.
function judgeGrid(m, n, label, { paged = false } = {}) {
  assert.ok(m.sx <= 0 && m.sy <= 0, `${label}: the page scrolls (${m.sx}, ${m.sy} px past the viewport)`);
  const grid = m.tiles.filter((t) => !t.pip);
  for (const t of m.tiles) {
    assert.ok(t.x >= m.grid.x - 1 && t.y >= m.grid.y - 1 && t.x + t.w <= m.grid.x + m.grid.w + 1 && t.y + t.h <= m.grid.y + m.grid.h + 1,
      `${label}: ${t.name} (${JSON.stringify(t)}) is not inside the stage ${JSON.stringify(m.grid)}`);
    if (t.bars !== null) {
      assert.ok(t.bars <= 0.10, `${label}: ${(t.bars * 100).toFixed(1)} % of ${t.name}'s tile is bars`);
      assert.ok(t.cropped <= 0.10, `${label}: ${(t.cropped * 100).toFixed(1)} % of ${t.name}'s picture is cropped`);
    }
  }
  for (const [i, a] of grid.entries()) for (const b of grid.slice(i + 1)) assert.ok(!overlap(a, b), `${label}: ${a.name} and ${b.name} overlap`);
  for (const c of m.controls) assert.ok(c.x >= 0 && c.y >= 0 && c.x + c.w <= m.vw + 0.5 && c.y + c.h <= m.vh + 0.5, `${label}: control ${c.id} is outside the viewport`);
  if (!paged) {
    assert.equal(m.tiles.length, n, `${label}: ${m.tiles.length} tiles shown for ${n} people`);
    assert.ok(!m.pager, `${label}: a pager for ${n} people`);
    // The tiles are as large as the best column count makes them (within 2 %).
    const a = grid[0].w / grid[0].h;
    const best = bestWidth(grid.length, a, m.grid.w, m.grid.h);
    assert.ok(grid[0].w >= best * 0.98, `${label}: tiles ${grid[0].w.toFixed(0)} px wide, the best grid would give ${best.toFixed(0)}`);
  }
  const worst = Math.max(0, ...m.tiles.map((t) => t.bars || 0));
  const rows = distinct(grid.map((t) => t.y)), cols = Math.max(...grid.map((t) => grid.filter((u) => Math.round(u.y) === Math.round(t.y)).length));
  return `${label}: ${cols} columns x ${rows} rows, tiles ${Math.round(grid[0].w)}x${Math.round(grid[0].h)}, bars at most ${(worst * 100).toFixed(1)} %`;
}

// A new viewport; what settled() saw before is forgotten, so that it waits for the tiles to follow.
async function resize(page, width, height) {
  await page.setViewportSize({ width, height });
  await page.evaluate(() => { window.__sig = null; });
}

async function shot(page, name) {
  await page.evaluate(() => document.activeElement && document.activeElement.blur());
  await page.screenshot({ path: path(OUT, `${name}.png`) });
}

// A line from one page (its side panel open) to a phone (its panel closed): counted unread in the
// phone's title until the phone opens its chat, which then shows it without anything overflowing.
async function chat(from, phone, text, name) {
  if (await from.evaluate(() => document.getElementById('side').classList.contains('collapsed'))) await from.click('#toggle-side');
  await from.fill('#chat-input', text);
  await from.press('#chat-input', 'Enter');
  await wait(phone, () => (/^\(1\) /.test(document.title) ? '' : document.title), null, 5000, 'the unread count in the title');
  await phone.tap('#toggle-side');
  await wait(phone, () => (!/^\(/.test(document.title) && document.documentElement.scrollWidth <= innerWidth ? '' : `${document.title}, ${document.documentElement.scrollWidth}`),
    null, 5000, 'the chat read, no overflow');
  const sheet = await phone.evaluate(() => { const r = document.getElementById('chat-log').lastElementChild.getBoundingClientRect(); return r.right <= innerWidth && r.left >= 0; });
  assert.ok(sheet, 'the line fits the phone');
  await shot(phone, name);
  await phone.tap('#close-side');
}

// The layout at every size for 1, 2, 4, 6 and 9 people, in an SFU room (one connection a page):
// Desk (a laptop window, 1280x800 and 1920x1080) and Pho (a phone, 390x844, touch) take turns at
// being alone, then others join.  On the way: Leave asks nothing and Rejoin is one click; a phone
// turned sideways; a small window pages the grid; unread chat in the title; the phone's invite.
test('layout: 1, 2, 4, 6 and 9 people at 1280x800, 1920x1080 and on a phone; leave and rejoin; rotation; a pager', async () => {
  const srv = await startServer();
  const browser = await launch();
  const t0 = Date.now();
  const lines = { push: (l) => say(`${((Date.now() - t0) / 1000).toFixed(1)} s: ${l}`) };
  const others = [];
  try {
    const created = await srv.post('/api/rooms', { name: 'Layout', media: 'sfu' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const desk = await newPage(browser);
    const phone = await newPage(browser, PHONE, () => { navigator.share = async (d) => { window.__shared = d; }; });
    const deskShots = async (n) => {
      for (const [w, h] of [[1280, 800], [1920, 1080]]) {
        await resize(desk, w, h);
        await wait(desk, settled, n, 20000, `${n} people settled at ${w}x${h}`);
        const m = await desk.evaluate(measure);
        lines.push(judgeGrid(m, n, `${w}x${h}, ${n}`));
        if (n === 4) {
          const g = m.tiles.filter((t) => !t.pip);
          assert.equal(distinct(g.map((t) => t.x)), 2, `${w}x${h}: 4 people in 2 columns`); // (a last row short of tiles is centred)
          assert.equal(distinct(g.map((t) => t.y)), 2, `${w}x${h}: 4 people in 2 rows`);
        }
        await shot(desk, `ui-${w}x${h}-${n}`);
      }
      await resize(desk, 1280, 800);
    };
    const phoneShot = async (n) => {
      await wait(phone, settled, n, 20000, `${n} people settled on the phone`);
      const m = await phone.evaluate(measure);
      lines.push(judgeGrid(m, n, `390x844, ${n}`));
      if (n <= 4) assert.equal(distinct(m.tiles.map((t) => t.x)), 1, `phone: ${n} people in one column`);
      await shot(phone, `ui-390x844-${n}`);
      return m;
    };

    // 1: Desk alone, then she leaves (nothing asked, Rejoin offered) and Pho is alone.
    await join(desk, url, 'Desk');
    await deskShots(1);
    await desk.click('#leave');
    await desk.waitForSelector('#left:not([hidden]) #rejoin-room');
    assert.equal(desk.dialogs, 0, 'Leave asked something');
    assert.equal(await desk.evaluate(() => document.activeElement.id), 'left-title', 'the focus after leaving');
    await join(phone, url, 'Pho');
    await phoneShot(1);
    // The invite on a phone: a button with its name, not an empty box; the share sheet where there is one.
    const invite = await phone.evaluate(() => {
      const b = document.getElementById('copy-invite').getBoundingClientRect();
      return { w: b.width, h: b.height, text: document.getElementById('copy-invite').textContent.trim(), input: getComputedStyle(document.getElementById('invite-link')).display };
    });
    assert.ok(invite.w >= 40 && invite.h >= 32 && invite.text === 'Share link' && invite.input === 'none', `the phone's invite: ${JSON.stringify(invite)}`);
    await phone.tap('#copy-invite');
    await wait(phone, () => (window.__shared && window.__shared.url === document.getElementById('invite-link').value ? '' : 'not shared'), null, 5000, 'the share sheet');

    // 2: Desk rejoins in one click (the page joins by itself, with her name).
    const rejoinAt = Date.now();
    await desk.click('#rejoin-room');
    await inCall(desk, T(20000));
    lines.push(`Rejoin: back in the call ${Date.now() - rejoinAt} ms after the click`);
    await deskShots(2);
    await phoneShot(2);
    // Someone speaks: the fake microphone beeps, and the tile lights.
    await wait(desk, () => (document.querySelector('#grid > .tile:not(.self).speaking') ? '' : 'no tile lit'), null, 10000, 'a speaking indicator');
    // Turned sideways, the phone puts the two side by side, and back.
    await resize(phone, 844, 390);
    await wait(phone, settled, 2, 10000, 'the phone turned');
    const turned = await phone.evaluate(measure);
    lines.push(judgeGrid(turned, 2, '844x390, 2'));
    assert.equal(distinct(turned.tiles.map((t) => t.y)), 1, 'sideways, two people side by side');
    await shot(phone, 'ui-844x390-2');
    await resize(phone, 390, 844);
    // A line of chat: unread in the phone's title until its chat is opened.
    await chat(desk, phone, 'Good morning! Shall we start?', 'ui-390x844-chat');

    // 4, 6 and 9: others join (one with a name of 64 bytes).
    const names = ['Ana', 'Bartholomew-Maximilian Featherstonehaugh-Wolfeschlegelsteinhausen', 'Cleo', 'Dan', 'Eve', 'Fay', 'Gus'];
    for (const n of [4, 6, 9]) {
      const joinAt = Date.now();
      const more = await Promise.all(names.slice(others.length, n - 2).map(async (name) => {
        const p = await newPage(browser, { viewport: { width: 320, height: 240 } }, extraPerson);
        await join(p, url, name);
        return p;
      }));
      others.push(...more);
      lines.push(`${n} people: joined in ${Date.now() - joinAt} ms`);
      await deskShots(n);
      const m = await phoneShot(n);
      if (n === 4) {
        // 360 px wide: still no overflow, every control on the screen.
        await resize(phone, 360, 740);
        await wait(phone, settled, n, 10000, 'the phone at 360 px');
        lines.push(judgeGrid(await phone.evaluate(measure), n, '360x740, 4'));
        await shot(phone, 'ui-360x740-4');
        await resize(phone, 390, 844);
      }
      assert.ok(m.controls.length >= 5);
    }
    // A small window: the grid pages rather than shrinking the tiles past use; every person is on a page.
    await resize(desk, 700, 480);
    await wait(desk, () => (document.getElementById('pager').hidden ? 'no pager' : ''), null, 5000, 'a pager');
    const seen = new Set();
    for (let i = 0; i < 9; i++) {
      await wait(desk, settled, 9, 10000, `page ${i + 1}`);
      const m = await desk.evaluate(measure);
      judgeGrid(m, 9, `700x480, page ${i + 1}`, { paged: true });
      for (const t of m.tiles) seen.add(t.name);
      if (i === 0) await shot(desk, 'ui-700x480-9');
      if (await desk.isDisabled('#page-next')) break;
      await desk.click('#page-next');
      await desk.evaluate(() => { window.__sig = null; });
    }
    assert.equal(seen.size, 9, `the pages show everyone: ${[...seen].join(', ')}`);
    // Our own video as a corner picture, then hidden: the others fill the stage.
    await resize(desk, 1280, 800);
    await desk.evaluate(() => { document.querySelector('#self-tile .mini').click(); });
    await wait(desk, settled, 9, 10000, 'self view in a corner');
    const corner = await desk.evaluate(measure);
    judgeGrid({ ...corner, tiles: corner.tiles }, 9, '1280x800, 9, self in a corner', { paged: true });
    assert.equal(corner.tiles.filter((t) => t.pip && t.self).length, 1, 'our video is a corner picture');
    await shot(desk, 'ui-1280x800-9-corner');
    await desk.click('#open-settings');
    await desk.check('input[name=self][value=hidden]');
    await desk.keyboard.press('Escape');
    await desk.evaluate(() => { window.__sig = null; });
    await wait(desk, settled, 9, 10000, 'self view hidden');
    const hidden = await desk.evaluate(measure);
    lines.push(judgeGrid(hidden, 8, '1280x800, 9, self hidden'));
    assert.ok(!hidden.tiles.some((t) => t.self), 'our video hidden');
    // A long line without spaces breaks no layout either.
    await chat(desk, phone, `https://example.com/${'x'.repeat(600)}`, 'ui-390x844-long-line');
    for (const p of [desk, phone, ...others]) assert.deepEqual(p.errors, [], 'page errors');
  } catch (err) {
    // What each of the others sends, when a page did not get what it waited for.
    const sent = await Promise.all(others.map((p) => p.evaluate(async () => {
      const c = window.camus, pc = c.state.gc && c.state.gc.pc, o = [];
      if (pc) for (const s of (await pc.getStats()).values()) if (s.type === 'outbound-rtp') o.push(`${s.kind} mid ${s.mid}: ${s.framesEncoded || 0}f ${s.packetsSent}p`);
      const self = document.querySelector('#self-tile video');
      return `${c.me.name} ${c.me.id && c.me.id.slice(0, 6)} (${c.connection}, camera ${c.me.cam && c.me.cam.readyState}${c.me.cam && c.me.cam.muted ? ' muted' : ''} ` +
        `${JSON.stringify(c.me.cam && c.me.cam.getSettings().frameRate)} fps, own tile ${self && self.getVideoPlaybackQuality().totalVideoFrames}f): ${o.join(', ')}`;
    }).catch((e) => String(e))));
    throw new Error(`${err.message}\n  the others send: ${sent.join(' / ')}`);
  } finally {
    await browser.close();
    await srv.stop();
  }

}, { timeout: T(240000) });

// One page shares its screen; every other page shows it as the largest tile, and still decodes
// the sharer's camera (its tile gets new frames); anyone can go back to the grid (and to the
// presentation again, by keyboard).
async function presentation(media) {
  const srv = await startServer();
  const browser = await launch();
  try {
    const created = await srv.post('/api/rooms', { name: `Show ${media}`, media });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const pages = [];
    for (const name of ['Sharer', 'Viewer', 'Other']) {
      const p = await newPage(browser);
      p.id = await join(p, url, name);
      pages.push(p);
    }
    const [sharer, ...viewers] = pages;
    for (const p of pages) await wait(p, settled, 3, 20000, 'three people decoding');
    const t0 = Date.now();
    await sharer.click('#toggle-screen');
    // At each viewer: the share is on the stage and the largest; the sharer's camera keeps decoding.
    const staged = async ({ id }) => {
      const tiles = [...document.querySelectorAll('#grid > .tile')].filter((t) => getComputedStyle(t).display !== 'none');
      const screen = document.querySelector(`#grid [data-screen-of="${id}"]`);
      if (!screen || !screen.classList.contains('on-stage')) return 'no screen on the stage';
      const sv = screen.querySelector('video');
      if (!(sv.videoWidth > 0)) return 'the screen shows nothing yet';
      const area = (t) => { const r = t.getBoundingClientRect(); return r.width * r.height; };
      const largest = tiles.reduce((a, b) => (area(b) > area(a) ? b : a));
      if (largest !== screen) return `the largest is ${largest.getAttribute('aria-label')}`;
      const cam = document.querySelector(`#grid [data-client-id="${id}"] video`);
      const frames = () => cam.getVideoPlaybackQuality().totalVideoFrames;
      const before = frames();
      await new Promise((r) => setTimeout(r, 600));
      if (!(frames() > before)) return `the sharer's camera is stuck at ${before} frames`;
      if (Math.abs(cam.videoWidth / cam.videoHeight - 4 / 3) > 0.05) return `the camera tile shows ${cam.videoWidth}x${cam.videoHeight}`;
      return '';
    };
    for (const v of viewers) await wait(v, staged, { id: sharer.id }, 20000, `the share on the stage (${media})`);
    const shownMs = Date.now() - t0;
    await shot(viewers[0], `ui-present-${media}`);
    const m = await viewers[0].evaluate(measure);
    const stage = m.tiles.find((t) => t.stage), strip = m.tiles.filter((t) => !t.stage);
    assert.ok(stage.bars <= 0.10, `the share is letterboxed: ${stage.bars}`);
    assert.ok(strip.every((t) => t.w * t.h < (stage.w * stage.h) / 4), 'the cameras are a strip');
    // Back to the grid (a click), then to the presentation (G on the keyboard).
    await viewers[0].click('#toggle-layout');
    await wait(viewers[0], () => (document.querySelector('#grid .on-stage') ? 'still staged' : ''), null, 5000, 'the grid');
    await wait(viewers[0], settled, 3, 5000, 'the grid settled');
    const grid = await viewers[0].evaluate(measure);
    assert.equal(new Set(grid.tiles.map((t) => Math.round(Math.max(t.w, t.h)))).size <= 2, true, 'the grid holds the share as one tile among others');
    await viewers[0].keyboard.press('g');
    await wait(viewers[0], staged, { id: sharer.id }, 5000, 'the presentation again');
    // Stopped: gone everywhere, the grid back.
    await sharer.click('#toggle-screen');
    for (const v of viewers) await wait(v, ({ id }) => (document.querySelector(`#grid [data-screen-of="${id}"], #grid .on-stage`) ? 'still there' : ''), { id: sharer.id }, 10000, 'the share gone');
    say(`${media}: the share on the stage at both viewers ${shownMs} ms after the click, the sharer's camera decoding beside it; ` +
      `the stage ${Math.round(stage.w)}x${Math.round(stage.h)}, the strip ${strip.map((t) => `${Math.round(t.w)}x${Math.round(t.h)}`).join(', ')}`);
    for (const p of pages) assert.deepEqual(p.errors, [], 'page errors');
  } finally {
    await browser.close();
    await srv.stop();
  }
}
test('presentation in a P2P room: the share takes the stage, the camera goes on', () => presentation('p2p'), { timeout: T(90000) });
test('presentation in an SFU room: the share takes the stage, the camera goes on', () => presentation('sfu'), { timeout: T(90000) });

// Devices mid-call, with Chromium's two fake cameras and its fake microphones and speakers: a
// camera and a microphone chosen in Settings reach the other page; a speaker is set on every
// element that plays a member's sound; a device plugged in is offered (the test adds one to what enumerateDevices says
// and fires devicechange, as Chromium does); a camera that ends (its 'ended' event, as when it is
// unplugged) is replaced by the other one.
async function devices(media) {
  const srv = await startServer();
  const browser = await launch();
  try {
    const created = await srv.post('/api/rooms', { name: `Devices ${media}`, media });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const a = await newPage(browser), b = await newPage(browser);
    const aId = await join(a, url, 'Ana');
    await join(b, url, 'Bob');
    for (const p of [a, b]) await wait(p, settled, 2, 20000, 'two people decoding');
    // Bob decodes new frames of Ana's camera (its tile), and gets new audio from her.
    const flowing = async ({ id }) => {
      const p = window.camus.peers.get(id), v = p.video;
      const frames = () => v.getVideoPlaybackQuality().totalVideoFrames;
      const audioIn = async () => {
        const pc = p.pc || window.camus.state.gc.pc;
        let n = 0;
        for (const s of (await pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'audio') n += s.packetsReceived || 0;
        return n;
      };
      const [f, au] = [frames(), await audioIn()];
      await new Promise((r) => setTimeout(r, 700));
      if (!(frames() > f)) return 'no new frame';
      return (await audioIn()) > au ? '' : 'no new audio';
    };
    const deviceOf = (kind) => a.evaluate((k) => window.camus.me[k].getSettings().deviceId, kind);
    await a.click('#open-settings');
    await a.waitForSelector('#settings[open]');
    const options = await a.evaluate(() => Object.fromEntries(['set-camera', 'set-mic', 'set-speaker'].map((id) => [id, [...document.getElementById(id).options].map((o) => [o.value, o.textContent])])));
    assert.ok(options['set-camera'].length >= 3 && options['set-mic'].length >= 2, `devices offered: ${JSON.stringify(options)}`);
    for (const k of Object.keys(options)) options[k] = options[k].map(([v]) => v);
    // Another camera (the MJPEG one) and another microphone.
    const cam0 = await deviceOf('cam');
    const cam1 = options['set-camera'][2];
    assert.notEqual(cam1, cam0);
    await a.selectOption('#set-camera', cam1);
    await wait(a, (d) => (window.camus.me.cam.getSettings().deviceId === d ? '' : 'the old camera'), cam1, 10000, 'the new camera');
    const mic1 = options['set-mic'].find((d) => d !== 'default');
    await a.selectOption('#set-mic', mic1);
    await wait(a, (d) => (window.camus.me.mic.getSettings().deviceId === d ? '' : 'the old microphone'), mic1, 10000, 'the new microphone');
    await wait(b, flowing, { id: aId }, 10000, "Ana's new camera and microphone at Bob's");
    // A speaker for everything Ana hears.
    const out1 = options['set-speaker'].find((d) => d !== 'default');
    await a.selectOption('#set-speaker', out1);
    await wait(a, (d) => ([...window.camus.peers.values()].every((p) => (p.audio || p.video).sinkId === d) ? '' : 'not everywhere'), out1, 5000, 'the speaker');
    await a.keyboard.press('Escape');
    // A headset plugged in: offered.
    await a.evaluate(() => {
      const md = navigator.mediaDevices, list = md.enumerateDevices.bind(md);
      md.enumerateDevices = async () => [...await list(), { kind: 'audioinput', deviceId: 'usb-headset', groupId: 'usb', label: 'USB headset', toJSON() { return this; } }];
      md.dispatchEvent(new Event('devicechange'));
    });
    await wait(a, () => ([...document.getElementById('set-mic').options].some((o) => o.textContent === 'USB headset') &&
      [...document.querySelectorAll('.toast')].some((t) => /USB headset/.test(t.textContent)) ? '' : 'not offered'), null, 5000, 'the headset offered');
    // The camera lost: the other one is used, and Ana is told.
    await a.evaluate(() => window.camus.me.cam.dispatchEvent(new Event('ended')));
    await wait(a, (d) => (window.camus.me.cam.getSettings().deviceId !== d && /stopped: now using/.test(document.getElementById('chat-log').textContent) ? '' : 'not replaced'), cam1, 10000, 'the lost camera replaced');
    await wait(b, flowing, { id: aId }, 10000, "Ana's camera after the loss at Bob's");
    say(`${media}: camera, microphone and speaker changed mid-call; a plugged headset offered; a lost camera replaced (Bob decoding Ana throughout)`);
    for (const p of [a, b]) assert.deepEqual(p.errors, [], 'page errors');
  } finally {
    await browser.close();
    await srv.stop();
  }
}
test('devices mid-call in a P2P room', () => devices('p2p'), { timeout: T(60000) });
test('devices mid-call in an SFU room', () => devices('sfu'), { timeout: T(60000) });

// Only the keyboard: join, mute (M, and Space on the focused button), the hint when talking muted,
// the help (?), chat (C), every control reached with a visible focus, leave (Shift+L) and rejoin.
test('keyboard only: join, mute, chat, help, leave and rejoin', async () => {
  const srv = await startServer();
  const browser = await launch();
  try {
    const created = await srv.post('/api/rooms', { name: 'Keys', media: 'sfu' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const other = await newPage(browser);
    await join(other, url, 'Other');
    const k = await newPage(browser);
    await k.goto(url);
    await k.waitForSelector('#join-button:not([disabled])');
    const focused = () => k.evaluate(() => document.activeElement.id);
    const tabTo = async (id, max = 20) => {
      for (let i = 0; i < max; i++) {
        if (await focused() === id) return;
        await k.keyboard.press('Tab');
      }
      throw new Error(`Tab never reached #${id} (at #${await focused()})`);
    };
    await tabTo('display-name');
    await k.keyboard.type('Keys');
    await tabTo('join-button');
    await k.keyboard.press('Enter');
    await inCall(k, T(20000));
    assert.equal(await focused(), 'toggle-mic', 'the focus once in the call');
    const pressed = (id) => k.evaluate((i) => document.getElementById(i).getAttribute('aria-pressed'), id);
    await k.keyboard.press('m');
    assert.equal(await pressed('toggle-mic'), 'false', 'M mutes');
    // Talking while muted (the fake microphone beeps): the hint.
    await wait(k, () => (document.getElementById('muted-hint').hidden ? 'no hint' : ''), null, 10000, 'the muted hint');
    await k.keyboard.press('Space');
    assert.equal(await pressed('toggle-mic'), 'true', 'Space on the focused button unmutes');
    await k.keyboard.press('v');
    assert.equal(await pressed('toggle-camera'), 'false', 'V turns the camera off');
    await k.keyboard.press('v');
    await k.keyboard.press('Shift+?');
    await k.waitForSelector('#help[open]');
    await k.keyboard.press('Escape');
    await k.waitForSelector('#help:not([open])', { state: 'attached' });
    // Chat: C opens it (or closes it and opens it again) with the focus in the message field.
    for (let i = 0; i < 2 && await focused() !== 'chat-input'; i++) await k.keyboard.press('c');
    assert.equal(await focused(), 'chat-input', 'C puts the focus in the chat');
    await k.keyboard.type('typed, not clicked');
    await k.keyboard.press('Enter');
    await other.waitForSelector('#chat-log li:has-text("typed, not clicked")');
    // Every control reachable by Tab, each with a visible focus.
    const reached = new Set();
    for (let i = 0; i < 40; i++) {
      await k.keyboard.press('Tab');
      const f = await k.evaluate(() => {
        const e = document.activeElement, s = getComputedStyle(e);
        if (e === document.body) return { id: 'body', visible: true }; // past the last control, before the first
        return { id: e.id || e.className, visible: s.outlineStyle !== 'none' && parseFloat(s.outlineWidth) >= 2 };
      });
      assert.ok(f.visible, `no visible focus on ${f.id}`);
      reached.add(f.id);
    }
    for (const id of ['toggle-mic', 'toggle-camera', 'toggle-screen', 'toggle-side', 'open-settings', 'leave', 'chat-input', 'tab-chat', 'close-side', 'copy-invite', 'show-help', 'spot', 'mini'])
      assert.ok(reached.has(id), `Tab never reached ${id}: ${[...reached].join(', ')}`);
    // Leave (Shift+L) and rejoin (Tab, Enter).
    await k.keyboard.press('Escape');
    await k.evaluate(() => document.activeElement.blur());
    await k.keyboard.press('Shift+L');
    await k.waitForSelector('#left:not([hidden])');
    await other.waitForFunction(() => window.camus.members().length === 1);
    await tabTo('rejoin-room', 5);
    await k.keyboard.press('Enter');
    await inCall(k, T(20000));
    await other.waitForFunction(() => window.camus.members().length === 2);
    assert.deepEqual(k.errors, [], 'page errors');
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: T(60000) });

// axe-core in the pages: the lobby, the join form, the call (chat, people, the settings and the
// help), the page after leaving, on a laptop and on a phone, light and dark.  No serious or
// critical violation.
test('axe-core: no serious or critical violation, light and dark', async () => {
  const srv = await startServer();
  const browser = await launch();
  const found = [];
  const check = async (page, what) => {
    for (const scheme of ['light', 'dark']) {
      await page.emulateMedia({ colorScheme: scheme });
      if (!await page.evaluate(() => !!window.axe)) await page.evaluate(AXE_SOURCE); // (the page's CSP forbids an inline script tag)
      const r = await page.evaluate(() => window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }));
      for (const v of r.violations) {
        if (v.impact !== 'serious' && v.impact !== 'critical') continue;
        found.push(`${what} (${scheme}): ${v.id} (${v.impact}): ${v.nodes.slice(0, 3).map((n) => `${n.target.join(' ')}: ${n.failureSummary.replace(/\s+/g, ' ')}`).join(' | ')}`);
      }
    }
    await page.emulateMedia({ colorScheme: 'light' });
  };
  try {
    const created = await srv.post('/api/rooms', { name: 'Axe', media: 'sfu' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const lobby = await newPage(browser);
    await lobby.goto(srv.url + '/');
    await lobby.waitForSelector('#room-list li');
    await check(lobby, 'lobby');
    const a = await newPage(browser), phone = await newPage(browser, PHONE);
    await a.goto(url);
    await a.waitForSelector('#join-button:not([disabled])');
    await check(a, 'join form');
    await join(a, url, 'Ana');
    await join(phone, url, 'Pho');
    await wait(a, settled, 2, 20000, 'two people');
    await a.fill('#chat-input', 'hello');
    await a.press('#chat-input', 'Enter');
    await a.waitForSelector('#chat-log li');
    await check(a, 'call, chat');
    await a.click('#tab-people');
    await check(a, 'call, people');
    await a.click('#open-settings');
    await a.waitForSelector('#settings[open]');
    await check(a, 'settings');
    await a.keyboard.press('Escape');
    await a.click('#show-help');
    await check(a, 'help');
    await a.keyboard.press('Escape');
    await wait(phone, settled, 2, 20000, 'two people on the phone');
    await check(phone, 'phone call');
    await phone.tap('#toggle-side');
    await check(phone, 'phone chat');
    await a.click('#leave');
    await a.waitForSelector('#left:not([hidden])');
    await check(a, 'after leaving');
  } finally {
    await browser.close();
    await srv.stop();
  }
  assert.deepEqual(found, [], found.join('\n'));
}, { timeout: T(60000) });

await run();
