// The built-in TURN relay under real browsers: two headless Chromium pages in network namespaces
// of their own that cannot reach each other, each reaching only the server, join a P2P room
// through the web client and decode each other's video through Camus's TURN relay: over UDP;
// with UDP dropped on both networks, over TCP; and with --tls and plain TURN over TCP dropped
// too, over TLS.  A relay-only connection from Ana to Bob's own address pins that the relay
// sends from the relayed address it gave (a call may or may not pick such a pair).  The file runs in a user and network namespace of its own (the server's): each
// test makes two child namespaces there, held by a `sleep` of ours (a user namespace's root cannot
// `ip netns add`: it may not mount /run/netns), joined to the server's by a veth pair each:
//   Ana 10.91.1.2 <-> 10.91.1.1  server  10.91.2.1 <-> 10.91.2.2 Bob
// The server's namespace does not forward (ip_forward stays 0 in a new namespace), so Ana and Bob
// reach nothing but the server's addresses.  Each Chromium runs in its child namespace through a
// wrapper script (nsenter).  Firewalls are nftables tables on the child's end of its veth (netdev
// ingress and egress): a datagram is lost on the way, as a network drops it, rather than refused
// at its sender with EPERM as an output hook would.
import { spawn, execFileSync } from 'node:child_process';
import { mkdtempSync, writeFileSync, rmSync, readlinkSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startServer, test, assert, runInOwnNetns, chromiumArgs, rawRequest, sleep, BIN } from './lib.mjs';
import { newPage, join as joinRoom, waitIn, until, errorLines, receivesAll } from './webclient.mjs';

// Under a sanitizer or valgrind the server is slower: time limits stretch.
const SLOW = /asan|valgrind/.test(BIN) || process.env.CAMUS_SLOW ? 3 : 1;
const T = (ms) => ms * SLOW;

const SIDES = [
  { name: 'Ana', dev: 'ana', gateway: '10.91.1.1', addr: '10.91.1.2' },
  { name: 'Bob', dev: 'bob', gateway: '10.91.2.1', addr: '10.91.2.2' },
];
const SERVER_ADDRS = SIDES.map((s) => s.gateway);

// ---------------------------------------------------------------- the networks

