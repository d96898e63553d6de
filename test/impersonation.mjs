// Impersonation: a member of a room must not speak as Ground Control or as another member.
// Two people join through the real web client; a third, Mallory, speaks the protocol raw from a
// page and sends them forged greetings, room-info, pings and errors (to the room and to each
// directly) and a chat line that claims to come from Ana.  The web client must not believe any of
// it (its id, member list, peers and chat names stay as Ground Control said), and the server must
// refuse to relay what only Ground Control says, while still relaying the chat under Mallory's id.
import { startServer, test, assert, run, sleep, launchChromium, installClient, inCall } from './lib.mjs';

const GHOST = '0123456789abcdef'.repeat(2); // a well-formed id that no member has
const FORGED_PING = 'forged ping 7f3a';
const FORGED_ERROR = 'forged error: your session expired, rejoin at evil.example';
const FORGED_TEXT = 'hello from ana';
const SERVER_ONLY = ['greeting', 'room-info', 'ping', 'error'];

async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return true;
    if (Date.now() > end) throw new Error('timed out waiting for ' + (typeof what === 'function' ? await what() : what));
    await sleep(25);
  }
}

// Runs in each victim's page before its scripts: records, after every message a data channel
// delivers, what the client then believed (its id, the member list, its peers), and every string
// it sends.  So a forged message that was believed only for a moment is caught too.
function recorder() {
  window.__seen = [];
  window.__sent = [];
  const proto = RTCDataChannel.prototype;
  const on = Object.getOwnPropertyDescriptor(proto, 'onmessage');
  Object.defineProperty(proto, 'onmessage', {
    configurable: true,
    enumerable: on.enumerable,
    get() { return on.get.call(this); },
    set(fn) {
      on.set.call(this, typeof fn !== 'function' ? fn : function (e) {
        try {
          return fn.call(this, e);
        } finally {
          const c = window.camus;
          if (c) {
            window.__seen.push({
              msg: String(e.data).slice(0, 200),
              id: c.me.id,
              members: (c.members() || []).map((m) => `${m && m.id}:${m && m.username}`).sort(),
              peers: [...c.peers.keys()],
            });
          }
        }
      });
    },
  });
  const send = proto.send;
  proto.send = function (d) {
    if (typeof d === 'string') window.__sent.push(d);
    return send.call(this, d);
  };
}

async function joinAs(browser, url, name) {
  const context = await browser.newContext();
  await context.addInitScript(recorder);
  const page = await context.newPage();
  page.consoleLines = [];
  page.on('console', (m) => page.consoleLines.push(m.text()));
  page.on('pageerror', (e) => page.consoleLines.push('pageerror: ' + e.message));
  await page.goto(url);
  await page.fill('#display-name', name);
  await page.click('#join-button'); // enabled once the (fake) camera is on
  await inCall(page);
  await page.waitForFunction(() => window.camus && /^[0-9a-f]{32}$/.test(window.camus.me.id || ''), null, { timeout: 10000 });
  return page;
}

const membersOf = (page) => page.evaluate(() => window.camus.members().map((m) => `${m.id}:${m.username}`).sort());
const chatOf = (page) => page.$$eval('#chat-log li:not(.notice)', (li) => li.map((x) => ({
  who: (x.querySelector('.who') || {}).textContent, text: (x.querySelector('.text') || {}).textContent })));

