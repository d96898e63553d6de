// Rooms outlive the process (the state directory's `rooms` file): kill -9 while a client makes rooms
// as fast as it can, many times over, and every room whose 201 came back is there after the restart,
// with its password; a password proof made before a restart is good after it; a torn or corrupt file
// loses only its bad lines and is kept aside; a full or read-only disk refuses new rooms with 503 and
// nothing else; a thousand rooms are read back in milliseconds.
// The file runs itself again in a user and mount namespace of its own (unshare -rm), where a tiny
// tmpfs can be mounted, filled and made read-only without touching the machine.
import http from 'node:http';
import { spawn, spawnSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, statfsSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startServer, test, assert, run, sleep, BIN } from './lib.mjs';

const ROUNDS = Number(process.env.PERSIST_ROUNDS || 25); // kill -9 rounds at most ...
const ROUNDS_MS = Number(process.env.PERSIST_MS || 40000); // ... and for this long at most
const WORKERS = 4; // connections making rooms at once
const FILL = 800; // rooms in a state directory before the kill rounds start on a new one (the server holds 1000)
const OFFER = readFileSync(new URL('./fixtures/chromium-datachannel.sdp', import.meta.url), 'utf8');

// ------------------------------------------------------------------ helpers

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
// CRC-32/IEEE, as zlib and the server compute it.
function crc32(buf) {
  let c = 0xffffffff;
  for (const b of buf) c = CRC_TABLE[(c ^ b) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}
const hex8 = (n) => n.toString(16).padStart(8, '0');
const line = (kind, payload) => `${kind} ${hex8(crc32(Buffer.from(payload, 'latin1')))} ${payload}\n`;

// A room's id, as the server makes it from its name.
const slug = (name) => (name.match(/[A-Za-z0-9]+/g) || []).join('-').toLowerCase();

// The `rooms` file of dir read as the server should read it, each line checked here too:
// {text, bytes, secret, rooms: Map id -> {line, pub, sfu, limit, born, active, password, salt, hash, nonce, name, owner,
// locked, bans}}.  The server writes version 2 (owners); the files this test writes by hand are version 1, which it
// must still read.
function readRooms(dir) {
  const bytes = readFileSync(join(dir, 'rooms'));
  const text = bytes.toString('latin1');
  assert.ok(text.endsWith('\n'), 'the file ends with a whole line');
  const lines = text.slice(0, -1).split('\n');
  assert.equal(lines[0], 'camus-rooms 2');
  let secret = null;
  const rooms = new Map();
  lines.slice(1).forEach((l, k) => {
    const m = l.match(/^(secret|room|ban) ([0-9a-f]{8}) (.*)$/);
    assert.ok(m, `line ${k + 2}: ${l}`);
    assert.equal(m[2], hex8(crc32(Buffer.from(m[3], 'latin1'))), `line ${k + 2}: its CRC`);
    if (m[1] === 'secret') {
      assert.ok(secret === null && /^[0-9a-f]{64}$/.test(m[3]), `line ${k + 2}: one secret`);
      secret = m[3];
      return;
    }
    const f = m[3].split(' ');
    if (m[1] === 'ban') {
      assert.ok(f.length === 2 && rooms.has(f[0]) && /^[0-9a-f]{32}$/.test(f[1]), `line ${k + 2}: a ban after its room`);
      rooms.get(f[0]).bans.push(f[1]);
      return;
    }
    assert.equal(f.length, 14, `line ${k + 2}: fourteen fields`);
    const [id, pub, sfu, limit, born, active, salt, hash, nonce, creator, joined, name, owner, locked] = f;
    assert.ok(/^[0-9a-f]{64}$/.test(owner) && /^[01]$/.test(locked), l);
    assert.ok(/^[0-9a-f]{32}$/.test(creator) && /^[01]$/.test(joined), l);
    assert.ok(/^[01]$/.test(pub) && /^[01]$/.test(sfu) && /^\d+$/.test(limit) && /^\d+$/.test(born) && /^\d+$/.test(active), l);
    assert.ok(salt === '-' ? hash === '-' : /^[0-9a-f]{32}$/.test(salt) && /^[0-9a-f]{64}$/.test(hash), l);
    assert.match(nonce, /^[0-9a-f]{32}$/);
    const room = { line: k + 2, pub: pub === '1', sfu: sfu === '1', limit: Number(limit), born: Number(born), active: Number(active),
      password: salt !== '-', salt, hash, nonce, creator, joined: joined === '1', name: Buffer.from(name, 'hex').toString('utf8'),
      owner, locked: locked === '1', bans: [] };
    assert.equal(slug(room.name), id, `line ${k + 2}: the id is the name's`);
    assert.ok(!rooms.has(id), `line ${k + 2}: ${id} twice`);
    rooms.set(id, room);
  });
  assert.ok(secret, 'the file holds the secret');
  return { bytes, text, secret, rooms };
}

// A room line as the server writes it.
function roomLine({ id, pub = true, sfu = true, limit = 0, born, active, password = false, nonce, creator, joined = false, name }) {
  const salt = password ? randomBytes(16).toString('hex') : '-', hash = password ? randomBytes(32).toString('hex') : '-';
  const payload = [id, pub ? 1 : 0, sfu ? 1 : 0, limit, born, active, salt, hash, nonce || randomBytes(16).toString('hex'),
    creator || randomBytes(16).toString('hex'), joined ? 1 : 0, Buffer.from(name, 'utf8').toString('hex')].join(' ');
  return line('room', payload);
}

const roomsFile = (rooms, secret = randomBytes(32).toString('hex')) => 'camus-rooms 1\n' + line('secret', secret) + rooms.map(roomLine).join('');

// The server on the state directory dir (startServer's own arguments, its --state-dir replaced).
const serve = (dir, args = []) => startServer([...args, '--state-dir', dir]);

// kill -9; resolves once the process is gone.
async function kill9(srv) {
  if (srv.proc.exitCode === null && srv.proc.signalCode === null) {
    const gone = new Promise((ok) => srv.proc.once('exit', ok));
    srv.proc.kill('SIGKILL');
    await gone;
  }
  rmSync(srv.stateDir, { recursive: true, force: true }); // startServer's own (unused) directory
}

// What the server said about the file at start.
function startLog(srv) {
  const text = srv.log.join('\n');
  const read = text.match(/rooms: (\d+) read back from (\S+)(, some lines skipped)?/);
  const kept = text.match(/rooms: (\d+) kept from before, read in ([\d.]+) ms/);
  return {
    read: read ? Number(read[1]) : null, skipped: !!(read && read[3]), keptMs: kept ? Number(kept[2]) : null,
    warnings: srv.log.filter((l) => /WARN.*rooms:|rooms: .*(does not verify|cut short|kept as)/.test(l)),
  };
}

// One request from a given local address (127.0.0.0/8 is all loopback), over a kept-alive
// connection of that address: {status, json}.  Throws if the connection fails.
const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
function call(port, method, path, body, from = '127.0.0.1') {
  return new Promise((resolve, reject) => {
    const data = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request({ host: '127.0.0.1', port, path, method, localAddress: from, agent, timeout: 5000,
      headers: data ? { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(data) } : {} }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d) => { text += d; });
      res.on('end', () => {
        let json;
        try { json = JSON.parse(text); } catch { json = undefined; }
        resolve({ status: res.statusCode, json, text });
      });
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', reject);
    req.end(data);
  });
}