// A child namespace per side, held by `unshare -n sleep` (under setpriv: killed if we die), with
// its veth pair, lo up and a default route through the server's end; and a wrapper that runs
// Chromium there.  close() kills the holders (their namespaces, veths and nftables tables go with
// them) and removes the wrappers.
async function networks() {
  const dir = mkdtempSync(join(tmpdir(), 'camus-turn-browser-'));
  const ours = readlinkSync('/proc/self/ns/net');
  const sides = [];
  const close = () => {
    for (const s of sides) if (s.holder.exitCode === null && s.holder.signalCode === null) s.holder.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  try {
    for (const side of SIDES) {
      // Killed with this process, should it die before close(): its namespace goes with it.
      const holder = spawn('setpriv', ['--pdeathsig', 'KILL', 'unshare', '-n', 'sleep', '600'], { stdio: 'ignore' });
      const s = { ...side, holder, ns: `/proc/${holder.pid}/ns/net` };
      sides.push(s);
      await until(() => { try { return readlinkSync(s.ns) !== ours; } catch { return false; } }, 3000, `${s.name}'s namespace`);
      // The last test's namespace may still be going away (its holder killed, the kernel not done), and its
      // veth with it: our end of that pair has the same name.
      await until(() => { try { execFileSync('ip', ['link', 'show', `${s.dev}0`], { stdio: 'ignore' }); return false; } catch { return true; } },
        5000, `the last test's ${s.dev}0 to go`);
      execFileSync('ip', ['link', 'add', `${s.dev}0`, 'type', 'veth', 'peer', 'name', `${s.dev}1`, 'netns', String(holder.pid)]);
      // No IPv6 link-local address on either end: its duplicate address detection would end a second
      // after the link came up, by which time Chromium runs there, and Chromium takes an address that
      // changes for a network that changed (a navigation under way fails with ERR_NETWORK_CHANGED).
      execFileSync('ip', ['link', 'set', `${s.dev}0`, 'addrgenmode', 'none']);
      execFileSync('ip', ['addr', 'add', `${s.gateway}/24`, 'dev', `${s.dev}0`]);
      execFileSync('ip', ['link', 'set', `${s.dev}0`, 'up']);
      inNs(s, 'sh', ['-c', `ip link set lo up && ip link set ${s.dev}1 addrgenmode none && ip addr add ${s.addr}/24 dev ${s.dev}1 && ` +
        `ip link set ${s.dev}1 up && ip route add default via ${s.gateway}`]);
      // Nothing left to settle in the namespace Chromium will run in: no address still tentative.
      await until(() => inNs(s, 'ip', ['-o', 'addr', 'show', 'tentative']).trim() === '', 3000, `${s.name}'s addresses to settle`);
      s.chromium = join(dir, `chromium-${s.dev}`);
      writeFileSync(s.chromium, `#!/bin/sh\nexec nsenter --net=${s.ns} /usr/bin/chromium "$@"\n`, { mode: 0o755 });
    }
  } catch (e) {
    close();
    throw e;
  }
  return { sides, close };
}

const inNs = (s, cmd, args, input) => execFileSync('nsenter', [`--net=${s.ns}`, cmd, ...args], { input, stdio: ['pipe', 'pipe', 'pipe'] }).toString();

// From a tiny Node process in s's namespace: what a TCP connection to host:port meets within ms
// ('open', 'timeout', or the error's code: ECONNREFUSED would mean the host was reached).
function probe(s, host, port, ms = 500) {
  const code = 'const [h, p, ms] = process.argv.slice(1); const c = require("net").connect({ host: h, port: +p });' +
    'const out = (w) => { console.log(w); process.exit(0); }; setTimeout(() => out("timeout"), +ms);' +
    'c.on("connect", () => out("open")); c.on("error", (e) => out(e.code));';
  return new Promise((ok) => {
    const p = spawn('nsenter', [`--net=${s.ns}`, process.execPath, '-e', code, host, String(port), String(ms)], { stdio: ['ignore', 'pipe', 'pipe'] });
    let text = '';
    p.stdout.on('data', (d) => { text += d; });
    p.stderr.on('data', (d) => { text += d; });
    p.on('close', () => ok(text.trim()));
  });
}

// Each side reaches both of the server's addresses (its HTTP port) and not the other side.
async function assertIsolated(sides, port) {
  assert.equal(readFileSync('/proc/sys/net/ipv4/ip_forward', 'utf8').trim(), '0', "the server's namespace forwards");
  const [a, b] = sides;
  const seen = await Promise.all([probe(a, a.gateway, port), probe(a, b.gateway, port), probe(b, b.gateway, port), probe(b, a.gateway, port),
    probe(a, b.addr, port), probe(b, a.addr, port)]);
  const what = `Ana -> ${a.gateway}, ${b.gateway}: ${seen[0]}, ${seen[1]}; Bob -> ${b.gateway}, ${a.gateway}: ${seen[2]}, ${seen[3]}; ` +
    `Ana -> Bob ${b.addr}: ${seen[4]}; Bob -> Ana ${a.addr}: ${seen[5]}`;
  assert.deepEqual(seen.slice(0, 4), ['open', 'open', 'open', 'open'], `a side does not reach the server: ${what}`);
  for (const r of seen.slice(4)) assert.ok(['timeout', 'EHOSTUNREACH', 'ENETUNREACH'].includes(r), `the sides reach each other: ${what}`);
  return what;
}

// Loads a table on s's end of its veth pair dropping what rules.out (leaving) and rules.in
// (arriving) match, each rule with its counter; returns a function that says what each dropped.
function firewall(s, rules) {
  const dev = `${s.dev}1`;
  const chain = (name, hook, list) => ` chain ${name} {\n  type filter hook ${hook} device "${dev}" priority 0; policy accept;\n` +
    list.map((r) => `  ${r} counter drop\n`).join('') + ' }\n';
  inNs(s, 'nft', ['-f', '-'], `table netdev camus_turn {\n${chain('out', 'egress', rules.out)}${chain('in', 'ingress', rules.in)}}\n`);
  return () => {
    const text = inNs(s, 'nft', ['list', 'table', 'netdev', 'camus_turn']);
    return text.split(/\n\s*chain /).slice(1).map((c) => `${c.split(' ')[0]}: ` +
      [...c.matchAll(/^\s*(.*?) counter packets (\d+) bytes \d+ drop$/gm)].map((m) => `${m[1]} ${m[2]}`).join(', ')).join('; ');
  };
}

// ---------------------------------------------------------------- pages

// Runs in a page before its scripts: each RTCPeerConnection keeps in pc.__ice what it gathered and
// what its icecandidateerror events said (a STUN or TURN server that refused or did not answer).
function keepIce() {
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(...args) {
      super(...args);
      const log = this.__ice = [], t0 = performance.now();
      const note = (what) => { if (log.length < 60) log.push(`${Math.round(performance.now() - t0)} ms ${what}`); };
      this.addEventListener('icecandidateerror', (e) => note(`error ${e.url} ${e.errorCode} ${e.errorText} (${e.address}:${e.port})`));
      this.addEventListener('icecandidate', (e) => note(e.candidate ? e.candidate.candidate.replace(/ generation .*/, '') : 'gathered'));
    }
  };
}

