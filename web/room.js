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
  me: { id: null, name: '', stream: new MediaStream(), cam: null, mic: null, screen: null },
  peers: new Map(),  // client id -> the other member (createPeer in a P2P room, addMember in an SFU one)
  gc: null,          // Ground Control: {pc, dc}
  media: 'p2p',      // how this room's media travels: 'p2p' or 'sfu' (set by prejoin)
  sfu: null,         // the SFU side of Ground Control's connection, in an SFU room (see sfuStart)
  iceServers: [],
  turn: null,        // the server's TURN relay and this member's credentials for it (useTurn)
  members: [],       // [{id, username}] as Ground Control last said
  unread: 0,
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

async function startPreview() {
  for (const t of me.stream.getTracks()) t.stop();
  me.stream = new MediaStream();
  me.cam = me.mic = null;
  const cam = $('camera-select').value, mic = $('mic-select').value;
  const both = { video: cam ? { deviceId: { exact: cam } } : true, audio: mic ? { deviceId: { exact: mic } } : true };
  // Both again after a moment (a camera that is slow to start, on a busy machine, fails once), then with less.
  const tries = [both, both, { video: false, audio: true }, { video: true, audio: false }];
  for (const [i, constraints] of tries.entries()) {
    if (i === 1) await new Promise((ok) => setTimeout(ok, 300));
    try {
      const s = await navigator.mediaDevices.getUserMedia(constraints);
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

async function listDevices() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.enumerateDevices) return;
  const devices = await navigator.mediaDevices.enumerateDevices();
  for (const [select, kind, current] of [[$('camera-select'), 'videoinput', me.cam], [$('mic-select'), 'audioinput', me.mic]]) {
    const chosen = current ? current.getSettings().deviceId : select.value;
    const options = devices.filter((d) => d.kind === kind)
      .map((d, i) => el('option', { value: d.deviceId }, d.label || `${kind === 'videoinput' ? 'Camera' : 'Microphone'} ${i + 1}`));
    if (!options.length) options.push(el('option', { value: '' }, 'None found'));
    select.replaceChildren(...options);
    if (chosen) select.value = chosen;
  }
}

async function prejoin() {
  $('invite-link').value = `${location.origin}/rtc/${encodeURIComponent(roomId)}`;
  const [room, config] = await Promise.all([api('GET', `/api/rooms/${encodeURIComponent(roomId)}`), api('GET', '/api/config')]);
  if (!room.ok) {
    $('join-error').textContent = 'This room does not exist any more.';
    $('join-button').disabled = true;
    return;
  }
  document.title = `${room.json.name} — Camus`;
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
}

$('join-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const error = $('join-error');
  error.textContent = '';
  me.name = utf8Prefix($('display-name').value.trim(), NAME_MAX) || 'Major Tom';
  localStorage.setItem('camus.name', me.name);
  $('join-button').disabled = true;
  try {
    const password = $('room-password').value;
    if (password) {
      const r = await apiHashed('POST', `/rtc/${encodeURIComponent(roomId)}/join`, { password });
      if (!r.ok) throw new Error(r.status === 403 ? 'Wrong password' : (r.json && r.json.error) || 'Could not join');
    }
    await connectGroundControl();
    setConn('connected');
    $('prejoin').hidden = true;
    $('call').hidden = false;
    addTile(null);
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
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel('ground-control');
  const gc = state.gc = { pc, dc, greeted: false, limbo: 0 };
  // Listening before the answer is applied: on a busy machine the channel may open before the
  // setRemoteDescription promise is seen to resolve, and an open event nobody heard is lost.
  let timer;
  const late = new Promise((_, ko) => { timer = setTimeout(() => ko(new Error('Could not reach the server (no data channel)')), OPEN_WAIT); });
  const opened = new Promise((ok, ko) => {
    dc.onopen = ok;
    pc.onconnectionstatechange = () => {
      $('gc-state').textContent = pc.connectionState;
      if (pc.connectionState === 'failed') ko(new Error('Could not reach the server (connection failed)'));
    };
  });
  late.catch(() => {});
  opened.catch(() => {}); // awaited below, unless the offer is refused first
  try {
    await pc.setLocalDescription(await pc.createOffer());
    const offer = { sdp: pc.localDescription.sdp, type: 'offer' };
    if (state.resume) offer.resume = state.resume;
    const r = await Promise.race([api('POST', `/rtc/${encodeURIComponent(roomId)}/offer`, offer), late]);
    if (!r.ok) {
      const why = r.json && r.json.error;
      throw Object.assign(new Error(why === 'password required' ? 'This room needs a password' : why === 'room is full' ? 'This room is full'
        : why || 'Could not connect'), { status: r.status, why });
    }
    if (typeof r.json.resume === 'string') state.resume = r.json.resume;
    useTurn(r.json.turn);
    await pc.setRemoteDescription({ type: r.json.type, sdp: r.json.sdp });
    await Promise.race([opened, late]);
  } catch (err) {
    pc.close();
    if (state.gc === gc) state.gc = null;
    throw err;
  } finally {
    clearTimeout(timer);
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
  dc.onmessage = (e) => { if (state.gc === gc) try { onMessage(JSON.parse(e.data)); } catch (err) { console.warn('bad message', err); } };
  dc.onclose = () => lost(gc, 'its channel closed');
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

const retryDelay = (n) => Math.min(RETRY_FIRST * 2 ** n, RETRY_CAP) * (1 - RETRY_JITTER + 2 * RETRY_JITTER * Math.random());

// Ground Control's connection `gc` dropped (why: for the console and tests).  Its RTCPeerConnection
// is left open until a new session is greeted: closing it now might still reach the server and end
// the member this page means to be again.
function lost(gc, why) {
  if (state.gc !== gc || state.conn !== 'connected') return; // an old connection, or Leave
  clearTimeout(gc.limbo);
  gc.pc.onconnectionstatechange = gc.dc.onclose = gc.dc.onmessage = null;
  state.stale.push(gc.pc);
  state.gc = null;
  sfuStop();
  if (state.media === 'sfu') showStreams(); // avatars, not frozen frames, until the streams come back
  console.warn(`lost Ground Control: ${why}`);
  state.outages.push({ why, lostAt: performance.now(), backAt: null, attempts: 0, sameId: null });
  notice('Connection lost — reconnecting…');
  reconnect();
}

// Tries to connect again until it does, the time is up, the server refuses for good, or the user leaves.
async function reconnect() {
  const outage = state.outages[state.outages.length - 1];
  const since = performance.now();
  state.failure = null;
  setConn('reconnecting');
  for (let n = 0; ; n++) {
    const wait = retryDelay(n);
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
      if (err.status === 404 || err.why === 'password required') return giveUp(outage, err);
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
    case 'room-info': if (m.data && Array.isArray(m.data.clients)) onRoomInfo(m.data.clients); break;
    case 'renegotiate': onRenegotiate(m); break;
    case 'answer': onSfuAnswer(m); break;
    case 'error':
      console.warn('ground control:', m.data);
      // A refused name is the user's to fix; other errors are the client's own doing.
      if (typeof m.data === 'string' && /^Invalid username/.test(m.data)) toast('The server refused your name: ' + m.data);
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
    default: break;
  }
}

function onRoomInfo(clients) {
  // Our own session before a reconnect, if the server still lists it, is nobody to show or call.
  state.members = clients.filter((c) => c && typeof c.id === 'string' && typeof c.username === 'string' && !state.formerIds.has(c.id));
  clients = state.members;
  const ids = new Set(clients.map((c) => c.id));
  for (const c of clients) if (c.id !== me.id && !peers.has(c.id)) (state.media === 'sfu' ? addMember : createPeer)(c.id);
  for (const id of [...peers.keys()]) if (!ids.has(id)) removePeer(id);
  for (const p of peers.values()) {
    p.label.textContent = nameOf(p.id);
    p.avatar.textContent = initial(nameOf(p.id));
  }
  if (state.media === 'sfu') showStreams();
  $('people-count').textContent = `(${clients.length})`;
  $('people').replaceChildren(...clients.map((c) => el('li', {}, c.id === me.id ? `${c.username} (you)` : c.username)));
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
    attached: false, attachTimer: 0, videoSender: null, watchdog: 0,
    stream: new MediaStream(),   // what it sends us
    tile: null, video: null, label: null, avatar: null, // its tile (addTile)
  };
  peers.set(id, peer);
  // Offers that cross are resolved by perfect negotiation, but a Chromium peer that rolls back its
  // offer while still gathering may never gather again; so the polite side lets the other offer
  // first: it attaches its media when that offer arrives, or after a moment if none does.
  if (peer.polite) peer.attachTimer = setTimeout(() => attachMedia(peer), 1500);
  else attachMedia(peer);
  pc.ontrack = ({ track }) => {
    peer.stream.addTrack(track);
    track.onended = () => peer.stream.removeTrack(track);
    peer.video.srcObject = peer.stream;
    peer.tile.querySelector('.avatar').hidden = peer.stream.getVideoTracks().length > 0;
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
  const video = currentVideo();
  if (me.mic) peer.pc.addTrack(me.mic, me.stream);
  if (video) peer.videoSender = peer.pc.addTrack(video, me.stream);
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
  if (state.media === 'sfu') showStreams(); // its screen tile goes too
  renderConns();
  layout();
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
    screens: new Map(),            // member id -> the tile of its screen share
    selfScreen: null,              // the tile of our own screen share
    pending: false,                // an offer is being made, is out, or its answer is being applied
    out: false, timer: 0,          // an offer is out (and when to give up on its answer)
    again: false,                  // something changed since the pending offer was made
    ssrcs: new Map(),              // mid -> the a=ssrc line the server's answers gave it last (keepSsrcs)
    stats: { state: pc.connectionState, rtt: null, up: null, down: null }, last: null, statsTimer: 0,
    statsLine: el('div', { class: 'state' }, 'connection: new'),
  };
  if (me.mic) sfu.send.mic = sendTransceiver(me.mic, 'sendonly');
  if (me.cam) sfu.send.camera = sendTransceiver(me.cam, me.cam.enabled ? 'sendonly' : 'inactive');
  if (me.screen) { // shared before a reconnect, or while it went on
    sfu.send.screen = sendTransceiver(me.screen, 'sendonly');
    showOwnScreen(me.screen);
  }
  $('conns').replaceChildren(el('li', {}, el('div', {}, 'Server'), sfu.statsLine));
  sfu.statsTimer = setInterval(sfuStats, 1000);
  sfuOffer();
}

// Ground Control's connection is closed or lost: so is what it carried, screens' tiles with it.
function sfuStop() {
  const sfu = state.sfu;
  if (!sfu) return;
  clearTimeout(sfu.timer);
  clearInterval(sfu.statsTimer);
  sfu.statsLine.textContent = 'connection: closed';
  for (const t of sfu.screens.values()) t.tile.remove();
  if (sfu.selfScreen) sfu.selfScreen.tile.remove();
  state.sfu = null;
  layout();
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
    const camera = find(p.id, 'camera');
    play(p.video, camera);
    p.avatar.hidden = !!camera;
    play(p.audio, find(p.id, 'mic'));
  }
  if (!sfu) return;
  for (const [id, t] of sfu.screens) {
    if (peers.has(id) && find(id, 'screen')) continue;
    t.tile.remove();
    sfu.screens.delete(id);
  }
  for (const p of peers.values()) {
    const track = find(p.id, 'screen');
    if (!track) continue;
    let t = sfu.screens.get(p.id);
    if (!t) {
      t = makeTile('tile screen', '', '', '');
      t.avatar.hidden = true;
      t.tile.dataset.screenOf = p.id;
      sfu.screens.set(p.id, t);
    }
    t.label.textContent = `${nameOf(p.id)} — screen`;
    t.tile.setAttribute('aria-label', `Spotlight the screen of ${nameOf(p.id)}`);
    play(t.video, track);
  }
  layout();
}

// Shows `track` (or nothing) in a media element, leaving it be if it shows that track already.
// (Emptied once, an element stays paused when given a stream again: it is told to play.)
function play(media, track) {
  const now = media.srcObject ? media.srcObject.getTracks()[0] || null : null;
  if (now === track) return;
  media.srcObject = track ? new MediaStream([track]) : null;
  if (track) media.play().catch(() => {});
}

// Starts (track) or stops (null) sending our camera or screen, and offers it.  A transceiver is
// made once and kept (inactive while off), unless the server rejected its section.
function sfuSend(label, track) {
  const sfu = state.sfu;
  if (!sfu || !state.gc) return;
  const tx = sfu.send[label];
  if (usable(tx)) {
    if (label === 'screen') tx.sender.replaceTrack(track).catch((err) => console.warn('replaceTrack', err));
    tx.direction = track ? 'sendonly' : 'inactive';
  } else if (track) {
    sfu.send[label] = sendTransceiver(track, 'sendonly');
  }
  sfuOffer();
  if (label === 'screen') showOwnScreen(track);
}

// Our own screen share has a tile of its own, as it has at the others'.
function showOwnScreen(track) {
  const sfu = state.sfu;
  if (track && !sfu.selfScreen) {
    sfu.selfScreen = makeTile('tile self screen', `${me.name} (you) — screen`, 'Spotlight your screen', '');
    sfu.selfScreen.avatar.hidden = true;
    sfu.selfScreen.video.muted = true;
  }
  if (track) play(sfu.selfScreen.video, track);
  else if (sfu.selfScreen) {
    sfu.selfScreen.tile.remove();
    sfu.selfScreen = null;
    layout();
  }
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
  const t = makeTile(peer ? 'tile' : 'tile self', peer ? nameOf(peer.id) : `${me.name} (you)`,
    peer ? `Spotlight ${nameOf(peer.id)}` : 'Spotlight yourself', initial(peer ? nameOf(peer.id) : me.name));
  if (peer) {
    t.tile.dataset.clientId = peer.id;
    Object.assign(peer, t);
  } else {
    t.video.muted = true;
    t.tile.id = 'self-tile';
    showSelf();
  }
}

// A tile in the grid: a video, an avatar shown while there is none, a label; a click or Enter
// spotlights it.  Returns {tile, video, label, avatar}.
function makeTile(cls, text, ariaLabel, letter) {
  const video = el('video', { autoplay: true, playsinline: true });
  const label = el('span', { class: 'label' }, text);
  const avatar = el('div', { class: 'avatar', 'aria-hidden': 'true' }, letter);
  const tile = el('div', { class: cls, tabindex: '0', role: 'button', 'aria-label': ariaLabel }, video, avatar, label);
  const spot = () => {
    const on = !tile.classList.contains('spot');
    for (const t of $('grid').children) t.classList.remove('spot');
    tile.classList.toggle('spot', on);
    layout();
  };
  tile.addEventListener('click', spot);
  tile.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); spot(); } });
  $('grid').append(tile);
  layout();
  return { tile, video, label, avatar };
}

