// The sample app never sees a token: it calls the BFF with the session cookie (which script cannot
// read) and `x-csrf: 1` (which a cross-site page cannot send without a preflight the BFF refuses).
//
// Every call goes through `bff()`: `credentials: 'include'` also sends the cookie when the app is
// served from another origin of the same site (see "An app on another origin" in the README), and
// a `401` always means "no session (any more): show the login".

const $ = (id) => document.getElementById(id);

// The proxied demo API: `[[routes]] path = "/api/demo"` in the sample configurations.
const API_PATH = '/api/demo/hello';

async function bff(path, init = {}) {
  return fetch(path, {
    credentials: 'include',
    ...init,
    headers: { 'x-csrf': '1', accept: 'application/json', ...(init.headers || {}) },
  });
}

let countdownTimer;
// `bff:logout_url` of the current user: `/bff/logout?sid=…`, a navigation target.
let logoutUrl = '/bff/logout';

function showLoggedOut() {
  $('status').textContent = 'Not logged in';
  $('status').dataset.loggedIn = 'false';
  for (const id of ['expiry', 'refresh', 'logout', 'claims-card', 'api-card']) $(id).hidden = true;
  $('login-form').hidden = false;
  clearInterval(countdownTimer);
}

function showClaims(user) {
  const table = $('claims');
  table.replaceChildren();
  for (const [name, value] of Object.entries(user)) {
    if (name.startsWith('bff:')) continue;
    const row = table.insertRow();
    row.insertCell().textContent = name;
    row.insertCell().textContent = typeof value === 'string' ? value : JSON.stringify(value);
  }
}

function startCountdown(expiresAt) {
  clearInterval(countdownTimer);
  const tick = () => {
    const left = Math.max(0, expiresAt - Math.floor(Date.now() / 1000));
    const minutes = Math.floor(left / 60);
    $('countdown').textContent = `${minutes} min ${String(left % 60).padStart(2, '0')} s`;
    if (left === 0) show();
  };
  tick();
  countdownTimer = setInterval(tick, 1000);
  $('expiry').hidden = false;
}

async function show() {
  const res = await bff('/bff/user');
  if (res.status !== 200) return showLoggedOut();
  const user = await res.json();
  $('status').textContent = `Logged in as ${user.name || user.sub}`;
  $('status').dataset.loggedIn = 'true';
  showClaims(user);
  logoutUrl = user['bff:logout_url'] || logoutUrl;
  if (user['bff:session_expires_at']) startCountdown(user['bff:session_expires_at']);
  $('login-form').hidden = true;
  for (const id of ['refresh', 'logout', 'claims-card', 'api-card']) $(id).hidden = false;
}

// A deployment may list its providers in `providers.json` beside this page
// (`["keycloak", "github"]`); then the login offers a choice.
async function loadProviders() {
  const res = await fetch('/providers.json').catch(() => null);
  if (!res || !res.ok) return;
  const names = await res.json().catch(() => []);
  if (!Array.isArray(names) || names.length < 2) return;
  const select = $('provider');
  for (const name of names) select.add(new Option(name, name));
  $('provider-picker').hidden = false;
  const link = $('login');
  const update = () => {
    link.href = `/bff/login?returnUrl=/&provider=${encodeURIComponent(select.value)}`;
  };
  select.addEventListener('change', update);
  update();
}

$('call-api').addEventListener('click', async () => {
  const out = $('api-result');
  out.dataset.state = 'calling';
  out.textContent = 'Calling…';
  const res = await bff(API_PATH);
  const text = await res.text();
  out.dataset.state = res.ok ? 'ok' : 'error';
  out.dataset.status = String(res.status);
  let shown = text;
  try { shown = JSON.stringify(JSON.parse(text), null, 2); } catch (_) { /* not JSON */ }
  out.textContent = `${res.status}\n${shown}`;
  if (res.status === 401) show();
});

$('refresh').addEventListener('click', async () => {
  const res = await bff('/bff/refresh', { method: 'POST' });
  if (res.status === 401) return show();
  const body = await res.json();
  $('refresh-result').textContent = res.ok
    ? `Refreshed; the access token now expires at ${new Date(body.expiresAt * 1000).toLocaleTimeString()}.`
    : `Refresh failed: ${body.detail}`;
});

// Logout is a navigation, not a `fetch`: `GET /bff/logout?sid=…` (the `sid` guards it against
// cross-site use) ends the session and redirects to the provider's end-session endpoint with the
// `id_token_hint` that RP-initiated logout asks for. A redirect followed by a navigation is not
// readable by script, whereas `POST /bff/logout` answers script with that URL, ID token included.
$('logout').addEventListener('click', () => {
  window.location.href = logoutUrl;
});

loadProviders();
show();
