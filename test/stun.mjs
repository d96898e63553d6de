// Raw WebRTC transport pieces for tests that speak to the server without a browser: STUN messages
// (RFC 8489) with MESSAGE-INTEGRITY and FINGERPRINT, and a parser that checks them; SDP offers and
// the credentials of the server's answer; DTLS records, handshake messages and ClientHellos
// (RFC 6347), and a parser for what comes back; UDP sockets that record what they receive;
// UDP datagrams with a forged source address (a raw IPv4 socket from Python; needs root); a real
// DTLS client driven one datagram at a time (pyOpenSSL); and SCTP INIT packets.
import dgram from 'node:dgram';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';

// ------------------------------------------------------------------ STUN

export const MAGIC = 0x2112a442;
export const BINDING_REQUEST = 0x0001, BINDING_SUCCESS = 0x0101, BINDING_ERROR = 0x0111, BINDING_INDICATION = 0x0011;
export const USERNAME = 0x0006, MESSAGE_INTEGRITY = 0x0008, ERROR_CODE = 0x0009, UNKNOWN_ATTRIBUTES = 0x000a,
  XOR_MAPPED_ADDRESS = 0x0020, PRIORITY = 0x0024, USE_CANDIDATE = 0x0025, FINGERPRINT = 0x8028,
  ICE_CONTROLLED = 0x8029, ICE_CONTROLLING = 0x802a;

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
export function crc32(b) {
  let c = 0xffffffff;
  for (const x of b) c = CRC_TABLE[(c ^ x) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

export const u16 = (v) => { const b = Buffer.alloc(2); b.writeUInt16BE(v & 0xffff); return b; };
export const u32 = (v) => { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; };
export const u64 = (hi, lo) => Buffer.concat([u32(hi), u32(lo)]);
const bytes = (v) => (Buffer.isBuffer(v) ? v : Buffer.from(v));

// One attribute, padded to 4 bytes; `len` may lie about the value's length.
export function stunAttr(type, value, len = bytes(value).length) {
  value = bytes(value);
  const pad = (4 - (value.length % 4)) % 4;
  const a = Buffer.alloc(4 + value.length + pad);
  a.writeUInt16BE(type, 0);
  a.writeUInt16BE(len, 2);
  value.copy(a, 4);
  return a;
}

// A STUN message: `attrs` (each a Buffer or [type, value, len?]) before MESSAGE-INTEGRITY (keyed with
// `key`, none if null), `after` between it and FINGERPRINT (none if !fp).  lenDelta, corruptMac and
// corruptFp make it wrong on purpose.  Returns { msg, txid }.
export function stun({ type = BINDING_REQUEST, txid = randomBytes(12), attrs = [], key = null, after = [], fp = true,
  lenDelta = 0, corruptMac = false, corruptFp = false } = {}) {
  const toAttr = (a) => (Buffer.isBuffer(a) ? a : stunAttr(...a));
  let body = Buffer.concat(attrs.map(toAttr));
  const hdr = (len) => {
    const h = Buffer.alloc(20);
    h.writeUInt16BE(type, 0);
    h.writeUInt16BE(len, 2);
    h.writeUInt32BE(MAGIC, 4);
    txid.copy(h, 8);
    return h;
  };
  if (key !== null) {
    const mac = createHmac('sha1', key).update(Buffer.concat([hdr(body.length + 24), body])).digest();
    if (corruptMac) mac[7] ^= 0x40;
    body = Buffer.concat([body, stunAttr(MESSAGE_INTEGRITY, mac)]);
  }
  body = Buffer.concat([body, ...after.map(toAttr)]);
  if (fp) {
    const v = u32(((crc32(Buffer.concat([hdr(body.length + 8), body])) ^ 0x5354554e) ^ (corruptFp ? 1 : 0)) >>> 0);
    body = Buffer.concat([body, stunAttr(FINGERPRINT, v)]);
  }
  return { msg: Buffer.concat([hdr(body.length + lenDelta), body]), txid };
}

// An ICE connectivity check for a session of the server: USERNAME "<server ufrag>:<our ufrag>",
// PRIORITY, ICE-CONTROLLING (and USE-CANDIDATE if asked), keyed with the server's ice-pwd.
// `peer` is { ufrag, pwd } from the server's answer (as newPeer() returns it).
export function check(peer, { remote = CLIENT_UFRAG, useCandidate = false, attrs = [], priority = 0x6e7f1eff,
  tiebreaker = [1, 2], ...more } = {}) {
  return stun({
    attrs: [[USERNAME, Buffer.from(`${peer.ufrag}:${remote}`)], [PRIORITY, u32(priority)], [ICE_CONTROLLING, u64(...tiebreaker)],
      ...(useCandidate ? [[USE_CANDIDATE, Buffer.alloc(0)]] : []), ...attrs],
    key: peer.pwd, ...more,
  });
}

export const isStun = (b) => b.length >= 20 && b[0] < 2 && b.readUInt32BE(4) === MAGIC;

// Parses a STUN message and checks its FINGERPRINT (fingerprintOk) and, given key, its
// MESSAGE-INTEGRITY (integrityOk; without key, integrity: true says one is there).  null if it is
// not STUN.  Knows ERROR-CODE (code, reason), UNKNOWN-ATTRIBUTES (unknown), XOR-MAPPED-ADDRESS
// (ip, port; IPv4) and USERNAME (username); every attribute is in attrs by type.
export function stunParse(b, key) {
  if (!b || b.length < 20 || b.readUInt32BE(4) !== MAGIC || b.readUInt16BE(2) + 20 !== b.length) return null;
  const m = { type: b.readUInt16BE(0), txid: b.subarray(8, 20), attrs: {} };
  for (let i = 20; i + 4 <= b.length;) {
    const t = b.readUInt16BE(i), len = b.readUInt16BE(i + 2), v = b.subarray(i + 4, i + 4 + len);
    m.attrs[t] = v;
    if (t === FINGERPRINT) {
      m.fingerprintOk = v.length === 4 && v.readUInt32BE(0) === ((crc32(b.subarray(0, i)) ^ 0x5354554e) >>> 0);
    } else if (t === MESSAGE_INTEGRITY) {
      if (key) {
        const h = Buffer.from(b.subarray(0, i));
        h.writeUInt16BE(i + 24 - 20, 2);
        m.integrityOk = createHmac('sha1', key).update(h).digest().equals(v);
      } else m.integrity = true;
    } else if (t === ERROR_CODE && len >= 4) {
      m.code = (v[2] & 7) * 100 + v[3];
      m.reason = v.subarray(4).toString();
    } else if (t === UNKNOWN_ATTRIBUTES) {
      m.unknown = [];
      for (let k = 0; k + 2 <= len; k += 2) m.unknown.push(v.readUInt16BE(k));
    } else if (t === XOR_MAPPED_ADDRESS && len >= 8) {
      m.port = v.readUInt16BE(2) ^ 0x2112;
      m.ip = [0, 1, 2, 3].map((k) => v[4 + k] ^ b[4 + k]).join('.');
    } else if (t === USERNAME) {
      m.username = v.toString();
    }
    i += 4 + len + ((4 - (len % 4)) % 4);
  }
  return m;
}

// ------------------------------------------------------------------ SDP

// A fingerprint no certificate has (the tests never finish a handshake with it).
export const FP = 'sha-256 ' + Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) & 255).toString(16).padStart(2, '0').toUpperCase()).join(':');
export const CLIENT_UFRAG = 'HoSt';
export const CLIENT_PWD = 'hostilehostilehostile1';

