// What a room of four Chromium pages (the real web client, fake 640x480 cameras and microphones)
// costs the server, with media through the server ("sfu") and between the browsers ("p2p"), over
// ROOMCOST_SECONDS (20) of steady state each:
//   - the server's CPU (% of one core, /proc/<pid>/stat) and resident memory (KiB,
//     /proc/<pid>/status: idle before the room, and the most seen during it);
//   - the media through it, in and out (kbit/s, the room's total): each member's bytes from the
//     "media:" line the server logs when it leaves, over its time in the room (from its
//     "connected in" line to that one, so the first seconds count too);
//   - what the pages send and receive in the steady state (RTP payload, from getStats: through
//     the server, or directly between the browsers);
//   - the RTCPeerConnections each page holds.
// Prints a table and writes test/out/roomcost.json; it asserts nothing.  Run by `make bench`.
// The browsers share the machine with the server: on a small one, their encoders (not the server)
// set the bitrates, and the figures move with whatever else runs (the load average is recorded).
import { mkdirSync, writeFileSync } from 'node:fs';
import { loadavg } from 'node:os';
import { startServer, launchChromium, sleep } from './lib.mjs';
import { pageSetup, join, waitIn, receivesAll, pcCount, mediaLines, logTime, until } from './webclient.mjs';

const SECONDS = Number(process.env.ROOMCOST_SECONDS || 20);
const NAMES = ['Ana', 'Bob', 'Cleo', 'Dan'];

