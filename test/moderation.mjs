// Owners and moderation (issue 13): the owner key a new room comes with, what it allows over HTTP and
// over Ground Control, co-hosts, and that nobody without it can do any of it.  Members speak the
// protocol raw from Chromium pages (window.CamusClient), so every message is seen as sent.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, test, assert, run, sleep, launchChromium, installClient } from './lib.mjs';
import { newPage, join as joinPage } from './webclient.mjs';

const bearer = (key) => ({ Authorization: `Bearer ${key}` });

async function until(cond, ms, what) {
  for (const end = Date.now() + ms; ;) {
    const v = await cond();
    if (v) return v;
    if (Date.now() > end) throw new Error('timed out waiting for ' + what);
    await sleep(25);
  }
}

// A member: a page of its own with a raw client in room `room`; opts.owner: the owner key to offer with.
async function member(browser, srv, room, name, opts = {}) {
  const page = await browser.newPage();
  await page.goto(srv.url + '/');
  await installClient(page);
  const r = await page.evaluate(async ({ room, name, owner }) => {
    const c = await window.CamusClient.connect(room, { extra: owner ? { owner } : {} });
    if (c.status !== 200) return c;
    window.c = c;
    c.send({ receiver: 'ground control', type: 'profile', data: { username: name } });
    return { status: 200, id: c.id };
  }, { room, name, owner: opts.owner });
  if (r.status !== 200) {
    await page.close();
    return r;
  }
  const m = { page, id: r.id, name, status: 200 };
  m.send = (type, data, receiver = 'ground control') => page.evaluate((x) => window.c.send(x), { receiver, type, data });
  m.moderate = (data) => m.send('moderate', data);
  // Every message of a type that came so far (kept: later checks see them too).
  m.all = (type) => page.evaluate((t) => window.c.inbox.filter((x) => x.type === t), type);
  m.last = async (type) => (await m.all(type)).at(-1);
  m.info = async () => (await m.last('room-info') || {}).data;
  m.closed = () => page.evaluate(() => window.c.closed);
  m.errors = async () => (await m.all('error')).map((e) => e.data);
  return m;
}

