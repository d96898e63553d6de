// Firefox ESR and Chromium in one room whose media goes through the server, both through the
// real web client: each holds one RTCPeerConnection and decodes the other's camera.  Firefox
// never gathers loopback candidates, so (as in firefox.mjs) the file runs in a user and network
// namespace of its own with a veth pair (10.77.0.1 <-> 10.77.0.2): no packet leaves it.  The
// origin is plain http on 10.77.0.1, where getUserMedia needs Firefox's "insecure" prefs and
// Chromium's --unsafely-treat-insecure-origin-as-secure.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer, test, assert, run, chromiumArgs, BIN, firefoxPrefs } from './lib.mjs';
import { pageSetup, join, pcCount, waitIn, receivesAll, mediaLines, errorLines } from './webclient.mjs';

const ADDR = '10.77.0.1';
const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;

const prefs = { ...firefoxPrefs(ADDR), 'media.devices.insecure.enabled': true, 'media.getusermedia.insecure.enabled': true };

test('Firefox ESR and Chromium in an SFU room decode each other', async () => {
  const srv = await startServer([], { host: ADDR });
  const puppeteer = (await import('puppeteer-core')).default;
  const { chromium } = await import('playwright-core');
  const [ff, ch] = await Promise.all([
    puppeteer.launch({ browser: 'firefox', executablePath: '/usr/bin/firefox-esr', headless: true, protocol: 'webDriverBiDi', extraPrefsFirefox: prefs }),
    chromium.launch({ executablePath: '/usr/bin/chromium', args: [...chromiumArgs, `--unsafely-treat-insecure-origin-as-secure=${srv.url}`] }),
  ]);
  const report = [];
  let fox, chr;
  try {
    const created = await srv.post('/api/rooms', { name: 'Foxes', media: 'sfu' });
    const url = `${srv.url}/rtc/${created.json.id}`;
    const fp = await ff.newPage();
    await fp.evaluateOnNewDocument(pageSetup, null);
    const context = await ch.newContext();
    await context.addInitScript(pageSetup, { width: 320, height: 240, fps: 15 });
    const cp = await context.newPage();
    const t0 = Date.now();
    [fox, chr] = await Promise.all([
      join(fp, url, 'Firefox', 20000 * SLOW).then((id) => ({ id, name: 'Firefox', page: fp })),
      join(cp, url, 'Chromium', 20000 * SLOW).then((id) => ({ id, name: 'Chromium', width: 320, height: 240, page: cp })),
    ]);
    const joined = Date.now() - t0;
    const who = ({ id, name, width, height }) => ({ id, name, width, height });
    const at = await Promise.all([waitIn(fp, receivesAll, [who(chr)], 20000 * SLOW, "Chromium's camera and microphone at Firefox's"),
      waitIn(cp, receivesAll, [who(fox)], 20000 * SLOW, "Firefox's camera and microphone at Chromium's")]);
    report.push(`both joined in ${joined} ms; each decodes the other ${Math.round(Math.max(...at) - t0 - joined)} ms later`);
    assert.equal(await pcCount(fp), 1, "Firefox's RTCPeerConnections");
    assert.equal(await pcCount(cp), 1, "Chromium's RTCPeerConnections");
  } finally {
    await Promise.all([ff.close().catch(() => {}), ch.close().catch(() => {})]);
    await srv.stop();
  }
  assert.deepEqual(errorLines(srv.log), []);
  const lines = mediaLines(srv.log);
  assert.deepEqual(lines.map((l) => l.peer).sort(), [fox.id, chr.id].sort(), 'a media line per member');
  for (const l of lines) assert.ok(l.failedSrtp === 0 && l.replayed <= Math.max(5, l.in / 100) && l.forwarded > 0, `media line: ${JSON.stringify(l)}`);
  console.log(report.map((l) => '  ' + l).join('\n'));
}, { timeout: 60000 * SLOW });

if (!process.env.CAMUS_IN_NETNS) {
  if (!existsSync('/usr/bin/firefox-esr')) {
    console.log('sfu-firefox: /usr/bin/firefox-esr is absent\n0 passed, 1 failed');
    process.exit(1);
  }
  const setup = 'ip link set lo up && ip link add v0 type veth peer name v1 && ' +
    `ip addr add ${ADDR}/24 dev v0 && ip addr add 10.77.0.2/24 dev v1 && ip link set v0 up && ip link set v1 up && ` +
    'ip route add default via 10.77.0.2 && exec "$0" "$@"';
  const child = spawn('unshare', ['-rn', 'sh', '-c', setup, process.execPath, fileURLToPath(import.meta.url)],
    { stdio: 'inherit', env: { ...process.env, CAMUS_IN_NETNS: '1' } });
  child.on('close', (code) => process.exit(code ?? 1));
} else {
  await run();
}