function layout() {
  const grid = $('grid');
  const spot = grid.querySelector('.tile.spot');
  grid.classList.toggle('spotlit', !!spot);
  if (spot) grid.prepend(spot);
}

function showSelf() {
  const tile = $('self-tile');
  if (!tile) return;
  const video = tile.querySelector('video');
  // Peer to peer, the screen replaces the camera; through the server, it has a tile of its own.
  const track = state.media === 'sfu' ? me.cam : currentVideo();
  video.srcObject = track ? new MediaStream([track]) : null;
  video.classList.toggle('mirror', !!track && track === me.cam);
  tile.querySelector('.avatar').hidden = !!track;
}

const currentVideo = () => me.screen || me.cam;

// ---------------------------------------------------------------------------------------- controls

function setPressed(button, on) {
  button.setAttribute('aria-pressed', String(on));
  button.classList.toggle('off', !on);
}

$('toggle-camera').addEventListener('click', () => {
  if (!me.cam) return toast('No camera');
  me.cam.enabled = !me.cam.enabled;
  setPressed($('toggle-camera'), me.cam.enabled);
  // Through the server, a camera that is off is not sent at all: the others see an avatar.
  if (state.sfu) sfuSend('camera', me.cam.enabled ? me.cam : null);
});

$('toggle-mic').addEventListener('click', () => {
  if (!me.mic) return toast('No microphone');
  me.mic.enabled = !me.mic.enabled;
  setPressed($('toggle-mic'), me.mic.enabled);
});

