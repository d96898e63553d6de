// Driving the real web client (web/room.js) in a room whose media goes through the server, from
// Playwright (Chromium) or Puppeteer (Firefox): what each page is told before its scripts run,
// joining, and what it receives, per member, from getStats.  Used by sfu.mjs, sfu-firefox.mjs
// and roomcost.mjs.
import { sleep, inCall } from './lib.mjs';

// Runs in a page before its own scripts (addInitScript / evaluateOnNewDocument).  Counts (pcs)
// and keeps (all) the RTCPeerConnections the page makes, notes when the join form is sent and when each remote
// description is applied (with the number of cameras its a=msid lines carry) and Ground
// Control's messages both ways (trace); given a shape {width, height, fps}, asks the (fake)
// camera for that size and at most that frame rate: a member's video is then told apart from the
// others' by its aspect ratio, which survives the encoder scaling it down on a busy machine.
// window.__camus.streams() says, per stream remoteStreams() maps (SFU rooms), what the page
// receives on it: {peer, label, kind, mid, frames, packets, nacks, w, h}, read from the
// inbound-rtp whose SSRC the server's answer gave that mid.
export function pageSetup(shape) {
  const Native = window.RTCPeerConnection;
  const rec = window.__camus = { pcs: 0, all: [], joinAt: null, remote: [] };
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      rec.pcs++;
      rec.all.push(this);
    }
    async setRemoteDescription(d) {
      const r = await super.setRemoteDescription(d);
      if (d && d.type === 'answer') rec.remote.push({ t: performance.now(), cameras: (String(d.sdp).match(/a=msid:[0-9a-f]{32}-camera /g) || []).length });
      return r;
    }
  };
  // Ground Control's messages, both ways: {t, dir: 'in' | 'out', type} (a trace to read when a test fails);
  // and every member list it sends (room-info), with when it came (wall clock, ms), in roomInfos
  // [{at, clients: [{id, username}]}], so that a list showing a ghost or someone twice is seen even
  // if a later one is right.
  const trace = (dir, d) => {
    if (typeof d !== 'string') return;
    const type = (d.match(/"type":"([^"]*)"/) || [])[1];
    if (type && rec.trace.length < 2000) rec.trace.push({ t: Math.round(performance.now()), dir, type });
    if (dir === 'in' && type === 'room-info' && rec.roomInfos.length < 2000) {
      try {
        const m = JSON.parse(d);
        if (m.sender === 'ground control' && m.data && Array.isArray(m.data.clients)) {
          rec.roomInfos.push({ at: performance.timeOrigin + performance.now(), clients: m.data.clients.map((c) => ({ id: c.id, username: c.username })) });
        }
      } catch { /* not ours to judge */ }
    }
  };
  rec.trace = [];
  rec.roomInfos = [];
  const send = RTCDataChannel.prototype.send;
  RTCDataChannel.prototype.send = function (d) { trace('out', d); return send.call(this, d); };
  const on = Object.getOwnPropertyDescriptor(RTCDataChannel.prototype, 'onmessage');
  Object.defineProperty(RTCDataChannel.prototype, 'onmessage', { configurable: true, enumerable: on.enumerable, get() { return on.get.call(this); },
    set(fn) { on.set.call(this, typeof fn !== 'function' ? fn : function (e) { trace('in', e.data); return fn.call(this, e); }); } });
  addEventListener('submit', (e) => { if (e.target && e.target.id === 'join-form') rec.joinAt = performance.now(); }, true);
  // What each getUserMedia asked for and got ('video+audio: ok', 'video+audio: NotReadableError ...'),
  // in rec.media; with a shape, video of that shape.
  rec.media = [];
  if (navigator.mediaDevices) {
    const md = navigator.mediaDevices, gum = md.getUserMedia.bind(md);
    md.getUserMedia = async (c) => {
      const what = ['video', 'audio'].filter((k) => c && c[k]).join('+');
      try {
        const s = await gum(shape && c && c.video ? { ...c, video: { ...(typeof c.video === 'object' ? c.video : {}),
          width: { exact: shape.width }, height: { exact: shape.height }, frameRate: { max: shape.fps || 30 } } } : c);
        rec.media.push(`${Math.round(performance.now())} ms ${what}: ok`);
        return s;
      } catch (err) {
        rec.media.push(`${Math.round(performance.now())} ms ${what}: ${err.name} ${err.message}`);
        throw err;
      }
    };
  }
  rec.streams = async () => {
    const c = window.camus, pc = c && c.state.gc && c.state.gc.pc;
    if (!pc || !c.remoteStreams || !pc.currentRemoteDescription) return [];
    const ssrcOf = {};
    for (const section of pc.currentRemoteDescription.sdp.split('\r\nm=')) {
      const mid = (section.match(/\r\na=mid:([^\r]*)/) || [])[1], ssrc = (section.match(/\r\na=ssrc:(\d+) /) || [])[1];
      if (mid !== undefined && ssrc) ssrcOf[mid] = Number(ssrc);
    }
    const bySsrc = {};
    for (const s of (await pc.getStats()).values()) if (s.type === 'inbound-rtp') bySsrc[s.ssrc] = s;
    return c.remoteStreams().map((r) => {
      const s = bySsrc[ssrcOf[r.mid]] || {};
      return { ...r, frames: s.framesDecoded || 0, packets: s.packetsReceived || 0, nacks: s.nackCount || 0, w: s.frameWidth || 0, h: s.frameHeight || 0 };
    });
  };
}

// A Playwright page in a context of its own, told pageSetup(shape) before its scripts; its console
// warnings and errors kept in page.warnings.
export async function newPage(browser, shape) {
  const context = await browser.newContext({ viewport: { width: 960, height: 640 } });
  await context.addInitScript(pageSetup, shape);
  const page = await context.newPage();
  page.warnings = [];
  page.on('console', (m) => { if (m.type() === 'warning' || m.type() === 'error') page.warnings.push(m.text()); });
  page.on('pageerror', (e) => page.warnings.push('pageerror: ' + e.message));
  return page;
}