// The offer a raw page would send, from the page (same origin), with extra fields in the body.
async function offerStatus(page, room, extra = {}) {
  return page.evaluate(async ({ room, extra }) => {
    const pc = new RTCPeerConnection();
    pc.createDataChannel('probe');
    await pc.setLocalDescription(await pc.createOffer());
    const res = await fetch(`/rtc/${room}/offer`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer', ...extra }) });
    pc.close();
    return { status: res.status, body: await res.text() };
  }, { room, extra });
}

test('a new room comes with an owner key; over HTTP it renames, locks, sets and removes the password, changes the limit; nothing works without it', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const made = await srv.post('/api/rooms', { name: 'Book Club', media: 'p2p' });
    assert.equal(made.status, 201);
    const key = made.json.owner_key;
    assert.match(key, /^[0-9a-f]{32}$/, 'an owner key of 128 bits in hex');
    const other = (await srv.post('/api/rooms', { name: 'Other' })).json.owner_key;
    assert.notEqual(other, key, 'each room its own key');

    // Without the key, or with another room's, or a wrong one: 403, and nothing changes.
    for (const [what, headers, body] of [['no key', {}, { action: 'rename', name: 'Mine' }],
      ["another room's key", bearer(other), { action: 'rename', name: 'Mine' }],
      ['a wrong key', bearer('0'.repeat(32)), { action: 'lock' }],
      ['a key in the body, wrong', {}, { action: 'lock', key: key.replace(/.$/, (c) => (c === '0' ? '1' : '0')) }],
      ['a bearer that is too long', bearer(key + '00'), { action: 'lock' }]]) {
      const r = await srv.post('/api/rooms/book-club/moderate', body, headers);
      assert.equal(r.status, 403, `${what}: ${r.status} ${r.text}`);
    }
    assert.equal((await srv.request('DELETE', '/api/rooms/book-club')).status, 403, 'DELETE without the key');
    let info = (await srv.get('/api/rooms/book-club')).json;
    assert.equal(info.name, 'Book Club');

    // With it: rename (the id, and so the link, stays).
    let r = await srv.post('/api/rooms/book-club/moderate', { action: 'rename', name: '  Book Club (Tuesdays)  ' }, bearer(key));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.name, 'Book Club (Tuesdays)');
    assert.equal(r.json.id, 'book-club');
    assert.equal((await srv.get('/api/rooms/book-club')).json.name, 'Book Club (Tuesdays)');
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'rename', name: '\u0007' }, bearer(key));
    assert.equal(r.status, 400, 'a name with a control character');

    // The key in the body works as well as the header.
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'limit', guest_limit: 3, key });
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.guest_limit, 3);
    for (const bad of [0, 1001, 'x', 2.5]) {
      r = await srv.post('/api/rooms/book-club/moderate', { action: 'limit', guest_limit: bad }, bearer(key));
      assert.equal(r.status, 400, `guest_limit ${JSON.stringify(bad)}`);
    }
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'limit', guest_limit: null }, bearer(key));
    assert.equal(r.json.guest_limit, null);

    // Lock: newcomers are refused, an owner comes in.
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'lock', locked: true }, bearer(key));
    assert.equal(r.status, 200, r.text);
    let o = await offerStatus(page, 'book-club');
    assert.equal(o.status, 403);
    assert.match(o.body, /locked/);
    assert.equal((await offerStatus(page, 'book-club', { owner: key })).status, 200, 'the owner into a locked room');
    assert.equal((await offerStatus(page, 'book-club', { owner: other })).status, 403, "another room's key does not open it");
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'lock', locked: false }, bearer(key));
    assert.equal((await offerStatus(page, 'book-club')).status, 200, 'unlocked');

    // A password: set (newcomers need it), then removed.
    r = await srv.hashed('/api/rooms/book-club/moderate', { action: 'password', password: 'tuesday' }, bearer(key));
    assert.equal(r.status, 200, r.text);
    assert.equal(r.json.password, true);
    o = await offerStatus(page, 'book-club');
    assert.equal(o.status, 403);
    assert.match(o.body, /password/);
    const join = await srv.hashed('/rtc/book-club/join', { password: 'tuesday' });
    assert.equal(join.status, 200, join.text);
    assert.equal((await offerStatus(page, 'book-club', { token: join.json.token })).status, 200, 'with the new password');
    assert.equal((await offerStatus(page, 'book-club', { owner: key })).status, 200, 'an owner needs no password');
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'password', password: null }, bearer(key));
    assert.equal(r.json.password, false);
    assert.equal((await offerStatus(page, 'book-club')).status, 200, 'no password any more');

    // Media mode, and what is refused as malformed.
    r = await srv.post('/api/rooms/book-club/moderate', { action: 'media', media: 'sfu' }, bearer(key));
    assert.equal(r.json.media, 'sfu');
    for (const [what, body] of [['unknown action', { action: 'promote' }], ['no action', {}],
      ['media', { action: 'media', media: 'mesh' }], ['lock not boolean', { action: 'lock', locked: 'yes' }],
      ['mute without target', { action: 'mute' }], ['rename with a target', { action: 'rename', name: 'x', target: 'a'.repeat(32) }],
      ['a target not in the room', { action: 'remove', target: 'a'.repeat(32) }]]) {
      r = await srv.post('/api/rooms/book-club/moderate', body, bearer(key));
      assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
    }
    // Methods: moderate is POST only.
    assert.equal((await srv.get('/api/rooms/book-club/moderate')).status, 405);
    info = (await srv.get('/api/rooms/book-club')).json;
    assert.deepEqual([info.name, info.password, info.guest_limit, info.media], ['Book Club (Tuesdays)', false, null, 'sfu']);
    // DELETE with the key ends it: 204, and the room is gone.
    r = await srv.request('DELETE', '/api/rooms/book-club', undefined, bearer(key));
    assert.equal(r.status, 204, r.text);
    await until(async () => (await srv.get('/api/rooms/book-club')).status === 404, 3000, 'the room to go');
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: 60000 });