// Sends `track` as our video to every peer: replaces the video being sent, or adds it.
function sendVideo(track) {
  for (const p of peers.values()) {
    if (!p.attached) continue; // it will take the current video when it attaches
    const sender = p.pc.getSenders().find((s) => s.track ? s.track.kind === 'video' : s === p.videoSender);
    if (sender) sender.replaceTrack(track);
    else if (track) p.videoSender = p.pc.addTrack(track, me.stream);
  }
  showSelf();
}

async function startShare() {
  try {
    const s = await navigator.mediaDevices.getDisplayMedia({ video: true, audio: false });
    me.screen = s.getVideoTracks()[0];
    me.screen.onended = stopShare;
    if (state.media === 'sfu') sfuSend('screen', me.screen);
    else sendVideo(me.screen);
    $('toggle-screen').setAttribute('aria-pressed', 'true');
  } catch (err) {
    toast('Screen sharing was not started');
  }
}

function stopShare() {
  if (!me.screen) return;
  me.screen.onended = null;
  me.screen.stop();
  me.screen = null;
  if (state.media === 'sfu') sfuSend('screen', null);
  else sendVideo(me.cam);
  $('toggle-screen').setAttribute('aria-pressed', 'false');
}

$('toggle-screen').addEventListener('click', () => (me.screen ? stopShare() : startShare()));

