// The sample app never sees a token: it calls the BFF with the session cookie and `x-csrf: 1`.
const headers = { 'x-csrf': '1' };

async function show() {
  const res = await fetch('/bff/user', { headers, credentials: 'same-origin' });
  const status = document.getElementById('status');
  if (res.status === 200) {
    const user = await res.json();
    status.textContent = `Logged in as ${user.name || user.sub}`;
    status.dataset.loggedIn = 'true';
    document.getElementById('user').textContent = JSON.stringify(user, null, 2);
    document.getElementById('login').hidden = true;
    document.getElementById('logout').hidden = false;
    document.getElementById('refresh').hidden = false;
  } else {
    status.textContent = 'Not logged in';
    status.dataset.loggedIn = 'false';
  }
}

document.getElementById('logout').addEventListener('click', async () => {
  const res = await fetch('/bff/logout', {
    method: 'POST',
    headers: { ...headers, accept: 'application/json' },
    credentials: 'same-origin',
  });
  const body = await res.json();
  window.location.href = body.logoutUrl || '/';
});

document.getElementById('refresh').addEventListener('click', async () => {
  const res = await fetch('/bff/refresh', { method: 'POST', headers, credentials: 'same-origin' });
  document.getElementById('user').textContent = JSON.stringify(await res.json(), null, 2);
});

show();
