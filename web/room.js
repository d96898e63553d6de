// The room: a data channel to Ground Control (the server) carries chat and signaling.  A room's
// media travels one of two ways (room.json.media):
//   p2p — Ground Control relays the signaling that connects every pair of browsers directly, and
//         media flows peer to peer with perfect negotiation (one RTCPeerConnection per member);
//   sfu — media goes through the server on Ground Control's own connection: this page sends its
//         microphone, camera and screen there, and receives everyone else's on recvonly slots the
//         server fills; only this page offers, one offer at a time (see the SFU section).
import { api, apiHashed, el } from '/common.js';

const $ = (id) => document.getElementById(id);
const roomId = decodeURIComponent(location.pathname.split('/')[2] || '');
const GC = 'ground control';
const NAME_MAX = 64; // bytes of UTF-8, as the server counts them

// The page's whole state, in one place.
const state = {
  // stream: our camera and microphone as the others receive them; screenStream: our screen share's
  // (peer to peer, the others tell the two apart by its id, which a 'screen' message tells them).
  me: { id: null, name: '', stream: new MediaStream(), cam: null, mic: null, screen: null, screenStream: new MediaStream() },
  peers: new Map(),  // client id -> the other member (createPeer in a P2P room, addMember in an SFU one)
  gc: null,          // Ground Control: {pc, dc}
  media: 'p2p',      // how this room's media travels: 'p2p' or 'sfu' (set by prejoin)
  sfu: null,         // the SFU side of Ground Control's connection, in an SFU room (see sfuStart)
  iceServers: [],
  turn: null,        // the server's TURN relay and this member's credentials for it (useTurn)
  relayOnly: false,  // nothing but the relay reaches the server from here: Ground Control goes through it
  owner: null,       // the room's owner key, when this browser made the room or came by a co-host link
  role: 'guest',     // ours, as room-info says: guest, cohost or owner
  room: {},          // the room's settings as room-info says: name, media, locked, password, guest_limit
  held: new Set(),   // what of ours a moderator turned off: 'mic', 'camera', 'screen'
  members: [],       // [{id, username}] as Ground Control last said
  unread: 0,
  title: 'Room — Camus',
  screens: new Map(),   // member id -> the tile of its screen share
  selfScreen: null,     // the tile of our own screen share
  screenIds: new Map(), // P2P: member id -> {stream, on}, its screen share's stream id, as its 'screen' message said
  listed: false,        // a room-info came (members it lists after that are announced as joining)
  // The stage (see arrange): self: 'tile', 'corner' or 'hidden'; spot: the tile chosen for the stage;
  // grid: the grid was chosen over a presentation; last: what was on the stage before the grid was;
  // page: of the grid (or strip) when not all fit; keys: single-key shortcuts on.
  ui: { self: localStorage.getItem('camus.self') || 'tile', spot: null, grid: false, last: null, page: 0, keys: localStorage.getItem('camus.keys') !== 'off' },
  sink: '',             // the chosen speaker (setSinkId), '' for the default
  // Keeping Ground Control (see reconnect):
  conn: 'new',       // new, connected, reconnecting, failed (gave up trying), left
  resume: null,      // the `resume` token of the last answer: to be the same member after a drop
  outages: [],       // per drop: {why, lostAt, backAt, attempts, sameId} (times: performance.now())
  stale: [],         // dropped connections to the server, closed once a new one is greeted
  formerIds: new Set(), // ids this page had before a reconnect made it a new member
  resync: false,     // P2P: the next room-info restarts every pair (after a drop, as the same member)
  failure: null,     // why the last try gave up, when it did
  wake: null,        // ends the wait before the next try at once (online, Rejoin, Leave)
  statusTimer: 0,
};
const { me, peers } = state;

// The room's owner key: from a co-host link (#owner=...), kept for this room and taken out of the
// address bar, or kept from when this browser made the room.
{
  const key = new URLSearchParams(location.hash.slice(1)).get('owner');
  if (key && /^[0-9a-f]{32}$/.test(key)) {
    localStorage.setItem(`camus.owner.${roomId}`, key);
    history.replaceState(null, '', location.pathname + location.search);
  }
  state.owner = localStorage.getItem(`camus.owner.${roomId}`);
}

// ---------------------------------------------------------------------------------------- before joining

// The longest prefix of s whose UTF-8 encoding fits in max bytes (whole characters only).
function utf8Prefix(s, max) {
  const enc = new TextEncoder();
  let out = '';
  for (const ch of s) {
    if (enc.encode(out + ch).length > max) break;
    out += ch;
  }
  return out;
}

// getUserMedia, again after a moment when a device could not start yet (a camera that is slow to
// start, on a busy machine, or one another program has just let go of: NotReadableError, or
// AbortError on a timeout), for up to about 4 s in all; a refusal or a missing device at once.
async function openMedia(constraints) {
  for (let wait = 300; ; wait *= 2) {
    try {
      return await navigator.mediaDevices.getUserMedia(constraints);
    } catch (err) {
      if (!['NotReadableError', 'AbortError'].includes(err && err.name) || wait > 2400) throw err;
      console.warn(`getUserMedia: ${err.name}; again in ${wait} ms`);
    }
    await new Promise((ok) => setTimeout(ok, wait));
  }
}

async function startPreview() {
  for (const t of me.stream.getTracks()) t.stop();
  me.stream = new MediaStream();
  me.cam = me.mic = null;
  const cam = $('camera-select').value, mic = $('mic-select').value;
  // Both, then with less: a member with no camera (or none it may use) joins with the microphone.
  const tries = [{ video: cam ? { deviceId: { exact: cam } } : true, audio: mic ? { deviceId: { exact: mic } } : true },
    { video: false, audio: true }, { video: true, audio: false }];
  for (const constraints of tries) {
    try {
      const s = await openMedia(constraints);
      me.cam = s.getVideoTracks()[0] || null;
      me.mic = s.getAudioTracks()[0] || null;
      for (const t of s.getTracks()) me.stream.addTrack(t);
      break;
    } catch { /* try with less */ }
  }
  $('preview').srcObject = me.cam ? me.stream : null;
  $('preview-none').hidden = !!me.cam;
  await listDevices();
}

async function prejoin() {
  $('invite-link').value = `${location.origin}/rtc/${encodeURIComponent(roomId)}`;
  const [room, config] = await Promise.all([api('GET', `/api/rooms/${encodeURIComponent(roomId)}`), api('GET', '/api/config')]);
  if (!room.ok) {
    $('join-error').textContent = 'This room does not exist any more.';
    $('join-button').disabled = true;
    return;
  }
  state.title = document.title = `${room.json.name} — Camus`;
  for (const id of ['room-title', 'room-name-shown', 'join-room-name']) $(id).textContent = room.json.name;
  $('password-row').hidden = !room.json.password;
  // A server from before the SFU does not say: its rooms are all peer to peer.
  state.media = room.json.media === 'sfu' ? 'sfu' : 'p2p';
  $('media-note').textContent = state.media === 'sfu' ? 'Video travels through this server.'
    : 'Video travels directly between browsers, encrypted end to end.';
  if (state.media === 'sfu') window.camus.remoteStreams = remoteStreams;
  if (config.ok) {
    state.iceServers = [{ urls: `stun:${location.hostname}:${config.json.stun_port}` }];
    for (const url of config.json.ice_servers) {
      const m = url.match(/^(turns?):([^:@/]+):([^@/]+)@(.+)$/); // turn:user:password@host:port
      state.iceServers.push(m ? { urls: `${m[1]}:${m[4]}`, username: m[2], credential: m[3] } : { urls: url });
    }
  }
  if (!$('display-name').value) $('display-name').value = localStorage.getItem('camus.name') || ''; // unless typed already
  $('camera-select').addEventListener('change', startPreview);
  $('mic-select').addEventListener('change', startPreview);
  // Joining waits for the camera: peers made before it would offer to receive only.  (The button
  // is disabled in the page itself, so that a click before this script ran submits nothing.)
  $('join-button').disabled = true;
  try {
    if (navigator.mediaDevices) await startPreview();
    else $('preview-none').hidden = false;
  } finally {
    $('join-button').disabled = false;
  }
  // Rejoin after Leave: the page joins by itself, as it did before.
  if (sessionStorage.getItem('camus.rejoin') === roomId) {
    sessionStorage.removeItem('camus.rejoin');
    if ($('display-name').value) $('join-form').requestSubmit();
  }
}

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('join-error');
  error.textContent = '';
  // (Control characters, which the server refuses in a name, become spaces.)
  me.name = utf8Prefix($('display-name').value.replace(/[\x00-\x1f\x7f]/g, ' ').trim(), NAME_MAX) || 'Major Tom';
  localStorage.setItem('camus.name', me.name);
  $('join-button').disabled = true;
  try {
    const password = $('room-password').value;
    if (password) {
      const r = await apiHashed('POST', `/rtc/${encodeURIComponent(roomId)}/join`, { password });
      if (!r.ok) throw new Error(r.status === 403 ? 'Wrong password' : (r.json && r.json.error) || 'Could not join');
    }
    startMeters();
    await connectGroundControl();
    setConn('connected');
    $('prejoin').hidden = true;
    $('call').hidden = false;
    for (const [which, t] of [['cam', me.cam], ['mic', me.mic]]) {
      const id = t && t.getSettings().deviceId;
      if (t) t.onended = () => lostDevice(which, t, id);
    }
    addTile(null);
    $('toggle-mic').focus();
  } catch (err) {
    error.textContent = err.message;
    if (/password/.test(err.message)) $('password-row').hidden = false;
    $('join-button').disabled = false;
  }
});

// ---------------------------------------------------------------------------------------- Ground Control

// A connection to the server, a channel on it, and the offer POSTed (with the resume token of the
// last answer, if any); resolves once the channel is open, or throws (err.status: the HTTP status of
// a refused offer).  It is state.gc from the start, so that what sets it up sees it.
async function connectGroundControl() {
  try {
    await connectOnce(state.relayOnly);
  } catch (err) {
    if (!err.direct || state.relayOnly || !state.turn) throw err;
    console.warn(`no way to the server but its relay (${err.message}): through TURN`);
    state.relayOnly = true; // for the rest of the call: this network lets nothing else through
    await connectOnce(true);
  }
}

