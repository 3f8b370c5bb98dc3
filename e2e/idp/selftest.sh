#!/usr/bin/env bash
# Self-check of the local OpenID Provider: starts `node server.mjs` on a free loopback port and
# drives a whole login as a browser would (curl + cookie jar), then the token endpoint, refresh
# with rotation, userinfo, revocation, a second client, client credentials, RP-initiated and
# back-channel logout.
#
#   cd e2e/idp && npm ci && ./selftest.sh        (VERBOSE=1 ./selftest.sh shows every hop)
#
# Only 127.0.0.1 is contacted. The redirect to http://127.0.0.1:9/cb is read from the Location
# header, never followed. Prints PASS or FAIL; stops the processes it started, by PID.
set -uo pipefail

cd "$(dirname "$0")"
WORK=$(mktemp -d)
IDP_PID=""
CATCHER_PID=""
CURL=(curl -sS --max-time 10 --noproxy '*')
REDIRECT_URI="http://127.0.0.1:9/cb"
POST_LOGOUT_URI="http://127.0.0.1:9/logged-out"

cleanup() {
  [ -n "$IDP_PID" ] && kill "$IDP_PID" 2>/dev/null && wait "$IDP_PID" 2>/dev/null
  [ -n "$CATCHER_PID" ] && kill "$CATCHER_PID" 2>/dev/null && wait "$CATCHER_PID" 2>/dev/null
  [ -n "${KEEP:-}" ] && echo "kept $WORK" || rm -rf "$WORK"
}
trap cleanup EXIT

fail() {
  echo "FAIL: $*"
  if [ -s "$WORK/idp.err" ]; then
    echo "--- provider stderr (last 20 lines) ---"
    tail -n 20 "$WORK/idp.err"
  fi
  exit 1
}
ok() { echo "ok   $*"; }
log() { [ -n "${VERBOSE:-}" ] && echo "     $*"; return 0; }

[ -d node_modules/oidc-provider ] || fail "node_modules missing: run 'npm ci' in $(pwd)"

# js EXPR [stdin]: evaluates EXPR with `input` = stdin text and helper functions; prints result.
js() {
  node -e '
    const input = require("fs").readFileSync(0, "utf8");
    const json = () => JSON.parse(input);
    const jwt = (t) => JSON.parse(Buffer.from(t.split(".")[1], "base64url").toString());
    const q = (u, k) => new URL(u).searchParams.get(k);
    const action = () => { const m = input.match(/<form[^>]*action="([^"]*)"/); return m ? m[1].replace(/&amp;/g, "&") : ""; };
    const hidden = (n) => { const m = input.match(new RegExp(`name="${n}"[^>]*value="([^"]*)"`)); return m ? m[1] : ""; };
    const r = ('"$1"'
    );
    if (r !== undefined) process.stdout.write(typeof r === "string" ? r : JSON.stringify(r));
  '
}

