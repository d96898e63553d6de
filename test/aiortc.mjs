// Ground Control's transport against aiortc (Debian's python3-aiortc 1.4, which offers the older
// "DTLS/SCTP 5000" + a=sctpmap form): the same round trip as the Chromium test, and 30 timed joins.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startServer, test, assert, run, root } from './lib.mjs';

test('aiortc opens a data channel, round-trips messages and joins 30 times', async () => {
  assert.ok(existsSync('/usr/bin/python3'), 'needs /usr/bin/python3 with python3-aiortc');
  const srv = await startServer();
  try {
    await srv.post('/api/rooms', { name: 'aiortc' });
    const cpu0 = srv.cpuMs();
    // Asynchronously, so that this process keeps draining the server's log pipe.
    const py = await new Promise((resolve) => {
      const child = spawn('/usr/bin/python3', [join(root, 'test/aiortc_client.py'), srv.url, 'aiortc', '30']);
      let stdout = '', stderr = '';
      child.stdout.on('data', (d) => { stdout += d; });
      child.stderr.on('data', (d) => { stderr += d; });
      const timer = setTimeout(() => child.kill('SIGKILL'), 90000);
      child.on('close', (status) => { clearTimeout(timer); resolve({ status, stdout, stderr }); });
    });
    const cpu = srv.cpuMs() - cpu0;
    assert.equal(py.status, 0, py.stderr);
    const r = JSON.parse(py.stdout);
    assert.equal(r.status, 200, JSON.stringify(r));
    assert.equal(r.greeting.type, 'greeting');
    assert.equal(r.pong.type, 'pong');
    assert.equal(r.pong.data, 42);
    assert.equal(r.pong.receiver, r.greeting.receiver);
    assert.equal(r.echoes.length, 5);
    for (const [name, same] of r.echoes) assert.ok(same, `echo of ${name}`);
    assert.equal(r.joins.length, 30);
    const open = r.joins.map((j) => j[0]).sort((a, b) => a - b);
    const pong = r.joins.map((j) => j[1]).sort((a, b) => a - b);
    console.log(`  aiortc: POST to open median ${open[15].toFixed(1)} ms, to first pong ${pong[15].toFixed(1)} ms; server CPU ${(cpu / 31).toFixed(2)} ms per join`);
    await srv.until(async () => (await srv.get('/api/rooms/aiortc')).json.clients === 0, 5000, 'all peers freed');
  } finally {
    await srv.stop();
  }
});

await run();