// One try: directly (UDP, else ICE over TCP), or only through the server's TURN relay (relay).  A
// direct try whose ICE has not connected RELAY_AFTER ms after the answer fails with err.direct: on
// a network that passes only TLS, the relay over TLS is the one way in.
async function connectOnce(relay) {
  const pc = new RTCPeerConnection(relay ? { iceServers: [state.turn], iceTransportPolicy: 'relay' } : undefined);
  const dc = pc.createDataChannel('ground-control');
  const gc = state.gc = { pc, dc, greeted: false, limbo: 0 };
  // What comes before this try is through (the greeting may: the channel can open, and the server
  // speak, before the answer's setRemoteDescription is seen to resolve) waits for it, in order.
  const early = [];
  dc.onmessage = (e) => early.push(e);
  // Listening before the answer is applied: on a busy machine the channel may open before the
  // setRemoteDescription promise is seen to resolve, and an open event nobody heard is lost.
  let timer;
  const late = new Promise((_, ko) => { timer = setTimeout(() => ko(new Error('Could not reach the server (no data channel)')), OPEN_WAIT); });
  const opened = new Promise((ok, ko) => {
    dc.onopen = ok;
    pc.onconnectionstatechange = () => {
      $('gc-state').textContent = pc.connectionState;
      if (pc.connectionState === 'failed') ko(Object.assign(new Error('Could not reach the server (connection failed)'), { direct: !relay }));
    };
  });
  let answered = Infinity, direct = 0;
  const noDirect = new Promise((_, ko) => {
    direct = setInterval(() => {
      if (relay || !state.turn || ['connected', 'completed'].includes(pc.iceConnectionState)) return;
      if (pc.remoteDescription && performance.now() - answered > RELAY_AFTER) ko(Object.assign(new Error('no direct connection'), { direct: true }));
    }, 250);
  });
  noDirect.catch(() => {});
  late.catch(() => {});
  opened.catch(() => {}); // awaited below, unless the offer is refused first
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const offer = { sdp: pc.localDescription.sdp, type: 'offer' };
    if (state.resume) offer.resume = state.resume;
    if (state.owner) offer.owner = state.owner;
    offer.username = me.name; // so that the others never see this member join under another name
    const r = await Promise.race([api('POST', `/rtc/${encodeURIComponent(roomId)}/offer`, offer), late]);
    if (!r.ok) {
      const why = r.json && r.json.error;
      throw Object.assign(new Error(why === 'password required' ? 'This room needs a password' : why === 'room is full' ? 'This room is full'
        : why === 'the room is locked' ? 'The room is locked: its hosts let nobody in for now'
          : why === 'you were removed from this room' ? 'You were removed from this room' : why || 'Could not connect'), { status: r.status, why });
    }
    if (typeof r.json.resume === 'string') state.resume = r.json.resume;
    useTurn(r.json.turn);
    await pc.setRemoteDescription({ type: r.json.type, sdp: r.json.sdp });
    answered = performance.now();
    await Promise.race([opened, late, noDirect]);
  } catch (err) {
    pc.close();
    if (state.gc === gc) state.gc = null;
    throw err;
  } finally {
    clearTimeout(timer);
    clearInterval(direct);
  }
  // From now on, a drop is noticed: the channel closing, the connection failing, or staying
  // disconnected (ICE consent checks unanswered) a while.
  pc.onconnectionstatechange = () => {
    if (state.gc !== gc) return;
    $('gc-state').textContent = pc.connectionState;
    clearTimeout(gc.limbo);
    if (pc.connectionState === 'failed') lost(gc, 'the connection failed');
    else if (pc.connectionState === 'disconnected') gc.limbo = setTimeout(() => lost(gc, `disconnected for ${DISCONNECTED_MS / 1000} s`), DISCONNECTED_MS);
  };
  const deliver = (e) => {
    gc.heard = performance.now();
    if (state.gc === gc) try { onMessage(JSON.parse(e.data)); } catch (err) { console.warn('bad message', err); }
  };
  // Those that came early, in a task of their own: after the caller has taken this connection as
  // made (as it would have, had they come in their usual order); later ones queue behind them.
  if (early.length) {
    dc.onmessage = (e) => early.push(e);
    setTimeout(() => {
      while (early.length) deliver(early.shift());
      dc.onmessage = deliver;
    }, 0);
  } else {
    dc.onmessage = deliver;
  }
  dc.onclose = () => lost(gc, 'its channel closed');
  gc.heard = gc.since = performance.now();
  gc.beat = setInterval(() => heartbeat(gc), HEARTBEAT_MS);
  $('gc-state').textContent = pc.connectionState;
}

// The server's own TURN relay, with the credentials it gave this member (a new answer brings new
// ones): UDP on its media port, TCP on its web port, and TLS there too when it serves HTTPS, so
// that peers who cannot reach each other, even from networks that pass only TCP or only TLS,
// still connect through it.  Peer connections made from now on use it.
function useTurn(t) {
  if (!t || typeof t.username !== 'string' || typeof t.credential !== 'string') return;
  const host = location.hostname.includes(':') ? `[${location.hostname}]` : location.hostname;
  const urls = [`turn:${host}:${t.udp}?transport=udp`, `turn:${host}:${t.tcp}?transport=tcp`];
  if (t.tls) urls.push(`turns:${host}:${t.tcp}?transport=tcp`);
  state.turn = { urls, username: t.username, credential: t.credential };
}

function send(receiver, type, data) {
  const { gc } = state;
  if (gc && gc.dc.readyState === 'open') gc.dc.send(JSON.stringify({ sender: me.id, receiver, type, data }));
}

// ---------------------------------------------------------------------------------------- keeping Ground Control

// A connection to the server that drops (a network change, a laptop lid, an outage) is made again
// by itself: a new RTCPeerConnection and channel, offered with the resume token of the last answer.
// A server that still holds our silent session (it does a while, until consent freshness gives up
// on it) makes the new one the same member: same id, and the others see only a new room-info.
// Otherwise this page is a new member, joined as the first time.  Either way it keeps its name,
// chat log, tiles, and its camera and microphone, which run on throughout.  Tries wait 0.5 s, 1, 2,
// 4 ... at most 15 s between them, each ±30 % at random (so that a room that lost the server all
// at once does not come back all at once), for 5 minutes; then the page says it could not, and
// Rejoin tries again.  Leave is not a drop.
const RETRY_FIRST = 500;       // ms before the first try
const RETRY_CAP = 15000;       // ms between tries at most, before jitter
const RETRY_JITTER = 0.3;      // each wait is up to this much shorter or longer, at random
const RETRY_FOR = 300000;      // ms of trying before giving up
const DISCONNECTED_MS = 4000;  // ms a connection may stay 'disconnected' before it counts as dropped
const OPEN_WAIT = 15000;       // ms a try may take, from its offer to its channel open
const BACK_SHOWN = 3000;       // ms "Reconnected" stays up
const RELAY_AFTER = 5000;      // ms after the answer a direct try may take to connect before the relay is tried
const HEARTBEAT_MS = 500;      // ms between looks at how long Ground Control has been quiet
const PING_AFTER = 1000;       // ms of its silence after which each look pings it (it answers at once)
const SILENCE_MS = 2000;       // ms without a word from it before /healthz is asked whether it restarted

const retryDelay = (n) => Math.min(RETRY_FIRST * 2 ** n, RETRY_CAP) * (1 - RETRY_JITTER + 2 * RETRY_JITTER * Math.random());

// Silence from Ground Control may be a network that hiccups, or a server that restarted: its new
// process knows nothing of this connection, and ICE would take ten seconds to say so.  /healthz
// tells, by the server's uptime: a server younger than this connection is joined again at once.
async function heartbeat(gc) {
  if (state.gc !== gc) return clearInterval(gc.beat);
  const quiet = performance.now() - gc.heard;
  if (quiet >= PING_AFTER) send(GC, 'ping', Math.round(performance.now()));
  if (gc.asking || quiet < SILENCE_MS) return;
  gc.asking = true;
  try {
    const h = await (await fetch('/healthz', { cache: 'no-store', signal: AbortSignal.timeout(SILENCE_MS) })).json();
    // (A second of slack: the uptime is counted in whole seconds.)
    if (typeof h.uptime_seconds === 'number' && (h.uptime_seconds + 1) * 1000 < performance.now() - gc.since) lost(gc, 'the server restarted', true);
  } catch { /* no answer either: the network, which ICE and the channel will tell of */ }
  gc.asking = false;
}

// Ground Control's connection `gc` dropped (why: for the console and tests).  Its RTCPeerConnection
// is left open until a new session is greeted: closing it now might still reach the server and end
// the member this page means to be again.
function lost(gc, why, now = false) {
  if (state.gc !== gc || state.conn !== 'connected') return; // an old connection, or Leave
  clearTimeout(gc.limbo);
  clearInterval(gc.beat);
  gc.pc.onconnectionstatechange = gc.dc.onclose = gc.dc.onmessage = null;
  state.stale.push(gc.pc);
  state.gc = null;
  sfuStop();
  if (state.media === 'sfu') showStreams(); // avatars, not frozen frames, until the streams come back
  console.warn(`lost Ground Control: ${why}`);
  state.outages.push({ why, lostAt: performance.now(), backAt: null, attempts: 0, sameId: null });
  notice('Connection lost — reconnecting…');
  reconnect(now);
}

// Tries to connect again until it does, the time is up, the server refuses for good, or the user leaves.
async function reconnect(now = false) {
  const outage = state.outages[state.outages.length - 1];
  const since = performance.now();
  state.failure = null;
  setConn('reconnecting');
  for (let n = 0; ; n++) {
    const wait = n === 0 && now ? 0 : retryDelay(n);
    if (performance.now() - since + wait > RETRY_FOR) return giveUp(outage, null);
    await new Promise((ok) => {
      const t = setTimeout(() => state.wake(), wait);
      state.wake = () => { clearTimeout(t); state.wake = null; ok(); };
    });
    if (state.conn !== 'reconnecting') return;
    outage.attempts++;
    if (outage.attempts > 1) showStatus('warn', `Connection lost — reconnecting… (try ${outage.attempts})`);
    try {
      await connectGroundControl();
    } catch (err) {
      if (state.conn !== 'reconnecting') return;
      console.warn(`reconnecting: try ${outage.attempts} failed: ${err.message}`);
      // The room is gone, or wants its password again: trying more will not help.
      if (err.status === 404 || err.why === 'password required' || err.why === 'you were removed from this room') return giveUp(outage, err);
      // A server that refuses the offer otherwise (it is full, or did not take the token) may take a fresh join.
      if (err.status >= 400 && err.status < 500 && err.status !== 429) state.resume = null;
      continue;
    }
    if (state.conn !== 'reconnecting') return; // left meanwhile (leave closed the new connection)
    outage.backAt = performance.now();
    setConn('connected');
    return;
  }
}

function giveUp(outage, err) {
  state.failure = err || new Error('no answer');
  console.warn(`could not reconnect after ${outage.attempts} tries: ${state.failure.message}`);
  for (const pc of state.stale.splice(0)) pc.close();
  setConn('failed');
  notice('Could not reconnect to the server.');
}

// After a drop, the greeting of the new session: the same member (the server resumed it), or a new one.
function rejoined(before) {
  const outage = state.outages[state.outages.length - 1];
  outage.sameId = me.id === before;
  if (outage.sameId) {
    state.resync = true; // what was on its way between peers during the drop is lost (see resync)
    return;
  }
  state.formerIds.add(before);
  notice('You are back as a new member: the others saw you leave and come back.');
  // Peer to peer, the others make new connections to the new member: so does this page.
  if (state.media === 'p2p') for (const p of [...peers.values()]) renewPeer(p);
}