// In a page: each peer's RTCPeerConnection as getStats sees it: its states, video frames decoded,
// the selected candidate pair (the transport's) with both ends, every candidate and every pair,
// the TURN servers the web client gave it and what it gathered.
async function peerState() {
  const out = [];
  for (const p of window.camus.peers.values()) {
    const stats = [...(await p.pc.getStats()).values()];
    const byId = new Map(stats.map((s) => [s.id, s]));
    const end = (c) => c && { type: c.candidateType, protocol: c.protocol, address: c.address, port: c.port, relayProtocol: c.relayProtocol, url: c.url };
    const text = (c) => (c ? `${c.candidateType}${c.relayProtocol ? '/' + c.relayProtocol : ''} ${c.protocol} ${c.address}:${c.port}` : '?');
    const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
    const sel = transport && byId.get(transport.selectedCandidatePairId);
    const video = stats.filter((s) => s.type === 'inbound-rtp' && s.kind === 'video');
    out.push({
      id: p.id, pc: p.pc.connectionState, ice: p.pc.iceConnectionState,
      frames: Math.max(0, ...video.map((s) => s.framesDecoded || 0)), videoBytes: video.reduce((n, s) => n + (s.bytesReceived || 0), 0),
      selected: sel && { state: sel.state, bytesSent: sel.bytesSent, bytesReceived: sel.bytesReceived, rtt: sel.currentRoundTripTime,
        local: end(byId.get(sel.localCandidateId)), remote: end(byId.get(sel.remoteCandidateId)) },
      candidates: stats.filter((s) => s.type === 'local-candidate' || s.type === 'remote-candidate').map((c) => ({ side: c.type.split('-')[0], ...end(c) })),
      pairs: stats.filter((s) => s.type === 'candidate-pair').map((x) => ({ local: end(byId.get(x.localCandidateId)), remote: end(byId.get(x.remoteCandidateId)),
        bytesIn: x.bytesReceived || 0, text: `${text(byId.get(x.localCandidateId))} -> ${text(byId.get(x.remoteCandidateId))} ${x.state}${x.nominated ? ' nominated' : ''}` })),
      iceServers: p.pc.getConfiguration().iceServers.map((s) => [].concat(s.urls).join(' ')), gathering: p.pc.__ice || [],
    });
  }
  return out;
}

// In a page (waitIn): the peer `id` sends video that decodes, `more` frames past the first this
// page saw of it, and shows in its tile.
async function decodes({ id, name, more }) {
  const p = window.camus.peers.get(id);
  if (!p) return `no peer for ${name} (peers: ${[...window.camus.peers.keys()].join(', ') || 'none'})`;
  let frames = 0;
  for (const s of (await p.pc.getStats()).values()) if (s.type === 'inbound-rtp' && s.kind === 'video') frames = Math.max(frames, s.framesDecoded || 0);
  const first = window.__first || (window.__first = {});
  if (!frames) return `no frame from ${name} (${p.pc.connectionState}, ICE ${p.pc.iceConnectionState})`;
  if (!(id in first)) first[id] = frames;
  if (frames < first[id] + more) return `${frames - first[id]} frames from ${name} past the first, want ${more}`;
  return p.video.videoWidth > 0 ? '' : `${name}'s tile plays nothing`;
}

// The server's TURN lines: allocations {client, port, id, relayed, relayPort} and releases
// {client, port, id, relayPort, why, out, in, dropped}.
function turnLines(log) {
  const allocated = [], released = [];
  for (const l of log) {
    let m = l.match(/turn: (\S+):(\d+) \(\d+:([0-9a-f]+)\) allocated relay (\S+):(\d+)$/);
    if (m) allocated.push({ client: m[1], port: Number(m[2]), id: m[3], relayed: m[4], relayPort: Number(m[5]) });
    m = l.match(/turn: (\S+):(\d+) \(\d+:([0-9a-f]+)\) released relay port (\d+): (.*); (\d+) bytes relayed out, (\d+) in, (\d+) dropped$/);
    if (m) released.push({ client: m[1], port: Number(m[2]), id: m[3], relayPort: Number(m[4]), why: m[5], out: Number(m[6]), in: Number(m[7]), dropped: Number(m[8]) });
  }
  return { allocated, released };
}

