// Local OpenID Provider for bff-server's tests and demo, built on the certified `oidc-provider`
// package. Configured only by environment variables; listens on 127.0.0.1 only.
//
// When ready it prints exactly one line to stdout: `IDP_READY <issuer>`. Everything else goes to
// stderr. See README.md for the users, clients and the login pages' form fields.

import { createServer } from 'node:http';
import { createPrivateKey, generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider, { errors } from 'oidc-provider';

const env = process.env;
const list = (value) => (value || '').split(',').map((s) => s.trim()).filter(Boolean);
const seconds = (name, fallback) => {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  if (!/^\d+$/.test(value)) {
    console.error(`${name} must be a non-negative integer (seconds), got ${JSON.stringify(value)}`);
    process.exit(2);
  }
  return Number.parseInt(value, 10);
};

const redirectUris = list(env.IDP_REDIRECT_URIS);
if (redirectUris.length === 0) {
  console.error('IDP_REDIRECT_URIS is required (comma-separated)');
  process.exit(2);
}
const postLogoutRedirectUris = list(env.IDP_POST_LOGOUT_REDIRECT_URIS);
// The public keys of the `bff-jwt` client (private_key_jwt), as a JWKS; no such client without.
let clientJwks;
if (env.IDP_CLIENT_JWKS) {
  try {
    clientJwks = JSON.parse(env.IDP_CLIENT_JWKS);
  } catch {
    console.error('IDP_CLIENT_JWKS must be a JWKS (JSON with a "keys" array)');
    process.exit(2);
  }
  if (!Array.isArray(clientJwks?.keys) || clientJwks.keys.length === 0) {
    console.error('IDP_CLIENT_JWKS must be a JWKS (JSON with a "keys" array)');
    process.exit(2);
  }
}
const backchannelLogoutUri = env.IDP_BACKCHANNEL_LOGOUT_URI;

// The test users.
const USERS = {
  alice: {
    password: 'wonderland',
    claims: { sub: 'alice', name: 'Alice Liddell', email: 'alice@example.test', email_verified: true },
  },
  // A second user, for tests that one user's logout leaves another's sessions alone.
  bob: {
    password: 'looking-glass',
    claims: { sub: 'bob', name: 'Bob Bishop', email: 'bob@example.test', email_verified: true },
  },
};

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

const page = (title, body) => `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title></head>
<body><h1>${escape(title)}</h1>${body}</body></html>`;

const loginPage = (uid, clientId, message) => page('Sign in', `
<p>Signing in to <b>${escape(clientId)}</b>.</p>
${message ? `<p class="error">${escape(message)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
  <label>Login <input name="login" autocomplete="username" autofocus></label>
  <label>Password <input name="password" type="password" autocomplete="current-password"></label>
  <button type="submit">Sign in</button>
</form>`);

const consentPage = (uid, clientId, scopes) => page('Authorize', `
<p><b>${escape(clientId)}</b> asks for: ${escape(scopes.join(' '))}</p>
<form method="post" action="/interaction/${escape(uid)}/confirm">
  <button type="submit">Allow</button>
</form>`);

// The RP-initiated logout confirmation page. oidc-provider's `form` is
// `<form id="op.logoutForm" method="post" action="<issuer>/session/end/confirm"><input type="hidden" name="xsrf" ...></form>`;
// a hidden `logout=yes` and the submit button go inside it, so posting the form's own inputs
// ends the provider session (the default page keeps the button outside the form and loads web fonts).
async function logoutSource(ctx, form) {
  const inner = `<input type="hidden" name="logout" value="yes">
  <button type="submit" autofocus>Sign out</button>
</form>`;
  ctx.type = 'html';
  ctx.body = page('Sign out', `<p>Sign out from ${escape(ctx.host)}?</p>
${form.replace('</form>', inner)}`);
}

// After a logout without a post_logout_redirect_uri (`/session/end/success`); no web fonts.
async function postLogoutSuccessSource(ctx) {
  ctx.type = 'html';
  ctx.body = page('Signed out', '<p>You are signed out.</p>');
}

// Errors as plain HTML without external resources (the default page loads web fonts).
async function renderError(ctx, out) {
  ctx.type = 'html';
  ctx.body = page('Error', `<dl>${Object.entries(out)
    .map(([k, v]) => `<dt>${escape(k)}</dt><dd>${escape(v)}</dd>`)
    .join('')}</dl>`);
}

function clientFor(clientId, secret, method) {
  const client = {
    client_id: clientId,
    token_endpoint_auth_method: method,
    grant_types: ['authorization_code', 'refresh_token', 'client_credentials'],
    response_types: ['code'],
    redirect_uris: redirectUris,
    post_logout_redirect_uris: postLogoutRedirectUris,
    id_token_signed_response_alg: 'RS256',
  };
  if (secret) client.client_secret = secret;
  if (backchannelLogoutUri) {
    client.backchannel_logout_uri = backchannelLogoutUri;
    client.backchannel_logout_session_required = true;
  }
  return client;
}

// A fresh RSA signing key per process. The key pair comes back PEM-encoded and is re-imported
// before the JWK export: exporting the KeyObject that generateKeyPairSync returns can deadlock
// Node 20 for good (seen in CI, gdb: the export allocates, the GC finalises the key-generation
// job, whose destructor waits for the key's mutex that the export holds).
const { privateKey: privatePem } = generateKeyPairSync('rsa', {
  modulusLength: 2048,
  publicKeyEncoding: { type: 'spki', format: 'pem' },
  privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
});
const signingKey = {
  ...createPrivateKey(privatePem).export({ format: 'jwk' }),
  kid: 'idp-rs256',
  alg: 'RS256',
  use: 'sig',
};

// The API that client-credentials tokens are for (RFC 8707 resource indicator). Tokens for it are
// JWTs (RFC 9068) signed with the provider's key, so a test upstream can verify them against the
// JWKS; user tokens stay opaque, as before.
const API_RESOURCE = 'urn:bff-test:api';
const API_SCOPES = 'api.read api.write reports.read';

// Access tokens from a refresh may live longer than those from a code exchange, so a load test
// can have the first token due for a refresh at once and the refreshed one stay fresh throughout.
const accessTokenTtl = seconds('IDP_ACCESS_TOKEN_TTL', 300);
const refreshedAccessTokenTtl = seconds('IDP_REFRESHED_ACCESS_TOKEN_TTL', accessTokenTtl);
const accessTokenTtlFor = (ctx) =>
  (ctx?.oidc?.params?.grant_type === 'refresh_token' ? refreshedAccessTokenTtl : accessTokenTtl);

const configuration = {
  clients: [
    clientFor('bff-basic', 'bff-basic-secret', 'client_secret_basic'),
    clientFor('bff-post', 'bff-post-secret', 'client_secret_post'),
    ...(clientJwks
      ? [{ ...clientFor('bff-jwt', undefined, 'private_key_jwt'), jwks: clientJwks }]
      : []),
  ],
  jwks: { keys: [signingKey] },
  // Plain http://127.0.0.1: no `secure` attribute (the defaults, spelled out). Keys are per process.
  cookies: {
    keys: [randomBytes(32).toString('hex')],
    long: { httpOnly: true, sameSite: 'lax' },
    short: { httpOnly: true, sameSite: 'lax' },
  },
  claims: {
    openid: ['sub'],
    profile: ['name'],
    email: ['email', 'email_verified'],
  },
  // Put the scope's claims into the ID token too, so the BFF can show them without userinfo.
  conformIdTokenClaims: false,
  features: {
    devInteractions: { enabled: false },
    revocation: { enabled: true },
    userinfo: { enabled: true },
    rpInitiatedLogout: { enabled: true, logoutSource, postLogoutSuccessSource },
    backchannelLogout: { enabled: true },
    clientCredentials: { enabled: true },
    // Only the client-credentials grant gets a resource (the test API) by default; the
    // authorization code and refresh grants get none, so their access tokens stay opaque and
    // good at userinfo.
    resourceIndicators: {
      enabled: true,
      defaultResource: (ctx) =>
        (ctx.oidc.params?.grant_type === 'client_credentials' ? API_RESOURCE : undefined),
      useGrantedResource: () => false,
      getResourceServerInfo: (_ctx, resource) => {
        if (resource !== API_RESOURCE) throw new errors.InvalidTarget('unknown resource');
        return {
          scope: API_SCOPES,
          audience: API_RESOURCE,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'RS256' } },
        };
      },
    },
  },
  // Every code exchange gets a refresh token, not only with `offline_access`.
  issueRefreshToken: async (_ctx, client) => client.grantTypeAllowed('refresh_token'),
  // Every refresh returns a new refresh token; the used one is consumed (reusing it revokes the grant).
  rotateRefreshToken: true,
  // Outgoing requests (back-channel logout). oidc-provider >= 9.13 passes an SSRF-protecting
  // dispatcher that refuses loopback addresses, which is exactly where the test receivers live:
  // drop it for loopback targets and refuse everything else (this provider talks to 127.0.0.0/8 only).
  fetch: async (url, options) => {
    const { hostname } = new URL(url);
    if (!/^127\.\d+\.\d+\.\d+$/.test(hostname) && hostname !== 'localhost' && hostname !== '[::1]') {
      throw new Error(`refusing to contact non-loopback ${hostname}`);
    }
    const { dispatcher: _ssrfGuard, ...rest } = options;
    return globalThis.fetch(url, rest);
  },
  renderError,
  // How far past its `exp` a token is still accepted (oidc-provider's default: 15 s).
  clockTolerance: seconds('IDP_CLOCK_TOLERANCE', 15),
  pkce: { required: () => true },
  ttl: {
    AccessToken: accessTokenTtlFor,
    IdToken: seconds('IDP_ID_TOKEN_TTL', 300),
    AuthorizationCode: 60,
    Interaction: 600,
    Session: 3600,
    Grant: 3600,
    RefreshToken: 3600,
  },
  interactions: {
    url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
  },
  findAccount: async (_ctx, id) => {
    const user = USERS[id];
    if (!user) return undefined;
    return { accountId: id, claims: async () => ({ ...user.claims }) };
  },
};

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 64 * 1024) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, html) {
  res.writeHead(status, { 'content-type': 'text/html; charset=utf-8', 'cache-control': 'no-store' });
  res.end(html);
}

async function interaction(provider, req, res) {
  const url = new URL(req.url, 'http://local');
  const [, , uid, action] = url.pathname.split('/');
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, page('Error', '<p>interaction mismatch</p>'));
  const clientId = details.params.client_id;

  if (req.method === 'GET' && !action) {
    if (details.prompt.name === 'login') return send(res, 200, loginPage(uid, clientId));
    const scopes = [...(details.prompt.details.missingOIDCScope || [])];
    return send(res, 200, consentPage(uid, clientId, scopes));
  }
  if (req.method === 'POST' && action === 'login') {
    const form = await readForm(req);
    const login = form.get('login') || '';
    const user = Object.hasOwn(USERS, login) ? USERS[login] : undefined;
    if (!user || user.password !== form.get('password')) {
      return send(res, 200, loginPage(uid, clientId, 'Invalid login'));
    }
    return provider.interactionFinished(req, res, { login: { accountId: login } }, { mergeWithLastSubmission: false });
  }
  if (req.method === 'POST' && action === 'confirm') {
    await readForm(req);
    const { prompt: { details: missing }, params, session } = details;
    let { grantId } = details;
    const grant = grantId
      ? await provider.Grant.find(grantId)
      : new provider.Grant({ accountId: session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    grantId = await grant.save();
    const consent = details.grantId ? {} : { grantId };
    return provider.interactionFinished(req, res, { consent }, { mergeWithLastSubmission: true });
  }
  return send(res, 404, page('Not found', ''));
}

// --- Grant counters (README, "Grant counters") -------------------------------------------
// Every token-endpoint grant, counted by outcome and grant_type, so a test can prove how many
// refresh grants actually reached the provider (one, for 100 concurrent calls on two BFF nodes).
// Read with GET /test/grants; this server listens on loopback only.
// Successful grants are also counted per client (`by_client`), so a test can tell its own.
const grantCounts = { success: {}, error: {}, by_client: {} };
function countGrant(outcome, ctx) {
  const type = String(ctx?.oidc?.params?.grant_type || 'unknown');
  grantCounts[outcome][type] = (grantCounts[outcome][type] || 0) + 1;
  if (outcome === 'success') {
    const client = String(ctx?.oidc?.client?.clientId || 'unknown');
    grantCounts.by_client[type] ??= {};
    grantCounts.by_client[type][client] = (grantCounts.by_client[type][client] || 0) + 1;
  }
}
function countGrants(provider) {
  provider.on('grant.success', (ctx) => countGrant('success', ctx));
  provider.on('grant.error', (ctx) => countGrant('error', ctx));
}
function serveGrantCounts(req, res) {
  if (req.method !== 'GET') {
    res.writeHead(405, { allow: 'GET' });
    res.end();
    return;
  }
  res.writeHead(200, { 'content-type': 'application/json', 'cache-control': 'no-store' });
  res.end(JSON.stringify(grantCounts));
}
// --- end of grant counters ---------------------------------------------------------------

// --- Token endpoint outage (README, "Token endpoint outage") ------------------------------
// POST /test/token-outage?hold_ms=N: from now on every token request is held N ms and then
// loses its connection, as a provider going down mid-request; DELETE /test/token-outage ends
// it. The requests that met the outage are counted as grantCounts.outage.
let tokenOutage = null;
function serveTokenOutage(req, res) {
  const url = new URL(req.url, 'http://loopback');
  if (req.method === 'POST') {
    const holdMs = Number(url.searchParams.get('hold_ms') || '0');
    if (!Number.isInteger(holdMs) || holdMs < 0 || holdMs > 10000) {
      send(res, 400, page('Bad hold_ms', ''));
      return;
    }
    tokenOutage = { holdMs };
  } else if (req.method === 'DELETE') {
    tokenOutage = null;
  } else {
    res.writeHead(405, { allow: 'POST, DELETE' });
    res.end();
    return;
  }
  res.writeHead(204);
  res.end();
}
function failTokenRequest(req) {
  grantCounts.outage = (grantCounts.outage || 0) + 1;
  setTimeout(() => req.socket.destroy(), tokenOutage.holdMs);
}
// --- end of token endpoint outage --------------------------------------------------------

let provider;
let handler;
const server = createServer((req, res) => {
  if (!provider) {
    res.writeHead(503);
    res.end();
    return;
  }
  if (req.url === '/test/grants') {
    serveGrantCounts(req, res);
    return;
  }
  if (req.url.startsWith('/test/token-outage')) {
    serveTokenOutage(req, res);
    return;
  }
  if (tokenOutage && req.method === 'POST' && req.url.split('?')[0] === '/token') {
    failTokenRequest(req);
    return;
  }
  if (req.url.startsWith('/interaction/')) {
    interaction(provider, req, res).catch((err) => {
      const message = [err.message, err.error_description].filter(Boolean).join(': ');
      console.error('interaction failed:', message);
      if (!res.headersSent) send(res, 400, page('Error', `<p>${escape(message)}</p>`));
    });
    return;
  }
  handler(req, res);
});

// A loopback address only (127.0.0.0/8); tests use 127.0.0.2 to put the provider on another site.
const listenHost = env.IDP_LISTEN_HOST || '127.0.0.1';
if (!/^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(listenHost)) {
  console.error('IDP_LISTEN_HOST must be a 127.x.x.x loopback address');
  process.exit(2);
}

server.listen(seconds('IDP_PORT', 0), listenHost, () => {
  const { port } = server.address();
  const issuer = env.IDP_ISSUER || `http://${listenHost}:${port}`;
  provider = new Provider(issuer, configuration);
  provider.proxy = false; // never trust X-Forwarded-*: plain http on loopback
  handler = provider.callback();
  countGrants(provider);
  provider.on('server_error', (_ctx, err) => console.error('server_error:', err.message));
  provider.on('backchannel.error', (_ctx, err, client) =>
    console.error(`backchannel logout to ${client.clientId} failed:`, err.message, err.cause?.message || ''));
  process.stdout.write(`IDP_READY ${issuer}\n`);
});

server.on('error', (err) => {
  console.error('listen failed:', err.message);
  process.exit(1);
});

function shutdown(signal) {
  console.error(`${signal}: shutting down`);
  server.close(() => process.exit(0));
  server.closeAllConnections();
  setTimeout(() => process.exit(0), 2000).unref();
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, shutdown);
