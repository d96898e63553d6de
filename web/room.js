// The room: a data channel to Ground Control (the server) carries chat and the signaling that
// connects every pair of browsers directly; media flows peer to peer with perfect negotiation.
import { api, el } from '/common.js';

const $ = (id) => document.getElementById(id);
const roomId = decodeURIComponent(location.pathname.split('/')[2] || '');
const GC = 'ground control';
const NAME_MAX = 64; // bytes of UTF-8, as the server counts them

// The page's whole state, in one place.
const state = {
  me: { id: null, name: '', stream: new MediaStream(), cam: null, mic: null, screen: null },
  peers: new Map(),  // client id -> peer (see createPeer for what one holds)
  gc: null,          // Ground Control: {pc, dc}
  iceServers: [],
  members: [],       // [{id, username}] as Ground Control last said
  unread: 0,
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
  const tries = [{ video: cam ? { deviceId: { exact: cam } } : true, audio: mic ? { deviceId: { exact: mic } } : true },
    { video: false, audio: true }, { video: true, audio: false }];
  for (const constraints of tries) {
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
  if (config.ok) {
    state.iceServers = [{ urls: `stun:${location.hostname}:${config.json.stun_port}` }];
    for (const url of config.json.ice_servers) {
      const m = url.match(/^(turns?):([^:@/]+):([^@/]+)@(.+)$/); // turn:user:password@host:port
      state.iceServers.push(m ? { urls: `${m[1]}:${m[4]}`, username: m[2], credential: m[3] } : { urls: url });
    }
  }
  $('display-name').value = localStorage.getItem('camus.name') || '';
  $('camera-select').addEventListener('change', startPreview);
  $('mic-select').addEventListener('change', startPreview);
  // Joining waits for the camera: peers made before it would offer to receive only.
  $('join-button').disabled = true;
  if (navigator.mediaDevices) await startPreview();
  else $('preview-none').hidden = false;
  $('join-button').disabled = false;
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
      const r = await api('POST', `/rtc/${encodeURIComponent(roomId)}/join`, { password });
      if (!r.ok) throw new Error(r.status === 403 ? 'Wrong password' : (r.json && r.json.error) || 'Could not join');
    }
    await connectGroundControl();
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

async function connectGroundControl() {
  const pc = new RTCPeerConnection();
  const dc = pc.createDataChannel('ground-control');
  state.gc = { pc, dc };
  pc.onconnectionstatechange = () => { $('gc-state').textContent = pc.connectionState; if (pc.connectionState === 'failed') lost(); };
  await pc.setLocalDescription(await pc.createOffer());
  const r = await api('POST', `/rtc/${encodeURIComponent(roomId)}/offer`, { sdp: pc.localDescription.sdp, type: 'offer' });
  if (!r.ok) {
    pc.close();
    const why = r.json && r.json.error;
    throw new Error(why === 'password required' ? 'This room needs a password' : why === 'room is full' ? 'This room is full' : why || 'Could not connect');
  }
  await pc.setRemoteDescription(r.json);
  await new Promise((ok, ko) => {
    dc.onopen = ok;
    setTimeout(() => ko(new Error('Could not reach the server (no data channel)')), 15000);
  });
  dc.onmessage = (e) => { try { onMessage(JSON.parse(e.data)); } catch (err) { console.warn('bad message', err); } };
  dc.onclose = lost;
}

function send(receiver, type, data) {
  const { gc } = state;
  if (gc && gc.dc.readyState === 'open') gc.dc.send(JSON.stringify({ sender: me.id, receiver, type, data }));
}

function lost() {
  if (!state.gc) return;
  notice('Connection to the server lost. Reload to rejoin.');
  state.gc = null;
}

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
    case 'greeting':
      if (me.id || typeof m.receiver !== 'string') return; // one greeting a session
      me.id = m.receiver;
      send(GC, 'profile', { username: me.name });
      send(GC, 'get-room-info', null);
      break;
    case 'ping': send(GC, 'pong', m.data); break;
    case 'room-info': if (m.data && Array.isArray(m.data.clients)) onRoomInfo(m.data.clients); break;
    case 'error':
      console.warn('ground control:', m.data);
      // A refused name is the user's to fix; other errors are the client's own doing.
      if (typeof m.data === 'string' && /^Invalid username/.test(m.data)) toast('The server refused your name: ' + m.data);
      break;
    default: break;
  }
}