// In a P2P page: '' when every other member's connection decodes video.
async function p2pReceives(n) {
  const peers = [...window.camus.peers.values()];
  if (peers.length !== n) return `${peers.length} peers`;
  for (const p of peers) {
    let frames = 0;
    for (const s of (await p.pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') frames += s.framesDecoded || 0;
    if (!frames) return `no video from ${p.id.slice(0, 6)}`;
  }
  return '';
}

const t00 = Date.now();
const step = (what) => { if (process.env.ROOMCOST_VERBOSE) console.log(`  [${((Date.now() - t00) / 1000).toFixed(1)} s] ${what}`); };

// In a page: RTP payload bytes its RTCPeerConnections have sent and received so far.
async function pageBytes() {
  let sent = 0, received = 0;
  for (const pc of window.__camus.all) {
    if (pc.connectionState === 'closed') continue;
    for (const s of (await pc.getStats()).values()) {
      if (s.type === 'outbound-rtp') sent += s.bytesSent || 0;
      if (s.type === 'inbound-rtp') received += s.bytesReceived || 0;
    }
  }
  return { sent, received };
}

async function measure(media) {
  const srv = await startServer(['--log-level', 'info']);
  const browser = await launchChromium();
  const out = { media };
  try {
    await sleep(500);
    out.idle_rss_kib = srv.rssKb();
    const created = await srv.post('/api/rooms', { name: `Cost ${media}`, media });
    const url = `${srv.url}/rtc/${created.json.id}`;
    // All four join at once: one by one, the last page loads slowly on a machine busy with the
    // media of the first three.
    const members = await Promise.all(NAMES.map(async (name) => {
      const context = await browser.newContext({ viewport: { width: 960, height: 640 } });
      await context.addInitScript(pageSetup, null);
      const page = await context.newPage();
      const id = await join(page, url, name, 60000);
      step(`${media}: ${name} joined`);
      return { name, page, id };
    }));
    await Promise.all(members.map((m) => (media === 'sfu'
      ? waitIn(m.page, receivesAll, members.filter((o) => o !== m).map(({ id, name }) => ({ id, name })), 60000, `everyone at ${m.name}'s`)
      : waitIn(m.page, p2pReceives, members.length - 1, 60000, `everyone at ${m.name}'s`))));
    step(`${media}: everyone decodes everyone`);
    await sleep(3000); // past the first seconds, when bitrates ramp up
    const bytes0 = await Promise.all(members.map((m) => m.page.evaluate(pageBytes)));
    const cpu0 = srv.cpuMs(), t0 = Date.now();
    let rss = 0;
    while (Date.now() - t0 < SECONDS * 1000) {
      await sleep(1000);
      rss = Math.max(rss, srv.rssKb());
    }
    out.seconds = (Date.now() - t0) / 1000;
    out.cpu_percent = Math.round((srv.cpuMs() - cpu0) / (Date.now() - t0) * 1000) / 10;
    out.rss_kib = rss;
    const bytes1 = await Promise.all(members.map((m) => m.page.evaluate(pageBytes)));
    const secs = (Date.now() - t0) / 1000, kbps = (k) => Math.round(bytes1.reduce((n, b, i) => n + b[k] - bytes0[i][k], 0) * 8 / secs / 1000);
    out.pages_sent_kbps = kbps('sent');
    out.pages_received_kbps = kbps('received');
    out.peer_connections_per_page = await Promise.all(members.map((m) => pcCount(m.page)));
    step(`${media}: measured`);
    for (const m of members) await m.page.evaluate(() => document.getElementById('leave').click());
    await until(async () => (await srv.get(`/api/rooms/${created.json.id}`)).json.clients === 0, 15000, 'everyone gone');
    if (media === 'sfu') await until(() => mediaLines(srv.log).length === members.length, 5000, 'a media line per member');
    step(`${media}: left`);
  } finally {
    await browser.close();
    await srv.stop();
    step(`${media}: stopped`);
  }
  // Each member's media over its time in the room (its "connected in" line to its "media:" line).
  let bitsIn = 0, bitsOut = 0;
  for (const l of mediaLines(srv.log)) {
    const m = srv.log.map((x) => x.match(new RegExp(`^(\\d\\d):(\\d\\d):(\\d\\d)\\.(\\d{3}) INFO  peer ${l.peer}: connected in`))).find(Boolean);
    const secs = m ? (l.at - logTime(m)) / 1000 : NaN;
    bitsIn += l.bytesIn * 8 / secs;
    bitsOut += l.bytesOut * 8 / secs;
  }
  out.media_in_kbps = Math.round(bitsIn / 1000);
  out.media_out_kbps = Math.round(bitsOut / 1000);
  return out;
}

const load = loadavg()[0];
const sfu = await measure('sfu');
const p2p = await measure('p2p');
const rows = [
  ['server CPU (% of one core)', 'cpu_percent'],
  ['server RSS, idle before the room (KiB)', 'idle_rss_kib'],
  ['server RSS, most seen in the room (KiB)', 'rss_kib'],
  ['media into the server (kbit/s, its media lines)', 'media_in_kbps'],
  ['media out of the server (kbit/s, its media lines)', 'media_out_kbps'],
  ['media the pages send (kbit/s, getStats)', 'pages_sent_kbps'],
  ['media the pages receive (kbit/s, getStats)', 'pages_received_kbps'],
  ['RTCPeerConnections per page', 'peer_connections_per_page'],
];
const cell = (v) => String(Array.isArray(v) ? [...new Set(v)].join('/') : v);
console.log(`a room of ${NAMES.length} Chromium pages, ${SECONDS} s of steady state each (load average ${load.toFixed(1)} at the start):`);
const w = Math.max(...rows.map(([label]) => label.length)) + 2;
console.log(`  ${''.padEnd(w)}${'sfu'.padStart(8)}${'p2p'.padStart(8)}`);
for (const [label, k] of rows) console.log(`  ${label.padEnd(w)}${cell(sfu[k]).padStart(8)}${cell(p2p[k]).padStart(8)}`);
mkdirSync(new URL('./out/', import.meta.url), { recursive: true });
writeFileSync(new URL('./out/roomcost.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), pages: NAMES.length, seconds: SECONDS, load_average: load, sfu, p2p }, null, 2) + '\n');