// The banner over the video and Ground Control's entry in Connections.
function setConn(conn) {
  state.conn = conn;
  clearTimeout(state.statusTimer);
  if (conn === 'reconnecting') {
    $('gc-state').textContent = 'reconnecting';
    showStatus('warn', 'Connection lost — reconnecting…');
  } else if (conn === 'failed') {
    $('gc-state').textContent = 'lost';
    const err = state.failure;
    showStatus('warn', err && err.status === 404 ? 'Could not reconnect: this room does not exist any more.'
      : err && err.why === 'password required' ? 'Could not reconnect: the room asks for its password again.' : 'Could not reconnect to the server.', true);
  } else if (conn === 'connected' && state.outages.length) {
    showStatus('ok', 'Reconnected');
    notice('Reconnected.');
    state.statusTimer = setTimeout(() => { $('conn-status').hidden = true; }, BACK_SHOWN);
  } else {
    $('conn-status').hidden = true;
  }
}

function showStatus(kind, text, rejoin = false) {
  const bar = $('conn-status');
  bar.className = `conn-status ${kind}`;
  $('conn-status-text').textContent = text;
  $('rejoin').hidden = !rejoin;
  bar.hidden = false;
}

// Rejoin, once the page gave up: tries again for as long, or starts over (the join form) when the
// server refused for good.
$('rejoin').addEventListener('click', () => {
  if (state.conn !== 'failed') return;
  if (state.failure && (state.failure.status === 404 || state.failure.why === 'password required')) location.reload();
  else reconnect();
});

// A network that comes back is tried at once.
addEventListener('online', () => { if (state.wake) state.wake(); });

// Ground Control writes `sender` itself: "ground control" for its own messages, the member's id for
// what it relays.  So its own messages are believed only with that sender, and everything else is
// named after the sender's id as the member list says, never after a name carried in the data.
function onMessage(m) {
  if (!m || typeof m !== 'object' || typeof m.type !== 'string' || typeof m.sender !== 'string') return;
  if (m.sender === GC) onServerMessage(m);
  else if (/^[0-9a-f]{32}$/.test(m.sender)) onMemberMessage(m); // may come before the room-info that lists it
}

function onServerMessage(m) {
  switch (m.type) {
    case 'greeting': {
      const gc = state.gc, before = me.id;
      if (gc.greeted || typeof m.receiver !== 'string') return; // one greeting a session
      gc.greeted = true;
      me.id = m.receiver;
      // A new session is up: the server let go of the old one (or took it over), which may go now.
      for (const pc of state.stale.splice(0)) pc.close();
      send(GC, 'profile', { username: me.name });
      send(GC, 'get-room-info', null);
      if (before) rejoined(before);
      if (state.media === 'sfu') sfuStart();
      break;
    }
    case 'ping': send(GC, 'pong', m.data); break;
    case 'room-info': if (m.data && Array.isArray(m.data.clients)) onRoomInfo(m.data); break;
    case 'moderation': onModeration(m.data); break;
    case 'renegotiate': onRenegotiate(m); break;
    case 'answer': onSfuAnswer(m); break;
    case 'error':
      console.warn('ground control:', m.data);
      // A refused name is the user's to fix; other errors are the client's own doing.
      if (typeof m.data === 'string' && /^Invalid username/.test(m.data)) toast('The server refused your name: ' + m.data);
      else if (typeof m.data === 'string' && /^Cannot /.test(m.data)) toast(m.data); // a moderation refused
      else onSfuRefused(m);
      break;
    default: break;
  }
}

function onMemberMessage(m) {
  if (m.sender === me.id && m.type !== 'text') return;
  switch (m.type) {
    case 'text': showText(m.sender, m.data); break;
    case 'offer': case 'answer': case 'icecandidate': if (state.media === 'p2p') signal(m.sender, m.type, m.data); break;
    case 'bye': removePeer(m.sender); break;
    case 'resync': if (state.media === 'p2p' && peers.has(m.sender)) resync(peers.get(m.sender), false); break;
    case 'screen': if (state.media === 'p2p') onScreen(m.sender, m.data); break;
    default: break;
  }
}

function onRoomInfo(info) {
  let { clients } = info;
  state.room = info;
  // Our own session before a reconnect, if the server still lists it, is nobody to show or call.
  state.members = clients.filter((c) => c && typeof c.id === 'string' && typeof c.username === 'string' && !state.formerIds.has(c.id));
  clients = state.members;
  const ids = new Set(clients.map((c) => c.id));
  for (const c of clients) {
    if (c.id === me.id || peers.has(c.id)) continue;
    (state.media === 'sfu' ? addMember : createPeer)(c.id);
    if (state.listed) announce(`${c.username} joined`);
  }
  state.listed = true;
  for (const id of [...peers.keys()]) if (!ids.has(id)) { announce(`${nameOf(id)} left`); removePeer(id); }
  for (const p of peers.values()) {
    nameTile(p, nameOf(p.id));
    p.avatar.textContent = initial(nameOf(p.id));
  }
  for (const [id, t] of state.screens) nameTile(t, `${nameOf(id)} — screen`);
  if (state.media === 'sfu') showStreams();
  $('people-count').textContent = `(${clients.length})`;
  const mine = clients.find((c) => c.id === me.id) || {};
  state.role = ['owner', 'cohost'].includes(mine.role) ? mine.role : 'guest';
  // What a moderator holds (the device itself was turned off when the moderation came; a room-info on its way
  // while the member turns it on again must not turn it off anew).
  state.held = new Set(Array.isArray(mine.held) ? mine.held : []);
  renderPeople(clients);
  renderAdmin();
  renderConns();
  if (state.resync) {
    state.resync = false;
    if (state.media === 'p2p') for (const p of peers.values()) resync(p, true);
  }
}

const initial = (name) => (Array.from(name.trim())[0] || '?').toUpperCase();
const nameOf = (id) => (state.members.find((c) => c.id === id) || { username: 'Major Tom' }).username;

// ---------------------------------------------------------------------------------------- peers

// A connection to member `id`, in a tile of its own, or in the tile of `old` (renewPeer).
function createPeer(id, old = null) {
  const pc = new RTCPeerConnection({ iceServers: state.turn ? [...state.iceServers, state.turn] : state.iceServers });
  const peer = {
    id, pc,
    polite: me.id < id,          // perfect negotiation: the polite side rolls back a colliding offer
    makingOffer: false, ignoreOffer: false,
    queue: Promise.resolve(),    // its signaling messages, handled in order
    pending: [],                 // ICE candidates that came before its description
    attached: false, attachTimer: 0, videoSender: null, micSender: null, screenTx: null, watchdog: 0,
    stream: new MediaStream(),   // its camera and microphone, as it sends them to us
    remote: new Map(),           // the streams it sends us, by id (its screen's among them)
    tile: null, video: null, label: null, avatar: null, // its tile (addTile)
  };
  peers.set(id, peer);
  // Offers that cross are resolved by perfect negotiation, but a Chromium peer that rolls back its
  // offer while still gathering may never gather again; so the polite side lets the other offer
  // first: it attaches its media when that offer arrives, or after a moment if none does.
  if (peer.polite) peer.attachTimer = setTimeout(() => attachMedia(peer), 1500);
  else attachMedia(peer);
  pc.ontrack = ({ track, streams }) => {
    const s = streams[0] || new MediaStream([track]);
    if (!peer.remote.has(s.id)) {
      peer.remote.set(s.id, s);
      s.onremovetrack = () => p2pShow(peer);
    }
    track.onended = () => p2pShow(peer);
    p2pShow(peer);
  };
  pc.onicecandidate = ({ candidate }) => { if (candidate) send(id, 'icecandidate', candidate.toJSON()); };
  pc.onnegotiationneeded = async () => {
    try {
      peer.makingOffer = true;
      await pc.setLocalDescription();
      // A colliding offer may have rolled ours back meanwhile: then there is nothing to send.
      if (pc.signalingState === 'have-local-offer') send(id, 'offer', { type: 'offer', sdp: pc.localDescription.sdp });
    } catch (err) {
      console.warn('offer failed', err);
    } finally {
      peer.makingOffer = false;
    }
  };
  pc.oniceconnectionstatechange = () => { if (pc.iceConnectionState === 'failed') pc.restartIce(); renderConns(); };
  pc.onconnectionstatechange = renderConns;
  // A pair whose ICE has not connected a while after negotiating (candidates lost in an offer
  // collision, a network change) starts again with fresh credentials; one side does it.
  pc.onsignalingstatechange = () => {
    clearTimeout(peer.watchdog);
    if (pc.signalingState !== 'stable' || peer.polite) return;
    peer.watchdog = setTimeout(() => {
      if (peers.get(id) === peer && ['new', 'checking', 'disconnected'].includes(pc.iceConnectionState)) {
        console.warn(`restarting ICE with ${id}`);
        pc.restartIce();
      }
    }, 5000);
  };
  if (old) {
    Object.assign(peer, { tile: old.tile, video: old.video, label: old.label, avatar: old.avatar });
    peer.video.srcObject = null;
    peer.avatar.hidden = false;
    setScreen(id, null);
  } else {
    addTile(peer);
  }
  return peer;
}

// A new connection to a member in place of the old one, in the same tile: after a reconnect made
// this page a new member, whose connections the others make anew.
function renewPeer(old) {
  peers.delete(old.id);
  clearTimeout(old.watchdog);
  clearTimeout(old.attachTimer);
  old.pc.close();
  createPeer(old.id, old);
}

// After Ground Control dropped, what either side of a pair sent through it meanwhile is lost: an
// offer still waiting for its answer, an answer, candidates; and a network change may have broken
// the pair's own path.  So the pair negotiates again with an ICE restart, made by its impolite side
// alone (the side perfect negotiation lets offer over the other): that side takes back an offer of
// its own still out, and restarts.  The page that reconnected tells each peer (tell) with a 'resync'
// message, so that a peer that is the impolite side does the same.
function resync(peer, tell) {
  if (tell) send(peer.id, 'resync', null);
  if (peer.polite) return;
  peer.queue = peer.queue.then(async () => {
    const pc = peer.pc;
    if (peers.get(peer.id) !== peer || pc.signalingState === 'closed') return;
    try {
      if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' });
      pc.restartIce();
    } catch (err) {
      console.warn(`restarting with ${peer.id} failed`, err);
    }
  });
}

function attachMedia(peer) {
  if (peer.attached) return;
  peer.attached = true;
  clearTimeout(peer.attachTimer);
  if (me.mic) peer.micSender = peer.pc.addTrack(me.mic, me.stream);
  if (me.cam) peer.videoSender = peer.pc.addTrack(me.cam, me.stream);
  p2pSendScreen(peer);
}

// Peer to peer, a screen share goes on a transceiver of its own (kept, inactive while there is none),
// beside the camera, in a stream of its own whose id a 'screen' message tells the peer.
function p2pSendScreen(peer) {
  if (!peer.attached) return;
  const tx = peer.screenTx, track = me.screen;
  if (usable(tx)) {
    tx.sender.replaceTrack(track).catch((err) => console.warn('replaceTrack', err));
    tx.direction = track ? 'sendonly' : 'inactive';
  } else if (track) {
    peer.screenTx = peer.pc.addTransceiver(track, { direction: 'sendonly', streams: [me.screenStream] });
  }
  send(peer.id, 'screen', { stream: me.screenStream.id, on: !!track });
}

