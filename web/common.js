// Small helpers shared by the lobby and the room.

// fetch() with a JSON body and reply: {ok, status, json}.
export async function api(method, path, body) {
  const init = { method, headers: {} };
  if (body !== undefined) {
    init.body = JSON.stringify(body);
    init.headers['Content-Type'] = 'application/json';
  }
  try {
    const res = await fetch(path, init);
    let json = null;
    try { json = await res.json(); } catch { /* not JSON */ }
    return { ok: res.ok, status: res.status, json };
  } catch (e) {
    return { ok: false, status: 0, json: { error: 'The server cannot be reached' } };
  }
}

// The same, for requests that hash a password: the server spends a bounded share of its time on hashing
// and answers 429 "busy" past it, so those are tried again for a few seconds.
export async function apiHashed(method, path, body) {
  for (let i = 0; ; i++) {
    const r = await api(method, path, body);
    if (r.status !== 429 || !(r.json && /busy/.test(r.json.error)) || i === 20) return r;
    await new Promise((ok) => setTimeout(ok, 250));
  }
}

// Builds an element; text children become text nodes (never HTML).
export function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === false || v === null || v === undefined) continue;
    if (k === 'class') e.className = v;
    else e.setAttribute(k, v === true ? '' : v);
  }
  for (const c of children) if (c !== null && c !== undefined) e.append(c instanceof Node ? c : String(c));
  return e;
}
