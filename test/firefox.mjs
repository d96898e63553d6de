// Ground Control's transport against Firefox ESR, driven headless through WebDriver BiDi
// (puppeteer-core).  Firefox never gathers loopback candidates, so the test runs in a private
// network namespace with a veth pair (10.77.0.1 <-> 10.77.0.2) and nothing else: no packet leaves.
import { spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startServer, test, assert, run, pageJoin, firefoxPrefs } from './lib.mjs';

const ADDR = '10.77.0.1';

if (!process.env.CAMUS_IN_NETNS) {
  if (!existsSync('/usr/bin/firefox-esr')) {
    console.log('firefox: /usr/bin/firefox-esr is absent');
    console.log('0 passed, 1 failed');
    process.exit(1);
  }
  const setup = 'ip link set lo up && ip link add v0 type veth peer name v1 && ' +
    `ip addr add ${ADDR}/24 dev v0 && ip addr add 10.77.0.2/24 dev v1 && ip link set v0 up && ip link set v1 up && ` +
    'ip route add default via 10.77.0.2 && exec "$0" "$@"';
  const child = spawn('unshare', ['-n', 'sh', '-c', setup, process.execPath, fileURLToPath(import.meta.url)],
    { stdio: 'inherit', env: { ...process.env, CAMUS_IN_NETNS: '1' } });
  child.on('close', (code) => process.exit(code ?? 1));
} else {
  const prefs = firefoxPrefs(ADDR);
  test('Firefox ESR opens a data channel and round-trips messages', async () => {
    const srv = await startServer([], { host: ADDR });
    const puppeteer = (await import('puppeteer-core')).default;
    const browser = await puppeteer.launch({ browser: 'firefox', executablePath: '/usr/bin/firefox-esr', headless: true,
      protocol: 'webDriverBiDi', extraPrefsFirefox: prefs });
    try {
      await srv.post('/api/rooms', { name: 'firefox' });
      const page = await browser.newPage();
      await page.goto(srv.url + '/');
      if (process.env.CAMUS_CAPTURE) {
        const sdp = await page.evaluate(async () => {
          const pc = new RTCPeerConnection();
          pc.createDataChannel('ground-control');
          await pc.setLocalDescription(await pc.createOffer());
          return pc.localDescription.sdp;
        });
        writeFileSync(new URL('./fixtures/firefox-datachannel.sdp', import.meta.url), sdp);
      }
      const r = await pageJoin(page, 'firefox');
      assert.equal(r.status, 200, JSON.stringify(r));
      assert.equal(r.greeting.type, 'greeting');
      for (const [name, same] of r.echoes) assert.ok(same, `echo of ${name}`);
      assert.equal(r.echoes.length, 7);
      assert.ok(r.echoClosed, 'echo channel closed in both directions');
      assert.equal(r.pong.data, 'p1');
      await srv.until(async () => (await srv.get('/api/rooms/firefox')).json.clients === 0, 5000, 'peer freed');
      const times = [];
      for (let i = 0; i < 10; i++) times.push((await pageJoin(page, 'firefox', { echo: false })).openMs);
      times.sort((a, b) => a - b);
      console.log(`  firefox: POST to open median ${times[5].toFixed(1)} ms over 10 joins`);
    } finally {
      await browser.close();
      await srv.stop();
    }
  });
  await run();
}