// A member's 'screen' message: the id of its screen share's stream, and whether it shares now.
function onScreen(id, d) {
  if (!d || typeof d.stream !== 'string' || d.stream.length > 100) return;
  state.screenIds.set(id, { stream: d.stream, on: d.on === true });
  const peer = peers.get(id);
  if (peer && peer.pc) p2pShow(peer);
}

// Peer to peer: what member `peer` sends us, its camera and microphone in its tile, its screen in one of its own.
function p2pShow(peer) {
  if (peers.get(peer.id) !== peer) return;
  const sc = state.screenIds.get(peer.id) || {};
  const cam = [];
  let screen = null;
  for (const [id, s] of peer.remote) {
    for (const t of s.getTracks()) {
      if (t.readyState !== 'live') continue;
      if (id !== sc.stream) cam.push(t);
      else if (sc.on && t.kind === 'video') screen = t;
    }
  }
  const st = peer.stream;
  for (const t of st.getTracks()) if (!cam.includes(t)) st.removeTrack(t);
  for (const t of cam) if (!st.getTracks().includes(t)) st.addTrack(t);
  if (peer.video.srcObject !== st) {
    peer.video.srcObject = st;
    peer.video.play().catch(() => {});
  }
  peer.avatar.hidden = st.getVideoTracks().length > 0;
  setScreen(peer.id, screen);
  meter(peer.id, st.getAudioTracks()[0] || null);
}

// Perfect negotiation: the impolite side ignores a colliding offer, the polite side rolls back.
// Messages of one peer are handled in order.
function signal(from, type, data) {
  if (!me.id || from === me.id) return;
  const peer = peers.get(from) || createPeer(from);
  peer.queue = peer.queue.then(async () => {
    const pc = peer.pc;
    try {
      if (type === 'icecandidate') {
        if (!pc.remoteDescription) peer.pending.push(data); // its offer or answer is still on the way
        else try { await pc.addIceCandidate(data); } catch (err) { if (!peer.ignoreOffer) throw err; }
        return;
      }
      if (type === 'answer' && pc.signalingState !== 'have-local-offer') return; // an answer to an offer we rolled back
      const collision = type === 'offer' && (peer.makingOffer || pc.signalingState !== 'stable');
      peer.ignoreOffer = !peer.polite && collision;
      if (peer.ignoreOffer) return;
      if (type === 'offer') attachMedia(peer); // before the offer, so that its sections carry our media too
      await pc.setRemoteDescription({ type, sdp: data.sdp });
      for (const c of peer.pending.splice(0)) await pc.addIceCandidate(c).catch(() => {});
      if (type === 'offer') {
        await pc.setLocalDescription();
        send(from, 'answer', { type: pc.localDescription.type, sdp: pc.localDescription.sdp });
      }
    } catch (err) {
      console.warn(`signaling with ${from} failed`, err);
    }
  });
}

function removePeer(id) {
  const peer = peers.get(id);
  if (!peer) return;
  peers.delete(id);
  clearTimeout(peer.watchdog);
  clearTimeout(peer.attachTimer);
  if (peer.pc) peer.pc.close();
  peer.tile.remove();
  if (peer.audio) peer.audio.remove();
  setScreen(id, null);
  state.screenIds.delete(id);
  meter(id, null);
  renderConns();
}

function renderConns() {
  if (state.media === 'sfu') return; // one entry, the server's, kept by sfuStats
  $('conns').replaceChildren(...[...peers.values()].map((p) => el('li', {}, el('div', {}, nameOf(p.id)),
    el('div', { class: 'state' }, `connection: ${p.pc.connectionState} · ice: ${p.pc.iceConnectionState}`))));
}

// ---------------------------------------------------------------------------------------- media through the server (SFU)

// In an SFU room Ground Control's connection carries the media.  This page sends on transceivers of
// its own (sendonly, or inactive while off) and receives on recvonly ones, which it adds as
// `renegotiate` asks and never removes; each answer's `streams` says whose stream every recvonly
// mid now carries.  Only this page offers, one offer at a time: what changes while an offer is out
// is offered once its answer is in.
const LABELS = { audio: ['mic'], video: ['camera', 'screen'] }; // what a received stream of each kind may be
const ANSWER_WAIT = 10000; // ms to wait for an answer before taking the offer back and offering again
const MAX_SLOTS = 60;      // recvonly transceivers of one kind at most (a bound; the server asks for fewer)
const MID_URI = 'urn:ietf:params:rtp-hdrext:sdes:mid'; // the one header extension the server reads

// A member of an SFU room: its tile, and an <audio> for its microphone, heard with or without video.
function addMember(id) {
  const peer = { id, pc: null, audio: el('audio', { autoplay: true }) };
  if (state.sink) sinkTo(peer.audio, state.sink);
  peers.set(id, peer);
  addTile(peer);
  peer.tile.append(peer.audio);
  return peer;
}

// On the greeting (of each session: after a reconnect, the server has none of our streams any more):
// our microphone, camera and screen go on transceivers of their own, then the first offer.
function sfuStart() {
  const pc = state.gc.pc;
  const sfu = state.sfu = {
    send: { mic: null, camera: null, screen: null }, // our transceivers, by label
    want: { audio: 0, video: 0 },  // streams to receive, as the last `renegotiate` said
    streams: new Map(),            // recvonly mid -> {peer, label, kind, track}, as the last answer said
    pending: false,                // an offer is being made, is out, or its answer is being applied
    out: false, timer: 0,          // an offer is out (and when to give up on its answer)
    again: false,                  // something changed since the pending offer was made
    ssrcs: new Map(),              // mid -> the a=ssrc line the server's answers gave it last (keepSsrcs)
    stats: { state: pc.connectionState, rtt: null, up: null, down: null }, last: null, statsTimer: 0,
    statsLine: el('div', { class: 'state' }, 'connection: new'),
  };
  if (me.mic) sfu.send.mic = sendTransceiver(me.mic, 'sendonly');
  if (me.cam) sfu.send.camera = sendTransceiver(me.cam, me.cam.enabled ? 'sendonly' : 'inactive');
  if (me.screen) sfu.send.screen = sendTransceiver(me.screen, 'sendonly'); // shared before a reconnect, or while it went on
  $('conns').replaceChildren(el('li', {}, el('div', {}, 'Server'), sfu.statsLine));
  sfu.statsTimer = setInterval(sfuStats, 1000);
  sfuOffer();
}

// Ground Control's connection is closed or lost: so is what it carried, others' screens' tiles with it.
function sfuStop() {
  const sfu = state.sfu;
  if (!sfu) return;
  clearTimeout(sfu.timer);
  clearInterval(sfu.statsTimer);
  sfu.statsLine.textContent = 'connection: closed';
  for (const id of [...state.screens.keys()]) setScreen(id, null);
  state.sfu = null;
}

function sendTransceiver(track, direction) {
  const t = state.gc.pc.addTransceiver(track, { direction, streams: [me.stream] });
  trimOffer(t, track.kind);
  return t;
}

// The server answers Opus or VP8 and the mid header extension, nothing else: offering only those
// keeps each section small (about 500 bytes instead of 3 KB in Chromium, which lists a dozen video
// codecs and header extensions), so that an offer with many sections fits what the server reads.
function trimOffer(t, kind) {
  const want = kind === 'audio' ? /^audio\/opus$/i : /^video\/vp8$/i;
  try {
    const codecs = t.setCodecPreferences && RTCRtpReceiver.getCapabilities
      ? RTCRtpReceiver.getCapabilities(kind).codecs.filter((c) => want.test(c.mimeType)) : [];
    if (codecs.length) t.setCodecPreferences(codecs);
    if (t.setHeaderExtensionsToNegotiate) {
      t.setHeaderExtensionsToNegotiate(t.getHeaderExtensionsToNegotiate()
        .map((e) => (e.uri === MID_URI ? e : { ...e, direction: 'stopped' })));
    }
  } catch (err) {
    console.warn('could not trim the offer', err);
  }
}

// Our own transceivers are sendonly or inactive, so the recvonly ones are the receiving slots.
const recvSlots = (kind) => state.gc.pc.getTransceivers().filter((t) => t.direction === 'recvonly' && t.receiver.track.kind === kind);
// A section the server rejected (port 0 in its answer) stops its transceiver for good.
const usable = (t) => !!t && t.direction !== 'stopped' && t.currentDirection !== 'stopped';

function onRenegotiate(m) {
  const sfu = state.sfu;
  if (m.sender !== GC || !sfu || !m.data || typeof m.data !== 'object') return;
  for (const kind of ['audio', 'video']) {
    const n = m.data[kind];
    if (Number.isInteger(n) && n >= 0) sfu.want[kind] = Math.min(n, MAX_SLOTS);
  }
  sfuOffer();
}

// Offers what we send and enough recvonly slots for what the server has for us; if an offer is
// already pending, only notes that another is needed.
async function sfuOffer() {
  const sfu = state.sfu;
  if (!sfu || !state.gc) return;
  if (sfu.pending) {
    sfu.again = true;
    return;
  }
  sfu.pending = true;
  sfu.again = false;
  const pc = state.gc.pc;
  try {
    for (const kind of ['audio', 'video'])
      for (let n = recvSlots(kind).length; n < sfu.want[kind]; n++) trimOffer(pc.addTransceiver(kind, { direction: 'recvonly' }), kind);
    await pc.setLocalDescription(await pc.createOffer());
    if (state.sfu !== sfu) return; // left meanwhile
    const tracks = {};
    for (const [label, t] of Object.entries(sfu.send)) if (t && t.mid !== null && t.direction === 'sendonly') tracks[t.mid] = label;
    send(GC, 'offer', { type: 'offer', sdp: pc.localDescription.sdp, tracks });
    sfu.out = true;
    sfu.timer = setTimeout(() => sfuTakeBack('no answer', true), ANSWER_WAIT);
  } catch (err) {
    console.warn('offer to the server failed', err);
    sfu.pending = false;
  }
}

async function onSfuAnswer(m) {
  const sfu = state.sfu, d = m.data;
  if (m.sender !== GC || !sfu || !sfu.out || !d || typeof d !== 'object' || typeof d.sdp !== 'string') return;
  sfu.out = false;
  clearTimeout(sfu.timer);
  const pc = state.gc.pc;
  try {
    await pc.setRemoteDescription({ type: 'answer', sdp: keepSsrcs(d.sdp, sfu.ssrcs) });
    if (state.sfu === sfu) mapStreams(d.streams);
  } catch (err) {
    console.warn('the server\'s answer did not apply', err);
    if (pc.signalingState === 'have-local-offer') await pc.setLocalDescription({ type: 'rollback' }).catch(() => {});
  }
  sfu.pending = false;
  if (sfu.again) sfuOffer();
}

// An offer the server refused (it says so with an error instead of an answer) or did not answer
// in time is taken back; then what changed meanwhile is offered, or the same again after a timeout.
async function sfuTakeBack(why, again) {
  const sfu = state.sfu;
  if (!sfu || !sfu.out) return;
  sfu.out = false;
  clearTimeout(sfu.timer);
  console.warn('the server did not take our offer:', why);
  if (state.gc && state.gc.pc.signalingState === 'have-local-offer')
    await state.gc.pc.setLocalDescription({ type: 'rollback' }).catch((err) => console.warn('rollback failed', err));
  sfu.pending = false;
  if (again || sfu.again) sfuOffer();
}

