// A small test harness: tests run one after another, each with a time limit; the file
// ends with "N passed, N failed".  Also starts the server, drives browsers and speaks TURN by hand.
import { spawn } from 'node:child_process';
import net from 'node:net';
import tls from 'node:tls';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { createHash, createHmac, randomBytes } from 'node:crypto';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strict as assert } from 'node:assert';
import { MAGIC, stun, stunParse, u16, u32, udpSocket, USERNAME } from './stun.mjs';

export { assert };
export const root = fileURLToPath(new URL('..', import.meta.url));
export const BIN = resolve(process.env.CAMUS_BIN || join(root, 'camus')); // absolute: tests may change directory
const tests = [];
export function test(name, fn, { timeout = 120000 } = {}) { tests.push({ name, fn, timeout }); }
// Steps every run takes whatever CAMUS_TEST selects (the file's server, its last check): they are
// reported like tests, before(...) ones first, after(...) ones last.
const befores = [], afters = [];
export function before(name, fn, { timeout = 120000 } = {}) { befores.push({ name, fn, timeout, always: true }); }
export function after(name, fn, { timeout = 120000 } = {}) { afters.push({ name, fn, timeout, always: true }); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function run() {
  const only = process.env.CAMUS_TEST;
  let passed = 0, failed = 0;
  for (const t of [...befores, ...tests, ...afters]) {
    if (only && !t.always && !t.name.includes(only)) continue;
    const t0 = Date.now();
    let timer;
    started.length = 0;
    try {
      await Promise.race([t.fn(), new Promise((_, ko) => { timer = setTimeout(() => ko(new Error(`timed out after ${t.timeout} ms`)), t.timeout); })]);
      passed++;
      console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}: ${e && e.stack || e}`);
      // What the servers of this test saw last, stopped ones included (and any still running).
      for (const s of new Set([...started, ...servers])) console.log(s.log.slice(-40).map((l) => '  | ' + l).join('\n'));
    } finally {
      clearTimeout(timer);
    }
  }
  for (const s of servers) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

// Runs the calling test file's tests inside a user and network namespace of its own (unshare -rn)
// whose only interface is loopback, brought up: the file starts itself again there, so that the
// nftables rules its tests make touch nothing else.  Call at the end of the file instead of run().
export async function runInOwnNetns(fileUrl) {
  if (process.env.CAMUS_IN_NETNS) return run();
  const child = spawn('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, fileURLToPath(fileUrl)],
    { stdio: 'inherit', env: { ...process.env, CAMUS_IN_NETNS: '1' } });
  child.on('close', (code) => process.exit(code ?? 1));
}

const servers = new Set();
const started = []; // the servers the running test started

// Starts ./camus on free ports; resolves once it prints its listening line.
export async function startServer(args = [], { host = '127.0.0.1', env = {} } = {}) {
  const stateDir = mkdtempSync(join(tmpdir(), 'camus-test-'));
  const argv = ['--host', host, '--port', '0', '--udp-port', '0', '--state-dir', stateDir, '--log-level', 'debug', ...args];
  const proc = spawn(BIN, argv, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
  const log = [];
  let partial = '';
  proc.stderr.on('data', (d) => {
    const lines = (partial + d.toString()).split('\n');
    partial = lines.pop();
    for (const l of lines) { log.push(l); if (process.env.CAMUS_VERBOSE) console.log('  | ' + l); }
  });
  const srv = { proc, log, stateDir, pid: proc.pid };
  servers.add(srv);
  started.push(srv);
  const deadline = Date.now() + 5000;
  let m;
  while (!(m = log.map((l) => l.match(/listening on (https?):\/\/(\S+):(\d+) \(udp (\d+)\)/)).find(Boolean))) {
    if (proc.exitCode !== null || Date.now() > deadline) throw new Error('server did not start: ' + log.join('\n'));
    await sleep(10);
  }
  srv.scheme = m[1];
  srv.port = Number(m[3]);
  srv.udpPort = Number(m[4]);
  srv.url = `${m[1]}://${m[2]}:${m[3]}`;
  srv.request = async (method, path, body, headers = {}) => {
    const init = { method, headers: { ...headers } };
    if (body !== undefined) {
      init.body = typeof body === 'string' ? body : JSON.stringify(body);
      if (!Object.keys(init.headers).some((k) => k.toLowerCase() === 'content-type')) init.headers['Content-Type'] = 'application/json';
    }
    const res = await fetch(srv.url + path, init);
    const text = await res.text();
    let json;
    try { json = JSON.parse(text); } catch { json = undefined; }
    return { status: res.status, headers: res.headers, text, json };
  };
  srv.get = (path, headers) => srv.request('GET', path, undefined, headers);
  // A POST that hashes a password: the server budgets hashing in time (250 ms a second), so under a
  // sanitizer or valgrind, where a hash is slow, it may answer 429 "busy": then it is tried again.
  srv.hashed = async (path, body, headers) => {
    for (const end = Date.now() + 60000; ;) {
      const r = await srv.post(path, body, headers);
      if (!(r.status === 429 && r.json && /busy/.test(r.json.error)) || Date.now() > end) return r;
      await sleep(250);
    }
  };
  srv.raw = (chunks, opts = {}) => rawHttp(srv.port, chunks, { secure: srv.scheme === 'https', ...opts });
  srv.post = (path, body, headers) => srv.request('POST', path, body, headers);
  srv.until = async (cond, ms, what) => {
    const end = Date.now() + ms;
    for (;;) {
      if (await cond()) return;
      if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
      await sleep(20);
    }
  };
  // CPU time (user + system) of the server so far, in ms, from /proc/<pid>/stat.
  srv.cpuMs = () => {
    const f = readFileSync(`/proc/${proc.pid}/stat`, 'utf8').split(') ')[1].split(' ');
    return (Number(f[11]) + Number(f[12])) * 10;
  };
  srv.rssKb = () => Number(readFileSync(`/proc/${proc.pid}/status`, 'utf8').match(/VmRSS:\s+(\d+)/)[1]);
  srv.fds = () => readdirSync(`/proc/${proc.pid}/fd`).length;
  srv.stop = async () => {
    if (proc.exitCode === null) {
      proc.kill('SIGTERM');
      const end = Date.now() + 5000;
      while (proc.exitCode === null && Date.now() < end) await sleep(10);
    }
    servers.delete(srv);
    rmSync(stateDir, { recursive: true, force: true });
    if (proc.exitCode !== 0) throw new Error(`server exited with ${proc.exitCode} ${proc.signalCode || ''}\n` + log.slice(-20).join('\n'));
  };
  return srv;
}

export const chromiumArgs = ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
  '--disable-background-networking', '--disable-component-update', '--disable-sync',
  '--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream', '--allow-loopback-in-peer-connection',
  '--disable-features=WebRtcHideLocalIpsWithMdns', '--disable-background-timer-throttling',
  '--disable-renderer-backgrounding', '--disable-backgrounding-occluded-windows',
  '--autoplay-policy=no-user-gesture-required'];

// Headless Firefox ESR on a private network (see TESTING.md): fake devices, host candidates on addr, and
// nothing that reaches for the internet.
export function firefoxPrefs(addr) {
  return {
    'media.navigator.streams.fake': true, 'media.navigator.permission.disabled': true,
    'media.peerconnection.ice.obfuscate_host_addresses': false, 'media.peerconnection.ice.default_address_only': false,
    'media.peerconnection.default_iceservers': '[]', 'network.trr.mode': 5,
    'network.dns.localDomains': 'firefox.settings.services.mozilla.com', 'network.proxy.type': 1,
    'network.proxy.http': '127.0.0.1', 'network.proxy.http_port': 9, 'network.proxy.ssl': '127.0.0.1',
    'network.proxy.ssl_port': 9, 'network.proxy.no_proxies_on': `localhost, 127.0.0.1, ::1, ${addr}`,
    'network.proxy.allow_hijacking_localhost': false, 'toolkit.telemetry.enabled': false,
    'datareporting.healthreport.uploadEnabled': false, 'app.update.enabled': false, 'app.normandy.enabled': false,
    'browser.safebrowsing.malware.enabled': false, 'browser.safebrowsing.phishing.enabled': false,
    'network.captive-portal-service.enabled': false, 'network.connectivity-service.enabled': false,
  };
}

// Waits until the web client shows the call after its join button was clicked; if it does not,
// throws with what the page showed and said (its join error, Ground Control's connection state,
// its last console lines), so that a failed join says why.
export async function inCall(page, ms = 15000) {
  try {
    await page.waitForSelector('#call:not([hidden])', { timeout: ms });
  } catch (e) {
    const seen = await page.evaluate(() => ({
      error: (document.getElementById('join-error') || {}).textContent,
      gc: (document.getElementById('gc-state') || {}).textContent,
    })).catch((x) => ({ unreadable: String(x) }));
    const lines = (page.consoleLines || []).slice(-10).join(' | ');
    throw new Error(`not in the call after ${ms} ms: ${JSON.stringify(seen)}; console: ${lines || '(nothing kept)'}`);
  }
}

export async function launchChromium() {
  const { chromium } = await import('playwright-core');
  return chromium.launch({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
}

// A Chromium whose process the test can kill (browser.kill()), to play a crashed client.
export async function launchKillableChromium() {
  const { chromium } = await import('playwright-core');
  const server = await chromium.launchServer({ executablePath: '/usr/bin/chromium', args: chromiumArgs });
  const browser = await chromium.connect(server.wsEndpoint());
  browser.kill = () => server.process().kill('SIGKILL');
  browser.port = Number(new URL(server.wsEndpoint()).port); // where the test talks to it
  const close = browser.close.bind(browser);
  browser.close = async () => { await close().catch(() => {}); await server.close().catch(() => {}); };
  return browser;
}

// ------------------------------------------------------------------ raw HTTP

export const bytes = (s) => (Buffer.isBuffer(s) ? s : Buffer.from(s, 'latin1'));

// One request as bytes; the body is UTF-8 if given as a string.  Connection: close by default.
export function rawRequest(method, path, { body, headers = {}, close = true, ctype = 'application/json', host = 'camus' } = {}) {
  const b = body === undefined ? null : Buffer.isBuffer(body) ? body : Buffer.from(body, 'utf8');
  let h = `${method} ${path} HTTP/1.1\r\n` + (host === null ? '' : `Host: ${host}\r\n`);
  if (b) h += `Content-Length: ${b.length}\r\n` + (ctype ? `Content-Type: ${ctype}\r\n` : '');
  for (const [k, v] of Object.entries(headers)) h += `${k}: ${v}\r\n`;
  if (close) h += 'Connection: close\r\n';
  return Buffer.concat([Buffer.from(h + '\r\n', 'latin1'), b || Buffer.alloc(0)]);
}

// The responses in a stream of bytes (latin1 text): [{status, headers, body, json}], and .rest.
export function parseResponses(data, head = false) {
  const out = [];
  let i = 0;
  while (i < data.length) {
    const he = data.indexOf('\r\n\r\n', i);
    if (he < 0) break;
    const lines = data.slice(i, he).split('\r\n');
    const m = lines[0].match(/^HTTP\/1\.1 (\d{3}) /);
    if (!m) break;
    const headers = {};
    for (const l of lines.slice(1)) { const k = l.indexOf(':'); headers[l.slice(0, k).toLowerCase()] = l.slice(k + 1).trim(); }
    const status = Number(m[1]);
    const len = head || status === 304 ? 0 : Number(headers['content-length'] || 0);
    if (data.length < he + 4 + len) break;
    const body = Buffer.from(data.slice(he + 4, he + 4 + len), 'latin1').toString('utf8');
    let json;
    try { json = JSON.parse(body); } catch { json = undefined; }
    out.push({ status, headers, body, json });
    i = he + 4 + len;
  }
  out.rest = data.slice(i); /* what follows the last whole response */
  return out;
}

// Sends chunks over one TCP (or TLS) connection to 127.0.0.1:port, from the address `from` if
// given, with `gap` ms between them; collects the replies until the server closes, `want` replies
// have come, or `ms` pass.  Resolves {data, responses, statuses, closed, reset, ms}.
export function rawHttp(port, chunks, { ms = 5000, gap = 0, end = false, want = 0, head = false, from, secure = false } = {}) {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const opts = { port, host: '127.0.0.1', ...(from ? { localAddress: from } : {}) };
    const sock = secure ? tls.connect({ ...opts, rejectUnauthorized: false }) : net.connect(opts);
    const bufs = [];
    let closed = false, settled = false, reset = false;
    const finish = () => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      sock.destroy();
      const data = Buffer.concat(bufs).toString('latin1');
      const responses = parseResponses(data, head);
      resolve({ data, responses, statuses: responses.map((r) => r.status), closed, reset, ms: Date.now() - t0 });
    };
    const timer = setTimeout(finish, ms);
    sock.on('data', (d) => {
      bufs.push(d);
      if (want && parseResponses(Buffer.concat(bufs).toString('latin1'), head).length >= want) finish();
    });
    sock.on('close', () => { closed = true; finish(); });
    sock.on('error', (e) => { if (e.code === 'ECONNRESET') reset = true; });
    sock.on(secure ? 'secureConnect' : 'connect', async () => {
      for (const c of [].concat(chunks)) {
        if (sock.destroyed || closed) break;
        sock.write(bytes(c));
        if (gap) await sleep(gap);
      }
      if (end && !sock.destroyed) sock.end();
    });
  });
}