// A data-channel-only offer.  setup: 'actpass' (the server answers active: it is the DTLS client)
// or 'active' (the server is the DTLS server).  extra: lines after the media section's own,
// session: lines before it, drop: prefixes of lines to leave out, media: lines before the m= line.
export function offer({ ufrag = CLIENT_UFRAG, pwd = CLIENT_PWD, fp = FP, setup = 'actpass', eol = '\r\n',
  mline = 'm=application 9 UDP/DTLS/SCTP webrtc-datachannel', extra = [], session = [], drop = [], media = [] } = {}) {
  const lines = ['v=0', 'o=- 4611731400430051336 2 IN IP4 127.0.0.1', 's=-', 't=0 0', 'a=group:BUNDLE 0', ...session, ...media,
    mline, 'c=IN IP4 0.0.0.0', `a=ice-ufrag:${ufrag}`, `a=ice-pwd:${pwd}`, `a=fingerprint:${fp}`, `a=setup:${setup}`,
    'a=mid:0', 'a=sctp-port:5000', 'a=max-message-size:262144', ...extra];
  return lines.filter((l) => !drop.some((d) => l.startsWith(d))).join(eol) + eol;
}

// What a test needs of the server's answer: its ICE credentials, DTLS role and fingerprint.
export function parseAnswer(sdp) {
  const get = (re) => (sdp.match(re) || [])[1];
  return { ufrag: get(/a=ice-ufrag:(\S+)/), pwd: get(/a=ice-pwd:(\S+)/), setup: get(/a=setup:(\S+)/),
    fingerprint: get(/a=fingerprint:([^\r\n]+)/), answer: sdp };
}