function onMemberMessage(m) {
  if (m.sender === me.id && m.type !== 'text') return;
  switch (m.type) {
    case 'text': showText(m.sender, m.data); break;
    case 'offer': case 'answer': case 'icecandidate': signal(m.sender, m.type, m.data); break;
    case 'bye': removePeer(m.sender); break;
    default: break;
  }
}

function onRoomInfo(clients) {
  state.members = clients.filter((c) => c && typeof c.id === 'string' && typeof c.username === 'string');
  clients = state.members;
  const ids = new Set(clients.map((c) => c.id));
  for (const c of clients) if (c.id !== me.id && !peers.has(c.id)) createPeer(c.id);
  for (const id of [...peers.keys()]) if (!ids.has(id)) removePeer(id);
  for (const p of peers.values()) {
    p.label.textContent = nameOf(p.id);
    p.avatar.textContent = initial(nameOf(p.id));
  }
  $('people-count').textContent = `(${clients.length})`;
  $('people').replaceChildren(...clients.map((c) => el('li', {}, c.id === me.id ? `${c.username} (you)` : c.username)));
  renderConns();
}

const initial = (name) => (Array.from(name.trim())[0] || '?').toUpperCase();
const nameOf = (id) => (state.members.find((c) => c.id === id) || { username: 'Major Tom' }).username;

// ---------------------------------------------------------------------------------------- peers

function createPeer(id) {
  const pc = new RTCPeerConnection({ iceServers: state.iceServers });
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
  addTile(peer);
  return peer;
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
  peer.pc.close();
  peer.tile.remove();
  renderConns();
  layout();
}

function renderConns() {
  $('conns').replaceChildren(...[...peers.values()].map((p) => el('li', {}, el('div', {}, nameOf(p.id)),
    el('div', { class: 'state' }, `connection: ${p.pc.connectionState} · ice: ${p.pc.iceConnectionState}`))));
}

// ---------------------------------------------------------------------------------------- video tiles

function addTile(peer) {
  const video = el('video', { autoplay: true, playsinline: true });
  const label = el('span', { class: 'label' }, peer ? nameOf(peer.id) : `${me.name} (you)`);
  const avatar = el('div', { class: 'avatar', 'aria-hidden': 'true' }, initial(peer ? nameOf(peer.id) : me.name));
  const tile = el('div', { class: peer ? 'tile' : 'tile self', tabindex: '0', role: 'button',
    'aria-label': peer ? `Spotlight ${nameOf(peer.id)}` : 'Spotlight yourself' }, video, avatar, label);
  if (peer) {
    tile.dataset.clientId = peer.id;
    Object.assign(peer, { tile, video, label, avatar });
  } else {
    video.muted = true;
    tile.id = 'self-tile';
  }
  const spot = () => {
    const on = !tile.classList.contains('spot');
    for (const t of $('grid').children) t.classList.remove('spot');
    tile.classList.toggle('spot', on);
    layout();
  };
  tile.addEventListener('click', spot);
  tile.addEventListener('keydown', (e) => { if (e.key === 'Enter' || e.key === ' ') { e.preventDefault(); spot(); } });
  $('grid').append(tile);
  if (!peer) showSelf();
  layout();
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
  const track = currentVideo();
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
    sendVideo(me.screen);
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
  sendVideo(me.cam);
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

function leave() {
  send(GC, 'bye', null);
  for (const p of peers.values()) p.pc.close();
  peers.clear();
  if (state.gc) state.gc.pc.close();
  state.gc = null;
  for (const t of me.stream.getTracks()) t.stop();
  if (me.screen) me.screen.stop();
}
$('leave').addEventListener('click', () => { leave(); location.href = '/'; });
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
  if (!text || !state.gc) return;
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
// For tests and the curious: the state of this page.
window.camus = { me, peers, members: () => state.members, state };