// ------------------------------------------------------------------ clients inside a page

// Installs window.CamusClient in a page on the server's origin: connect(room, opts) opens a peer
// connection with a Ground Control channel (plus an "echo" channel with echo: true), waits for the
// greeting, and returns a client {pc, dc, ec, id, greeting, openMs, inbox, closed, send(msg), next(type, ms)}.
// Messages that are not JSON are kept as {unparsable}, binary ones as {binary: length}.
export async function installClient(page) {
  await page.evaluate(() => {
    if (window.CamusClient) return;
    const sleepMs = (ms) => new Promise((r) => setTimeout(r, ms));
    window.CamusClient = {
      async connect(room, { echo = false, mms = 0, label = 'ground-control', ms = 10000, resume = null, extra = {} } = {}) {
        const pc = new RTCPeerConnection();
        const dc = pc.createDataChannel(label);
        dc.binaryType = 'arraybuffer';
        const ec = echo ? pc.createDataChannel('echo') : null;
        if (ec) ec.binaryType = 'arraybuffer';
        const c = { pc, dc, ec, inbox: [], id: null, closed: false, arrivals: [] };
        dc.onmessage = (e) => {
          if (typeof e.data !== 'string') { c.inbox.push({ binary: e.data.byteLength }); return; }
          try { c.inbox.push(JSON.parse(e.data)); } catch { c.inbox.push({ unparsable: e.data.slice(0, 200) }); }
          if (c.arrivals.length < 5000) c.arrivals.push(performance.now());
        };
        dc.onclose = () => { c.closed = true; };
        const opened = new Promise((ok) => { dc.onopen = ok; }); // listening before the answer: it may open first
        await pc.setLocalDescription(await pc.createOffer());
        const t0 = performance.now();
        const res = await fetch(`/rtc/${room}/offer`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
          body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer', ...(resume ? { resume } : {}), ...extra }) });
        if (res.status !== 200) return { status: res.status, body: await res.text() };
        const answer = await res.json();
        c.resume = answer.resume;
        if (mms) answer.sdp = answer.sdp.replace(/a=max-message-size:\d+/, `a=max-message-size:${mms}`);
        await pc.setRemoteDescription(answer);
        let timer;
        try {
          await Promise.race([opened, new Promise((_, ko) => { timer = setTimeout(() => ko(new Error('channel did not open: ' + pc.connectionState)), ms); })]);
        } finally {
          clearTimeout(timer);
        }
        c.openMs = performance.now() - t0;
        c.send = (m) => dc.send(typeof m === 'string' ? m : JSON.stringify(m));
        c.next = async (type, wait = 3000) => {
          for (const end = performance.now() + wait; performance.now() < end;) {
            const k = c.inbox.findIndex((m) => !type || m.type === type);
            if (k >= 0) return c.inbox.splice(k, 1)[0];
            await sleepMs(5);
          }
          return null;
        };
        c.greeting = await c.next('greeting', ms);
        if (!c.greeting || c.greeting.sender !== 'ground control') throw new Error('no greeting from ground control');
        c.id = c.greeting.receiver;
        c.status = 200;
        return c;
      },
    };
  });
}

const MAX = 65536;

// In a browser page (Playwright's or Puppeteer's): joins with window.CamusClient (and an "echo"
// channel), round-trips messages, and reports what happened.
export async function pageJoin(page, room, { echo = true, keep = false } = {}) {
  await installClient(page);
  return page.evaluate(async ({ room, echo, keep, MAX }) => {
    const c = await window.CamusClient.connect(room, { echo });
    if (c.status !== 200) return c;
    const out = { status: 200, openMs: c.openMs, greeting: c.greeting, echoes: [] };
    const ec = c.ec;
    if (ec) {
      if (ec.readyState !== 'open') await new Promise((ok) => { ec.onopen = ok; });
      const q = [];
      ec.onmessage = (e) => q.push(e.data);
      const next = async () => { for (let i = 0; i < 500 && !q.length; i++) await new Promise((r) => setTimeout(r, 10)); return q.shift(); };
      const bytes = (n) => { const a = new Uint8Array(n); for (let i = 0; i < n; i++) a[i] = (i * 31 + 7) & 255; return a; };
      const cases = [['string', 'hello, ground control'], ['empty string', ''], ['unicode', 'h\u00e9 \u{1F680}'],
        ['max string', 'x'.repeat(MAX)], ['binary', bytes(100)], ['empty binary', new Uint8Array(0)], ['max binary', bytes(MAX)]];
      for (const [name, v] of cases) {
        ec.send(v);
        const got = await next();
        let same;
        if (typeof v === 'string') same = got === v;
        else same = got instanceof ArrayBuffer && got.byteLength === v.length && new Uint8Array(got).every((b, i) => b === v[i]);
        out.echoes.push([name, same]);
      }
      const closed = new Promise((ok) => { ec.onclose = () => ok(true); setTimeout(() => ok(false), 5000); });
      ec.close();
      out.echoClosed = await closed;
    }
    c.send({ sender: 'x', receiver: 'ground control', type: 'ping', data: 'p1' });
    out.pong = await c.next('pong', 10000);
    if (!keep) c.pc.close();
    else window.keep = c.pc;
    return out;
  }, { room, echo, keep, MAX });
}

// ------------------------------------------------------------------ TURN (RFC 8656) spoken by hand

// Methods and classes of TURN's messages (RFC 8656 section 17; a request's class is 0), and its
// attributes (section 18) with RFC 8489's that it uses.
export const TURN = { ALLOCATE: 0x003, REFRESH: 0x004, SEND: 0x006, DATA: 0x007, CREATE_PERMISSION: 0x008, CHANNEL_BIND: 0x009,
  INDICATION: 0x010, SUCCESS: 0x100, ERROR: 0x110 };
export const TURN_ATTR = { CHANNEL_NUMBER: 0x000c, LIFETIME: 0x000d, XOR_PEER_ADDRESS: 0x0012, DATA: 0x0013, REALM: 0x0014,
  NONCE: 0x0015, XOR_RELAYED_ADDRESS: 0x0016, REQUESTED_ADDRESS_FAMILY: 0x0017, EVEN_PORT: 0x0018, REQUESTED_TRANSPORT: 0x0019,
  SOFTWARE: 0x8022 };
export const TURN_REALM = 'camus';

// The server's TURN quotas and limits as camus.c defines them (its `#define CAMUS_TURN_*` and
// CAMUS_AMPLIFICATION), read from the source next to the binary under test if there is one, else
// from the repository's: {ALLOCATIONS, PER_HOST, PER_MEMBER, KBPS, ..., AMPLIFICATION}, numbers.
export function turnLimits() {
  const out = {};
  for (const m of camusSource().matchAll(/^#define CAMUS_(TURN_\w+|AMPLIFICATION) (\d+)\b/gm)) out[m[1].replace(/^TURN_/, '')] = Number(m[2]);
  return out;
}

// The camus.c of the binary under test (next to it, if there is one there), as text.
function camusSource() {
  const near = join(dirname(BIN), 'camus.c');
  return readFileSync(existsSync(near) ? near : join(root, 'camus.c'), 'utf8');
}

// The number camus.c's `#define name N` gives (a cap such as CAMUS_SMALL_PEERS).
export function camusDefine(name) {
  const m = camusSource().match(new RegExp(`^#define ${name} (\\d+)\\b`, 'm'));
  if (!m) throw new Error(`camus.c defines no number ${name}`);
  return Number(m[1]);
}

// REST-API credentials for member `id` (user "<expiry>:<id>", password base64(HMAC-SHA1(secret,
// user))) and their long-term key, MD5(user ":" realm ":" password) (RFC 8489 section 9.2.2).
export function turnCreds(secret, id, expiry = Math.floor(Date.now() / 1000) + 600) {
  const user = `${expiry}:${id}`;
  const pass = createHmac('sha1', secret).update(user).digest('base64');
  return { user, pass, id, key: createHash('md5').update(`${user}:${TURN_REALM}:${pass}`).digest() };
}

// An XOR-PEER-ADDRESS value (or any XOR address) for ip:port, IPv4 or IPv6 (XORed with the magic
// cookie and, for IPv6, the transaction id); family overrides the family byte written.
export function xorAddress(ip, port, txid, family) {
  const v6 = ip.includes(':');
  let raw;
  if (v6) {
    const [head, tail = ''] = ip.split('::');
    const h = head ? head.split(':') : [], t = tail ? tail.split(':') : [];
    const last = t.length ? t[t.length - 1] : h[h.length - 1];
    const words = [...h, ...Array(8 - h.length - t.length - (last.includes('.') ? 1 : 0)).fill('0'), ...t];
    raw = Buffer.concat(words.map((w) => (w.includes('.') ? Buffer.from(w.split('.').map(Number)) : u16(parseInt(w, 16)))));
  } else {
    raw = Buffer.from(ip.split('.').map(Number));
  }
  const pad = Buffer.concat([u32(MAGIC), txid]);
  return Buffer.concat([Buffer.from([0, family ?? (v6 ? 2 : 1)]), u16(port ^ (MAGIC >>> 16)), Buffer.from(raw.map((b, i) => b ^ pad[i]))]);
}

// The IPv4 address in an XOR address value: {ip, port}, or null.
export function readXorAddress(v) {
  if (!v || v.length !== 8 || v[1] !== 1) return null;
  const cookie = u32(MAGIC);
  return { ip: [0, 1, 2, 3].map((k) => v[4 + k] ^ cookie[k]).join('.'), port: v.readUInt16BE(2) ^ (MAGIC >>> 16) };
}

// A TCP connection to port carrying TURN (STUN messages bare, ChannelData padded to four bytes),
// with udpSocket()'s face: send(), got [{data, at}] one message each, port, close(), closed.
export async function turnTcp(port, bind) {
  const s = net.connect({ port, host: '127.0.0.1', localAddress: bind });
  s.on('error', () => {});
  await new Promise((ok, ko) => { s.once('connect', ok); s.once('error', ko); });
  const t = { got: [], closed: false, port: s.localPort, send: (d) => new Promise((ok) => s.write(d, ok)), close: () => s.destroy() };
  let buf = Buffer.alloc(0);
  s.on('data', (d) => {
    buf = Buffer.concat([buf, d]);
    while (buf.length >= 4) {
      const len = buf[0] <= 1 ? 20 + buf.readUInt16BE(2) : (4 + buf.readUInt16BE(2) + 3) & ~3;
      if (buf.length < len) break;
      t.got.push({ data: buf.subarray(0, len), at: Date.now() });
      buf = buf.subarray(len);
    }
  });
  s.on('close', () => { t.closed = true; });
  return t;
}

// A TURN client by hand on srv's UDP port from the address bind (or over TCP to its HTTP port),
// with the credentials creds ({user, key}, from turnCreds).  ask() sends a message and resolves the
// STUN answer with its transaction id within ms (parsed by stunParse, MESSAGE-INTEGRITY checked
// with key), or null.  request() signs with the long-term credentials, learning a nonce first (an
// unauthenticated Allocate's 401) and once more after a 438.  Each request helper takes opts:
// {creds, nonce, realm, txid, ms}.  fromPeers() is what came relayed: [{channel | peer, data}].
export async function turnClient(srv, creds, { bind = '127.0.0.1', tcp = false } = {}) {
  const sock = tcp ? await turnTcp(srv.port, bind) : await udpSocket(srv.udpPort, { bind });
  const A = TURN_ATTR;
  const c = {
    sock, creds, nonce: null, port: sock.port, address: bind,
    // Over UDP the request goes again every 500 ms without an answer, as a real client's would (RFC 8489 section 6.2.1).
    async ask(msg, txid, { ms = 1000, key = c.creds && c.creds.key } = {}) {
      const mark = sock.got.length;
      await sock.send(msg);
      for (let end = Date.now() + ms, again = Date.now() + 500; Date.now() < end; await sleep(5)) {
        const g = sock.got.slice(mark).find((x) => x.data.length >= 20 && x.data[0] < 2 && x.data.subarray(8, 20).equals(txid));
        if (g) return stunParse(g.data, key);
        if (!tcp && Date.now() > again) { again += 500; await sock.send(msg); }
      }
      return null;
    },
    // The first Allocate of a real client: no credentials; its 401 brings the realm and a nonce.
    async learnNonce({ ms } = {}) {
      const { msg, txid } = stun({ type: TURN.ALLOCATE, attrs: [[A.REQUESTED_TRANSPORT, u32(17 << 24)]] });
      const m = await c.ask(msg, txid, { ms });
      if (!m || m.code !== 401 || !m.attrs[A.NONCE]) throw new Error(`no 401 with a nonce: ${JSON.stringify(m)}`);
      c.nonce = m.attrs[A.NONCE];
      return m;
    },
    signed(type, attrs = [], { creds = c.creds, nonce = c.nonce, realm = TURN_REALM, txid = randomBytes(12) } = {}) {
      return stun({ type, txid, attrs: [...attrs, [USERNAME, creds.user], [A.REALM, realm], [A.NONCE, nonce]], key: creds.key });
    },
    async request(type, attrs, opts = {}) {
      if (!c.nonce) await c.learnNonce({ ms: opts.ms });
      for (let tries = 0; ; tries++) {
        const txid = opts.txid || randomBytes(12);
        const { msg } = c.signed(type, typeof attrs === 'function' ? attrs(txid) : attrs, { ...opts, txid });
        const m = await c.ask(msg, txid, { ms: opts.ms, key: (opts.creds || c.creds).key });
        if (m && m.code === 438 && tries === 0 && !opts.nonce) { c.nonce = m.attrs[A.NONCE]; continue; }
        return m;
      }
    },
    allocate: (lifetime, opts = {}) => c.request(TURN.ALLOCATE, [[A.REQUESTED_TRANSPORT, u32(17 << 24)],
      ...(lifetime === undefined ? [] : [[A.LIFETIME, u32(lifetime)]]), ...(opts.attrs || [])], opts),
    refresh: (lifetime, opts = {}) => c.request(TURN.REFRESH, lifetime === undefined ? [] : [[A.LIFETIME, u32(lifetime)]], opts),
    permit: (peers, opts = {}) => c.request(TURN.CREATE_PERMISSION, (txid) => [].concat(peers).map((p) => [A.XOR_PEER_ADDRESS, xorAddress(p.ip, p.port ?? 9, txid)]), opts),
    bind: (channel, p, opts = {}) => c.request(TURN.CHANNEL_BIND, (txid) => [[A.CHANNEL_NUMBER, Buffer.concat([u16(channel), u16(0)])],
      [A.XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, txid)]], opts),
    sendTo(p, data) {
      const txid = randomBytes(12);
      return sock.send(stun({ type: TURN.SEND | TURN.INDICATION, txid, attrs: [[A.XOR_PEER_ADDRESS, xorAddress(p.ip, p.port, txid)], [A.DATA, data]], fp: false }).msg);
    },
    channelData: (channel, data, { len = data.length } = {}) => sock.send(Buffer.concat([u16(channel), u16(len), data])),
    // What came relayed since message number `from`: ChannelData and Data indications.
    fromPeers(from = 0) {
      const out = [];
      for (const { data } of sock.got.slice(from)) {
        if (data.length >= 4 && data[0] >= 0x40 && data[0] <= 0x4f) out.push({ channel: data.readUInt16BE(0), data: data.subarray(4, 4 + data.readUInt16BE(2)) });
        else if (data.length >= 20 && data.readUInt16BE(0) === (TURN.DATA | TURN.INDICATION)) {
          const m = stunParse(data);
          if (m && m.attrs[A.DATA]) out.push({ peer: readXorAddress(m.attrs[A.XOR_PEER_ADDRESS]), data: m.attrs[A.DATA] });
        }
      }
      return out;
    },
    close: () => sock.close(),
  };
  return c;
}