// Ground Control's refusals of an offer name it ("Invalid offer: ..."); other errors leave it be.
function onSfuRefused(m) {
  if (m.sender === GC && typeof m.data === 'string' && /offer/i.test(m.data)) sfuTakeBack(m.data, false);
}

// Chromium (156) shows nothing more of a slot whose section an answer made inactive without its
// a=ssrc once a later answer brings the stream back: it decodes, but its track gets no frames.
// So an inactive section keeps the a=ssrc line its slot had last (ssrcs: mid -> that line).
function keepSsrcs(sdp, ssrcs) {
  return sdp.split('\r\nm=').map((section) => {
    const mid = (section.match(/\r\na=mid:([^\r]*)/) || [])[1];
    const ssrc = (section.match(/\r\n(a=ssrc:\d+ [^\r]*)/) || [])[1];
    if (mid === undefined) return section;
    if (ssrc) ssrcs.set(mid, ssrc);
    else if (ssrcs.has(mid) && /\r\na=inactive\r\n/.test(section)) return section.replace(/\r\na=mid:[^\r]*/, (m) => `${m}\r\n${ssrcs.get(mid)}`);
    return section;
  }).join('\r\nm=');
}

// Notes whose stream each of our recvonly mids carries now; the others carry nothing.
function mapStreams(streams) {
  const sfu = state.sfu;
  if (!streams || typeof streams !== 'object') streams = {};
  sfu.streams.clear();
  for (const t of state.gc.pc.getTransceivers()) {
    if (t.mid === null || t.direction !== 'recvonly' || !Object.hasOwn(streams, t.mid)) continue;
    const s = streams[t.mid], kind = t.receiver.track.kind;
    if (!s || typeof s.peer !== 'string' || !/^[0-9a-f]{32}$/.test(s.peer) || s.peer === me.id || !LABELS[kind].includes(s.label)) continue;
    sfu.streams.set(t.mid, { peer: s.peer, label: s.label, kind, track: t.receiver.track });
  }
  showStreams();
}

// Puts each received stream where it belongs: camera and microphone in the member's tile, a screen
// in a tile of its own.  Tiles are for members the room-info lists; the stream of someone it does
// not list yet waits for it.
function showStreams() {
  const sfu = state.sfu;
  const streams = sfu ? [...sfu.streams.values()] : [];
  const find = (id, label) => (streams.find((s) => s.peer === id && s.label === label) || {}).track || null;
  for (const p of peers.values()) {
    const camera = find(p.id, 'camera'), mic = find(p.id, 'mic');
    play(p.video, camera);
    p.avatar.hidden = !!camera;
    play(p.audio, mic);
    meter(p.id, mic);
  }
  if (!sfu) return;
  for (const id of [...state.screens.keys()]) if (!peers.has(id)) setScreen(id, null);
  for (const p of peers.values()) setScreen(p.id, find(p.id, 'screen'));
}

// Shows `track` (or nothing) in a media element, leaving it be if it shows that track already.
// (Emptied once, an element stays paused when given a stream again: it is told to play.)
function play(media, track) {
  const now = media.srcObject ? media.srcObject.getTracks()[0] || null : null;
  if (now === track) return;
  media.srcObject = track ? new MediaStream([track]) : null;
  if (track) media.play().catch(() => {});
}

// Starts (track) or stops (null) sending our microphone, camera or screen (label), and offers what
// changed.  A transceiver is made once and kept (inactive while off), unless the server rejected
// its section; another device of the same kind takes the place of the last one on it (resolves
// once it has).
function sfuSend(label, track) {
  const sfu = state.sfu;
  if (!sfu || !state.gc) return;
  const tx = sfu.send[label], direction = track ? 'sendonly' : 'inactive';
  let swap;
  if (usable(tx)) {
    if (track ? tx.sender.track !== track : label === 'screen') swap = tx.sender.replaceTrack(track).catch((err) => console.warn('replaceTrack', err));
    if (tx.direction === direction) return swap;
    tx.direction = direction;
  } else if (track) {
    sfu.send[label] = sendTransceiver(track, 'sendonly');
  } else {
    return swap;
  }
  sfuOffer();
  return swap;
}

// The Connections panel's one entry: the path to the server, from getStats() every second.
async function sfuStats() {
  const sfu = state.sfu, gc = state.gc;
  if (!sfu || !gc) return;
  let report;
  try {
    report = await gc.pc.getStats();
  } catch {
    return;
  }
  if (state.sfu !== sfu) return;
  let pair = null;
  for (const s of report.values()) if (s.type === 'transport' && s.selectedCandidatePairId) pair = report.get(s.selectedCandidatePairId) || null;
  const st = sfu.stats, last = sfu.last;
  st.state = gc.pc.connectionState;
  st.rtt = pair && typeof pair.currentRoundTripTime === 'number' ? pair.currentRoundTripTime * 1000 : null;
  sfu.last = pair ? { id: pair.id, time: pair.timestamp, sent: pair.bytesSent || 0, received: pair.bytesReceived || 0 } : null;
  if (pair && last && last.id === pair.id && pair.timestamp > last.time) {
    const seconds = (pair.timestamp - last.time) / 1000;
    st.up = (sfu.last.sent - last.sent) * 8 / seconds;
    st.down = (sfu.last.received - last.received) * 8 / seconds;
  } else {
    st.up = st.down = null;
  }
  sfu.statsLine.textContent = `connection: ${st.state} · round trip: ${st.rtt === null ? '–' : `${Math.round(st.rtt)} ms`}` +
    ` · up: ${bitrate(st.up)} · down: ${bitrate(st.down)}`;
}

const bitrate = (bits) => (bits === null ? '–' : bits >= 1e6 ? `${(bits / 1e6).toFixed(1)} Mbit/s` : `${Math.round(bits / 1e3)} kbit/s`);

// What is mapped now, for tests: [{peer, label, kind, mid}].
function remoteStreams() {
  return state.sfu ? [...state.sfu.streams].map(([mid, s]) => ({ peer: s.peer, label: s.label, kind: s.kind, mid })) : [];
}

// ---------------------------------------------------------------------------------------- video tiles

// A member's tile (peer), or our own (null).
function addTile(peer) {
  const name = peer ? nameOf(peer.id) : me.name;
  const t = makeTile(peer ? 'tile' : 'tile self', peer ? name : `${name} (you)`, initial(name));
  if (peer) {
    t.tile.dataset.clientId = peer.id;
    Object.assign(peer, t);
    if (state.sink && state.media === 'p2p') sinkTo(peer.video, state.sink);
    return;
  }
  t.video.muted = true;
  t.tile.id = 'self-tile';
  const mini = el('button', { type: 'button', class: 'mini' }, el('span', { 'aria-hidden': 'true' }, '⤡'));
  mini.addEventListener('click', () => setSelfView(state.ui.self === 'corner' ? 'tile' : 'corner'));
  t.tile.append(mini);
  setSelfView(state.ui.self);
  showSelf();
  meter('me', me.mic);
}

// A tile on the stage: a video, an avatar shown while there is none, a label, and a button over it
// all that puts it on the stage (or takes it off).  Returns {tile, video, label, avatar}.
function makeTile(cls, text, letter) {
  const t = {
    video: el('video', { autoplay: true, playsinline: true }),
    label: el('span', { class: 'label' }),
    avatar: el('div', { class: 'avatar', 'aria-hidden': 'true' }, letter),
    spot: el('button', { type: 'button', class: 'spot', 'aria-pressed': 'false' }),
  };
  t.tile = el('div', { class: cls, role: 'group' }, t.video, t.avatar, t.label, t.spot);
  t.spot.addEventListener('click', () => spotlight(t.tile));
  for (const e of ['resize', 'emptied']) t.video.addEventListener(e, relayout); // its size known or changed
  nameTile(t, text);
  $('grid').append(t.tile);
  return t;
}

function nameTile(t, text) {
  t.label.textContent = text;
  t.tile.setAttribute('aria-label', text);
  t.tile.querySelector('.spot').setAttribute('aria-label', `Show ${text} on the stage`);
}

function showSelf() {
  const tile = $('self-tile');
  if (!tile) return;
  const video = tile.querySelector('video');
  const track = me.cam && me.cam.enabled ? me.cam : null; // the screen has a tile of its own
  play(video, track);
  video.classList.toggle('mirror', !!track);
  tile.querySelector('.avatar').hidden = !!track;
}

// Our own screen share has a tile of its own, as it has at the others'.
function showOwnScreen(track) {
  if (track && !state.selfScreen) {
    state.selfScreen = makeTile('tile self screen', `${me.name} (you) — screen`, '');
    state.selfScreen.avatar.hidden = true;
    state.selfScreen.video.muted = true;
  }
  if (track) play(state.selfScreen.video, track);
  else if (state.selfScreen) {
    state.selfScreen.tile.remove();
    state.selfScreen = null;
  }
}

// Member id's screen share (track), or none (null), in a tile of its own.  A new one takes the stage.
function setScreen(id, track) {
  let t = state.screens.get(id);
  if (!track) {
    if (t) t.tile.remove();
    state.screens.delete(id);
    return;
  }
  if (!t) {
    t = makeTile('tile screen', '', '');
    t.avatar.hidden = true;
    t.video.muted = true;
    t.tile.dataset.screenOf = id;
    state.screens.set(id, t);
    Object.assign(state.ui, { spot: null, grid: false });
    announce(`${nameOf(id)} is presenting`);
  }
  nameTile(t, `${nameOf(id)} — screen`);
  play(t.video, track);
}

// ---------------------------------------------------------------------------------------- the stage

// Tiles are placed by arrange(), absolutely, each keeping its video's aspect.  In the grid, every
// tile gets a cell of the same size (of the videos' usual aspect), as many columns as make the
// cells largest for the stage, rows centred; a tile whose video has another shape keeps it inside
// its cell.  When the cells would get too small, the grid shows a page at a time.  A tile on the
// stage (a screen shared by another member, or one chosen) takes what a strip of the others (beside
// it on a wide stage, below on a tall one) leaves.  Our own tile may be a corner picture or hidden.
const GAP = 8;      // px between tiles and around them
const PAGER = 44;   // px kept below the tiles for the pager when there is one
let queued = false;
function relayout() {
  if (queued) return;
  queued = true;
  queueMicrotask(() => { queued = false; arrange(); });
}
// Tiles come and go, avatars show or hide (a video stops or starts): the stage is laid out again.
new MutationObserver((records) => {
  if (records.some((r) => r.target.id === 'grid' || r.target.closest('.tile'))) relayout();
}).observe($('grid'), { childList: true, subtree: true, attributeFilter: ['hidden'] });
let stillTimer = 0;
new ResizeObserver(() => {
  // No transition while the window is being resized or turned: tiles follow it at once.
  $('grid').classList.add('still');
  clearTimeout(stillTimer);
  stillTimer = setTimeout(() => $('grid').classList.remove('still'), 300);
  arrange();
}).observe($('grid'));