// A session made by POSTing an offer as JSON (as a program would, without Origin) to
// `${url}/rtc/${room}/offer`: { ufrag, pwd, setup, fingerprint, answer, remote } (remote: our ufrag).
export async function newPeer(url, room, opts = {}) {
  const res = await fetch(`${url}/rtc/${encodeURIComponent(room)}/offer`, { method: 'POST',
    headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ type: 'offer', sdp: offer(opts) }) });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`offer refused: ${res.status} ${text}`);
  const a = parseAnswer(JSON.parse(text).sdp);
  if (!a.ufrag || !a.pwd) throw new Error('no ICE credentials in the answer: ' + text);
  return { ...a, remote: opts.ufrag || CLIENT_UFRAG };
}

// ------------------------------------------------------------------ DTLS (RFC 6347)

export const DTLS_1_0 = 0xfeff, DTLS_1_2 = 0xfefd;
export const CT_CHANGE_CIPHER_SPEC = 20, CT_ALERT = 21, CT_HANDSHAKE = 22, CT_APPLICATION_DATA = 23;
export const HS_CLIENT_HELLO = 1, HS_SERVER_HELLO = 2, HS_HELLO_VERIFY_REQUEST = 3, HS_CERTIFICATE = 11,
  HS_SERVER_KEY_EXCHANGE = 12, HS_CERTIFICATE_REQUEST = 13, HS_SERVER_HELLO_DONE = 14;

// A record: 13-byte header (type, version, epoch, 48-bit sequence number, length) and body.
export function rec(type, body, { epoch = 0, seq = 1, version = DTLS_1_2, len } = {}) {
  const h = Buffer.alloc(13);
  h[0] = type;
  h.writeUInt16BE(version, 1);
  h.writeUInt16BE(epoch, 3);
  h.writeUIntBE(seq, 5, 6);
  h.writeUInt16BE(len === undefined ? body.length : len, 11);
  return Buffer.concat([h, body]);
}

// A handshake message (or a fragment of one): 12-byte header (type, length, message_seq,
// fragment_offset, fragment_length) and body.
export function hs(msgType, body, { length, offset = 0, fragLen, seq = 0 } = {}) {
  const h = Buffer.alloc(12);
  h[0] = msgType;
  h.writeUIntBE(length === undefined ? body.length : length, 1, 3);
  h.writeUInt16BE(seq, 4);
  h.writeUIntBE(offset, 6, 3);
  h.writeUIntBE(fragLen === undefined ? body.length : fragLen, 9, 3);
  return Buffer.concat([h, body]);
}

// A TLS extension: type, 16-bit length, data.
export const ext = (type, data = Buffer.alloc(0)) => Buffer.concat([u16(type), u16(data.length), data]);
const list16 = (vals) => Buffer.concat([u16(2 * vals.length), ...vals.map(u16)]);

