// Ground Control's messaging protocol, spoken raw from a browser page over real data channels:
// what the server answers, what it relays, and what it refuses.
import { startServer, test, assert, run, launchChromium, installClient } from './lib.mjs';

test('messaging protocol: replies, relays, and refusals', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    await srv.post('/api/rooms', { name: 'proto' });
    await srv.post('/api/rooms', { name: 'elsewhere' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    await installClient(page);
    const r = await page.evaluate(async () => {
      const connect = (room) => window.CamusClient.connect(room);
      const out = {};
      const a = await connect('proto');
      const b = await connect('proto');
      const x = await connect('elsewhere');
      // a hears that b joined (room-info), b does not hear of itself before asking.
      out.aInfo = await a.next('room-info');
      out.bEarly = b.inbox.filter((m) => m.type === 'room-info').length;
      b.send({ sender: b.id, receiver: 'ground control', type: 'get-room-info', data: null });
      out.bInfo = await b.next('room-info');
      b.send({ sender: 'whoever', receiver: 'ground control', type: 'ping', data: { n: 7 } });
      out.pong = await b.next('pong');
      b.send({ sender: b.id, receiver: 'ground control', type: 'profile', data: { username: 'Bob <b>' } });
      out.aAfterProfile = await a.next('room-info');
      out.bAfterProfile = await b.next('room-info');
      // Chat to the room reaches everyone in it, the sender included, with the real sender.
      a.send({ sender: b.id, receiver: 'room', type: 'text', data: { from: 'A', time: 1, text: 'hi <img src=x>' } });
      out.chatA = await a.next('text');
      out.chatB = await b.next('text');
      // Direct messages reach only their receiver, and only within the room.
      a.send({ sender: a.id, receiver: b.id, type: 'offer', data: { type: 'offer', sdp: 'v=0' } });
      out.direct = await b.next('offer');
      a.send({ sender: a.id, receiver: x.id, type: 'offer', data: {} });
      out.crossRoom = await a.next('error');
      a.send({ sender: a.id, receiver: 'ground control', type: 'dance', data: null });
      out.unknownType = await a.next('error');
      a.send('not json');
      out.notJson = await a.next('error');
      a.send({ receiver: 'room' });
      out.noType = await a.next('error');
      a.send({ sender: a.id, receiver: 'ground control', type: 'profile', data: { username: '' } });
      out.badName = await a.next('error');
      // Chat: data.text, a string of 2000 characters at most (the web client's maxlength).
      a.send({ sender: a.id, receiver: 'room', type: 'text', data: { text: '\u00e9'.repeat(2001) } });
      out.chatLong = await a.next('error');
      a.send({ sender: a.id, receiver: 'room', type: 'text', data: 'plain' });
      out.chatShape = await a.next('error');
      a.send({ sender: a.id, receiver: b.id, type: 'text', data: { text: '\u20ac'.repeat(2000) } });
      out.chatMax = await b.next('text');
      a.send({ sender: a.id, receiver: 'ground control', type: 'greeting', data: null });
      a.send({ sender: a.id, receiver: 'ground control', type: 'pong', data: null });
      await new Promise((r) => setTimeout(r, 200));
      out.silent = a.inbox.length;
      // A flood is cut with one error, and the others in the room are not disturbed.
      for (let i = 0; i < 400; i++) a.send({ sender: a.id, receiver: b.id, type: 'text', data: { text: String(i) } });
      out.floodError = await a.next('error');
      await new Promise((r) => setTimeout(r, 300));
      out.floodDelivered = b.inbox.filter((m) => m.type === 'text').length;
      x.send({ sender: x.id, receiver: 'ground control', type: 'ping', data: 'x' });
      out.otherRoomPong = await x.next('pong');
      // bye: b leaves, a gets room-info without b.
      b.send({ sender: b.id, receiver: 'ground control', type: 'bye', data: null });
      out.afterBye = await a.next('room-info');
      out.ids = { a: a.id, b: b.id, x: x.id };
      for (const c of [a, b, x]) c.pc.close();
      return out;
    });
    const { a, b, x } = r.ids;
    assert.deepEqual(r.aInfo.data.clients.map((c) => c.id), [a, b]);
    assert.equal(r.aInfo.data.room_id, 'proto');
    assert.equal(r.bEarly, 0, 'the newcomer is not told of the room before it asks');
    assert.deepEqual(r.bInfo.data.clients.map((c) => c.username), ['Major Tom', 'Major Tom']);
    assert.deepEqual(r.pong, { sender: 'ground control', receiver: b, type: 'pong', data: { n: 7 } });
    for (const info of [r.aAfterProfile, r.bAfterProfile]) assert.equal(info.data.clients[1].username, 'Bob <b>');
    assert.equal(r.aAfterProfile.receiver, a);
    assert.equal(r.bAfterProfile.receiver, b);
    for (const m of [r.chatA, r.chatB]) {
      assert.equal(m.sender, a, 'the sender cannot be spoofed');
      assert.equal(m.receiver, 'room');
      assert.equal(m.data.text, 'hi <img src=x>');
    }
    assert.equal(r.direct.sender, a);
    assert.equal(r.direct.data.sdp, 'v=0');
    assert.match(r.crossRoom.data, new RegExp(`Unknown receiver: ${x}`));
    assert.equal(r.unknownType.data, 'Unknown message type: dance');
    assert.match(r.notJson.data, /Invalid message/);
    assert.match(r.noType.data, /no type/);
    assert.match(r.badName.data, /Invalid username/);
    assert.equal(r.chatLong.data, 'Chat text too long: at most 2000 characters');
    assert.equal(r.chatShape.data, 'Invalid chat message: data.text must be a string');
    assert.equal(r.chatMax.data.text, '\u20ac'.repeat(2000));
    assert.equal(r.silent, 0, 'greeting and pong get no reply');
    assert.match(r.floodError.data, /Too many messages/);
    assert.ok(r.floodDelivered >= 100 && r.floodDelivered < 400, `delivered ${r.floodDelivered} of 400`);
    assert.equal(r.otherRoomPong.data, 'x');
    assert.deepEqual(r.afterBye.data.clients.map((c) => c.id), [a]);
    await srv.until(async () => (await srv.get('/api/rooms/proto')).json.clients === 0, 5000, 'all left');
  } finally {
    await browser.close();
    await srv.stop();
  }
});