// Addresses for creators (ten rooms a minute each) and for password guesses (ten a minute each).
let nextAddr = 0;
const freshAddr = (net = 1) => { const n = nextAddr++; return `127.${net}.${(n / 250 | 0) % 250}.${n % 250 + 1}`; };

// What GET /api/rooms/<id> should say of a room asked for with spec.
function expectRoom(id, spec) {
  return { id, name: spec.name, clients: 0, guest_limit: spec.guest_limit ?? null, password: !!spec.password,
    media: spec.media || 'sfu', public: spec.public ?? true };
}

// Checks that every room in rooms (id -> spec) is there as asked, eight requests at a time.
async function checkRooms(srv, rooms) {
  const list = [...rooms];
  for (let i = 0; i < list.length; i += 8) {
    await Promise.all(list.slice(i, i + 8).map(async ([id, spec]) => {
      const r = await srv.get(`/api/rooms/${id}`);
      assert.equal(r.status, 200, `room ${id}: ${r.text}`);
      assert.deepEqual(r.json, expectRoom(id, spec), `room ${id}`);
    }));
  }
}

// The password of a room lets one in and another does not.
async function checkPassword(srv, id, password) {
  let r = await srv.hashed(`/rtc/${id}/join`, { password: password + '?' });
  assert.equal(r.status, 403, `${id}, wrong password: ${r.text}`);
  assert.equal(r.json.error, 'wrong password');
  r = await srv.hashed(`/rtc/${id}/join`, { password });
  assert.equal(r.status, 200, `${id}, its password: ${r.text}`);
  assert.match(r.json.token, /^\d+\.[0-9a-f]{64}$/);
  return r;
}

