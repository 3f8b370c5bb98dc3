// Demo API of the compose setup: the upstream behind bff-server's proxy route `/api/demo`.
//
// It does what a real API behind the BFF must do with the bearer token the BFF attaches: check
// the RS256 signature against the provider's published keys, the issuer, the audience and the
// expiry. It then answers with who called and what arrived, and never with the token itself:
// the browser must not see it. Standard library only, so the stock Node.js image runs it as is.
//
// Configuration (environment): PORT (default 3000), JWKS_URL, EXPECTED_ISSUER, EXPECTED_AUDIENCE.

import { createServer } from 'node:http';
import { createPublicKey, verify } from 'node:crypto';

const required = (name) => {
  const value = process.env[name];
  if (!value) {
    console.error(`demo-api: ${name} is required`);
    process.exit(2);
  }
  return value;
};

const port = Number.parseInt(process.env.PORT || '3000', 10);
const jwksUrl = required('JWKS_URL');
const expectedIssuer = required('EXPECTED_ISSUER');
const expectedAudience = required('EXPECTED_AUDIENCE');

// Signing keys by `kid`, refetched when an unknown `kid` shows up (key rotation), at most every
// 10 s so a caller cannot make us hammer the provider.
let signingKeys = new Map();
let lastFetch = 0;

async function signingKey(kid) {
  if (!signingKeys.has(kid) && Date.now() - lastFetch > 10_000) {
    lastFetch = Date.now();
    try {
      const response = await fetch(jwksUrl, { signal: AbortSignal.timeout(5_000) });
      if (!response.ok) throw new Error(`HTTP ${response.status}`);
      const { keys } = await response.json();
      signingKeys = new Map(
        keys
          .filter((k) => k.kty === 'RSA' && k.use !== 'enc' && k.kid)
          .map((k) => [k.kid, createPublicKey({ key: { kty: k.kty, n: k.n, e: k.e }, format: 'jwk' })]),
      );
    } catch (error) {
      console.error(`demo-api: cannot read the provider's keys from ${jwksUrl}: ${error.message}`);
    }
  }
  return signingKeys.get(kid);
}

const fromBase64Url = (text) => Buffer.from(text, 'base64url');

// The token's claims, or the reason it is refused.
async function checkBearer(authorization) {
  const parts = /^Bearer ([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)$/.exec(authorization || '');
  if (!parts) return { refused: 'no bearer token' };
  const [, encodedHeader, encodedClaims, signature] = parts;
  let header;
  let claims;
  try {
    header = JSON.parse(fromBase64Url(encodedHeader));
    claims = JSON.parse(fromBase64Url(encodedClaims));
  } catch {
    return { refused: 'malformed token' };
  }
  if (header.alg !== 'RS256') return { refused: 'unexpected signing algorithm' };
  const key = await signingKey(header.kid);
  if (!key) return { refused: 'unknown signing key' };
  const signed = Buffer.from(`${encodedHeader}.${encodedClaims}`);
  if (!verify('RSA-SHA256', signed, key, fromBase64Url(signature))) return { refused: 'bad signature' };
  if (claims.iss !== expectedIssuer) return { refused: 'wrong issuer' };
  const audiences = Array.isArray(claims.aud) ? claims.aud : [claims.aud];
  if (!audiences.includes(expectedAudience)) return { refused: `audience is not ${expectedAudience}` };
  if (typeof claims.exp !== 'number' || claims.exp * 1000 <= Date.now()) return { refused: 'expired' };
  return { claims };
}

const answer = (res, status, body, headers = {}) => {
  res.writeHead(status, { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers });
  res.end(`${JSON.stringify(body, null, 2)}\n`);
};

const server = createServer((req, res) => {
  handle(req, res).catch((error) => {
    console.error(`demo-api: ${error.message}`);
    if (!res.headersSent) answer(res, 500, { error: 'internal_error' });
  });
});

async function handle(req, res) {
  let bodyBytes = 0;
  for await (const chunk of req) bodyBytes += chunk.length;
  const { claims, refused } = await checkBearer(req.headers.authorization);
  if (refused) {
    answer(res, 401, { error: 'invalid_token', detail: refused }, {
      'www-authenticate': `Bearer error="invalid_token", error_description="${refused}"`,
    });
    return;
  }
  answer(res, 200, {
    message: `Hello ${claims.preferred_username || claims.sub}, from the demo API`,
    subject: claims.sub,
    audience: claims.aud,
    scope: claims.scope,
    token_expires_at: new Date(claims.exp * 1000).toISOString(),
    request: {
      method: req.method,
      path: req.url,
      body_bytes: bodyBytes,
      cookie_sent: req.headers.cookie !== undefined,
      forwarded_for: req.headers['x-forwarded-for'],
    },
  });
}

server.listen(port, '0.0.0.0', () => console.log(`demo-api: listening on port ${port}`));
process.on('SIGTERM', () => server.close(() => process.exit(0)));
