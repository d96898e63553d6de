// Ground Control's transport against headless Chromium: a page opens data channels to the server,
// round-trips string and binary messages (empty, small, at the maximum size), closes them, and the
// server frees the peer.  Also measures POST-to-open time over 30 joins.
import { startServer, test, assert, run, launchChromium, launchKillableChromium, pageJoin } from './lib.mjs';

test('Chromium opens a data channel and round-trips messages', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    await srv.post('/api/rooms', { name: 'dc test' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    const r = await pageJoin(page, 'dc-test');
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.equal(r.greeting.type, 'greeting');
    assert.equal(r.greeting.sender, 'ground control');
    assert.match(r.greeting.receiver, /^[0-9a-f]{32}$/);
    for (const [name, same] of r.echoes) assert.ok(same, `echo of ${name}`);
    assert.equal(r.echoes.length, 7);
    assert.ok(r.echoClosed, 'echo channel closed in both directions');
    assert.equal(r.pong.type, 'pong');
    assert.equal(r.pong.data, 'p1');
    assert.equal(r.pong.receiver, r.greeting.receiver);
    // pc.close(): the server frees the peer and the room is empty again.
    await srv.until(async () => (await srv.get('/api/rooms/dc-test')).json.clients === 0, 5000, 'peer freed');
    await srv.until(() => srv.log.some((l) => /peer [0-9a-f]{32}: closed/.test(l)), 2000, 'close logged');
  } finally {
    await browser.close();
    await srv.stop();
  }
});

test('30 Chromium joins: POST to channel open', async () => {
  const srv = await startServer();
  const browser = await launchChromium();
  try {
    await srv.post('/api/rooms', { name: 'speed' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    const times = [];
    const cpu0 = srv.cpuMs();
    for (let i = 0; i < 30; i++) {
      const r = await pageJoin(page, 'speed', { echo: false });
      assert.equal(r.status, 200);
      times.push(r.openMs);
    }
    const cpu = srv.cpuMs() - cpu0;
    times.sort((a, b) => a - b);
    console.log(`  chromium: POST to open median ${times[15].toFixed(1)} ms, p95 ${times[28].toFixed(1)} ms; server CPU ${(cpu / 30).toFixed(2)} ms per join`);
    await srv.until(async () => (await srv.get('/api/rooms/speed')).json.clients === 0, 5000, 'all peers freed');
  } finally {
    await browser.close();
    await srv.stop();
  }
});

test('offers that cannot be answered get 400 with a reason', async () => {
  const srv = await startServer();
  try {
    await srv.post('/api/rooms', { name: 'bad' });
    for (const sdp of ['', 'garbage', 'v=0\r\n', 'v=0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=ice-ufrag:abcd\r\na=ice-pwd:aaaaaaaaaaaaaaaaaaaaaaaa\r\n']) {
      const r = await srv.post('/rtc/bad/offer', { sdp, type: 'offer' });
      assert.equal(r.status, 400, sdp);
      assert.ok(typeof r.json.error === 'string' && r.json.error.length > 3, r.text);
    }
    const r = await srv.post('/rtc/bad/offer', { sdp: 'v=0', type: 'answer' });
    assert.equal(r.status, 400);
  } finally {
    await srv.stop();
  }
});

test('a killed browser is dropped by consent freshness; a handshake that never starts times out', async () => {
  const srv = await startServer();
  const browser = await launchKillableChromium();
  try {
    await srv.post('/api/rooms', { name: 'liveness' });
    await srv.post('/api/rooms', { name: 'stalled' });
    const page = await browser.newPage();
    await page.goto(srv.url + '/');
    // An offer whose ICE never starts: its session lives until the first-check limit (10 s), and
    // holds no seat in the room meanwhile (only a session past its ICE check does).
    const offer = await page.evaluate(async () => {
      const pc = new RTCPeerConnection();
      pc.createDataChannel('x');
      const o = await pc.createOffer();
      pc.close();
      return o.sdp;
    });
    assert.equal((await srv.post('/rtc/stalled/offer', { sdp: offer, type: 'offer' })).status, 200);
    const r = await pageJoin(page, 'liveness', { echo: false, keep: true });
    assert.equal(r.status, 200);
    assert.equal((await srv.get('/api/rooms/liveness')).json.clients, 1);
    assert.equal((await srv.get('/api/rooms/stalled')).json.clients, 0);
    const t0 = Date.now();
    browser.kill(); // no DTLS alert, no SCTP ABORT: it just goes silent
    await srv.until(async () => srv.log.some((l) => /handshake timed out: no ICE check/.test(l)), 25000, 'stalled handshake freed');
    const stalledMs = Date.now() - t0;
    await srv.until(async () => (await srv.get('/api/rooms/liveness')).json.clients === 0, 40000, 'silent peer dropped');
    const silentMs = Date.now() - t0;
    assert.ok(silentMs >= 25000, `dropped too early (${silentMs} ms)`);
    assert.ok(srv.log.some((l) => /consent expired/.test(l)), 'consent expiry logged');
    assert.ok(srv.log.some((l) => /handshake timed out/.test(l)), 'handshake timeout logged');
    console.log(`  stalled handshake freed after ${stalledMs} ms, silent peer after ${silentMs} ms`);
  } finally {
    await browser.close().catch(() => {});
    await srv.stop();
  }
});

await run();
