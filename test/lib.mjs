// A small test harness: tests run one after another, each with a time limit; the file
// ends with "N passed, N failed".  Also starts the server and drives browsers.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { strict as assert } from 'node:assert';

export { assert };
export const root = fileURLToPath(new URL('..', import.meta.url));
export const BIN = process.env.CAMUS_BIN || join(root, 'camus');
const tests = [];
export function test(name, fn, { timeout = 120000 } = {}) { tests.push({ name, fn, timeout }); }
export const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

export async function run() {
  const only = process.env.CAMUS_TEST;
  let passed = 0, failed = 0;
  for (const t of tests) {
    if (only && !t.name.includes(only)) continue;
    const t0 = Date.now();
    let timer;
    try {
      await Promise.race([t.fn(), new Promise((_, ko) => { timer = setTimeout(() => ko(new Error(`timed out after ${t.timeout} ms`)), t.timeout); })]);
      passed++;
      console.log(`ok   ${t.name} (${Date.now() - t0} ms)`);
    } catch (e) {
      failed++;
      console.log(`FAIL ${t.name}: ${e && e.stack || e}`);
      for (const s of servers) console.log(s.log.slice(-40).map((l) => '  | ' + l).join('\n')); // what the server saw last
    } finally {
      clearTimeout(timer);
    }
  }
  for (const s of servers) if (s.proc.exitCode === null) s.proc.kill('SIGKILL');
  console.log(`${passed} passed, ${failed} failed`);
  process.exit(failed ? 1 : 0);
}

const servers = new Set();

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
  const close = browser.close.bind(browser);
  browser.close = async () => { await close().catch(() => {}); await server.close().catch(() => {}); };
  return browser;
}

const MAX = 65536;

// In a browser page (Playwright's or Puppeteer's): opens a peer connection to the server with a
// Ground Control channel (and an "echo" channel), round-trips messages, and reports what happened.
export async function pageJoin(page, room, { echo = true, keep = false } = {}) {
  return page.evaluate(async ({ room, echo, keep, MAX }) => {
    const pc = new RTCPeerConnection();
    const gc = pc.createDataChannel('ground-control');
    const ec = echo ? pc.createDataChannel('echo') : null;
    if (ec) ec.binaryType = 'arraybuffer';
    await pc.setLocalDescription(await pc.createOffer());
    const t0 = performance.now();
    const res = await fetch(`/rtc/${room}/offer`, { method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ sdp: pc.localDescription.sdp, type: 'offer' }) });
    if (res.status !== 200) return { status: res.status, body: await res.text() };
    await pc.setRemoteDescription(await res.json());
    const first = new Promise((ok, ko) => { gc.onmessage = (e) => ok(e.data); setTimeout(() => ko(new Error('no greeting')), 10000); });
    await new Promise((ok, ko) => { gc.onopen = ok; setTimeout(() => ko(new Error('channel did not open: ' + pc.connectionState)), 10000); });
    const openMs = performance.now() - t0;
    const greeting = JSON.parse(await first);
    const out = { status: 200, openMs, greeting, echoes: [] };
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
    gc.send(JSON.stringify({ sender: 'x', receiver: 'ground control', type: 'ping', data: 'p1' }));
    const pong = await new Promise((ok) => { gc.onmessage = (e) => ok(JSON.parse(e.data)); });
    out.pong = pong;
    if (!keep) pc.close();
    else window.keep = pc;
    return out;
  }, { room, echo, keep, MAX });
}