function showPanel(name) {
  for (const n of ['chat', 'people', 'conns']) {
    $(`tab-${n}`).setAttribute('aria-selected', String(n === name));
    $(`panel-${n}`).hidden = n !== name;
  }
  if (name === 'chat') clearUnread();
}
for (const n of ['chat', 'people', 'conns']) $(`tab-${n}`).addEventListener('click', () => showPanel(n));

$('toggle-side').addEventListener('click', () => {
  const side = $('side');
  const open = side.classList.toggle('collapsed') === false;
  $('toggle-side').setAttribute('aria-expanded', String(open));
  if (open && !$('panel-chat').hidden) clearUnread();
});
if (matchMedia('(max-width: 760px)').matches) {
  $('side').classList.add('collapsed');
  $('toggle-side').setAttribute('aria-expanded', 'false');
}

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
}
// Leave waits (half a second at most) for the bye to be on its way: closing the connection at once
// could drop it, and the others would see this member until the server's consent timeout.
// (The server closes the connection on the bye: that is no drop either.)
$('leave').addEventListener('click', async () => {
  const dc = state.gc && state.gc.dc;
  state.conn = 'left';
  if (state.wake) state.wake();
  send(GC, 'bye', null);
  for (let i = 0; dc && dc.readyState === 'open' && dc.bufferedAmount > 0 && i < 25; i++) await new Promise((r) => setTimeout(r, 20));
  await new Promise((r) => setTimeout(r, 50));
  leave();
  location.href = '/';
});
addEventListener('pagehide', leave);