test('over Ground Control: an owner mutes, makes a co-host, removes (kept out), locks and ends; every member sees who did what; guests and forged messages do nothing', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const made = await srv.post('/api/rooms', { name: 'Standup' });
    const key = made.json.owner_key;
    const ana = await member(browser, srv, 'standup', 'Ana', { owner: key });
    assert.equal(ana.status, 200);
    const bob = await member(browser, srv, 'standup', 'Bob');
    const cid = await member(browser, srv, 'standup', 'Cid');
    const all = [ana, bob, cid];
    const roleOf = (info, m) => (info.clients.find((x) => x.id === m.id) || {}).role;
    await until(async () => (await ana.info())?.clients?.length === 3 && (await ana.info()).clients.every((x) => x.username !== 'Major Tom'), 5000, 'three named members');
    let info = await bob.info();
    assert.equal(roleOf(info, ana), 'owner', 'room-info names the owner');
    assert.equal(roleOf(info, bob), undefined);
    assert.deepEqual([info.name, info.media, info.locked, info.password], ['Standup', 'sfu', false, false]);

    // A guest may not; a forged "moderation" is not relayed.
    await bob.moderate({ action: 'mute', target: cid.id });
    await bob.moderate({ action: 'lock' });
    await bob.send('moderation', { action: 'remove', target: cid.id, by: ana.id, by_name: 'Ana' }, 'room');
    await until(async () => (await bob.errors()).length >= 3, 3000, "Bob's three errors");
    const errs = await bob.errors();
    assert.match(errs[0], /owners and co-hosts/);
    assert.match(errs[2], /Only Ground Control sends moderation/);
    await sleep(200);
    for (const m of all) assert.deepEqual(await m.all('moderation'), [], `${m.name} heard of a moderation`);
    assert.equal((await cid.info()).locked, false);

    // The owner mutes Bob's microphone: everyone hears it, with names; room-info says what is held.
    await ana.moderate({ action: 'mute', target: bob.id, what: 'mic' });
    for (const m of all) {
      const ev = await until(() => m.last('moderation'), 3000, `${m.name}: the mute`);
      assert.equal(ev.sender, 'ground control');
      assert.deepEqual([ev.data.action, ev.data.by, ev.data.by_name, ev.data.target, ev.data.target_name, ev.data.what],
        ['mute', ana.id, 'Ana', bob.id, 'Bob', 'mic'], `${m.name} heard: ${JSON.stringify(ev.data)}`);
    }
    info = await until(async () => { const i = await cid.info(); return i.clients.find((x) => x.id === bob.id).held ? i : null; }, 3000, 'held mic');
    assert.deepEqual(info.clients.find((x) => x.id === bob.id).held, ['mic']);
    // Only Bob turns it on again (anyone else's unmute is his own, and he has nothing held).
    await cid.send('unmute', { what: 'mic' });
    await sleep(200);
    assert.deepEqual((await cid.info()).clients.find((x) => x.id === bob.id).held, ['mic']);
    await bob.send('unmute', { what: 'mic' });
    await until(async () => !(await cid.info()).clients.find((x) => x.id === bob.id).held, 3000, 'mic released');

    // A co-host: Cid may mute Bob, not the owner, not make co-hosts, not end the room.
    await ana.moderate({ action: 'cohost', target: cid.id });
    await until(async () => roleOf(await bob.info(), cid) === 'cohost', 3000, 'Cid a co-host');
    const before = (await cid.errors()).length;
    await cid.moderate({ action: 'mute', target: bob.id, what: 'camera' });
    await until(async () => ((await bob.last('moderation')) || {}).data?.what === 'camera', 3000, 'the camera mute');
    assert.equal((await bob.last('moderation')).data.by_name, 'Cid');
    await cid.moderate({ action: 'remove', target: ana.id });
    await cid.moderate({ action: 'cohost', target: bob.id });
    await cid.moderate({ action: 'end' });
    await until(async () => (await cid.errors()).length >= before + 3, 3000, "Cid's refusals");
    const cerr = (await cid.errors()).slice(before);
    assert.match(cerr[0], /owner/);
    assert.match(cerr[1], /only the room's owners/);
    assert.match(cerr[2], /only the room's owners/);
    assert.equal(await ana.closed(), false);

    // Remove Bob: his channel closes, the others are told, and his address is kept out (an owner is not).
    await ana.moderate({ action: 'remove', target: bob.id });
    await until(() => bob.closed(), 5000, "Bob's channel to close");
    const ev = await until(async () => { const e = await cid.last('moderation'); return e.data.action === 'remove' ? e : null; }, 3000, 'the removal');
    assert.deepEqual([ev.data.target_name, ev.data.by_name], ['Bob', 'Ana']);
    await until(async () => (await cid.info()).clients.length === 2, 3000, 'two members left');
    let o = await offerStatus(bob.page, 'standup');
    assert.equal(o.status, 403);
    assert.match(o.body, /removed/);
    assert.equal((await offerStatus(bob.page, 'standup', { owner: key })).status, 200, 'an owner is never kept out');

    // Lock over Ground Control; then the end: everyone hears it, channels close, the room is gone.
    await ana.moderate({ action: 'lock', locked: true });
    await until(async () => (await cid.info()).locked === true, 3000, 'locked in room-info');
    await ana.moderate({ action: 'end' });
    for (const m of [ana, cid]) {
      await until(async () => ((await m.last('moderation')) || {}).data?.action === 'end', 3000, `${m.name}: the end`);
      await until(() => m.closed(), 5000, `${m.name}'s channel to close`);
    }
    assert.equal((await srv.get('/api/rooms/standup')).status, 404, 'an ended room is gone');
    await until(() => srv.log.some((l) => /room standup: ended by its owner/.test(l)), 3000, 'the log line');
    // The operator sees it: moderations, and refusals by why.
    const metrics = (await srv.get('/metrics')).text;
    const value = (name) => Number((metrics.match(new RegExp(`^${name.replace(/[{}]/g, '\\$&')} (\\d+)$`, 'm')) || [])[1]);
    assert.equal(value('camus_moderations_total'), 6, 'mute, co-host, mute, remove, lock, end');
    assert.equal(value('camus_refusals_total{reason="removed"}'), 1);
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: 90000 });

test('in the web client: the owner (by the co-host link) sees the controls and uses them, the others see what happened; a guest sees none', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const key = (await srv.post('/api/rooms', { name: 'Web Mod', media: 'sfu' })).json.owner_key;
    const [ana, bob, cid] = await Promise.all([newPage(browser), newPage(browser), newPage(browser)]);
    const url = `${srv.url}/rtc/web-mod`;
    await joinPage(ana, `${url}#owner=${key}`, 'Ana');
    assert.equal(await ana.evaluate(() => location.hash), '', 'the key is taken out of the address bar');
    assert.equal(await ana.evaluate((k) => localStorage.getItem('camus.owner.web-mod') === k, key), true, 'and kept for the room');
    await joinPage(bob, url, 'Bob');
    const peopleOf = (page) => page.evaluate(() => [...document.querySelectorAll('#people li')].map((li) => li.textContent));
    for (const p of [ana, bob]) await p.click('#tab-people');
    await ana.waitForFunction(() => document.querySelectorAll('#people li').length === 2 && !document.getElementById('room-admin').hidden);
    assert.match((await peopleOf(ana)).join(' | '), /Ana \(you\)owner/);
    assert.equal(await bob.evaluate(() => document.getElementById('room-admin').hidden), true, 'a guest sees no room settings');
    assert.equal(await bob.locator('#people .mod button').count(), 0, 'a guest sees no moderation buttons');

    // Mute: Bob's microphone goes off on his page, and both read who did it.
    await ana.click('button[aria-label="Mute: Bob"]');
    await bob.waitForFunction(() => document.getElementById('toggle-mic').getAttribute('aria-pressed') === 'false', null, { timeout: 5000 });
    await bob.waitForSelector('#chat-log li.notice:has-text("Ana muted you")', { timeout: 5000, state: 'attached' });
    await ana.waitForSelector('#chat-log li.notice:has-text("You muted Bob")', { timeout: 5000, state: 'attached' });
    await ana.waitForFunction(() => /Bobmuted/.test(document.getElementById('people').textContent), null, { timeout: 5000 });
    // Bob turns it on again himself: the hold is gone for everyone.
    await bob.click('#toggle-mic');
    await ana.waitForFunction(() => !/muted/.test(document.getElementById('people').textContent), null, { timeout: 5000 });

    // Lock: a newcomer is told so.
    await ana.click('#admin-lock');
    await bob.waitForSelector('#chat-log li.notice:has-text("Ana locked the room")', { timeout: 5000, state: 'attached' });
    await cid.goto(url);
    await cid.waitForSelector('#join-button:not([disabled])');
    await cid.type('#display-name', 'Cid');
    await cid.click('#join-button');
    await cid.waitForSelector('#join-error:has-text("locked")', { timeout: 10000 });

    // Remove: Bob's page says so and does not try to come back.
    await ana.click('button[aria-label="Remove: Bob"]');
    await bob.waitForSelector('#left-title:has-text("Ana removed you from the room")', { timeout: 5000 });
    assert.equal(await bob.evaluate(() => document.getElementById('rejoin-room').hidden), true, 'no Rejoin after a removal');
    await sleep(1500);
    assert.equal(await bob.evaluate(() => window.camus.connection), 'left', 'the page does not reconnect');
    await ana.waitForFunction(() => document.querySelectorAll('#people li').length === 1, null, { timeout: 5000 });
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: 90000 });