// Launches a Chromium in each side's namespace; resolves [browser] in SIDES' order.
async function launchBoth(sides, origins, extra) {
  const { chromium } = await import('playwright-core');
  const launched = await Promise.allSettled(sides.map((s, i) => chromium.launch({ executablePath: s.chromium, timeout: T(20000),
    args: [...chromiumArgs, ...extra, `--unsafely-treat-insecure-origin-as-secure=${origins[i]}`] })));
  const browsers = launched.filter((r) => r.status === 'fulfilled').map((r) => r.value);
  const failed = launched.find((r) => r.status === 'rejected');
  if (failed) {
    await Promise.all(browsers.map((b) => b.close().catch(() => {})));
    throw failed.reason;
  }
  return browsers;
}

// A candidate as getStats gave it (peerState's end()), in a few words.
const cand = (c) => `${c.type}${c.relayProtocol ? '/' + c.relayProtocol : ''} ${c.protocol} ${c.address}:${c.port}`;

const closeAll = (browsers) => Promise.all(browsers.map((b) => Promise.race([b.close().catch(() => {}), sleep(5000)])));

// ---------------------------------------------------------------- the call

// Joins m through the web client; a join that fails says what the page did: whether the form was
// sent, its requests to the server, Ground Control's messages and its connection's ICE.
async function joinAs(m) {
  try {
    m.id = await joinRoom(m.page, m.url, m.name, T(20000), () => { m.clickAt = Date.now(); });
  } catch (err) {
    const seen = await m.page.evaluate(async () => {
      const gc = window.camus && window.camus.state.gc;
      const pairs = [];
      if (gc) for (const s of (await gc.pc.getStats()).values()) if (s.type === 'candidate-pair') pairs.push(`${s.state}${s.nominated ? ' nominated' : ''}`);
      return { joinAt: window.__camus.joinAt, now: performance.now(), button: document.getElementById('join-button').disabled ? 'disabled' : 'enabled',
        requests: performance.getEntriesByType('resource').filter((r) => /\/(api|rtc)\//.test(r.name))
          .map((r) => `${Math.round(r.startTime)}+${Math.round(r.duration)} ms ${r.name.replace(/^https?:\/\/[^/]+/, '')} ${r.responseStatus}`),
        trace: window.__camus.trace.slice(-10), gc: gc && { pc: gc.pc.connectionState, ice: gc.pc.iceConnectionState, dc: gc.dc.readyState,
          gathering: gc.pc.iceGatheringState, pairs, ice_log: gc.pc.__ice } };
    }).catch((e) => ({ unreadable: String(e) }));
    throw new Error(`${m.name} did not join: ${err.message}\n  ${m.name}'s page: ${JSON.stringify(seen)}`);
  }
  m.joinMs = Date.now() - m.clickAt;
}

// A P2P room of Ana and Bob, each in its own namespace behind `rules` (a firewall on its veth, if
// given), on a server run with `args`: both join, decode each other's video and chat; what
// reaches a page through the relay comes from a relayed address the server gave (no peer-reflexive
// candidate at one of the server's addresses); each page's selected candidate pair has a relay
// end; a relay end of a page's own is over `relay` (and at least one page has one); the server
// allocated a relay to each from its own address, and relayed on the relay ports of the selected
// pairs at least what the pages counted on them.  Resolves the server (stopped).
async function callThroughTurn(label, { args = [], rules = null, relay }) {
  const nets = await networks();
  let srv = null, browsers = [];
  const report = [];
  const members = nets.sides.map((s) => ({ ...s }));
  const counters = [];
  try {
    srv = await startServer(['--turn-allow', '10.91.0.0/16', ...args], { host: '0.0.0.0' });
    report.push(await assertIsolated(nets.sides, srv.port));
    if (rules) for (const s of nets.sides) counters.push([s.name, firewall(s, rules(srv))]);
    const created = await srv.raw(rawRequest('POST', '/api/rooms', { body: JSON.stringify({ name: `Turn ${label}`, media: 'p2p' }) }), { want: 1 });
    const room = created.responses[0];
    assert.ok(room && room.status === 201, 'room created: ' + created.data);
    const origins = nets.sides.map((s) => `${srv.scheme}://${s.gateway}:${srv.port}`);
    const t0 = Date.now();
    browsers = await launchBoth(nets.sides, origins, srv.scheme === 'https' ? ['--ignore-certificate-errors'] : []);
    const launchMs = Date.now() - t0;
    for (const [i, m] of members.entries()) {
      m.page = await newPage(browsers[i]);
      await m.page.addInitScript(keepIce);
      m.url = `${origins[i]}/rtc/${room.json.id}`;
    }
    await Promise.all(members.map((m) => joinAs(m)));
    const [ana, bob] = members;
    ana.other = bob;
    bob.other = ana;
    const c0 = Math.min(ana.clickAt, bob.clickAt);
    const state = async () => JSON.stringify(await Promise.all(members.map((m) => m.page.evaluate(peerState).catch((e) => String(e)))));
    const waitAll = (more, ms) => Promise.all(members.map((m) => waitIn(m.page, decodes, { id: m.other.id, name: m.other.name, more }, T(ms),
      `${m.other.name}'s video at ${m.name}'s`).catch(async (e) => { throw new Error(`${e.message}\n  peers at Ana's and Bob's: ${await state()}`); })));
    const first = Math.round(Math.max(...await waitAll(0, 20000)) - c0);
    const more = Math.round(Math.max(...await waitAll(30, 10000)) - c0);

    const line = `through turn ${label} ${Date.now()}`;
    await ana.page.fill('#chat-input', line);
    await ana.page.press('#chat-input', 'Enter');
    await bob.page.waitForSelector(`#chat-log li:has-text("${line}")`, { timeout: T(5000) });

    report.push(`browsers launched in ${launchMs} ms; join click to call ${members.map((m) => `${m.name} ${m.joinMs}`).join(', ')} ms; ` +
      `video decoded both ways ${first} ms after the first click, 30 frames more by ${more} ms; chat line through`);
    for (const m of members) {
      const peers = await m.page.evaluate(peerState);
      const show = `${m.name}'s peers: ${JSON.stringify(peers)}`;
      assert.equal(peers.length, 1, show);
      m.peer = peers[0];
      assert.equal(m.peer.id, m.other.id, show);
      // Chromium reports its selected pair "in-progress" while a check on it is outstanding, which a loaded
      // machine makes common: what counts is that the pair carries the call.
      assert.ok(m.peer.selected && (m.peer.selected.state === 'succeeded' || m.peer.selected.bytesReceived > 20000),
        `no working selected pair: ${show}`);
      m.show = show;
    }
    // RFC 8656 ("Receiving a Send Indication", "Receiving a ChannelData Message"): the relay sends
    // to a peer from the allocation's relayed transport address.  A datagram it sends from another
    // of the server's addresses reaches the peer as a peer-reflexive candidate at that address,
    // whose checks the sending page then sees answered for one more (prflx) local candidate.
    const strays = members.flatMap((m) => m.peer.candidates.filter((c) => c.type === 'prflx' && SERVER_ADDRS.includes(c.address))
      .map((c) => `at ${m.name}'s, ${c.side} ${cand(c)}${c.url ? ' from ' + c.url : ''}`));
    const relayed = members.flatMap((m) => m.peer.candidates.filter((c) => c.side === 'local' && c.type === 'relay')
      .map((c) => `${m.name}'s ${c.relayProtocol} ${c.address}:${c.port}`));
    assert.deepEqual(strays, [], `the relay sends from a server address that is not the relayed one it gave ` +
      `(relay candidates: ${relayed.join(', ')}): peer-reflexive candidates ${strays.join('; ')}\n  ` +
      members.map((m) => `${m.name}'s selected pair: ${JSON.stringify(m.peer.selected)}`).join('\n  '));
    for (const m of members) {
      const s = m.peer.selected;
      assert.ok(s.local.type === 'relay' || s.remote.type === 'relay', `the selected pair has no relay end: ${m.show}`);
      if (s.local.type === 'relay') {
        assert.equal(s.local.relayProtocol, relay, `the page's relay candidate is not over ${relay}: ${m.show}`);
        assert.ok(SERVER_ADDRS.includes(s.local.address), `a relayed address not the server's: ${m.show}`);
      }
      if (s.remote.type === 'relay') assert.ok(SERVER_ADDRS.includes(s.remote.address), `a relayed address not the server's: ${m.show}`);
      // Every pair that carried anything in has a relay end (the selected one may have changed on the way).
      const direct = m.peer.pairs.filter((x) => x.bytesIn && x.local.type !== 'relay' && x.remote.type !== 'relay');
      assert.deepEqual(direct.map((x) => x.text), [], `bytes came in on a pair without a relay end: ${m.show}`);
      const relayedIn = m.peer.pairs.reduce((n, x) => n + x.bytesIn, 0);
      assert.ok(m.peer.videoBytes > 20000 && relayedIn >= m.peer.videoBytes, `less came in on the pairs than the video: ${m.show}`);
      report.push(`${m.name}: ${cand(s.local)} -> ${cand(s.remote)}, ${s.bytesSent} bytes out, ${s.bytesReceived} in, rtt ${s.rtt} s; ` +
        `its candidates: ${m.peer.candidates.filter((c) => c.side === 'local').map(cand).join(', ')}`);
    }
    const relays = members.filter((m) => m.peer.selected.local.type === 'relay');
    assert.ok(relays.length, 'no page sends through a relay of its own');
    for (const m of members) {
      const w = m.page.warnings.filter((x) => !/Invalid username|favicon/.test(x));
      if (w.length) report.push(`${m.name}'s console: ${w.slice(0, 5).join(' | ')}`);
    }
    for (const [name, read] of counters) report.push(`${name}'s firewall dropped: ${read()}`);
    await closeAll(browsers);
    browsers = [];
    await srv.stop(); // every allocation left is released now, with its byte counts
    const { allocated, released } = turnLines(srv.log);
    for (const m of members) {
      const mine = allocated.filter((a) => a.id === m.id);
      assert.ok(mine.length && mine.every((a) => a.client === m.addr && SERVER_ADDRS.includes(a.relayed)),
        `no relay allocated to ${m.name} from ${m.addr}, or one elsewhere: ${JSON.stringify(allocated)}`);
    }
    for (const m of relays) {
      const s = m.peer.selected;
      const r = released.find((x) => x.id === m.id && x.relayPort === s.local.port);
      assert.ok(r, `no release of ${m.name}'s relay port ${s.local.port}: ${JSON.stringify(released)}`);
      assert.ok(r.out >= s.bytesSent && r.in >= s.bytesReceived, `relayed on ${m.name}'s port ${r.relayPort} less than the page counted: ` +
        `${JSON.stringify(r)} vs ${s.bytesSent} sent, ${s.bytesReceived} received`);
      report.push(`server: ${m.name}'s relay port ${r.relayPort}: ${r.out} bytes relayed out, ${r.in} in, ${r.dropped} dropped (${r.why})`);
    }
    const tcp = srv.log.filter((l) => /: TURN over TCP$/.test(l)).length, tls = srv.log.filter((l) => /: TURN over TLS$/.test(l)).length;
    report.push(`server: ${allocated.length} allocations (${members.map((m) => `${m.name} ${allocated.filter((a) => a.id === m.id).length}`).join(', ')}); ` +
      `connections that spoke TURN over TCP: ${tcp}, over TLS: ${tls}`);
    assert.deepEqual(errorLines(srv.log), []);
    return srv;
  } finally {
    await closeAll(browsers);
    if (srv) await srv.stop().catch(() => {});
    nets.close();
    console.log(report.map((l) => '  ' + l).join('\n'));
  }
}

test('P2P room across two networks that cannot reach each other: video through the TURN relay over UDP', async () => {
  const srv = await callThroughTurn('udp', { relay: 'udp' });
  assert.ok(srv.log.some((l) => / allocated relay /.test(l)), 'no "allocated relay" line');
}, { timeout: T(45000) });

// In Ana's page (joined, so holding the credentials the server gave her): an RTCPeerConnection that
// may use only the server's TURN relay over UDP, with a data channel; resolves its offer, gathered.
async function relayOnlyOffer(ms) {
  const t = window.camus.state.turn;
  const pc = window.__probe = new RTCPeerConnection({ iceTransportPolicy: 'relay',
    iceServers: [{ urls: t.urls.filter((u) => u.endsWith('?transport=udp')), username: t.username, credential: t.credential }] });
  const dc = pc.createDataChannel('probe');
  window.__probeReply = new Promise((ok) => { dc.onopen = () => dc.send('ping'); dc.onmessage = (e) => ok(e.data); });
  await pc.setLocalDescription();
  for (const end = performance.now() + ms; pc.iceGatheringState !== 'complete' && performance.now() < end;) await new Promise((r) => setTimeout(r, 25));
  return pc.localDescription.sdp;
}

// In Bob's page: an RTCPeerConnection without ICE servers (host candidates only) that answers the
// offer and echoes 'pong' on the channel; resolves its answer, gathered.
async function hostAnswer({ sdp, ms }) {
  const pc = window.__probe = new RTCPeerConnection();
  pc.ondatachannel = (e) => { e.channel.onmessage = () => e.channel.send('pong'); };
  await pc.setRemoteDescription({ type: 'offer', sdp });
  await pc.setLocalDescription();
  for (const end = performance.now() + ms; pc.iceGatheringState !== 'complete' && performance.now() < end;) await new Promise((r) => setTimeout(r, 25));
  return pc.localDescription.sdp;
}

// In a page: what window.__probe's selected candidate pair joins (each end: type, address, port, relayProtocol).
async function probePair() {
  const stats = [...(await window.__probe.getStats()).values()];
  const byId = new Map(stats.map((s) => [s.id, s]));
  const end = (c) => c && { type: c.candidateType, protocol: c.protocol, address: c.address, port: c.port, relayProtocol: c.relayProtocol };
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const sel = transport && byId.get(transport.selectedCandidatePairId);
  return sel ? { state: sel.state, local: end(byId.get(sel.localCandidateId)), remote: end(byId.get(sel.remoteCandidateId)) } : null;
}

// Which pair Chromium selects in the call above is its choice: this pins the one where the relay
// sends to a peer on another of the server's networks.  Ana's relayed address is 10.91.1.1 (the
// server's first address); the server reaches Bob through 10.91.2.1.
test('the relay sends from the relayed address it gave: a relay-only connection from Ana reaches Bob from her relay candidate', async () => {
  const nets = await networks();
  let srv = null, browsers = [];
  const report = [];
  try {
    srv = await startServer(['--turn-allow', '10.91.0.0/16'], { host: '0.0.0.0' });
    const created = await srv.raw(rawRequest('POST', '/api/rooms', { body: JSON.stringify({ name: 'Turn source', media: 'p2p' }) }), { want: 1 });
    const room = created.responses[0];
    assert.ok(room && room.status === 201, 'room created: ' + created.data);
    const origins = nets.sides.map((s) => `${srv.scheme}://${s.gateway}:${srv.port}`);
    browsers = await launchBoth(nets.sides, origins, []);
    const [ana, bob] = await Promise.all(browsers.map((b) => newPage(b)));
    await Promise.all([joinRoom(ana, `${origins[0]}/rtc/${room.json.id}`, 'Ana', T(20000)), bob.goto(`${origins[1]}/`)]);
    const offer = await ana.evaluate(relayOnlyOffer, T(5000));
    const relays = [...offer.matchAll(/^a=candidate:\S+ 1 udp \d+ (\S+) (\d+) typ relay/gm)].map((m) => `${m[1]}:${m[2]}`);
    assert.equal(relays.length, 1, `Ana's relay-only offer: ${offer}`);
    const answer = await bob.evaluate(hostAnswer, { sdp: offer, ms: T(5000) });
    await ana.evaluate((sdp) => window.__probe.setRemoteDescription({ type: 'answer', sdp }), answer);
    const reply = await ana.evaluate((ms) => Promise.race([window.__probeReply, new Promise((ok) => setTimeout(() => ok(null), ms))]), T(10000));
    const [a, b] = await Promise.all([ana.evaluate(probePair), bob.evaluate(probePair)]);
    const seen = `Ana's relay candidate ${relays[0]}; Ana's selected pair: ${JSON.stringify(a)}; Bob's: ${JSON.stringify(b)}`;
    report.push(seen);
    assert.equal(reply, 'pong', `no answer on the relay-only channel: ${seen}`);
    assert.ok(a && b, seen);
    // Bob's answers to her checks say where her datagrams came from: her local candidate in the pair
    // (peer-reflexive if not the relayed address; Chromium hides a remote peer-reflexive address).
    assert.equal(`${a.local.type} ${a.local.address}:${a.local.port}`, `relay ${relays[0]}`,
      `Bob gets Ana's relayed datagrams from another address than the relayed one the server gave her: ${seen}`);
    assert.equal(b.remote.type, 'relay', seen);
  } finally {
    await closeAll(browsers);
    if (srv) await srv.stop().catch(() => {});
    nets.close();
    console.log(report.map((l) => '  ' + l).join('\n'));
  }
}, { timeout: T(40000) });

test('with UDP dropped in both networks: through TURN over TCP', async () => {
  const srv = await callThroughTurn('tcp', { relay: 'tcp', rules: () => ({ out: ['meta l4proto udp'], in: ['meta l4proto udp'] }) });
  assert.ok(srv.log.some((l) => /: TURN over TCP$/.test(l)), 'the server saw no TURN over TCP');
}, { timeout: T(45000) });

// The HTTPS port takes TLS and plain TCP alike: to leave Chromium only TLS to reach the relay, the
// firewalls also drop TCP segments to that port that start with a STUN header (its magic cookie
// in bytes 4-7: TURN over plain TCP; ICE over TCP has it in 6-9, after its frame's length; TLS
// records never).  Chromium takes the server's self-signed certificate for turns: only with
// --ignore-certificate-errors, which the page needs anyway (without it, it sends a fatal alert).
test('with --tls: through TURN over TLS', async () => {
  const srv = await callThroughTurn('tls', { args: ['--tls'], relay: 'tls', rules: (s) => ({
    out: ['meta l4proto udp', `tcp dport ${s.port} @ih,32,32 0x2112a442`], in: ['meta l4proto udp'] }) });
  assert.ok(srv.log.some((l) => /: TURN over TLS$/.test(l)), 'the server saw no TURN over TLS');
  assert.ok(!srv.log.some((l) => /: TURN over TCP$/.test(l)), 'plain TURN over TCP got through the firewall');
}, { timeout: T(45000) });

// In a page: Ground Control's connection (media too, in an SFU room): its state and selected pair.
async function gcPair() {
  const pc = window.camus.state.gc && window.camus.state.gc.pc;
  if (!pc) return null;
  const stats = [...(await pc.getStats()).values()];
  const byId = new Map(stats.map((s) => [s.id, s]));
  const end = (c) => c && { type: c.candidateType, protocol: c.protocol, address: c.address, port: c.port, relayProtocol: c.relayProtocol };
  const transport = stats.find((s) => s.type === 'transport' && s.selectedCandidatePairId);
  const sel = transport && byId.get(transport.selectedCandidatePairId);
  return { pc: pc.connectionState, policy: pc.getConfiguration().iceTransportPolicy,
    selected: sel && { state: sel.state, bytesSent: sel.bytesSent, bytesReceived: sel.bytesReceived,
      local: end(byId.get(sel.localCandidateId)), remote: end(byId.get(sel.remoteCandidateId)) } };
}

// Networks that pass only TLS (a hotel's, a campus's): UDP dropped, and on the HTTPS port every TCP
// segment that starts a STUN message (TURN over plain TCP, cookie at bytes 4-7) or an ICE-TCP frame
// (cookie at 6-9).  An SFU room's pages then have one way to the server: TURN over TLS, to the relay,
// and through it to the media port, inside the server.  Both decode each other's camera and hear
// each other's microphone, over that.
test('an SFU room where only TLS passes: Ground Control and media through TURN over TLS', async () => {
  const nets = await networks();
  let srv = null, browsers = [];
  const report = [];
  try {
    srv = await startServer(['--tls'], { host: '0.0.0.0' });
    const walls = nets.sides.map((s) => [s.name, firewall(s, { out: ['meta l4proto udp', `tcp dport ${srv.port} @ih,32,32 0x2112a442`,
      `tcp dport ${srv.port} @ih,48,32 0x2112a442`], in: ['meta l4proto udp'] })]);
    const created = await srv.raw(rawRequest('POST', '/api/rooms', { body: JSON.stringify({ name: 'Only TLS', media: 'sfu' }) }), { want: 1 });
    const room = created.responses[0];
    assert.ok(room && room.status === 201, 'room created: ' + created.data);
    const origins = nets.sides.map((s) => `${srv.scheme}://${s.gateway}:${srv.port}`);
    browsers = await launchBoth(nets.sides, origins, ['--ignore-certificate-errors']);
    const members = nets.sides.map((s) => ({ ...s }));
    for (const [i, m] of members.entries()) {
      m.page = await newPage(browsers[i]);
      m.url = `${origins[i]}/rtc/${room.json.id}`;
    }
    await Promise.all(members.map((m) => joinAs(m)));
    report.push(`join click to call: ${members.map((m) => `${m.name} ${m.joinMs} ms`).join(', ')}`);
    await Promise.all(members.map((m) => waitIn(m.page, receivesAll, members.filter((x) => x !== m).map(({ id, name }) => ({ id, name })), T(20000),
      `the other's camera and microphone at ${m.name}'s`).catch(async (e) => {
      throw new Error(`${e.message}\n  Ground Control at Ana's and Bob's: ${JSON.stringify(await Promise.all(members.map((x) => x.page.evaluate(gcPair))))}`);
    })));
    for (const m of members) {
      const g = await m.page.evaluate(gcPair);
      const show = `${m.name}'s Ground Control: ${JSON.stringify(g)}`;
      report.push(show);
      assert.ok(g && g.selected && g.selected.local.type === 'relay' && g.selected.local.relayProtocol === 'tls', `not through TURN over TLS: ${show}`);
      assert.ok(SERVER_ADDRS.includes(g.selected.local.address) && SERVER_ADDRS.includes(g.selected.remote.address), show);
      // The cameras decoded above came this way; under a sanitizer, in fewer bytes by now than otherwise.
      assert.ok(g.selected.bytesReceived > 5000, `little came through: ${show}`);
    }
    for (const [name, read] of walls) report.push(`${name}'s firewall dropped: ${read()}`);
    assert.ok(srv.log.some((l) => /: TURN over TLS$/.test(l)), 'the server saw no TURN over TLS');
    assert.ok(!srv.log.some((l) => /: (TURN|ICE) over TCP$/.test(l)), 'plain TURN or ICE over TCP got through the firewall');
    assert.deepEqual(errorLines(srv.log), []);
  } finally {
    await closeAll(browsers);
    if (srv) await srv.stop().catch(() => {});
    nets.close();
    console.log(report.map((l) => '  ' + l).join('\n'));
  }
}, { timeout: T(60000) });

await runInOwnNetns(import.meta.url);
