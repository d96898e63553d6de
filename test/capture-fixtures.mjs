// Captures the SDP offers in test/fixtures/ from real peers (run by hand: node test/capture-fixtures.mjs).
// Chromium: data channel only, and data channel + audio + video.  aiortc: data channel only.
// Firefox's offer is captured by test/firefox.mjs's namespace (CAMUS_CAPTURE=1).
import { writeFileSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { launchChromium, startServer } from './lib.mjs';

const out = (name, sdp) => writeFileSync(new URL(`./fixtures/${name}`, import.meta.url), sdp);
const browser = await launchChromium();
const page = await browser.newPage();
const srv = await startServer();
await page.goto(srv.url + '/'); // a secure context (localhost), for getUserMedia
out('chromium-datachannel.sdp', await page.evaluate(async () => {
  const pc = new RTCPeerConnection();
  pc.createDataChannel('ground-control');
  await pc.setLocalDescription(await pc.createOffer());
  await new Promise((ok) => { if (pc.iceGatheringState === 'complete') ok(); pc.onicegatheringstatechange = () => pc.iceGatheringState === 'complete' && ok(); setTimeout(ok, 3000); });
  return pc.localDescription.sdp;
}));
out('chromium-av-datachannel.sdp', await page.evaluate(async () => {
  const pc = new RTCPeerConnection();
  const s = await navigator.mediaDevices.getUserMedia({ audio: true, video: true });
  for (const t of s.getTracks()) pc.addTrack(t, s);
  pc.createDataChannel('ground-control');
  await pc.setLocalDescription(await pc.createOffer());
  return pc.localDescription.sdp;
}));
await browser.close();
await srv.stop();
const py = spawnSync('/usr/bin/python3', ['-c', `
import asyncio, aioice.ice
from aiortc import RTCPeerConnection
aioice.ice.get_host_addresses = lambda use_ipv4, use_ipv6: ['127.0.0.1']
async def main():
    pc = RTCPeerConnection(); pc.createDataChannel('ground-control')
    await pc.setLocalDescription(await pc.createOffer()); print(pc.localDescription.sdp, end='')
    await pc.close()
asyncio.run(main())`], { encoding: 'utf8' });
out('aiortc-datachannel.sdp', py.stdout);