// The extensions of a plausible WebRTC ClientHello: supported_groups, ec_point_formats,
// signature_algorithms, extended_master_secret, renegotiation_info.
export function helloExtensions({ groups = [0x001d, 0x0017], pointFormats = [0], sigAlgs = [0x0403, 0x0503, 0x0804, 0x0401],
  ems = true, reneg = true } = {}) {
  return Buffer.concat([
    ext(0x000a, list16(groups)),
    ext(0x000b, Buffer.from([pointFormats.length, ...pointFormats])),
    ext(0x000d, list16(sigAlgs)),
    ...(ems ? [ext(0x0017)] : []),
    ...(reneg ? [ext(0xff01, Buffer.from([0]))] : []),
  ]);
}

// A ClientHello body.  sidLen, suitesLen and extLen may lie about the lengths.
export function hello({ version = DTLS_1_2, random = randomBytes(32), sid = Buffer.alloc(0), sidLen, cookie = Buffer.alloc(0),
  suites = [0xc02b, 0xc02f], suitesLen, comp = [0], ext: extensions = Buffer.alloc(0), extLen } = {}) {
  const s = Buffer.concat(suites.map(u16));
  const parts = [u16(version), random, Buffer.from([sidLen ?? sid.length]), sid, Buffer.from([cookie.length]), cookie,
    u16(suitesLen ?? s.length), s, Buffer.from([comp.length, ...comp])];
  if (extensions.length || extLen !== undefined) parts.push(u16(extLen ?? extensions.length), extensions);
  return Buffer.concat(parts);
}

// A whole, well-formed DTLS 1.2 ClientHello datagram as a browser's first flight: ECDHE-ECDSA
// AES-GCM suites, x25519 and P-256, no cookie (or the one given, for the second ClientHello).
export function clientHello({ cookie = Buffer.alloc(0), suites = [0xc02b, 0xc02c], random, seq = 0, recSeq = 0,
  recordVersion = DTLS_1_0, extensions = helloExtensions() } = {}) {
  return rec(CT_HANDSHAKE, hs(HS_CLIENT_HELLO, hello({ cookie, suites, random, ext: extensions }), { seq }), { seq: recSeq, version: recordVersion });
}

export const isDtls = (b) => b.length >= 13 && b[0] >= 20 && b[0] <= 63;

// The records of a DTLS datagram: { type, version, epoch, seq, body }, and for handshake records
// in epoch 0 also hs: { type, length, seq, offset, fragLen }.  Stops at a truncated record.
export function dtlsRecords(b) {
  const out = [];
  for (let i = 0; i + 13 <= b.length;) {
    const len = b.readUInt16BE(i + 11);
    if (i + 13 + len > b.length) break;
    const r = { type: b[i], version: b.readUInt16BE(i + 1), epoch: b.readUInt16BE(i + 3), seq: b.readUIntBE(i + 5, 6),
      body: b.subarray(i + 13, i + 13 + len) };
    if (r.type === CT_HANDSHAKE && r.epoch === 0 && len >= 12) {
      const h = r.body;
      r.hs = { type: h[0], length: h.readUIntBE(1, 3), seq: h.readUInt16BE(4), offset: h.readUIntBE(6, 3), fragLen: h.readUIntBE(9, 3) };
    }
    out.push(r);
    i += 13 + len;
  }
  return out;
}

// ------------------------------------------------------------------ UDP