// A name in the offer: the others see the newcomer by it from the first room-info that lists it (a
// page's "X joined" is never "Major Tom joined"); a name the server refuses is a 400, and no session.
test('a name in the offer is the one the others first see; a refused name is a 400', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    await srv.post('/api/rooms', { name: 'named' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    await installClient(page);
    const r = await page.evaluate(async () => {
      const C = window.CamusClient;
      const a = await C.connect('named', { extra: { username: 'Ana' } });
      const b = await C.connect('named', { extra: { username: 'Bob \u{1F680}' } });
      const seen = await a.next('room-info');
      const bad = await Promise.all(['', 'tab\there', 'x'.repeat(65), 7].map((username) => C.connect('named', { extra: { username } })));
      const after = await a.next('room-info', 1000);
      return { a: a.id, b: b.id, seen: seen && seen.data.clients, bad, after };
    });
    assert.deepEqual(r.seen, [{ id: r.a, username: 'Ana' }, { id: r.b, username: 'Bob \u{1F680}' }]);
    for (const x of r.bad) {
      assert.equal(x.status, 400, JSON.stringify(x));
      assert.match(JSON.parse(x.body).error, /^Invalid username: 1 to 64 bytes/);
    }
    assert.equal(r.after, null, 'a refused offer made no member');
    assert.equal((await srv.get('/api/rooms/named')).json.clients, 2);
  } finally {
    await browser.close();
    await srv.stop();
  }
});

// A page whose session is lost (a network change) offers again with the resume token the answer to
// its last offer carried: its new session is the same member (same id, same name, its seat even in
// a full room), the others are told of no leaving or joining, and the old session is closed.  A
// token that is not a member's, or one from another room, is a fresh join.
test('a member comes back as itself with its resume token', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    await srv.post('/api/rooms', { name: 'back', guest_limit: 2 });
    await srv.post('/api/rooms', { name: 'other' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    await installClient(page);
    const r = await page.evaluate(async () => {
      const C = window.CamusClient;
      const out = {};
      const a = await C.connect('back');
      const b = await C.connect('back');
      out.token = a.resume;
      out.tokenB = b.resume;
      a.send({ sender: a.id, receiver: 'ground control', type: 'profile', data: { username: 'Ana' } });
      await b.next('room-info');
      await b.next('room-info');
      b.inbox.length = 0;
      out.full = await C.connect('back');               // a third may not join: the guest limit is 2
      const a2 = await C.connect('back', { resume: a.resume });
      out.a2 = { id: a2.id, token: a2.resume, info: await a2.next('room-info') };
      for (let i = 0; i < 100 && !a.closed; i++) await new Promise((ok) => setTimeout(ok, 20));
      out.oldClosed = a.closed;
      a2.send({ sender: a2.id, receiver: 'room', type: 'text', data: { text: 'back again' } });
      out.chat = await b.next('text');
      await new Promise((ok) => setTimeout(ok, 300));
      out.bHeard = b.inbox.map((m) => m.type);
      out.wrong = await C.connect('back', { resume: '0'.repeat(32) }); // no seat: not a member's token
      const o = await C.connect('other', { resume: a2.resume });
      out.otherRoom = { id: o.id, same: o.id === a2.id };
      return { ...out, a: a.id, b: b.id };
    });
    assert.match(r.token, /^[0-9a-f]{32}$/);
    assert.notEqual(r.token, r.tokenB);
    assert.equal(r.full.status, 403, 'the room is full to anyone new');
    assert.equal(r.a2.id, r.a, 'the same member again');
    assert.equal(r.a2.token, r.token, 'the same token');
    assert.deepEqual(r.a2.info.data.clients.map((c) => `${c.id}:${c.username}`), [`${r.a}:Ana`, `${r.b}:Major Tom`]);
    assert.ok(r.oldClosed, 'the old session was closed');
    assert.equal(r.chat.sender, r.a);
    assert.deepEqual(r.bHeard, [], 'besides the chat, the others heard nothing: no leaving, no joining');
    assert.equal(r.wrong.status, 403, 'a wrong token takes no seat');
    assert.equal(r.otherRoom.same, false, 'a token is for its own room only');
    assert.ok(srv.log.some((l) => l.includes(`peer ${r.a}: back in room back with a new session`)));
  } finally {
    await browser.close();
    await srv.stop();
  }
});

await run();