// Joins through the room page (Playwright or Puppeteer page): name, the join button (enabled
// once the camera is on), the call shown, an id from Ground Control.  Resolves the member's id.
// beforeClick(), if given, runs just before the click.
export async function join(page, url, name, ms = 20000, beforeClick = null) {
  await page.goto(url);
  await page.waitForSelector('#join-button:not([disabled])', { timeout: ms });
  await page.type('#display-name', name);
  if (beforeClick) await beforeClick();
  await page.click('#join-button');
  await inCall(page, ms);
  let id = null;
  await until(async () => (id = await page.evaluate(() => window.camus.me.id)), ms, `an id from Ground Control for ${name}`);
  return id;
}

export const streams = (page) => page.evaluate(() => window.__camus.streams());

// Waits in the page (no round trip to the test per check) until pred(arg), an async function
// run there every 25 ms, returns '' (anything else says what is still missing); past ms, throws
// with what it said last.  Resolves the wall-clock time (ms) at which pred was satisfied.  pred
// is sent as source: it may use only what the page has (window.camus, window.__camus).
export async function waitIn(page, pred, arg, ms, what) {
  const r = await page.evaluate(`(async (pred, arg, ms) => {
    let last;
    for (const end = performance.now() + ms; ;) {
      try { last = await pred(arg); } catch (e) { last = 'threw ' + e; }
      if (last === '') return { at: performance.timeOrigin + performance.now() };
      if (performance.now() > end) return { last: String(last) };
      await new Promise((r) => setTimeout(r, 25));
    }
  })(${pred}, ${JSON.stringify(arg === undefined ? null : arg)}, ${ms})`);
  if (r.at === undefined) throw new Error(`timed out after ${ms} ms waiting for ${what}: ${r.last}`);
  return r.at;
}
// In a page (waitIn): every member of `who` ({id, name, width?, height?}) sends us one camera that
// decodes, in its shape if given, shown in the member's tile, and one microphone that delivers packets; nobody else sends.
export async function receivesAll(who) {
  const s = await window.__camus.streams();
  const show = () => s.map((x) => `${x.peer.slice(0, 6)}:${x.label}:${x.mid}:${x.kind === 'video' ? `${x.frames}f ${x.w}x${x.h}` : `${x.packets}p`}`).join(' ');
  const wrong = [];
  for (const m of who) {
    const cams = s.filter((x) => x.peer === m.id && x.label === 'camera');
    const mics = s.filter((x) => x.peer === m.id && x.label === 'mic');
    const p = window.camus.peers.get(m.id);
    if (cams.length !== 1 || !(cams[0].frames > 0)) wrong.push(`${m.name}'s camera`);
    else if (m.width && Math.abs(cams[0].w / cams[0].h - m.width / m.height) > 0.07) wrong.push(`${m.name}'s camera is ${cams[0].w}x${cams[0].h}, not ${m.width}x${m.height}`);
    else if (!p || !p.tile.isConnected || !(p.video.videoWidth > 0) || !p.avatar.hidden) wrong.push(`${m.name}'s tile shows no video`);
    if (mics.length !== 1 || !(mics[0].packets > 0)) wrong.push(`${m.name}'s microphone`);
  }
  if (s.some((x) => !who.some((m) => m.id === x.peer))) wrong.push('streams of no member here');
  return wrong.length ? `${wrong.join(', ')} [${show()}]` : '';
}

export const pcCount = (page) => page.evaluate(() => window.__camus.pcs);

// Polls cond() every 100 ms until it is true; past ms, throws with what() (a string or an async function).
export async function until(cond, ms, what) {
  const end = Date.now() + ms;
  for (;;) {
    if (await cond()) return;
    if (Date.now() > end) throw new Error('timed out waiting for ' + (typeof what === 'function' ? await what() : what));
    await sleep(100);
  }
}

// The server's "media:" lines (one per member, printed when it leaves): {peer, in, bytesIn, out,
// bytesOut, forwarded, retransmitted, nacksSent, plisSent, dropped, unknown, overCaps, failedSrtp, replayed, at}.
export function mediaLines(log) {
  const re = /^(\d\d):(\d\d):(\d\d)\.(\d{3}) \w+\s+peer ([0-9a-f]{32}): media: (\d+) packets \((\d+) bytes\) in, (\d+) \((\d+) bytes\) out, (\d+) forwarded, (\d+) retransmitted on NACK, (\d+) NACKs and (\d+) PLIs sent, (\d+) dropped \((\d+) unknown SSRC, (\d+) over the caps, (\d+) failed SRTP, (\d+) replayed\)/;
  const keys = ['in', 'bytesIn', 'out', 'bytesOut', 'forwarded', 'retransmitted', 'nacksSent', 'plisSent', 'dropped', 'unknown', 'overCaps', 'failedSrtp', 'replayed'];
  return log.map((l) => l.match(re)).filter(Boolean).map((m) => {
    const line = { peer: m[5], at: logTime(m) };
    keys.forEach((k, i) => { line[k] = Number(m[6 + i]); });
    return line;
  });
}

// A log line's time of day (UTC) in ms, from its "HH:MM:SS.mmm" prefix; m is its match (1..4).
export const logTime = (m) => ((Number(m[1]) * 60 + Number(m[2])) * 60 + Number(m[3])) * 1000 + Number(m[4]);

// The server's ERROR lines.
export const errorLines = (log) => log.filter((l) => /^\d\d:\d\d:\d\d\.\d{3} ERROR /.test(l));