// A UDP socket on `bind` (127.0.0.1 by default) that records every datagram it receives
// (got: [{ data, at }]) and sends to the server's UDP port.
export async function udpSocket(serverPort, { host = '127.0.0.1', bind = '127.0.0.1', port = 0 } = {}) {
  const s = dgram.createSocket('udp4');
  const got = [];
  s.on('message', (data, rinfo) => got.push({ data, at: Date.now(), from: rinfo }));
  s.on('error', () => {});
  await new Promise((ok, ko) => { s.once('error', ko); s.bind(port, bind, () => { s.off('error', ko); ok(); }); });
  const u = {
    s, got, port: s.address().port, address: bind, sent: 0, sentDatagrams: 0,
    send: (d) => new Promise((ok, ko) => s.send(d, serverPort, host, (e) => {
      if (e) return ko(e);
      u.sent += d.length;
      u.sentDatagrams++;
      ok();
    })),
    received: () => got.reduce((n, g) => n + g.data.length, 0),
    stunReplies: () => got.map((g) => g.data).filter(isStun),
    dtls: () => got.map((g) => g.data).filter(isDtls),
    close: () => { try { s.close(); } catch { /* closed */ } },
  };
  return u;
}

// Polls cond every 20 ms until it holds; throws after ms.
export async function until(cond, ms, what) {
  const end = Date.now() + ms;
  while (!(await cond())) {
    if (Date.now() > end) throw new Error(`timed out waiting for: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

// Sends UDP datagrams with any IPv4 source, built by hand (IP header with IP_HDRINCL, UDP checksum
// 0) on a raw socket from Python: [{ src, sport, dst = '127.0.0.1', dport, data }].  Needs root
// (CAP_NET_RAW); over loopback the kernel delivers them like any other datagram.
const FORGER = `
import json, socket, struct, sys
def csum(b):
    s = sum(struct.unpack('!%dH' % (len(b) // 2), b))
    while s >> 16: s = (s & 0xffff) + (s >> 16)
    return ~s & 0xffff
s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW)
for i, d in enumerate(json.load(sys.stdin)):
    data = bytes.fromhex(d['hex'])
    udp = struct.pack('!HHHH', d['sport'], d['dport'], 8 + len(data), 0) + data
    ip = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 20 + len(udp), (0x4d00 + i) & 0xffff, 0, 64, socket.IPPROTO_UDP, 0,
                     socket.inet_aton(d['src']), socket.inet_aton(d['dst']))
    ip = ip[:10] + struct.pack('!H', csum(ip)) + ip[12:]
    s.sendto(ip + udp, (d['dst'], 0))
print('sent', i + 1)
`;
export function sendForged(datagrams, { python = '/usr/bin/python3' } = {}) {
  const input = JSON.stringify(datagrams.map((d) => ({ src: d.src, sport: d.sport, dst: d.dst || '127.0.0.1', dport: d.dport, hex: d.data.toString('hex') })));
  return new Promise((ok, ko) => {
    const p = spawn(python, ['-c', FORGER], { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '', err = '';
    p.stdout.on('data', (d) => { out += d; });
    p.stderr.on('data', (d) => { err += d; });
    p.on('error', ko);
    p.on('close', (code) => (code === 0 ? ok(out.trim()) : ko(new Error(`forging datagrams failed (exit ${code}): ${err.trim()}`))));
    p.stdin.end(input);
  });
}

// ------------------------------------------------------------------ a DTLS client (pyOpenSSL)

// A DTLS 1.2 client with a fresh ECDSA P-256 certificate, driven one datagram at a time: OpenSSL
// on memory BIOs in a Python child (/usr/bin/python3 with python3-openssl).  Input goes in with
// input(), what it would send comes back; nothing is sent on a timer (no retransmissions).
const DTLS_CLIENT = `
import datetime, hashlib, json, sys
from OpenSSL import SSL, crypto
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
key = ec.generate_private_key(ec.SECP256R1())
name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'camus-test')])
now = datetime.datetime.now(datetime.timezone.utc)
cert = x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key()).serial_number(1) \\
    .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256())