# req ARGS...: one HTTP exchange with the cookie jar; body in $WORK/body.
# Sets STATUS and LOCATION (absolute, resolved by curl; empty when there is no redirect).
req() {
  local out
  out=$("${CURL[@]}" -b "$WORK/jar" -c "$WORK/jar" -o "$WORK/body" -D "$WORK/headers" \
    -w '%{http_code} %{redirect_url}' "$@") || fail "curl failed: $*"
  STATUS=${out%% *}
  LOCATION=${out#* }
  log "$STATUS ${*: -1} -> ${LOCATION:-(no Location)}"
  if [ -n "${VERBOSE:-}" ]; then
    sed -n 's/^[Ll]ocation: \(.*\)\r$/       Location: \1/p; s/^[Ss]et-[Cc]ookie: \([^=]*\)=[^;]*\(;.*\)\r$/       Set-Cookie: \1=…\2/p' "$WORK/headers"
  fi
}

# follow: GETs LOCATION while it is a redirect on the provider (at most 10 hops).
follow() {
  local hops=0
  while [ -n "$LOCATION" ] && [[ "$LOCATION" == "$ISSUER"* ]]; do
    hops=$((hops + 1))
    [ "$hops" -le 10 ] || fail "more than 10 redirects"
    req "$LOCATION"
  done
}

# --- a back-channel logout receiver on a free loopback port --------------------------------------
node -e '
  const fs = require("fs");
  const s = require("http").createServer((req, res) => {
    let b = ""; req.on("data", (c) => (b += c));
    req.on("end", () => { fs.appendFileSync(process.argv[1], b + "\n"); res.writeHead(200); res.end(); });
  });
  s.listen(0, "127.0.0.1", () => console.log(s.address().port));
  setTimeout(() => process.exit(0), 120000).unref();
' "$WORK/backchannel" >"$WORK/catcher.out" &
CATCHER_PID=$!
for _ in $(seq 1 100); do [ -s "$WORK/catcher.out" ] && break; sleep 0.1; done
CATCHER_PORT=$(head -n1 "$WORK/catcher.out")
[ -n "$CATCHER_PORT" ] || fail "back-channel receiver did not start"
BACKCHANNEL_URI="http://127.0.0.1:$CATCHER_PORT/backchannel"

# --- start the provider -------------------------------------------------------------------------
IDP_PORT=0 IDP_REDIRECT_URIS="$REDIRECT_URI" IDP_POST_LOGOUT_REDIRECT_URIS="$POST_LOGOUT_URI" \
  IDP_BACKCHANNEL_LOGOUT_URI="$BACKCHANNEL_URI" \
  node server.mjs >"$WORK/idp.out" 2>"$WORK/idp.err" &
IDP_PID=$!
for _ in $(seq 1 150); do
  grep -q '^IDP_READY ' "$WORK/idp.out" 2>/dev/null && break
  kill -0 "$IDP_PID" 2>/dev/null || fail "provider exited early"
  sleep 0.1
done
ISSUER=$(sed -n 's/^IDP_READY //p' "$WORK/idp.out" | head -n1)
[ -n "$ISSUER" ] || fail "no IDP_READY line within 15 s"
[ "$(wc -l <"$WORK/idp.out")" -eq 1 ] || fail "stdout has more than the IDP_READY line"
[[ "$ISSUER" =~ ^http://127\.0\.0\.1:[0-9]+$ ]] || fail "unexpected issuer $ISSUER"
ok "IDP_READY $ISSUER (pid $IDP_PID)"

req "$ISSUER/.well-known/openid-configuration"
[ "$STATUS" = 200 ] || fail "discovery status $STATUS"
DISCOVERY=$(cat "$WORK/body")
for check in \
  'j.issuer === "'"$ISSUER"'"' \
  'j.authorization_response_iss_parameter_supported === true' \
  'j.code_challenge_methods_supported.includes("S256")' \
  'j.backchannel_logout_supported === true && j.backchannel_logout_session_supported === true' \
  '!!j.end_session_endpoint && !!j.revocation_endpoint && !!j.userinfo_endpoint' \
  'j.token_endpoint_auth_methods_supported.includes("client_secret_post")'; do
  [ "$(echo "$DISCOVERY" | js "(() => { const j = json(); return String($check); })()")" = true ] \
    || fail "discovery: $check"
done
ok "discovery"
req "$ISSUER/jwks"
[ "$(js 'json().keys.map((k) => `${k.kty}/${k.alg}/${k.kid}`).join(",")' <"$WORK/body")" = "RSA/RS256/idp-rs256" ] \
  || fail "jwks: $(cat "$WORK/body")"
ok "jwks: one RS256 key"

# --- authorization request (code + PKCE S256) ---------------------------------------------------
pkce() {
  VERIFIER=$(node -e 'process.stdout.write(require("crypto").randomBytes(32).toString("base64url"))')
  CHALLENGE=$(printf '%s' "$VERIFIER" | openssl dgst -sha256 -binary | openssl base64 -A | tr '+/' '-_' | tr -d '=')
}
authorize() { # CLIENT_ID STATE NONCE
  pkce
  req -G "$ISSUER/auth" --data-urlencode "client_id=$1" --data-urlencode "response_type=code" \
    --data-urlencode "scope=openid profile email" --data-urlencode "redirect_uri=$REDIRECT_URI" \
    --data-urlencode "state=$2" --data-urlencode "nonce=$3" \
    --data-urlencode "code_challenge=$CHALLENGE" --data-urlencode "code_challenge_method=S256"
}

# PKCE is required: no code_challenge is refused (error redirect to the client).
req -G "$ISSUER/auth" --data-urlencode "client_id=bff-basic" --data-urlencode "response_type=code" \
  --data-urlencode "scope=openid" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "state=s0"
[[ "$STATUS" = 303 && "$LOCATION" == "$REDIRECT_URI?"*"error=invalid_request"* ]] \
  || fail "authorization without PKCE was not refused: $STATUS $LOCATION"
ok "PKCE required"

authorize bff-basic state-1 nonce-1
[ "$STATUS" = 303 ] || fail "/auth status $STATUS"
[[ "$LOCATION" =~ ^$ISSUER/interaction/[A-Za-z0-9_-]+$ ]] || fail "/auth Location $LOCATION"
ok "GET /auth -> 303 $LOCATION"
follow
[ "$STATUS" = 200 ] || fail "login page status $STATUS"
grep -q 'name="password"' "$WORK/body" || fail "login page has no password field"
LOGIN_ACTION="$ISSUER$(js 'action()' <"$WORK/body")"
[[ "$LOGIN_ACTION" =~ ^$ISSUER/interaction/[A-Za-z0-9_-]+/login$ ]] || fail "login action $LOGIN_ACTION"
ok "login page (200), form action $LOGIN_ACTION"

req --data-urlencode "login=alice" --data-urlencode "password=wrong" "$LOGIN_ACTION"
[ "$STATUS" = 200 ] || fail "wrong password: status $STATUS"
grep -q 'Invalid login' "$WORK/body" || fail "wrong password: no 'Invalid login'"
grep -q 'name="password"' "$WORK/body" || fail "wrong password: login form not shown again"
ok "wrong password -> 200 'Invalid login', form shown again"

req --data-urlencode "login=alice" --data-urlencode "password=wonderland" "$LOGIN_ACTION"
[ "$STATUS" = 303 ] || fail "login POST status $STATUS"
[[ "$LOCATION" =~ ^$ISSUER/auth/[A-Za-z0-9_-]+$ ]] || fail "login POST Location $LOCATION"
ok "POST login -> 303 $LOCATION"
follow
[ "$STATUS" = 200 ] || fail "consent page status $STATUS"
CONFIRM_ACTION="$ISSUER$(js 'action()' <"$WORK/body")"
[[ "$CONFIRM_ACTION" =~ ^$ISSUER/interaction/[A-Za-z0-9_-]+/confirm$ ]] || fail "consent action $CONFIRM_ACTION"
ok "consent page (200), form action $CONFIRM_ACTION"

req --data "" "$CONFIRM_ACTION"
[ "$STATUS" = 303 ] || fail "confirm POST status $STATUS"
ok "POST confirm -> 303 $LOCATION"
follow
[ "$STATUS" = 303 ] || fail "final redirect status $STATUS"
[[ "$LOCATION" == "$REDIRECT_URI?"* ]] || fail "final Location $LOCATION"
CODE=$(js "q('$LOCATION', 'code')" </dev/null)
[ -n "$CODE" ] || fail "no code in $LOCATION"
[ "$(js "q('$LOCATION', 'state')" </dev/null)" = state-1 ] || fail "state mismatch in $LOCATION"
[ "$(js "q('$LOCATION', 'iss')" </dev/null)" = "$ISSUER" ] || fail "iss missing/wrong in $LOCATION"
ok "redirect to client -> 303 $REDIRECT_URI?code=…&state=state-1&iss=…"

# --- token endpoint ---------------------------------------------------------------------------
token() { # extra curl args...
  "${CURL[@]}" -o "$WORK/token" -w '%{http_code}' "$@" "$ISSUER/token" >"$WORK/token.status" \
    || fail "curl /token failed"
  TOKEN_STATUS=$(cat "$WORK/token.status")
}
token -u bff-basic:wrong-secret --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
[ "$TOKEN_STATUS" = 401 ] || fail "wrong client secret: status $TOKEN_STATUS"
token -u bff-basic:bff-basic-secret --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
[ "$TOKEN_STATUS" = 200 ] || fail "code exchange status $TOKEN_STATUS: $(cat "$WORK/token")"
TOKENS=$(cat "$WORK/token")
for f in access_token refresh_token id_token; do
  [ -n "$(echo "$TOKENS" | js "json().$f || ''")" ] || fail "no $f in $TOKENS"
done
[ "$(echo "$TOKENS" | js 'json().expires_in')" = 300 ] || fail "expires_in is not 300"
ACCESS=$(echo "$TOKENS" | js 'json().access_token')
REFRESH=$(echo "$TOKENS" | js 'json().refresh_token')
ID_TOKEN=$(echo "$TOKENS" | js 'json().id_token')
ok "POST /token (client_secret_basic) -> 200 access_token, refresh_token, id_token (scope '$(echo "$TOKENS" | js 'json().scope')')"
CLAIMS=$(echo "$ID_TOKEN" | js 'jwt(input.trim())')
HEADER=$(echo "$ID_TOKEN" | js 'JSON.parse(Buffer.from(input.split(".")[0], "base64url"))')
[ "$(echo "$HEADER" | js 'json().alg + "/" + json().kid')" = "RS256/idp-rs256" ] || fail "id_token header $HEADER"
[ "$(echo "$CLAIMS" | js "(() => { const c = json(); return String(c.iss === '$ISSUER' && c.aud === 'bff-basic' && c.sub === 'alice' && c.nonce === 'nonce-1' && c.name === 'Alice Liddell' && c.email === 'alice@example.test' && c.email_verified === true && typeof c.sid === 'string' && c.exp - c.iat === 300); })()")" = true ] \
  || fail "id_token claims $CLAIMS"
SID=$(echo "$CLAIMS" | js 'json().sid')
ok "id_token claims: $CLAIMS"
BASIC_CODE=$CODE
BASIC_VERIFIER=$VERIFIER

"${CURL[@]}" -o "$WORK/userinfo" -H "Authorization: Bearer $ACCESS" "$ISSUER/me" || fail "userinfo"
[ "$(js 'json().sub + "|" + json().email' <"$WORK/userinfo")" = "alice|alice@example.test" ] \
  || fail "userinfo $(cat "$WORK/userinfo")"
ok "GET /me -> $(cat "$WORK/userinfo")"

# --- refresh with rotation ---------------------------------------------------------------------
token -u bff-basic:bff-basic-secret --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH"
[ "$TOKEN_STATUS" = 200 ] || fail "refresh status $TOKEN_STATUS: $(cat "$WORK/token")"
REFRESHED=$(cat "$WORK/token")
REFRESH2=$(echo "$REFRESHED" | js 'json().refresh_token || ""')
ACCESS2=$(echo "$REFRESHED" | js 'json().access_token || ""')
[ -n "$ACCESS2" ] && [ "$ACCESS2" != "$ACCESS" ] || fail "refresh gave no new access_token"
[ -n "$REFRESH2" ] && [ "$REFRESH2" != "$REFRESH" ] || fail "refresh token not rotated"
[ "$(echo "$REFRESHED" | js 'jwt(json().id_token || "").sid')" = "$SID" ] || fail "refresh: no id_token with the same sid"
ok "refresh -> 200 new access_token, rotated refresh_token, new id_token"

# The same client again in the same provider session: no login, no consent, straight back.
authorize bff-basic state-r nonce-r
[[ "$STATUS" = 303 && "$LOCATION" == "$REDIRECT_URI?"*"state=state-r"* ]] \
  || fail "repeat authorization did not go straight back: $STATUS $LOCATION"
CODE=$(js "q('$LOCATION', 'code')" </dev/null)
token -u bff-basic:bff-basic-secret --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
[ "$TOKEN_STATUS" = 200 ] || fail "repeat code exchange $TOKEN_STATUS"
[ "$(js 'jwt(json().id_token).sid' <"$WORK/token")" = "$SID" ] || fail "repeat login: different sid"
ok "repeat /auth for bff-basic in the same session -> 303 straight to the redirect URI (same sid)"

# --- second client (client_secret_post), same provider session: no login, consent again --------
authorize bff-post state-2 nonce-2
[ "$STATUS" = 303 ] || fail "/auth (bff-post) status $STATUS"
follow
[ "$STATUS" = 200 ] && ! grep -q 'name="password"' "$WORK/body" || fail "bff-post: expected the consent page only"
CONFIRM_ACTION="$ISSUER$(js 'action()' <"$WORK/body")"
[[ "$CONFIRM_ACTION" == */confirm ]] || fail "bff-post consent action $CONFIRM_ACTION"
req --data "" "$CONFIRM_ACTION"
follow
[[ "$STATUS" = 303 && "$LOCATION" == "$REDIRECT_URI?"* ]] || fail "bff-post final $STATUS $LOCATION"
CODE=$(js "q('$LOCATION', 'code')" </dev/null)
token --data-urlencode client_id=bff-post --data-urlencode client_secret=bff-post-secret \
  --data-urlencode grant_type=authorization_code --data-urlencode "code=$CODE" \
  --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$VERIFIER"
[ "$TOKEN_STATUS" = 200 ] || fail "bff-post code exchange $TOKEN_STATUS: $(cat "$WORK/token")"
POST_TOKENS=$(cat "$WORK/token")
[ -n "$(echo "$POST_TOKENS" | js 'json().refresh_token || ""')" ] || fail "bff-post: no refresh_token"
POST_SID=$(echo "$POST_TOKENS" | js 'jwt(json().id_token).sid || ""')
[ -n "$POST_SID" ] && [ "$POST_SID" != "$SID" ] || fail "bff-post: expected its own sid, got '$POST_SID'"
ok "bff-post (client_secret_post): SSO without login, consent, tokens with refresh_token; sid is per client ($POST_SID)"

# --- revocation (RFC 7009) of an access token, then reuse of a rotated-out refresh token ---------
POST_ACCESS=$(echo "$POST_TOKENS" | js 'json().access_token')
POST_REFRESH=$(echo "$POST_TOKENS" | js 'json().refresh_token')
userinfo_status() {
  "${CURL[@]}" -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $1" "$ISSUER/me" || fail "curl /me"
}
[ "$(userinfo_status "$POST_ACCESS")" = 200 ] || fail "bff-post access token not accepted by userinfo"
REV=$("${CURL[@]}" -o /dev/null -w '%{http_code}' --data-urlencode client_id=bff-post --data-urlencode client_secret=bff-post-secret \
  --data-urlencode "token=$POST_ACCESS" --data-urlencode token_type_hint=access_token "$ISSUER/token/revocation") \
  || fail "curl revocation"
[ "$REV" = 200 ] || fail "revocation status $REV"
[ "$(userinfo_status "$POST_ACCESS")" = 401 ] || fail "revoked access token still accepted"
ok "revocation of an access token -> 200; userinfo with it -> 401"

token -u bff-basic:bff-basic-secret --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH"
[ "$TOKEN_STATUS" = 400 ] || fail "reused (rotated-out) refresh token accepted ($TOKEN_STATUS)"
ok "reusing the rotated-out refresh token -> 400 $(js 'json().error' <"$WORK/token")"
token -u bff-basic:bff-basic-secret --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$REFRESH2"
[ "$TOKEN_STATUS" = 400 ] || fail "after refresh token reuse the current refresh token still works ($TOKEN_STATUS)"
ok "... and that reuse revoked the grant: the current refresh token -> 400 too"

# A second use of a code is refused (oidc-provider then also revokes what the code produced).
token -u bff-basic:bff-basic-secret --data-urlencode grant_type=authorization_code \
  --data-urlencode "code=$BASIC_CODE" --data-urlencode "redirect_uri=$REDIRECT_URI" --data-urlencode "code_verifier=$BASIC_VERIFIER"
[ "$TOKEN_STATUS" = 400 ] || fail "code reuse: status $TOKEN_STATUS"
ok "code reuse -> 400 $(js 'json().error' <"$WORK/token")"

# --- client credentials ------------------------------------------------------------------------
token -u bff-basic:bff-basic-secret --data-urlencode grant_type=client_credentials \
  --data-urlencode "scope=reports.read not.an.api.scope"
[ "$TOKEN_STATUS" = 200 ] || fail "client credentials: status $TOKEN_STATUS: $(cat "$WORK/token")"
CC=$(cat "$WORK/token")
[ "$(echo "$CC" | js 'String(!json().refresh_token && !json().id_token && json().scope === "reports.read" && json().expires_in === 600)')" = true ] \
  || fail "client credentials answer $CC"
CC_HEADER=$(echo "$CC" | js 'JSON.parse(Buffer.from(json().access_token.split(".")[0], "base64url"))')
CC_CLAIMS=$(echo "$CC" | js 'jwt(json().access_token)')
[ "$(echo "$CC_HEADER" | js 'json().typ + "/" + json().alg + "/" + json().kid')" = "at+jwt/RS256/idp-rs256" ] \
  || fail "client token header $CC_HEADER"
[ "$(echo "$CC_CLAIMS" | js "(() => { const c = json(); return String(c.iss === '$ISSUER' && c.aud === 'urn:bff-test:api' && c.sub === 'bff-basic' && c.client_id === 'bff-basic'); })()")" = true ] \
  || fail "client token claims $CC_CLAIMS"
[ "$("${CURL[@]}" "$ISSUER/test/grants" | js 'json().client_credentials["bff-basic"]')" = 1 ] \
  || fail "grant count $("${CURL[@]}" "$ISSUER/test/grants")"
ok "client credentials -> 200 JWT access token for urn:bff-test:api: $CC_CLAIMS; GET /test/grants counts it"

# --- RP-initiated logout with back-channel logout ----------------------------------------------
req -G "$ISSUER/session/end" --data-urlencode "id_token_hint=$ID_TOKEN" \
  --data-urlencode "post_logout_redirect_uri=$POST_LOGOUT_URI" --data-urlencode "state=bye"
[ "$STATUS" = 200 ] || fail "end_session status $STATUS"
LOGOUT_ACTION=$(js 'action()' <"$WORK/body")
XSRF=$(js 'hidden("xsrf")' <"$WORK/body")
[ "$(js 'hidden("logout")' <"$WORK/body")" = yes ] || fail "logout page has no hidden logout=yes"
[ "$LOGOUT_ACTION" = "$ISSUER/session/end/confirm" ] && [ -n "$XSRF" ] || fail "logout form: $(cat "$WORK/body")"
ok "GET /session/end -> 200 confirmation form $LOGOUT_ACTION (xsrf, logout=yes)"
req --data-urlencode "xsrf=$XSRF" --data-urlencode "logout=yes" "$LOGOUT_ACTION"
[ "$STATUS" = 303 ] || fail "logout confirm status $STATUS"
[ "$LOCATION" = "$POST_LOGOUT_URI?state=bye" ] || fail "logout confirm Location $LOCATION"
ok "POST /session/end/confirm -> 303 $LOCATION"
# One logout_token per client signed in through this session, each with that client's sid
# (the provider sends them before answering the confirm POST).
for _ in $(seq 1 50); do [ "$(wc -l <"$WORK/backchannel" 2>/dev/null || echo 0)" -ge 2 ] && break; sleep 0.1; done
LOGOUTS=$(js '
  input.trim().split("\n").map((l) => jwt(new URLSearchParams(l).get("logout_token")))
    .filter((c) => c.sub === "alice" && c.iss === "'"$ISSUER"'" && c.events["http://schemas.openid.net/event/backchannel-logout"] && !c.nonce)
    .map((c) => `${c.aud}=${c.sid}`).sort().join(" ")' <"$WORK/backchannel" 2>/dev/null)
[ "$LOGOUTS" = "bff-basic=$SID bff-post=$POST_SID" ] || fail "back-channel logout tokens: '$LOGOUTS'"
ok "back-channel logout_token for each client with its sid: $LOGOUTS"
token --data-urlencode client_id=bff-post --data-urlencode client_secret=bff-post-secret \
  --data-urlencode grant_type=refresh_token --data-urlencode "refresh_token=$POST_REFRESH"
[ "$TOKEN_STATUS" = 400 ] || fail "bff-post refresh token still works after logout ($TOKEN_STATUS)"
ok "after logout=yes the grants are revoked (bff-post refresh -> 400 $(js 'json().error' <"$WORK/token"))"

# After logout the provider asks for the password again.
authorize bff-basic state-3 nonce-3
follow
grep -q 'name="password"' "$WORK/body" || fail "after logout: no login page"
ok "after logout a new /auth shows the login form again"

# --- clean exit on SIGTERM ---------------------------------------------------------------------
kill -TERM "$IDP_PID"
for _ in $(seq 1 50); do kill -0 "$IDP_PID" 2>/dev/null || break; sleep 0.1; done
kill -0 "$IDP_PID" 2>/dev/null && fail "provider still running 5 s after SIGTERM"
wait "$IDP_PID"
RC=$?
IDP_PID=""
[ "$RC" = 0 ] || fail "provider exit status $RC after SIGTERM"
ok "SIGTERM -> exit 0"

echo "PASS"