$('copy-invite').addEventListener('click', async () => {
  const input = $('invite-link');
  try {
    await navigator.clipboard.writeText(input.value);
  } catch {
    input.select();
    document.execCommand('copy');
  }
  toast('Invite link copied');
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
  const when = new Date(data.time);
  const time = isNaN(when) ? '' : when.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit' });
  const who = sender === me.id ? 'You' : nameOf(sender);
  const item = el('li', { class: sender === me.id ? 'mine' : '' },
    el('div', {}, el('span', { class: 'who' }, who), el('time', { datetime: isNaN(when) ? '' : when.toISOString() }, time)),
    el('div', { class: 'text' }, data.text));
  const log = $('chat-log');
  log.append(item);
  log.scrollTop = log.scrollHeight;
  const visible = !$('side').classList.contains('collapsed') && !$('panel-chat').hidden && document.visibilityState === 'visible';
  if (!visible && sender !== me.id) {
    state.unread++;
    $('unread').textContent = String(state.unread);
    $('unread').hidden = false;
  }
}

function clearUnread() {
  state.unread = 0;
  $('unread').hidden = true;
}
document.addEventListener('visibilitychange', () => {
  if (document.visibilityState === 'visible' && !$('panel-chat').hidden && !$('side').classList.contains('collapsed')) clearUnread();
});

function notice(text) {
  $('chat-log').append(el('li', { class: 'notice' }, text));
}

function toast(text) {
  const t = el('div', { class: 'toast', role: 'status' }, text);
  document.body.append(t);
  setTimeout(() => t.remove(), 2500);
}

prejoin();
// For tests and the curious: the state of this page.  `peers` holds the other members (with their
// RTCPeerConnection `pc` in a P2P room, pc null in an SFU room); `media` is the room's mode, and an
// SFU room adds remoteStreams() (set by prejoin).
// `connection` is Ground Control's (new, connected, reconnecting, failed, left); `reconnects` counts
// the drops it came back from, and outages() says of each drop why, when, how many tries, and
// whether this page stayed the same member.
window.camus = {
  me, peers, members: () => state.members, state, get media() { return state.media; },
  get connection() { return state.conn; },
  get reconnects() { return state.outages.filter((o) => o.backAt !== null).length; },
  outages: () => state.outages.map((o) => ({ ...o })),
};