// An offer (a real one, Chromium's) into a password room with a proof: {status, json}.
const offerWith = (srv, id, proof = {}, headers = {}) => srv.post(`/rtc/${id}/offer`, { sdp: OFFER, type: 'offer', ...proof }, headers);

// ------------------------------------------------------------------ kill -9 while rooms are made

test('kill -9 while a client makes rooms as fast as it can, many times: every room that got its 201 is there', async () => {
  let dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  const dirs = [dir];
  const asked = new Map(); // id -> spec, every room asked for in this directory
  const made = new Map(); // id -> spec: answered 201, or found in the file after a kill
  const refused = new Set(); // answered something else than 201: never made
  let unknown = new Set(); // no answer (the server died): made or not
  const totals = { rounds: 0, made201: 0, refused: 0, unknown: 0, unknownMade: 0, maxRooms: 0, tornTmp: 0, series: 1,
    passwords: 0, loadMs: [] };
  let proof = null; // the first password proof, tried after every later kill
  const t0 = Date.now();
  let srv = await serve(dir, ['--room-expiry', '0']);
  try {
    for (let round = 1; round <= ROUNDS && Date.now() - t0 < ROUNDS_MS; round++) {
      // Make rooms on WORKERS connections, each from an address of its own for ten rooms.
      let stop = false, i = 0;
      const cap = 990 - made.size - unknown.size;
      const room = () => {
        const k = i++;
        const name = `${['Room', 'Salle', 'Café', 'Meet'][k % 4]} ${totals.series}.${round}.${k}`;
        const spec = { name };
        if (k % 4 === 1) spec.password = `pw ${round}/${k} ${randomBytes(3).toString('hex')}`;
        if (k % 3 === 0) spec.public = false;
        if (k % 5 !== 2) spec.media = k % 2 ? 'p2p' : 'sfu';
        if (k % 3 === 1) spec.guest_limit = 1 + (k % 7);
        return [slug(name), spec];
      };
      const worker = async () => {
        for (let n = 0, from = freshAddr(); !stop && i < cap; n++) {
          if (n && n % 10 === 0) from = freshAddr();
          const [id, spec] = room();
          asked.set(id, spec);
          let r;
          try {
            r = await call(srv.port, 'POST', '/api/rooms', spec, from);
          } catch {
            unknown.add(id); // the server died with the request in flight
            return;
          }
          if (r.status === 201) {
            assert.match(r.json.owner_key, /^[0-9a-f]{32}$/);
            assert.deepEqual({ ...r.json, owner_key: 0 }, { id, url: `/rtc/${id}`, owner_key: 0 });
            made.set(id, spec);
            totals.made201++;
          } else {
            assert.ok([429, 409].includes(r.status), `${id}: ${r.status} ${r.text}`);
            refused.add(id);
            totals.refused++;
          }
        }
      };
      const workers = Promise.all(Array.from({ length: WORKERS }, worker));
      workers.catch(() => {}); // awaited below, after the kill
      const killAt = 50 + Math.random() * 350;
      await sleep(killAt);
      await kill9(srv);
      stop = true;
      await workers;
      agent.destroy(); // its kept-alive connections to the dead server (Agent.destroy leaves it usable)
      totals.rounds++;
      if (existsSync(join(dir, 'rooms.tmp'))) totals.tornTmp++;

      // Read back: nothing lost, nothing torn, nothing never asked for.
      srv = await serve(dir, ['--room-expiry', '0']);
      const said = startLog(srv);
      assert.deepEqual(said.warnings, [], 'no line skipped after kill -9: the file is replaced whole');
      const file = readRooms(dir);
      assert.equal(said.read, file.rooms.size, 'rooms read back');
      if (file.rooms.size) totals.loadMs.push(said.keptMs);
      for (const id of file.rooms.keys()) {
        assert.ok(asked.has(id), `${id} is in the file but was never asked for`);
        assert.ok(!refused.has(id), `${id} was refused but is in the file`);
      }
      for (const id of made.keys()) assert.ok(file.rooms.has(id), `${id} got its 201 (or was read back before) but is not in the file`);
      for (const id of unknown) {
        totals.unknown++;
        if (file.rooms.has(id)) { totals.unknownMade++; made.set(id, asked.get(id)); }
      }
      unknown = new Set();
      assert.equal(file.rooms.size, made.size, 'the file holds what was made, and only that');
      for (const [id, spec] of made) {
        const f = file.rooms.get(id);
        assert.deepEqual([f.name, f.pub, f.sfu, f.limit || null, f.password],
          [spec.name, spec.public ?? true, (spec.media || 'sfu') === 'sfu', spec.guest_limit ?? null, !!spec.password], id);
      }
      totals.maxRooms = Math.max(totals.maxRooms, made.size);
      await checkRooms(srv, made);
      const listed = (await srv.get('/api/rooms')).json.map((x) => x.id).sort();
      assert.deepEqual(listed, [...made].filter(([, s]) => s.public !== false).map(([id]) => id).sort(), 'the public rooms listed');
      // Passwords: two of this directory's password rooms, the newest first.
      const withPw = [...made].filter(([, s]) => s.password).reverse();
      for (const [id, spec] of [withPw[0], withPw[1 + Math.floor(Math.random() * Math.max(0, withPw.length - 1))]].filter(Boolean)) {
        const r = await checkPassword(srv, id, spec.password);
        totals.passwords++;
        if (!proof) proof = { id, token: r.json.token, dir };
      }
      if (proof && proof.dir === dir) {
        const r = await offerWith(srv, proof.id, { token: proof.token });
        assert.equal(r.status, 200, `the first proof, after ${round} kills: ${r.text}`);
        assert.equal(r.json.type, 'answer');
      }
      // A full directory: the next rounds start on a new one (the server holds 1000 rooms at most).
      if (made.size > FILL) {
        await srv.stop();
        dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
        dirs.push(dir);
        asked.clear(); made.clear(); refused.clear();
        totals.series++;
        srv = await serve(dir, ['--room-expiry', '0']);
      }
    }
    await srv.stop();
  } finally {
    await kill9(srv);
    agent.destroy();
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  }
  const ms = totals.loadMs.filter((x) => x !== null);
  console.log(`     ${totals.rounds} kill -9 rounds in ${totals.series} state directories, ${((Date.now() - t0) / 1000).toFixed(1)} s: ` +
    `${totals.made201} rooms confirmed (201) and all found again, ${totals.refused} refused (429/409) and none found, ` +
    `${totals.unknown} unanswered at the kill (${totals.unknownMade} of them made); ${totals.maxRooms} rooms at most; ` +
    `rooms.tmp left by ${totals.tornTmp} kills; ${totals.passwords} passwords checked; read back in ` +
    `${ms.length ? Math.min(...ms) : '-'}..${ms.length ? Math.max(...ms) : '-'} ms`);
  assert.ok(totals.rounds >= 5, `${totals.rounds} rounds`);
  assert.ok(totals.made201 >= totals.rounds, `${totals.made201} rooms made in ${totals.rounds} rounds`);
  assert.ok(totals.passwords >= 2, 'password rooms were made and checked');
}, { timeout: 80000 });