// The tile on the stage: the one chosen, else the newest screen shared by another, unless the grid was chosen.
function stageTile() {
  const ui = state.ui;
  if (ui.spot && !ui.spot.isConnected) ui.spot = null;
  if (ui.spot || ui.grid) return ui.spot;
  const screens = [...state.screens.values()];
  return screens.length ? screens[screens.length - 1].tile : null;
}

function spotlight(tile) {
  const on = stageTile() !== tile;
  Object.assign(state.ui, { spot: on ? tile : null, grid: !on, page: 0 });
  relayout();
}

// The width / height of a tile's video, or 0 while it shows none.
function aspectOf(tile) {
  const v = tile.querySelector('video'), a = tile.querySelector('.avatar');
  return v.videoWidth && v.srcObject && (!a || a.hidden) ? v.videoWidth / v.videoHeight : 0;
}

// The best grid for n cells of aspect a in w x h: {cols, rows, cw, ch}.
function bestGrid(n, a, w, h) {
  let best = { cols: 1, rows: n, cw: 0, ch: 0 };
  for (let cols = 1; cols <= n; cols++) {
    const rows = Math.ceil(n / cols);
    const cw = Math.min((w - GAP * (cols - 1)) / cols, ((h - GAP * (rows - 1)) / rows) * a);
    if (cw > best.cw) best = { cols, rows, cw, ch: cw / a };
  }
  return best;
}

// Places a tile in the box {x, y, w, h}, as large as its aspect allows (the whole box without one).
function place(tile, x, y, w, h) {
  const a = aspectOf(tile);
  if (a && w / h > a) { x += (w - h * a) / 2; w = h * a; } else if (a) { y += (h - w / a) / 2; h = w / a; }
  const s = tile.style;
  s.transform = `translate(${Math.round(x)}px, ${Math.round(y)}px)`;
  s.width = `${Math.round(w)}px`;
  s.height = `${Math.round(h)}px`;
}

// Places every tile (see above), shows the pager if there are pages, and says which tile is on the stage.
function arrange() {
  const grid = $('grid'), W = grid.clientWidth, H = grid.clientHeight, ui = state.ui;
  if (!W || !H) return;
  const all = [...grid.querySelectorAll(':scope > .tile')], self = $('self-tile');
  const selfView = all.length > 1 ? ui.self : 'tile'; // alone, we see ourselves whatever was chosen
  const stage = stageTile();
  for (const t of all) t.classList.remove('off', 'pip', 'gone', 'on-stage');
  if (self) self.classList.add(...(selfView === 'corner' ? ['pip'] : selfView === 'hidden' ? ['gone'] : []));
  const tiles = all.filter((t) => t !== stage && (t !== self || selfView === 'tile'));
  // The cells' aspect: the median of the videos', 4:3 without any.
  const known = tiles.map(aspectOf).filter(Boolean).sort((x, y) => x - y);
  const a = known.length ? known[known.length >> 1] : 4 / 3;
  let x = GAP, y = GAP, w = W - 2 * GAP, h = H - 2 * GAP, lay;
  if (stage) {
    stage.classList.add('on-stage');
    let main = { x, y, w, h };
    if (tiles.length) {
      // The strip: a column at the right or a row below, whichever leaves the staged tile larger.
      const sa = aspectOf(stage) || 16 / 9, area = (bw, bh) => Math.min(bw, bh * sa) ** 2 / sa;
      const side = Math.max(120, Math.min(260, w * 0.2)), below = Math.max(80, Math.min(170, h * 0.22));
      const wide = area(w - side - GAP, h) >= area(w, h - below - GAP);
      const size = wide ? side : below;
      main = wide ? { x, y, w: w - size - GAP, h } : { x, y, w, h: h - size - GAP };
      const cw = wide ? size : Math.min(size * a, w), ch = wide ? Math.min(size / a, h) : size;
      const room = wide ? h : w, step = wide ? ch + GAP : cw + GAP;
      let per = Math.max(1, Math.floor((room + GAP) / step));
      if (per < tiles.length) per = Math.max(1, Math.floor((room - PAGER + GAP) / step));
      lay = { per, cells: (n) => {
        const len = n * step - GAP, start = (room - len) / 2;
        return Array.from({ length: n }, (_, i) => (wide ? [x + w - size, y + start + i * step, cw, ch] : [x + (w - len) / 2 + i * step, y + h - size, cw, ch]));
      } };
    }
    place(stage, main.x, main.y, main.w, main.h);
  } else if (tiles.length) {
    // As many per page as keep cells this wide at least.
    const min = Math.min(160, W / 2.6);
    let per = tiles.length;
    while (per > 1 && bestGrid(per, a, w, h).cw < min) per--;
    if (per < tiles.length) {
      h -= PAGER;
      while (per > 1 && bestGrid(per, a, w, h).cw < min) per--;
    }
    lay = { per, cells: (n) => {
      const g = bestGrid(n, a, w, h), top = y + (h - g.rows * g.ch - (g.rows - 1) * GAP) / 2;
      return Array.from({ length: n }, (_, i) => {
        const row = Math.floor(i / g.cols), inRow = Math.min(g.cols, n - row * g.cols);
        const left = x + (w - inRow * g.cw - (inRow - 1) * GAP) / 2;
        return [left + (i % g.cols) * (g.cw + GAP), top + row * (g.ch + GAP), g.cw, g.ch];
      });
    } };
  }
  const pages = lay ? Math.ceil(tiles.length / lay.per) : 1;
  ui.page = Math.max(0, Math.min(ui.page, pages - 1));
  if (lay) {
    const shown = tiles.slice(ui.page * lay.per, (ui.page + 1) * lay.per);
    const cells = lay.cells(shown.length);
    for (const t of tiles) if (!shown.includes(t)) t.classList.add('off');
    shown.forEach((t, i) => place(t, ...cells[i]));
  }
  if (self && selfView === 'corner') {
    const sa = aspectOf(self) || 4 / 3, pw = Math.max(96, Math.min(220, W * 0.22, (H * 0.3) * sa));
    place(self, W - pw - 2 * GAP, H - pw / sa - 2 * GAP - (pages > 1 ? PAGER : 0), pw, pw / sa);
  }
  if ($('pager').hidden !== pages < 2) $('pager').hidden = pages < 2;
  const pageNo = `${ui.page + 1} / ${pages}`;
  if ($('page-no').textContent !== pageNo) $('page-no').textContent = pageNo;
  $('page-prev').disabled = ui.page === 0;
  $('page-next').disabled = ui.page === pages - 1;
  for (const t of all) t.querySelector('.spot').setAttribute('aria-pressed', String(t === stage));
  const layoutButton = $('toggle-layout');
  layoutButton.hidden = !stage && !state.screens.size && !ui.spot;
  layoutButton.setAttribute('aria-pressed', String(!!stage));
}

$('page-prev').addEventListener('click', () => { state.ui.page--; arrange(); });
$('page-next').addEventListener('click', () => { state.ui.page++; arrange(); });
// Presentation or grid: the grid, or back to the newest screen shared (or the tile chosen last).
$('toggle-layout').addEventListener('click', () => {
  const ui = state.ui, staged = stageTile();
  if (staged) Object.assign(ui, { last: staged, spot: null, grid: true });
  else Object.assign(ui, { spot: ui.last && ui.last.isConnected && !ui.last.classList.contains('screen') ? ui.last : null, grid: false });
  ui.page = 0;
  arrange();
});

// Our own tile in the grid ('tile'), as a corner picture ('corner'), or not shown ('hidden').
function setSelfView(view) {
  state.ui.self = view;
  localStorage.setItem('camus.self', view);
  const mini = document.querySelector('#self-tile .mini');
  if (mini) {
    mini.setAttribute('aria-label', view === 'corner' ? 'Put your video back in the grid' : 'Make your video a small corner picture');
    mini.firstChild.textContent = view === 'corner' ? '⤢' : '⤡';
  }
  for (const r of document.querySelectorAll('input[name=self]')) r.checked = r.value === view;
  relayout();
}
for (const r of document.querySelectorAll('input[name=self]')) r.addEventListener('change', () => setSelfView(r.value));

// ---------------------------------------------------------------------------------------- controls

function setPressed(button, on) {
  button.setAttribute('aria-pressed', String(on));
  button.classList.toggle('off', !on);
}

function toggleCamera() {
  if (!me.cam) return toast('No camera: choose one in Settings');
  me.cam.enabled = !me.cam.enabled;
  if (me.cam.enabled) unhold('camera');
  setPressed($('toggle-camera'), me.cam.enabled);
  // Through the server, a camera that is off is not sent at all: the others see an avatar.
  if (state.sfu) sfuSend('camera', me.cam.enabled ? me.cam : null);
  showSelf();
  announce(me.cam.enabled ? 'Camera on' : 'Camera off');
}
$('toggle-camera').addEventListener('click', toggleCamera);

function toggleMic() {
  if (!me.mic) return toast('No microphone: choose one in Settings');
  me.mic.enabled = !me.mic.enabled;
  if (me.mic.enabled) unhold('mic');
  setPressed($('toggle-mic'), me.mic.enabled);
  if (me.mic.enabled) $('muted-hint').hidden = true;
  announce(me.mic.enabled ? 'Microphone on' : 'Microphone off');
}
$('toggle-mic').addEventListener('click', toggleMic);

async function startShare() {
  let s;
  try {
    s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
  } catch {
    return toast('Screen sharing was not started');
  }
  if (me.screen) stopShare();
  me.screen = s.getVideoTracks()[0];
  me.screen.contentHint = 'detail';
  me.screen.onended = stopShare;
  unhold('screen');
  shareScreen();
}

function stopShare() {
  if (!me.screen) return;
  me.screen.onended = null;
  me.screen.stop();
  me.screen = null;
  shareScreen();
}

// Sends our screen (me.screen) or stops sending it, beside the camera, which goes on.
function shareScreen() {
  if (state.media === 'sfu') sfuSend('screen', me.screen);
  else for (const p of peers.values()) p2pSendScreen(p);
  showOwnScreen(me.screen);
  $('toggle-screen').setAttribute('aria-pressed', String(!!me.screen));
  announce(me.screen ? 'You are presenting' : 'You stopped presenting');
}

$('toggle-screen').addEventListener('click', () => (me.screen ? stopShare() : startShare()));
if (!navigator.mediaDevices || !navigator.mediaDevices.getDisplayMedia) $('toggle-screen').hidden = true;

function showPanel(name) {
  for (const n of ['chat', 'people', 'conns']) {
    $(`tab-${n}`).setAttribute('aria-selected', String(n === name));
    $(`tab-${n}`).tabIndex = n === name ? 0 : -1;
    $(`panel-${n}`).hidden = n !== name;
  }
  if (name === 'chat') clearUnread();
}
for (const n of ['chat', 'people', 'conns']) $(`tab-${n}`).addEventListener('click', () => showPanel(n));
// Tabs as a tab list: the arrows move between them.
$('side').querySelector('.tabs').addEventListener('keydown', (e) => {
  const tabs = ['chat', 'people', 'conns'], i = tabs.findIndex((n) => !$(`panel-${n}`).hidden);
  const k = { ArrowRight: 1, ArrowLeft: 2, Home: -i, End: 2 - i }[e.key];
  if (k === undefined || !e.target.matches('[role=tab]')) return;
  e.preventDefault();
  const n = tabs[(i + k + 3) % 3];
  showPanel(n);
  $(`tab-${n}`).focus();
});