test('the owner key, a lock and a removal outlive a restart', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-mod-'));
  let srv = await startServer(['--state-dir', dir]);
  const browser = await launchChromium();
  try {
    const key = (await srv.post('/api/rooms', { name: 'Kept' })).json.owner_key;
    const a = await member(browser, srv, 'kept', 'Ana', { owner: key });
    const b = await member(browser, srv, 'kept', 'Bob');
    await until(async () => (await a.info())?.clients?.length === 2, 5000, 'two members');
    await a.moderate({ action: 'remove', target: b.id });
    await until(() => b.closed(), 5000, 'Bob removed');
    assert.equal((await srv.post('/api/rooms/kept/moderate', { action: 'lock' }, bearer(key))).status, 200);
    await srv.stop();
    srv = await startServer(['--state-dir', dir]);
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    const o = await offerStatus(page, 'kept');
    assert.equal(o.status, 403, 'locked, or removed, after the restart');
    assert.equal((await srv.post('/api/rooms/kept/moderate', { action: 'lock', locked: false }, bearer(key))).status, 200, 'the key still works');
    const o2 = await offerStatus(page, 'kept');
    assert.equal(o2.status, 403, 'still kept out once unlocked: the removal was kept');
    assert.match(o2.body, /removed/);
    assert.equal((await srv.post('/api/rooms/kept/moderate', { action: 'lock' }, bearer('f'.repeat(32)))).status, 403);
  } finally {
    await browser.close();
    await srv.stop();
    rmSync(dir, { recursive: true, force: true });
  }
}, { timeout: 60000 });

await run();