fp = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
ctx = SSL.Context(SSL.DTLS_METHOD)
ctx.use_certificate(crypto.X509.from_cryptography(cert))
ctx.use_privatekey(crypto.PKey.from_cryptography_key(key))
ctx.set_verify(SSL.VERIFY_PEER, lambda *a: True)
ctx.set_cipher_list(b'ECDHE-ECDSA-AES128-GCM-SHA256')
conn = SSL.Connection(ctx)
conn.set_connect_state()
done = False
def step():
    global done
    if not done:
        try:
            conn.do_handshake()
            done = True
        except SSL.WantReadError:
            pass
    app = []
    if done:
        while True:
            try:
                app.append(conn.recv(65536).hex())
            except (SSL.WantReadError, SSL.ZeroReturnError):
                break
    out = []
    while True:
        try:
            out.append(conn.bio_read(65536).hex())
        except SSL.WantReadError:
            break
    print(json.dumps({'out': out, 'done': done, 'app': app}), flush=True)
print(json.dumps({'fingerprint': 'sha-256 ' + ':'.join(fp[i:i + 2] for i in range(0, 64, 2))}), flush=True)
for line in sys.stdin:
    c = json.loads(line)
    if c['cmd'] == 'in':
        conn.bio_write(bytes.fromhex(c['hex']))
    elif c['cmd'] == 'write':
        conn.send(bytes.fromhex(c['hex']))
    step()
`;
// Resolves to { fingerprint, start(), input(datagram), write(data), close() }: start() gives the
// ClientHello, input() and write() what the client sends then ({ out: [Buffer], done, app: [Buffer] };
// done: the handshake is over; app: application data it read).
export async function dtlsClient({ python = '/usr/bin/python3' } = {}) {
  const p = spawn(python, ['-c', DTLS_CLIENT], { stdio: ['pipe', 'pipe', 'pipe'] });
  const waiting = [];
  let buf = '', err = '';
  p.stdout.on('data', (d) => {
    buf += d;
    for (let i; (i = buf.indexOf('\n')) >= 0;) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 1);
      waiting.shift()?.ok(JSON.parse(line));
    }
  });
  p.stderr.on('data', (d) => { err += d; });
  const fail = (why) => { for (const w of waiting.splice(0)) w.ko(new Error(`DTLS client ${why}: ${err.trim()}`)); };
  p.on('close', (code) => fail(`ended (exit ${code})`));
  p.on('error', (e) => fail(`failed (${e.message})`));
  p.stdin.on('error', () => {}); // it ended: the waiter hears of it
  const next = () => new Promise((ok, ko) => (p.exitCode !== null ? ko(new Error(`DTLS client ended: ${err.trim()}`)) : waiting.push({ ok, ko })));
  const ask = async (c) => {
    const r = next();
    p.stdin.write(JSON.stringify(c) + '\n');
    const m = await r;
    return { out: m.out.map((h) => Buffer.from(h, 'hex')), done: m.done, app: m.app.map((h) => Buffer.from(h, 'hex')) };
  };
  const { fingerprint } = await next();
  return {
    fingerprint,
    start: () => ask({ cmd: 'step' }),
    input: (d) => ask({ cmd: 'in', hex: d.toString('hex') }),
    write: (d) => ask({ cmd: 'write', hex: d.toString('hex') }),
    close: () => { p.stdin.end(); p.kill(); },
  };
}

// ------------------------------------------------------------------ SCTP (RFC 9260)

const CRC32C_TABLE = Array.from({ length: 256 }, (_, n) => {
  let c = n;
  for (let k = 0; k < 8; k++) c = c & 1 ? 0x82f63b78 ^ (c >>> 1) : c >>> 1;
  return c >>> 0;
});
export function crc32c(b) {
  let c = 0xffffffff;
  for (const x of b) c = CRC32C_TABLE[(c ^ x) & 255] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

// An SCTP packet holding one INIT chunk (verification tag 0), as a data channel's first packet.
export function sctpInit({ srcPort = 5000, dstPort = 5000, tag = randomBytes(4).readUInt32BE(0) || 1, tsn = 1 } = {}) {
  const chunk = Buffer.concat([Buffer.from([1, 0]), u16(20), u32(tag), u32(131072), u16(1024), u16(1024), u32(tsn)]);
  const pkt = Buffer.concat([u16(srcPort), u16(dstPort), u32(0), u32(0), chunk]);
  pkt.writeUInt32LE(crc32c(pkt), 8);
  return pkt;
}