const sideOpen = () => !$('side').classList.contains('collapsed');
function openSide(open) {
  $('side').classList.toggle('collapsed', !open);
  $('toggle-side').setAttribute('aria-expanded', String(open));
  if (open && !$('panel-chat').hidden) clearUnread();
}
$('toggle-side').addEventListener('click', () => openSide(!sideOpen()));
$('close-side').addEventListener('click', () => { openSide(false); $('toggle-side').focus(); });
// On a phone (or a window made that narrow) the panel is a sheet over the stage: closed to start with.
const narrow = matchMedia('(max-width: 760px)');
if (narrow.matches) openSide(false);
narrow.addEventListener('change', () => { if (narrow.matches) openSide(false); });

// Leaving is no drop: nothing reconnects after it (state.conn 'left'), a try under way included.
function leave() {
  state.conn = 'left';
  if (state.wake) state.wake();
  send(GC, 'bye', null);
  for (const p of peers.values()) if (p.pc) p.pc.close();
  peers.clear();
  if (state.gc) state.gc.pc.close();
  state.gc = null;
  for (const pc of state.stale.splice(0)) pc.close();
  sfuStop();
  for (const t of me.stream.getTracks()) t.stop();
  if (me.screen) me.screen.stop();
  for (const k of [...audio.meters.keys()]) meter(k, null);
}
// Leave waits (half a second at most) for the bye to be on its way: closing the connection at once
// could drop it, and the others would see this member until the server's consent timeout.
// (The server closes the connection on the bye: that is no drop either.)  It asks nothing, and
// offers to rejoin.
$('leave').addEventListener('click', async () => {
  const dc = state.gc && state.gc.dc;
  state.conn = 'left';
  if (state.wake) state.wake();
  send(GC, 'bye', null);
  for (let i = 0; dc && dc.readyState === 'open' && dc.bufferedAmount > 0 && i < 25; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 50));
  leave();
  $('call').hidden = true;
  $('left').hidden = false;
  setUnread(0);
  $('left-title').focus();
});
addEventListener('pagehide', leave);
// Rejoin: the page again, which joins by itself with the name and devices it had.
$('rejoin-room').addEventListener('click', () => {
  sessionStorage.setItem('camus.rejoin', roomId);
  location.reload();
});

// The invite link: the system's share sheet where the browser has one, else the clipboard.
if (navigator.share) $('copy-invite').querySelector('.text').textContent = 'Share link';
$('copy-invite').addEventListener('click', async () => {
  const url = $('invite-link').value;
  if (navigator.share) return navigator.share({ title: state.title, url }).catch(() => {});
  try {
    await navigator.clipboard.writeText(url);
  } catch {
    const input = $('invite-link');
    input.select();
    document.execCommand('copy');
  }
  toast('Invite link copied');
});

// ---------------------------------------------------------------------------------------- running the room

// Owners (with the room's owner key) and co-hosts run the room: the server checks every request,
// and tells every member what was done and by whom.  A moderator's mute turns the member's own
// device off here too (in an SFU room the server also stops forwarding it); turning it on again
// is the member's to do.
function moderate(data) { send(GC, 'moderate', data); }

function unhold(what) {
  if (!state.held.delete(what)) return;
  send(GC, 'unmute', { what });
}

function onModeration(d) {
  if (!d || typeof d.action !== 'string') return;
  const by = d.by === me.id ? 'You' : typeof d.by_name === 'string' ? d.by_name : 'The owner';
  const you = d.target === me.id;
  const target = you ? 'you' : typeof d.target_name === 'string' ? d.target_name : 'someone';
  const whose = you ? 'your' : `${target}'s`;
  const text = {
    mute: d.what === 'camera' ? `${by} turned off ${whose} camera` : d.what === 'screen' ? `${by} stopped ${whose} screen share` : `${by} muted ${target}`,
    remove: `${by} removed ${target} from the room`,
    cohost: d.cohost === false ? `${by} took back ${whose} co-host role` : `${by} made ${target} a co-host`,
    rename: `${by} renamed the room`,
    password: d.password ? `${by} set a password on the room` : `${by} removed the room's password`,
    lock: d.locked === false ? `${by} unlocked the room` : `${by} locked the room: nobody new can join`,
    limit: `${by} set the guest limit to ${d.guest_limit || 'none'}`,
    media: `${by} switched the room to video ${d.media === 'sfu' ? 'through the server' : 'between browsers'}`,
    end: `${by} ended the room`,
  }[d.action];
  if (!text) return;
  notice(text);
  announce(text);
  if (you && d.action === 'mute') {
    toast(text);
    if (d.what === 'camera') { if (me.cam && me.cam.enabled) toggleCamera(); } else if (d.what === 'screen') stopShare();
    else if (me.mic && me.mic.enabled) toggleMic();
    state.held.add(d.what || 'mic');
  }
  if ((you && d.action === 'remove') || d.action === 'end') ended(text);
  // The room's media changed: this page joins again in the new mode, as after Leave and Rejoin.
  if (d.action === 'media' && d.media !== state.media) setTimeout(() => { leave(); sessionStorage.setItem('camus.rejoin', roomId); location.reload(); }, 1000);
}

// Out of the room for good (removed, or the room ended): nothing reconnects, and nothing offers to.
function ended(why) {
  state.conn = 'left';
  leave();
  $('call').hidden = true;
  $('left').hidden = false;
  $('left-title').textContent = why;
  $('left').querySelector('.hint').textContent = 'The room is closed to you now.';
  $('rejoin-room').hidden = true;
  setUnread(0);
  $('left-title').focus();
}

// The People panel: each member, its role, what a moderator turned off, and to moderators the
// buttons that act on it.
function renderPeople(clients) {
  const mod = state.role !== 'guest';
  const HELD = { mic: 'muted', camera: 'camera off', screen: 'screen stopped' };
  $('people').replaceChildren(...clients.map((c) => {
    const badges = [c.role === 'owner' ? 'owner' : c.role === 'cohost' ? 'co-host' : null,
      ...(Array.isArray(c.held) ? c.held : []).map((h) => HELD[h])].filter(Boolean);
    const li = el('li', {}, el('span', { class: 'who' }, c.id === me.id ? `${c.username} (you)` : c.username),
      ...badges.map((b) => el('span', { class: 'badge-role' }, b)));
    if (mod && c.id !== me.id && !(c.role === 'owner' && state.role !== 'owner')) {
      const act = (label, data) => {
        const b = el('button', { type: 'button', class: 'small', 'aria-label': `${label}: ${c.username}` }, label);
        b.addEventListener('click', () => moderate({ ...data, target: c.id }));
        return b;
      };
      const tools = el('span', { class: 'mod' }, act('Mute', { action: 'mute', what: 'mic' }), act('Camera off', { action: 'mute', what: 'camera' }));
      if (state.role === 'owner' && c.role !== 'owner') {
        tools.append(act(c.role === 'cohost' ? 'Not co-host' : 'Co-host', { action: 'cohost', cohost: c.role !== 'cohost' }));
      }
      tools.append(act('Remove', { action: 'remove' }));
      li.append(tools);
    }
    return li;
  }));
}

// The room's settings, to its moderators.
function renderAdmin() {
  const r = state.room;
  $('room-admin').hidden = state.role === 'guest';
  if (typeof r.name === 'string' && document.activeElement !== $('admin-name')) $('admin-name').value = r.name;
  setPressed($('admin-lock'), !!r.locked);
  $('admin-lock').textContent = r.locked ? 'Unlock the room' : 'Lock the room';
  $('admin-nopw').hidden = !r.password;
  if (document.activeElement !== $('admin-limit-n')) $('admin-limit-n').value = r.guest_limit || '';
  $('admin-media').textContent = r.media === 'sfu' ? 'Send video between browsers' : 'Send video through the server';
  $('admin-end').hidden = state.role !== 'owner';
  $('admin-cohost-link').hidden = !state.owner;
}
$('admin-rename').addEventListener('submit', (e) => { e.preventDefault(); moderate({ action: 'rename', name: $('admin-name').value }); });
$('admin-password').addEventListener('submit', (e) => {
  e.preventDefault();
  if ($('admin-pw').value) moderate({ action: 'password', password: $('admin-pw').value });
  $('admin-pw').value = '';
});
$('admin-nopw').addEventListener('click', () => moderate({ action: 'password', password: null }));
$('admin-limit').addEventListener('submit', (e) => {
  e.preventDefault();
  const n = $('admin-limit-n').value;
  moderate({ action: 'limit', guest_limit: n ? Number(n) : null });
});
$('admin-lock').addEventListener('click', () => moderate({ action: 'lock', locked: !state.room.locked }));
$('admin-media').addEventListener('click', () => moderate({ action: 'media', media: state.room.media === 'sfu' ? 'p2p' : 'sfu' }));
$('admin-end').addEventListener('click', () => { if (confirm('End the room for everyone in it?')) moderate({ action: 'end' }); });
$('admin-cohost-link').addEventListener('click', async () => {
  const url = `${location.origin}/rtc/${encodeURIComponent(roomId)}#owner=${state.owner}`;
  try { await navigator.clipboard.writeText(url); toast('Co-host link copied: whoever opens it runs the room with you'); } catch { prompt('The co-host link', url); }
});

// ---------------------------------------------------------------------------------------- devices during the call

// Our camera or microphone (which: 'cam' or 'mic') becomes track (or none): shown, measured, and
// sent in place of the old one, which stops.  A track that ends by itself (its device unplugged)
// is replaced by the next device of its kind.
function setTrack(which, track) {
  const old = me[which];
  if (old === track) return;
  if (old) {
    if (track) track.enabled = old.enabled;
    old.onended = null;
    me.stream.removeTrack(old);
  }
  me[which] = track;
  if (track) {
    me.stream.addTrack(track);
    const id = track.getSettings().deviceId;
    track.onended = () => lostDevice(which, track, id);
  }
  // The old track stops once no sender has it any more (a sender whose track ended first sends nothing after).
  const swaps = [];
  const key = which === 'cam' ? 'videoSender' : 'micSender';
  // (Through the server a camera that is off is not sent; a muted microphone sends silence.)
  if (state.sfu) swaps.push(sfuSend(which === 'cam' ? 'camera' : 'mic', track && (track.enabled || which === 'mic') ? track : null));
  else if (state.media === 'p2p') {
    for (const p of peers.values()) {
      if (!p.attached || !p.pc) continue;
      if (p[key]) swaps.push(p[key].replaceTrack(track).catch((err) => console.warn('replaceTrack', err)));
      else if (track) p[key] = p.pc.addTrack(track, me.stream);
    }
  }
  if (old) Promise.all(swaps).then(() => old.stop());
  const button = $(which === 'cam' ? 'toggle-camera' : 'toggle-mic');
  setPressed(button, !!track && track.enabled);
  if (which === 'cam') showSelf();
  else meter('me', track);
}

