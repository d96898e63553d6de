// The lobby: create a room, list the public ones, ask for a password where a room has one.
import { api, apiHashed, el } from '/common.js';

const form = document.getElementById('create-form');
const list = document.getElementById('room-list');
const empty = document.getElementById('room-empty');
const createError = document.getElementById('create-error');
const dialog = document.getElementById('password-dialog');
const joinError = document.getElementById('join-error');
let dialogRoom = null;

function ago(minutes) {
  if (minutes < 1) return 'active now';
  if (minutes < 60) return `${minutes} min ago`;
  if (minutes < 48 * 60) return `${Math.floor(minutes / 60)} h ago`;
  return `${Math.floor(minutes / 1440)} days ago`;
}

function render(rooms) {
  list.replaceChildren(...rooms.map((r) => {
    const people = r.guest_limit === null ? `${r.clients} in the room` : `${r.clients} / ${r.guest_limit} in the room`;
    const join = el('a', { class: 'button primary', href: `/rtc/${encodeURIComponent(r.id)}`, 'data-room-id': r.id }, 'Join');
    join.setAttribute('aria-label', `Join ${r.name}`);
    if (r.password) join.addEventListener('click', (e) => { e.preventDefault(); askPassword(r); });
    return el('li', {}, el('div', { class: 'info' },
      el('div', { class: 'name' }, r.name),
      el('div', { class: 'meta' }, el('span', {}, people), el('span', {}, ago(r.active_ago)),
        r.password ? el('span', { class: 'lock' }, 'Password') : null,
        r.media === 'p2p' ? el('span', { class: 'tag', title: 'Video goes directly between browsers' }, 'Direct') : null)), join);
  }));
  empty.hidden = rooms.length > 0;
}

async function refresh() {
  const r = await api('GET', '/api/rooms');
  if (r.ok) render(r.json);
}

function askPassword(room) {
  dialogRoom = room;
  document.getElementById('pw-room').textContent = room.name;
  joinError.textContent = '';
  document.getElementById('join-password').value = '';
  dialog.showModal();
}

document.getElementById('pw-cancel').addEventListener('click', () => dialog.close());
document.getElementById('password-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const password = document.getElementById('join-password').value;
  const r = await apiHashed('POST', `/rtc/${encodeURIComponent(dialogRoom.id)}/join`, { password });
  if (r.ok) location.href = `/rtc/${encodeURIComponent(dialogRoom.id)}`;
  else joinError.textContent = r.status === 403 ? 'Wrong password' : (r.json && r.json.error) || 'Could not join';
});

form.addEventListener('submit', async (e) => {
  e.preventDefault();
  createError.textContent = '';
  const name = document.getElementById('room-name').value.trim();
  const password = document.getElementById('room-password').value;
  const limit = document.getElementById('room-limit').value;
  const media = form.querySelector('input[name=media]:checked');
  const body = { name, public: document.getElementById('room-public').checked, guest_limit: limit ? Number(limit) : null,
    media: media ? media.value : 'sfu' };
  if (password) body.password = password;
  const r = await (password ? apiHashed : api)('POST', '/api/rooms', body);
  if (!r.ok) {
    createError.textContent = (r.json && r.json.error) || `Could not create the room (${r.status})`;
    return;
  }
  // The owner key runs the room: kept in this browser, for the room page (see room.js).
  if (typeof r.json.owner_key === 'string') localStorage.setItem(`camus.owner.${r.json.id}`, r.json.owner_key);
  if (password) await apiHashed('POST', `/rtc/${encodeURIComponent(r.json.id)}/join`, { password });
  location.href = r.json.url;
});

refresh();
setInterval(() => { if (document.visibilityState === 'visible') refresh(); }, 10000);
document.addEventListener('visibilitychange', () => { if (document.visibilityState === 'visible') refresh(); });