// ------------------------------------------------------------------ proofs across a restart

test('a password proof made before a restart is good after it (token and cookie)', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  let srv = await serve(dir);
  try {
    let r = await srv.hashed('/api/rooms', { name: 'Proof Room', password: 'hunter2', media: 'p2p' });
    assert.equal(r.status, 201, r.text);
    r = await checkPassword(srv, 'proof-room', 'hunter2');
    const token = r.json.token, cookie = r.headers.get('set-cookie').split(';')[0];
    assert.equal((await offerWith(srv, 'proof-room', { token })).status, 200, 'the proof before the restart');
    await srv.stop(); // SIGTERM: exit 0
    srv = await serve(dir);
    r = await offerWith(srv, 'proof-room', { token });
    assert.equal(r.status, 200, `the token after the restart: ${r.text}`);
    assert.equal(r.json.type, 'answer');
    r = await offerWith(srv, 'proof-room', {}, { Cookie: cookie });
    assert.equal(r.status, 200, `the cookie after the restart: ${r.text}`);
    r = await offerWith(srv, 'proof-room');
    assert.equal(r.status, 403, 'no proof');
    assert.equal(r.json.error, 'password required');
    r = await offerWith(srv, 'proof-room', { token: token.slice(0, -1) + (token.endsWith('0') ? '1' : '0') });
    assert.equal(r.status, 403, 'a tampered proof');
    await checkPassword(srv, 'proof-room', 'hunter2');
    await srv.stop();
  } finally {
    await kill9(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ a torn or corrupt file

test('a corrupt line and a torn one: the other rooms are read back, the file kept aside as it was', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  const rooms = new Map([['alpha', { name: 'Alpha' }], ['bravo', { name: 'Bravo', password: 'b-pass' }],
    ['charlie', { name: 'Charlie', public: false, media: 'p2p', guest_limit: 4 }], ['delta', { name: 'Delta', media: 'p2p' }],
    ['echo', { name: 'Echo', password: 'e-pass', public: false, guest_limit: 2 }]]);
  let srv = await serve(dir);
  const badFiles = () => readdirSync(dir).filter((f) => f.startsWith('rooms.bad-')).sort();
  try {
    for (const [id, spec] of rooms) assert.equal((await srv.hashed('/api/rooms', spec)).status, 201, id);
    const token = (await checkPassword(srv, 'bravo', 'b-pass')).json.token;
    await srv.stop();

    // Flip a byte of Charlie's line; add half a line for a room that never was.
    const before = readRooms(dir);
    const at = before.text.split('\n').slice(0, before.rooms.get('charlie').line - 1).join('\n').length + 1;
    const charlieLine = before.rooms.get('charlie').line;
    const broken = Buffer.from(before.bytes);
    broken[at + 40] ^= 0x01;
    const half = roomLine({ id: 'foxtrot', name: 'Foxtrot', born: 1, active: 1 });
    const torn = Buffer.concat([broken, Buffer.from(half.slice(0, half.length >> 1), 'latin1')]);
    writeFileSync(join(dir, 'rooms'), torn);
    const tornLine = before.text.split('\n').length; // the line after the last whole one
    const t0 = Math.floor(Date.now() / 1000);
    srv = await serve(dir);
    const t1 = Math.ceil(Date.now() / 1000);
    const log = srv.log.join('\n');
    assert.match(log, new RegExp(`rooms: line ${charlieLine} of \\S+/rooms does not verify: skipped`));
    assert.match(log, new RegExp(`rooms: line ${tornLine} of \\S+/rooms is cut short: skipped`));
    assert.match(log, /rooms: 4 read back from \S+, some lines skipped/);
    const kept = log.match(/rooms: \S+ kept as (\S+rooms\.bad-(\d+)); writing what verified/);
    assert.ok(kept, 'the log names where the bad file went');
    assert.ok(Number(kept[2]) >= t0 && Number(kept[2]) <= t1, `the time in ${kept[1]}`);
    assert.deepEqual(readFileSync(kept[1]), torn, 'the bad file is kept with its exact bytes');
    const after = readRooms(dir);
    assert.deepEqual([...after.rooms.keys()].sort(), ['alpha', 'bravo', 'delta', 'echo']);
    assert.equal(after.secret, before.secret);
    for (const [id, spec] of rooms) {
      if (id === 'charlie') continue;
      assert.deepEqual(after.rooms.get(id), { ...before.rooms.get(id), line: after.rooms.get(id).line }, id);
    }
    assert.equal((await srv.get('/api/rooms/charlie')).status, 404, 'the corrupt room is gone');
    assert.equal((await srv.get('/api/rooms/foxtrot')).status, 404, 'the torn room never was');
    await checkRooms(srv, new Map([...rooms].filter(([id]) => id !== 'charlie')));
    await checkPassword(srv, 'bravo', 'b-pass');
    await checkPassword(srv, 'echo', 'e-pass');
    assert.equal((await offerWith(srv, 'bravo', { token })).status, 200, 'a proof from before the damage');
    assert.equal((await srv.hashed('/api/rooms', rooms.get('charlie'))).status, 201, 'the lost room can be made again');
    await srv.stop();

    // The new file is read cleanly.
    srv = await serve(dir);
    let said = startLog(srv);
    assert.deepEqual(said.warnings, []);
    assert.equal(said.read, 5);
    assert.ok(!said.skipped);
    assert.deepEqual(badFiles(), [kept[1].split('/').pop()], 'no new bad file');
    await srv.stop();

    // Damaged again, with every name rooms.bad-<time> of the next seconds taken: none is overwritten.
    const again = Buffer.from(readFileSync(join(dir, 'rooms')));
    again[again.length - 10] ^= 0x01;
    writeFileSync(join(dir, 'rooms'), again);
    const now = Math.floor(Date.now() / 1000), taken = new Map();
    for (let t = now - 2; t <= now + 30; t++) {
      const f = join(dir, `rooms.bad-${t}`);
      if (existsSync(f)) continue;
      writeFileSync(f, `not to be overwritten ${t}\n`);
      taken.set(f, `not to be overwritten ${t}\n`);
    }
    srv = await serve(dir);
    said = startLog(srv);
    assert.equal(said.read, 4);
    const kept2 = srv.log.join('\n').match(/kept as (\S+); writing what verified/);
    assert.ok(kept2 && /rooms\.bad-\d+-\d+$/.test(kept2[1]), `kept aside under a new name: ${kept2 && kept2[1]}`);
    assert.deepEqual(readFileSync(kept2[1]), again);
    for (const [f, text] of taken) assert.equal(readFileSync(f, 'utf8'), text, f);
    assert.deepEqual(readFileSync(kept[1]), torn, 'the first bad file is untouched');
    await srv.stop();
  } finally {
    await kill9(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});

test('foreign and empty files: a rooms file of another program, an empty one and a garbled TURN secret are kept aside or left alone, and the server starts', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  let srv = null;
  try {
    // Not ours at all: a zip file's first bytes and some JSON; then an empty file (a crash at the worst moment
    // of a program that does not fsync).
    for (const [what, bytes] of [['another program\'s', Buffer.concat([Buffer.from('PK\x03\x04', 'latin1'), randomBytes(300),
      Buffer.from('\n{"rooms": [{"id": "alpha"}]}\n')])], ['an empty', Buffer.alloc(0)]]) {
      for (const f of readdirSync(dir)) rmSync(join(dir, f));
      writeFileSync(join(dir, 'rooms'), bytes, { mode: 0o600 });
      writeFileSync(join(dir, 'turn-secret'), 'this is not hex at all\n', { mode: 0o600 });
      srv = await serve(dir);
      const log = srv.log.join('\n');
      const kept = log.match(/rooms: \S+ kept as (\S+rooms\.bad-\d+); writing what verified/);
      assert.ok(kept, `${what} file: kept aside, the log says where: ${log}`);
      assert.deepEqual(readFileSync(kept[1]), bytes, `${what} file kept with its exact bytes`);
      assert.equal(readRooms(dir).rooms.size, 0, 'a new, empty rooms file');
      assert.match(log, /TURN credentials will not outlive this run/, 'the garbled secret is not used, and said so');
      assert.equal(readFileSync(join(dir, 'turn-secret'), 'utf8'), 'this is not hex at all\n', 'nor written over');
      assert.deepEqual((await srv.get('/api/rooms')).json, [], `${what} file: no rooms`);
      assert.equal((await srv.post('/api/rooms', { name: 'Fresh' })).status, 201, `${what} file: new rooms are made`);
      await srv.stop();
      srv = null;
      assert.ok(readRooms(dir).rooms.has('fresh'), 'and kept');
    }
  } finally {
    if (srv) await kill9(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});

// A directory the server will not use at start ("new rooms cannot be made until the server is started again with it fixed",
// server_rooms()) was not read: what is in it must not be replaced by the rooms of this run.
test('a state directory refused at start (others may write in it): its rooms are not written over', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  let srv = await serve(dir);
  try {
    for (const name of ['One', 'Two']) assert.equal((await srv.post('/api/rooms', { name })).status, 201);
    await srv.stop();
    const bytes = readFileSync(join(dir, 'rooms'));
    chmodSync(dir, 0o770);
    srv = await serve(dir);
    assert.ok(srv.log.some((l) => /WARN.*rooms: .*new rooms cannot be made until the server is started again with it fixed/.test(l)), "the log says so");
    const r = await srv.post('/api/rooms', { name: 'Three' });
    assert.deepEqual(readFileSync(join(dir, 'rooms')).toString(), bytes.toString(),
      `the rooms of the last run are kept (POST /api/rooms answered ${r.status} ${r.text})`);
    assert.equal(r.status, 503, r.text);
    await srv.stop();
    chmodSync(dir, 0o700);
    srv = await serve(dir);
    assert.equal(startLog(srv).read, 2);
    await checkRooms(srv, new Map([['one', { name: 'One' }], ['two', { name: 'Two' }]]));
    await srv.stop();
  } finally {
    await kill9(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ a full disk, a read-only one

test('a full disk and a read-only one: new rooms get 503 with the reason, everything else works', async () => {
  assert.ok(process.env.CAMUS_IN_MOUNTNS, 'needs a mount namespace of its own (unshare -rm or -m failed)');
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-full-'));
  const sh = (...argv) => {
    const r = spawnSync(argv[0], argv.slice(1), { encoding: 'utf8' });
    assert.equal(r.status, 0, `${argv.join(' ')}: ${r.stderr}`);
  };
  sh('mount', '-t', 'tmpfs', '-o', 'size=64k,mode=0700', 'tmpfs', dir);
  let srv = null;
  try {
    srv = await serve(dir);
    assert.equal((await srv.hashed('/api/rooms', { name: 'Keep', password: 'k-pass', media: 'p2p' })).status, 201);
    assert.equal((await srv.post('/api/rooms', { name: 'Open', guest_limit: 3 })).status, 201);
    const made = new Map([['keep', { name: 'Keep', password: 'k-pass', media: 'p2p' }], ['open', { name: 'Open', guest_limit: 3 }]]);

    // Fill the disk but for 12 KiB, then make rooms until one is refused.
    const st = statfsSync(dir);
    const filler = join(dir, 'filler');
    writeFileSync(filler, Buffer.alloc(Math.max(0, st.bavail * st.bsize - 12 * 1024)));
    const left = statfsSync(dir).bavail * st.bsize;
    let r, k = 0;
    for (; k < 300; k++) {
      const spec = { name: `Fill ${k}`, public: k % 2 === 0 };
      r = await call(srv.port, 'POST', '/api/rooms', spec, freshAddr(5));
      if (r.status !== 201) break;
      made.set(`fill-${k}`, spec);
    }
    assert.equal(r.status, 503, `after ${k} rooms: ${r.text}`);
    assert.match(r.json.error, /^the server cannot keep a new room \(No space left on device\)/);
    assert.ok(srv.log.some((l) => /WARN.*rooms: cannot write \S+\/rooms: No space left on device/.test(l)), 'the log says why');
    const noSpaceAfter = k;
    assert.equal((await srv.get(`/api/rooms/fill-${k}`)).status, 404, 'the refused room does not exist');
    assert.ok(!existsSync(join(dir, 'rooms.tmp')), 'no rooms.tmp left behind');
    assert.deepEqual([...readRooms(dir).rooms.keys()].sort(), [...made.keys()].sort(), 'the file still holds every room made');
    const stillWorks = async (what) => {
      r = await srv.get('/api/rooms');
      assert.equal(r.status, 200, what);
      assert.deepEqual(r.json.map((x) => x.id).sort(), [...made].filter(([, s]) => s.public !== false).map(([id]) => id).sort(), what);
      await checkRooms(srv, made);
      const { json } = await checkPassword(srv, 'keep', 'k-pass');
      assert.equal((await offerWith(srv, 'keep', { token: json.token })).status, 200, `${what}: an offer`);
      assert.equal((await srv.get('/rtc/open')).status, 200, `${what}: a room's page`);
      assert.equal((await srv.post('/rtc/open/join', {})).status, 200, `${what}: a join`);
    };
    await stillWorks('disk full');

    // Space again: rooms are made again.
    unlinkSync(filler);
    r = await srv.post('/api/rooms', { name: 'After Space' });
    assert.equal(r.status, 201, r.text);
    made.set('after-space', { name: 'After Space' });
    assert.ok(readRooms(dir).rooms.has('after-space'));

    // Read-only: the same.
    sh('mount', '-o', 'remount,ro', dir);
    r = await srv.post('/api/rooms', { name: 'Read Only' });
    assert.equal(r.status, 503, r.text);
    assert.match(r.json.error, /^the server cannot keep a new room \(Read-only file system\)/);
    assert.equal((await srv.get('/api/rooms/read-only')).status, 404);
    await stillWorks('read-only');
    sh('mount', '-o', 'remount,rw', dir);
    r = await srv.post('/api/rooms', { name: 'Read Write' });
    assert.equal(r.status, 201, r.text);
    made.set('read-write', { name: 'Read Write' });

    // And all of it is read back.
    await srv.stop();
    srv = await serve(dir);
    assert.equal(startLog(srv).read, made.size);
    await checkRooms(srv, made);
    await srv.stop();
    console.log(`     the disk was full after ${noSpaceAfter} more rooms (64 KiB tmpfs, ${left >> 10} KiB left by the filler); ${made.size} rooms kept`);
  } finally {
    if (srv) await kill9(srv);
    spawnSync('umount', [dir]);
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ a thousand rooms

test('a thousand rooms are read back in milliseconds', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  const now = Math.floor(Date.now() / 1000);
  const rooms = Array.from({ length: 1000 }, (_, i) => ({ id: `room-${i}-gen`, name: `Room ${i} (gen)`, pub: i % 2 === 0,
    sfu: i % 3 !== 0, limit: i % 10, born: now - 86400, active: now - 60 * (i % 50), password: i % 4 === 0 }));
  writeFileSync(join(dir, 'rooms'), roomsFile(rooms), { mode: 0o600 });
  const size = readFileSync(join(dir, 'rooms')).length;
  let srv = null;
  try {
    const t0 = Date.now();
    srv = await serve(dir);
    const up = Date.now() - t0;
    const said = startLog(srv);
    assert.deepEqual(said.warnings, []);
    assert.equal(said.read, 1000);
    assert.ok(said.keptMs !== null, 'the log says how long it took');
    console.log(`     1000 rooms (${(size / 1024).toFixed(0)} KiB) read in ${said.keptMs} ms (the server listened ${up} ms after it was started)`);
    assert.ok(said.keptMs < 200, `${said.keptMs} ms`);
    const list = (await srv.get('/api/rooms')).json;
    assert.equal(list.length, 500);
    for (const i of [0, 1, 7, 500, 999]) {
      const g = rooms[i], r = await srv.get(`/api/rooms/${g.id}`);
      assert.deepEqual(r.json, { id: g.id, name: g.name, clients: 0, guest_limit: g.limit || null, password: g.password,
        media: g.sfu ? 'sfu' : 'p2p', public: g.pub });
    }
    await srv.stop();
    assert.equal(readRooms(dir).rooms.size, 1000, 'written back whole at shutdown');
  } finally {
    if (srv) await kill9(srv);
    rmSync(dir, { recursive: true, force: true });
  }
});

// ------------------------------------------------------------------ idle time, expiry, memory only

test('idle time goes on from the file; --room-expiry 0 keeps rooms; --state-dir \'\' writes nothing', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'camus-persist-'));
  const now = Math.floor(Date.now() / 1000);
  writeFileSync(join(dir, 'rooms'), roomsFile([
    { id: 'stale', name: 'Stale', born: now - 9000, active: now - 3597 }, // 3 s left of an hour
    { id: 'fresh', name: 'Fresh', born: now - 9000, active: now - 60 },
  ]), { mode: 0o600 });
  let srv = null;
  try {
    srv = await serve(dir, ['--room-expiry', '3600']);
    assert.equal(startLog(srv).read, 2);
    assert.equal((await srv.get('/api/rooms/stale')).status, 200, 'not yet');
    await srv.until(async () => (await srv.get('/api/rooms/stale')).status === 404, 7000, 'the stale room to expire');
    assert.equal((await srv.get('/api/rooms/fresh')).status, 200);
    assert.ok(srv.log.some((l) => /room stale: expired/.test(l)));
    await srv.stop();
    assert.deepEqual([...readRooms(dir).rooms.keys()], ['fresh'], 'the expired room left the file');
    // An hour idle, but rooms never expire: it stays.
    writeFileSync(join(dir, 'rooms'), roomsFile([{ id: 'old', name: 'Old', born: now - 90000, active: now - 80000 }]), { mode: 0o600 });
    srv = await serve(dir, ['--room-expiry', '0']);
    await sleep(300);
    assert.equal((await srv.get('/api/rooms/old')).status, 200);
    await srv.stop();
  } finally {
    if (srv) await kill9(srv);
    rmSync(dir, { recursive: true, force: true });
  }
  // In memory only: nothing is written where it runs, and a restart has no rooms.
  const cwd = mkdtempSync(join(tmpdir(), 'camus-persist-cwd-'));
  const argv = ['--host', '127.0.0.1', '--port', '0', '--udp-port', '0', '--state-dir', ''];
  const once = async () => {
    const proc = spawn(BIN, argv, { cwd, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    proc.stderr.on('data', (d) => { err += d; });
    try {
      for (const end = Date.now() + 5000; !/listening on http:\/\/\S+:(\d+)/.test(err); await sleep(10))
        assert.ok(Date.now() < end && proc.exitCode === null, `did not start: ${err}`);
      const port = Number(err.match(/listening on http:\/\/\S+:(\d+)/)[1]);
      const had = await call(port, 'GET', '/api/rooms/mem');
      const made = await call(port, 'POST', '/api/rooms', { name: 'Mem' });
      return [had.status, made.status];
    } finally {
      const gone = new Promise((ok) => proc.once('exit', ok));
      proc.kill('SIGTERM');
      await gone;
      agent.destroy();
    }
  };
  try {
    assert.deepEqual(await once(), [404, 201]);
    assert.deepEqual(await once(), [404, 201], 'nothing kept');
    assert.deepEqual(readdirSync(cwd), [], 'nothing written');
  } finally {
    rmSync(cwd, { recursive: true, force: true });
  }
});

// The tests run in a user and mount namespace of their own, so that the full-disk test can mount a
// tmpfs (and remount it read-only) that nothing else sees; where none can be made, without one.
if (process.env.CAMUS_IN_MOUNTNS !== undefined) {
  await run();
} else {
  const self = fileURLToPath(import.meta.url);
  const how = ['-rm', '-m'].find((o) => spawnSync('unshare', [o, 'true']).status === 0);
  if (!how) {
    process.env.CAMUS_IN_MOUNTNS = '';
    await run();
  } else {
    const child = spawn('unshare', [how, process.execPath, self], { stdio: 'inherit', env: { ...process.env, CAMUS_IN_MOUNTNS: how } });
    child.on('close', (code) => process.exit(code ?? 1));
  }
}