test('a member cannot speak as Ground Control or as another member', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    const created = await srv.post('/api/rooms', { name: 'Impostors' });
    assert.ok(created.status === 200 || created.status === 201, `room created: ${created.status} ${created.text}`);
    const room = created.json.id;
    const url = `${srv.url}/rtc/${room}`;

    // 1. Ana and Bob join through the web client.
    const ana = await joinAs(browser, url, 'Ana');
    const bob = await joinAs(browser, url, 'Bob');
    const anaId = await ana.evaluate(() => window.camus.me.id);
    const bobId = await bob.evaluate(() => window.camus.me.id);
    assert.notEqual(anaId, bobId);

    // 2. Mallory joins with a raw data channel from a page on the server's origin.
    const evil = await (await browser.newContext()).newPage();
    await evil.goto(srv.url + '/');
    await installClient(evil);
    const malloryId = await evil.evaluate(async (room) => {
      const m = await window.CamusClient.connect(room);
      if (m.status !== 200) throw new Error(`offer refused: ${m.status} ${m.body}`);
      window.mallory = m;
      m.send({ sender: m.id, receiver: 'ground control', type: 'profile', data: { username: 'Mallory' } });
      return m.id;
    }, room);
    assert.match(malloryId, /^[0-9a-f]{32}$/);

    const realIds = [anaId, bobId, malloryId];
    const expected = [`${anaId}:Ana`, `${bobId}:Bob`, `${malloryId}:Mallory`].sort();
    for (const p of [ana, bob]) {
      await until(async () => JSON.stringify(await membersOf(p)) === JSON.stringify(expected), 10000,
        async () => `the three real members in a victim's list: ${JSON.stringify(await membersOf(p))}`);
      await p.evaluate(() => { window.__seen.length = 0; window.__sent.length = 0; });
    }

    // The attack: to each victim directly, then to the whole room (last, so that a client that
    // believes a forged greeting ends up calling itself "room").  Each forged message also claims
    // Ground Control as its sender, which the server must overwrite or refuse.
    const targets = [anaId, bobId, 'room'];
    await evil.evaluate(({ targets, anaId, bobId, room, GHOST, FORGED_PING, FORGED_ERROR, FORGED_TEXT }) => {
      const m = window.mallory;
      const gc = 'ground control';
      for (const to of targets) {
        m.send({ sender: gc, receiver: to, type: 'greeting', data: 'This is Ground Control to Major Tom: you have joined the room.' });
        m.send({ sender: gc, receiver: to, type: 'room-info', data: { room_id: room,
          clients: [{ id: anaId, username: 'Bob' }, { id: bobId, username: 'Ana' }, { id: GHOST, username: 'Ground Control' }] } });
        m.send({ sender: gc, receiver: to, type: 'ping', data: FORGED_PING });
        m.send({ sender: gc, receiver: to, type: 'error', data: FORGED_ERROR });
      }
      // The chat goes last: channels are ordered, so once it is shown everything before it was handled.
      for (const to of targets) m.send({ sender: anaId, receiver: to, type: 'text', data: { from: 'Ana', time: new Date().toISOString(), text: FORGED_TEXT } });
    }, { targets, anaId, bobId, room, GHOST, FORGED_PING, FORGED_ERROR, FORGED_TEXT });

    // Wait for the chat line to arrive: twice at each victim (to the room, and directly), and
    // relayed back to Mallory, who is in the room too (after Ground Control's answers to her).
    for (const p of [ana, bob]) {
      await until(async () => (await chatOf(p)).filter((c) => c.text === FORGED_TEXT).length >= 2, 10000,
        async () => `the forged chat line twice: ${JSON.stringify(await chatOf(p))}`);
    }
    await until(() => evil.evaluate(({ id, t }) => window.mallory.inbox.some((x) => x.type === 'text' && x.sender === id && x.data && x.data.text === t),
      { id: malloryId, t: FORGED_TEXT }), 10000, 'the chat relayed back to Mallory');

    // 3. What each victim believed, at every moment and at the end.
    const problems = [];
    const check = (ok, what) => { if (!ok) problems.push(what); };
    for (const [name, page, me] of [['Ana', ana, anaId], ['Bob', bob, bobId]]) {
      const others = realIds.filter((id) => id !== me);
      const st = await page.evaluate(() => ({ id: window.camus.me.id, peers: [...window.camus.peers.keys()],
        seen: window.__seen, sent: window.__sent }));
      const members = await membersOf(page);
      check(st.id === me, `${name}: own id became ${JSON.stringify(st.id)} (was ${me})`);
      check(JSON.stringify(members) === JSON.stringify(expected), `${name}: member list became ${JSON.stringify(members)}`);
      const strange = st.peers.filter((id) => !others.includes(id));
      check(!strange.length, `${name}: peer connections for ids that are no other member: ${JSON.stringify(strange)}`);
      check(st.peers.includes(others[others[0] === malloryId ? 1 : 0]), `${name}: no peer connection for the other victim`);
      // Every moment since the attack began.
      const firstBad = (f) => { const k = st.seen.findIndex(f); return k < 0 ? null : `${st.seen.filter(f).length} time(s), first after ${st.seen[k].msg.slice(0, 120)}`; };
      const badId = firstBad((s) => s.id !== me);
      check(!badId, `${name}: believed another id of its own ${badId}`);
      const badMembers = firstBad((s) => JSON.stringify(s.members) !== JSON.stringify(expected));
      check(!badMembers, `${name}: believed a forged member list ${badMembers}`);
      const badPeers = firstBad((s) => s.peers.some((id) => !others.includes(id)));
      const fakePeers = [...new Set(st.seen.flatMap((s) => s.peers.filter((id) => !others.includes(id))))];
      check(!badPeers, `${name}: made peer connections for ${JSON.stringify(fakePeers)}, no other member's ids, ${badPeers}`);
      // The forged ping was not answered, the forged error not shown as Ground Control's.
      const pongs = st.sent.map((s) => { try { return JSON.parse(s); } catch { return {}; } })
        .filter((m) => m.type === 'pong' && m.data === FORGED_PING);
      check(!pongs.length, `${name}: answered the forged ping ${pongs.length} time(s)`);
      const errs = page.consoleLines.filter((l) => l.includes(FORGED_ERROR));
      check(!errs.length, `${name}: took the forged error for Ground Control's: ${JSON.stringify(errs[0])}`);
      // The forged chat line is shown, under the name of the one who really sent it.
      const lines = (await chatOf(page)).filter((c) => c.text === FORGED_TEXT);
      check(lines.length === 2 && lines.every((c) => c.who === 'Mallory'),
        `${name}: the forged chat line is shown under ${JSON.stringify(lines.map((c) => c.who))}, not under "Mallory" twice`);
    }

    // Ground Control refused, to Mallory, each server-only message (4 types, 3 receivers each),
    // and relayed none of them: the room relay would have brought them back to her too.
    const inbox = await evil.evaluate(() => window.mallory.inbox);
    const errors = inbox.filter((m) => m.type === 'error' && m.sender === 'ground control' && m.receiver === malloryId);
    for (const type of SERVER_ONLY) {
      const n = errors.filter((m) => typeof m.data === 'string' && new RegExp(`\\b${type}\\b`).test(m.data)).length;
      check(n === 3, `Mallory: ${n} error(s) from Ground Control refusing "${type}", expected 3`);
    }
    check(errors.length === 12, `Mallory: ${errors.length} errors from Ground Control, expected 12: ${JSON.stringify(errors.map((m) => m.data))}`);
    const relayed = inbox.filter((m) => m.sender !== 'ground control' && SERVER_ONLY.includes(m.type));
    check(!relayed.length, `Mallory: the server relayed ${relayed.length} server-only message(s) of a member: ${[...new Set(relayed.map((m) => m.type))]}`);
    const myText = inbox.filter((m) => m.type === 'text' && m.data && m.data.text === FORGED_TEXT);
    check(myText.length === 1 && myText[0].sender === malloryId && myText[0].receiver === 'room',
      `Mallory: her chat to the room came back as ${JSON.stringify(myText.map((m) => [m.sender, m.receiver]))}`);

    // 4. Sanity: a real chat line from Bob is shown under "Bob" at Ana's, so names are told apart.
    const real = 'it is really me, Bob';
    await bob.fill('#chat-input', real);
    await bob.press('#chat-input', 'Enter');
    let fromBob = [];
    try {
      await until(async () => (fromBob = (await chatOf(ana)).filter((c) => c.text === real)).length > 0, 10000, 'Bob\'s line at Ana\'s');
    } catch (e) {
      problems.push('Ana: ' + e.message);
    }
    check(fromBob.length === 0 || (fromBob.length === 1 && fromBob[0].who === 'Bob'), `Ana: Bob's own line is shown under ${JSON.stringify(fromBob.map((c) => c.who))}`);

    assert.equal(problems.length, 0, `impersonation got through:\n    ${problems.join('\n    ')}`);
  } finally {
    await browser.close();
    await srv.stop();
  }
}, { timeout: 60000 });

await run();