// Opens device deviceId of a kind ('cam' or 'mic') and uses it; resolves whether it could.
async function useDevice(which, deviceId) {
  const c = deviceId ? { deviceId: { exact: deviceId } } : true;
  try {
    const s = await openMedia(which === 'cam' ? { video: c } : { audio: c });
    if (state.conn === 'left') return s.getTracks()[0].stop(), false;
    setTrack(which, s.getTracks()[0]);
    return true;
  } catch (err) {
    console.warn(`could not open ${deviceId}`, err);
    return false;
  }
}

async function lostDevice(which, track, id) {
  if (me[which] !== track || state.conn === 'left') return;
  const what = which === 'cam' ? 'camera' : 'microphone';
  const kind = which === 'cam' ? 'videoinput' : 'audioinput';
  const next = (await listDevices()).filter((d) => d.kind === kind && d.deviceId !== id);
  let used = null;
  for (const d of next) if (await useDevice(which, d.deviceId)) { used = d; break; }
  if (!used) setTrack(which, null);
  const text = `${track.label || `Your ${what}`} stopped: ${used ? `now using ${used.label || `another ${what}`}` : `no other ${what} was found`}`;
  notice(text);
  toast(text);
}

// The lists of devices (before joining and in Settings); resolves what enumerateDevices said.
let knownDevices = null; // kind + id of each device, as the last devicechange found them
async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return [];
  const devices = await navigator.mediaDevices.enumerateDevices();
  const names = { videoinput: 'Camera', audioinput: 'Microphone', audiooutput: 'Speaker' };
  for (const [ids, kind, track] of [[['camera-select', 'set-camera'], 'videoinput', me.cam], [['mic-select', 'set-mic'], 'audioinput', me.mic], [['set-speaker'], 'audiooutput', null]]) {
    const list = devices.filter((d) => d.kind === kind);
    for (const id of ids) {
      const select = $(id);
      const chosen = track ? track.getSettings().deviceId : kind === 'audiooutput' ? state.sink : select.value;
      const options = list.map((d, i) => el('option', { value: d.deviceId }, d.label || `${names[kind]} ${i + 1}`));
      if (!options.length) options.push(el('option', { value: '' }, 'None found'));
      select.replaceChildren(...options);
      if (chosen) select.value = chosen;
    }
  }
  if (!knownDevices) knownDevices = new Set(devices.map((d) => d.kind + d.deviceId));
  return devices;
}

// A device plugged in (or out) mid-call is offered (or no longer): the lists are made again, and a new one is named.
if (navigator.mediaDevices) navigator.mediaDevices.addEventListener('devicechange', async () => {
  const devices = await listDevices();
  const before = knownDevices;
  knownDevices = new Set(devices.map((d) => d.kind + d.deviceId));
  if (!before || $('call').hidden) return;
  const fresh = devices.filter((d) => !before.has(d.kind + d.deviceId) && d.deviceId !== 'default' && d.deviceId !== 'communications');
  if (fresh.length) toast(`New: ${fresh.map((d) => d.label || d.kind).join(', ')} — choose it in Settings`);
});

// The speaker: every element that plays a member's sound (its <audio> through the server, its
// video peer to peer) plays there.
function setSink(id) {
  state.sink = id;
  for (const p of peers.values()) sinkTo(p.audio || p.video, id);
}
const sinkTo = (media, id) => media.setSinkId && media.setSinkId(id).catch((err) => console.warn('setSinkId', err));
if (!('setSinkId' in HTMLMediaElement.prototype)) $('speaker-row').hidden = true;

$('set-camera').addEventListener('change', (e) => useDevice('cam', e.target.value).then((ok) => ok || toast('That camera could not be opened')));
$('set-mic').addEventListener('change', (e) => useDevice('mic', e.target.value).then((ok) => ok || toast('That microphone could not be opened')));
$('set-speaker').addEventListener('change', (e) => setSink(e.target.value));
$('open-settings').addEventListener('click', async () => {
  await listDevices();
  $('settings').showModal();
});

// ---------------------------------------------------------------------------------------- who is speaking

// Each microphone heard (ours too) goes through an AnalyserNode; ten times a second the loudest
// sample of each lights its tile.  Ours is measured on a copy of the track, which stays on while the
// microphone is muted: talking while muted brings up a hint.
const audio = { ctx: null, meters: new Map(), loud: [], hinted: -1e9 };
const LOUD = 10;   // of 128: the peak that counts as speaking (about -22 dBFS)
const HOLD = 500;  // ms a tile stays lit after the last loud moment

function startMeters() {
  if (audio.ctx || !window.AudioContext) return;
  audio.ctx = new AudioContext();
  // A page that joined by itself (Rejoin) may start suspended, until the user does something.
  addEventListener('pointerdown', () => audio.ctx.resume(), { once: true });
  addEventListener('keydown', () => audio.ctx.resume(), { once: true });
  setInterval(levels, 100);
}

// Measures track as key's ('me', or a member's id) (or stops measuring it).
function meter(key, track) {
  const m = audio.meters.get(key);
  if (m && m.source === track) return;
  if (m) {
    m.node.disconnect();
    m.track.stop();
    audio.meters.delete(key);
  }
  if (!track || !audio.ctx || track.readyState !== 'live') return;
  const copy = track.clone();
  copy.enabled = true;
  const an = audio.ctx.createAnalyser();
  an.fftSize = 4096; // 85 ms at 48 kHz: most of each 100 ms is seen
  const node = audio.ctx.createMediaStreamSource(new MediaStream([copy]));
  node.connect(an);
  audio.meters.set(key, { source: track, track: copy, node, an, buf: new Uint8Array(an.fftSize), at: -1e9 });
}

function levels() {
  const now = performance.now();
  for (const [key, m] of audio.meters) {
    m.an.getByteTimeDomainData(m.buf);
    let peak = 0;
    for (const v of m.buf) peak = Math.max(peak, Math.abs(v - 128));
    if (peak >= LOUD) m.at = now;
    const tile = key === 'me' ? $('self-tile') : peers.has(key) && peers.get(key).tile;
    const muted = key === 'me' && !(me.mic && me.mic.enabled);
    if (tile) tile.classList.toggle('speaking', now - m.at < HOLD && !muted);
    if (!muted) continue;
    // Talking: loud three times within 2 s (a cough or a knock is not).
    if (peak >= LOUD) audio.loud.push(now);
    while (audio.loud.length && now - audio.loud[0] > 2000) audio.loud.shift();
    if (audio.loud.length >= 3 && now - audio.hinted > 15000) {
      audio.hinted = now;
      const hint = $('muted-hint');
      hint.textContent = matchMedia('(pointer: coarse)').matches ? 'You are muted: tap the microphone to talk' : 'You are muted: press M to talk';
      hint.hidden = false;
      setTimeout(() => { hint.hidden = true; }, 4000);
    }
  }
}

// ---------------------------------------------------------------------------------------- keyboard

// Single keys while no text field has the focus (they can be turned off, in the help).
const SHORTCUTS = { m: 'toggle-mic', v: 'toggle-camera', s: 'toggle-screen', g: 'toggle-layout' };
addEventListener('keydown', (e) => {
  if ($('call').hidden || e.ctrlKey || e.metaKey || e.altKey || e.repeat || document.querySelector('dialog[open]')) return;
  if (e.target.closest('input, textarea, select, [contenteditable]')) return;
  const k = e.key, ui = state.ui;
  if (k === '?') $('show-help').click();
  else if (!ui.keys) return;
  else if (k === 'L' && e.shiftKey) $('leave').click();
  else if (k === 'c' || k === 'p') {
    const panel = k === 'c' ? 'chat' : 'people';
    if (sideOpen() && !$(`panel-${panel}`).hidden) openSide(false);
    else {
      openSide(true);
      showPanel(panel);
      (k === 'c' ? $('chat-input') : $('tab-people')).focus();
    }
  } else if (SHORTCUTS[k] && !$(SHORTCUTS[k]).hidden) $(SHORTCUTS[k]).click();
  else return;
  e.preventDefault();
});
$('show-help').addEventListener('click', () => $('help').showModal());
$('keys-on').checked = state.ui.keys;
$('keys-on').addEventListener('change', (e) => {
  state.ui.keys = e.target.checked;
  localStorage.setItem('camus.keys', e.target.checked ? 'on' : 'off');
});

// ---------------------------------------------------------------------------------------- chat

$('chat-form').addEventListener('submit', (e) => {
  e.preventDefault();
  const input = $('chat-input');
  const text = input.value.trim();
  if (!text) return;
  if (state.conn !== 'connected') return toast('Not connected to the server: try again once it is back');
  send('room', 'text', { time: new Date().toISOString(), text });
  input.value = '';
});

function showText(sender, data) {
  if (!data || typeof data.text !== 'string') return;
  const when = new Date(data.time), ok = !isNaN(when);
  const who = sender === me.id ? 'You' : nameOf(sender);
  const item = el('li', { class: sender === me.id ? 'mine' : '' },
    el('div', {}, el('span', { class: 'who' }, who),
      // In the reader's locale and time zone.
      el('time', { datetime: ok ? when.toISOString() : '', title: ok ? when.toLocaleString() : '' }, ok ? when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' }) : '')),
    el('div', { class: 'text' }, data.text));
  const log = $('chat-log');
  log.append(item);
  log.scrollTop = log.scrollHeight;
  const visible = sideOpen() && !$('panel-chat').hidden && document.visibilityState === 'visible';
  if (!visible && sender !== me.id) setUnread(state.unread + 1);
}

// Unread messages: on the Chat button and in the page's title.
function setUnread(n) {
  state.unread = n;
  $('unread').textContent = String(n);
  $('unread').hidden = !n;
  document.title = n ? `(${n}) ${state.title}` : state.title;
}
const clearUnread = () => setUnread(0);
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !$('panel-chat').hidden && sideOpen()) clearUnread();
});

function notice(text) {
  $('chat-log').append(el('li', { class: 'notice' }, text));
}

function toast(text) {
  const t = el('div', { class: 'toast', role: 'status' }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 3000);
}

// Said to screen readers only (joins, leaves, what a shortcut did).
function announce(text) {
  $('announce').textContent = text;
}

prejoin();
// For tests and the curious: the state of this page.  `peers` holds the other members (with their
// RTCPeerConnection `pc` in a P2P room, pc null in an SFU room); `media` is the room's mode, and an
// SFU room adds remoteStreams() (set by prejoin).
// `connection` is Ground Control's (new, connected, reconnecting, failed, left); `reconnects` counts
// the drops it came back from, and outages() says of each drop why, when, how many tries, and
// whether this page stayed the same member.
window.camus = {
  me, peers, members: () => state.members, state, audio, get media() { return state.media; },
  get connection() { return state.conn; },
  get reconnects() { return state.outages.filter((o) => o.backAt !== null).length; },
  outages: () => state.outages.map((o) => ({ ...o })),
};
