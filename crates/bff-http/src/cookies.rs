//! The three cookies the BFF sets, with their attributes in one place, and the extractors that
//! are the only way for a handler to read the session cookie.
//!
//! - Session: `HttpOnly; Secure; Path=/; SameSite=Strict`, no `Domain`; value is the opaque
//!   session id. Without `Max-Age` it would outlive the session in the browser for no gain, so it
//!   carries the session's expiry.
//! - Login binding: the same but `SameSite=Lax`, because the provider's redirect back to the
//!   callback is a cross-site top-level navigation that must carry it.
//! - Post-logout state: `SameSite=Lax` for the same reason (the provider's redirect back after
//!   logout), holding the `state` sent to the provider's end-session endpoint for
//!   [`LOGOUT_STATE_LIFETIME`].
//!
//! In plain-HTTP development mode `Secure` is dropped (and names must not use `__Host-`).
//!
//! A handler gets the session id only by declaring [`RequiredSession`] (`401 no_session` when
//! the browser has none) or [`SessionCookie`] (when a session is optional) in its signature.
//! Both admit the session first when the domain renews ids or binds sessions to their client
//! ([`Bff::admit_session`]): a renewed id is set as the new cookie and handed to the handler; a
//! strict binding mismatch clears the cookie (`401 session_binding_mismatch` for a required
//! session, no session for an optional one); a `warn` mismatch is logged without the inputs.

use std::sync::Arc;
use std::time::Duration;

use bff_domain::{
    AdmissionError, Bff, BindingCheck, ClientContext, LoginBinding, PostLogoutState, SessionId,
    SessionView,
};
use poem::http::{HeaderMap, HeaderValue, header};
use poem::web::cookie::{Cookie, CookieJar, SameSite};
use poem::{FromRequest, Request, RequestBody};

use crate::problem::Problem;
use crate::settings::HttpSettings;

/// How long a browser keeps the post-logout state: long enough to confirm the logout at the
/// provider, short enough that a forgotten one does not linger.
pub(crate) const LOGOUT_STATE_LIFETIME: Duration = Duration::from_secs(600);

fn base(settings: &HttpSettings, name: &str, value: &str, same_site: SameSite) -> Cookie {
    let mut cookie = Cookie::new_with_str(name, value);
    cookie.set_http_only(true);
    cookie.set_secure(settings.secure_cookies);
    cookie.set_path("/");
    cookie.set_same_site(same_site);
    cookie
}

/// The `Set-Cookie` value the BFF writes for a session under `settings`, with a placeholder
/// value: what the start-up conformance self-check inspects, so it reports the attributes the
/// code really sets rather than what a document says they are.
pub fn session_set_cookie_example(settings: &HttpSettings) -> String {
    let mut cookie = base(
        settings,
        &settings.session_cookie,
        "example",
        SameSite::Strict,
    );
    cookie.set_max_age(Duration::from_secs(60));
    cookie.to_string()
}

/// Adds a cookie that the browser drops at once (same attributes, so browsers accept the
/// removal).
fn expire(jar: &CookieJar, settings: &HttpSettings, name: &str, same_site: SameSite) {
    let mut cookie = base(settings, name, "", same_site);
    cookie.set_max_age(Duration::ZERO);
    jar.add(cookie);
}

/// Sets the session cookie for `lifetime` in `jar` (the request's, or a [`SessionCookie`]'s own).
pub(crate) fn set_session(
    jar: &CookieJar,
    settings: &HttpSettings,
    id: &SessionId,
    lifetime: Duration,
) {
    let mut cookie = base(
        settings,
        &settings.session_cookie,
        id.expose(),
        SameSite::Strict,
    );
    cookie.set_max_age(lifetime);
    jar.add(cookie);
}

/// Sets the login-binding cookie for `lifetime`.
pub(crate) fn set_binding(
    req: &Request,
    settings: &HttpSettings,
    binding: &LoginBinding,
    lifetime: Duration,
) {
    let mut cookie = base(
        settings,
        &settings.binding_cookie,
        binding.expose(),
        SameSite::Lax,
    );
    cookie.set_max_age(lifetime);
    req.cookie().add(cookie);
}

/// The login binding from the request's cookie, expiring the cookie: whatever the outcome of
/// the login, the binding has done its job.
pub(crate) fn take_binding(req: &Request, settings: &HttpSettings) -> Option<LoginBinding> {
    let binding = req
        .cookie()
        .get(&settings.binding_cookie)
        .and_then(|cookie| LoginBinding::parse(cookie.value_str()).ok());
    expire(
        req.cookie(),
        settings,
        &settings.binding_cookie,
        SameSite::Lax,
    );
    binding
}

/// Sets the post-logout state cookie for [`LOGOUT_STATE_LIFETIME`].
pub(crate) fn set_logout_state(req: &Request, settings: &HttpSettings, state: &PostLogoutState) {
    let mut cookie = base(
        settings,
        &settings.logout_cookie,
        state.expose(),
        SameSite::Lax,
    );
    cookie.set_max_age(LOGOUT_STATE_LIFETIME);
    req.cookie().add(cookie);
}

/// The post-logout state from the request's cookie, expiring the cookie: it is good for one
/// return from the provider. A malformed value counts as none.
pub(crate) fn take_logout_state(req: &Request, settings: &HttpSettings) -> Option<PostLogoutState> {
    let state = req
        .cookie()
        .get(&settings.logout_cookie)
        .and_then(|cookie| PostLogoutState::parse(cookie.value_str()).ok());
    expire(
        req.cookie(),
        settings,
        &settings.logout_cookie,
        SameSite::Lax,
    );
    state
}

/// The HTTP settings `app` attaches to every request.
pub(crate) fn request_settings(req: &Request) -> Result<Arc<HttpSettings>, Problem> {
    req.data::<Arc<HttpSettings>>().cloned().ok_or_else(|| {
        Problem::misconfigured("the BFF endpoints are served without their HTTP settings")
    })
}

/// The browser's session cookie, whether or not it has one: for endpoints where a session is
/// optional (`/session`, `/login/end`, logout). A malformed value is never looked up and counts
/// as none.
pub(crate) struct SessionCookie {
    id: Option<SessionId>,
    jar: CookieJar,
    settings: Arc<HttpSettings>,
}

impl SessionCookie {
    /// The session id, when the browser sent a well-formed one.
    pub(crate) fn id(&self) -> Option<&SessionId> {
        self.id.as_ref()
    }

    /// Expires the session cookie in the browser.
    pub(crate) fn clear(&self) {
        expire(
            &self.jar,
            &self.settings,
            &self.settings.session_cookie,
            SameSite::Strict,
        );
    }

    /// The browser's live session, if it has one: `None` without a cookie, and `None` with the
    /// cookie cleared when the session it names has ended. Other failures (a store that is
    /// down) are problems.
    pub(crate) async fn current(&self, bff: &Bff) -> Result<Option<SessionView>, Problem> {
        let Some(id) = self.id() else {
            return Ok(None);
        };
        match bff.current_session(id).await {
            Ok(view) => Ok(Some(view)),
            Err(e) if e.ends_session() => {
                self.clear();
                Ok(None)
            }
            Err(e) => Err(e.into()),
        }
    }

    /// The problem for `err`, clearing the cookie first when `err` means the session is over.
    pub(crate) fn problem_for<E: EndsSession + Into<Problem>>(&self, err: E) -> Problem {
        if err.ends_session() {
            self.clear();
        }
        err.into()
    }
}

/// The client of `req` as the session binding sees it: its `User-Agent` and its address (the
/// peer, or the right-most untrusted hop written by `trusted` proxies).
pub(crate) fn client_context(req: &Request, trusted: &crate::TrustedProxies) -> ClientContext {
    let peer = req.remote_addr().as_socket_addr().map(|addr| addr.ip());
    ClientContext {
        user_agent: req
            .headers()
            .get(header::USER_AGENT)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned),
        address: trusted.client(peer, req.headers()).address,
    }
}

impl SessionCookie {
    /// Admits the session for this request (see the module docs): on success the id is the one
    /// to use (renewed ids are set as the new cookie); an error that ends the session clears the
    /// cookie and leaves no id.
    ///
    /// # Errors
    /// The domain's [`AdmissionError`], for the caller to answer.
    pub(crate) async fn admit(
        &mut self,
        req: &Request,
        bff: &Bff,
        trusted: &crate::TrustedProxies,
    ) -> Result<(), AdmissionError> {
        if !bff.admission_needed() {
            return Ok(());
        }
        let Some(id) = self.id.take() else {
            return Ok(());
        };
        // Boxed: only deployments with admission checks pay for its (large) future.
        match Box::pin(bff.admit_session(id, &client_context(req, trusted))).await {
            Ok(admitted) => {
                if admitted.renewed {
                    set_session(
                        &self.jar,
                        &self.settings,
                        &admitted.id,
                        admitted.cookie_max_age,
                    );
                }
                if admitted.binding == BindingCheck::Mismatch {
                    // Neither the User-Agent nor the address: the log is not the place for them.
                    tracing::warn!(
                        "request from another client than the session's login (client binding, warn mode)"
                    );
                }
                self.id = Some(admitted.id);
                Ok(())
            }
            Err(err) => {
                if err.ends_session() {
                    self.clear();
                }
                Err(err)
            }
        }
    }

    /// Reads the cookie and admits the session, for the extractors: a session that admission
    /// ended counts as none (and comes back as the error, for a required session to answer); a
    /// store failure is a problem.
    async fn read_admitted(req: &Request) -> poem::Result<(Self, Option<AdmissionError>)> {
        let settings = request_settings(req)?;
        let mut cookie = Self::read(req, settings.clone());
        let Some(bff) = req.data::<Arc<Bff>>() else {
            return Ok((cookie, None));
        };
        match cookie.admit(req, bff, &settings.trusted_proxies).await {
            Ok(()) => Ok((cookie, None)),
            Err(err) if err.ends_session() => Ok((cookie, Some(err))),
            Err(err) => Err(Problem::from(err).into()),
        }
    }
}

impl SessionCookie {
    /// Reads the cookie from the request's cookie jar (`CookieJarManager`'s).
    fn read(req: &Request, settings: Arc<HttpSettings>) -> Self {
        let id = req
            .cookie()
            .get(&settings.session_cookie)
            .and_then(|cookie| SessionId::parse(cookie.value_str()).ok());
        Self {
            id,
            jar: req.cookie().clone(),
            settings,
        }
    }

    /// Reads the cookie from `headers` without a request cookie jar, for the API proxy: its
    /// requests carry the app's other cookies too, and parsing every one of them into a jar was
    /// a twentieth of a proxied request. The same cookie as the jar's (the first of that name,
    /// percent-decoded). What this session cookie writes (a renewal, a removal) goes into `jar`,
    /// for [`set_cookies_from`] to put on the response.
    pub(crate) fn from_headers(
        headers: &HeaderMap,
        settings: Arc<HttpSettings>,
        jar: CookieJar,
    ) -> Self {
        let id = cookie_value(headers, &settings.session_cookie)
            .and_then(|value| SessionId::parse(&value).ok());
        Self { id, jar, settings }
    }
}

/// The value of the first cookie named `name` in `headers`' `Cookie` lines, percent-decoded:
/// the one poem's cookie jar would give. Only pieces that could be that cookie are parsed
/// (named `name`, or with a `%` in the name, which may decode to it).
pub(crate) fn cookie_value(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|line| line.to_str().ok())
        .flat_map(|line| line.split(';').map(str::trim))
        .find_map(|piece| {
            // The usual piece, `name=` and a value of base64url characters (a session id),
            // is its own parse: taken as it is, without the parser's allocation.
            if let Some(value) = piece.strip_prefix(name).and_then(|r| r.strip_prefix('='))
                && !value.is_empty()
                && value
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
            {
                return Some(value.to_owned());
            }
            let raw_name = piece.split_once('=').map_or(piece, |(n, _)| n).trim();
            if raw_name != name && !raw_name.contains('%') {
                return None;
            }
            Cookie::parse(piece)
                .ok()
                .filter(|cookie| cookie.name() == name)
                .map(|cookie| cookie.value_str().to_owned())
        })
}

/// Appends a `Set-Cookie` header to `headers` for every cookie in `jar`, a jar that started
/// empty ([`SessionCookie::from_headers`]'s), so all it holds was written for this response.
pub(crate) fn set_cookies_from(jar: &CookieJar, headers: &mut HeaderMap) {
    jar.with_cookies(|cookies| {
        for cookie in cookies {
            if let Ok(value) = HeaderValue::from_str(&cookie.encoded().to_string()) {
                headers.append(header::SET_COOKIE, value);
            }
        }
    });
}

impl<'a> FromRequest<'a> for SessionCookie {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        // A session ended by admission is no session here: the endpoint answers as logged out.
        Ok(Self::read_admitted(req).await?.0)
    }
}

/// The browser's session id, required: extracting it answers `401 no_session` when the browser
/// has no (well-formed) session cookie.
pub(crate) struct RequiredSession {
    id: SessionId,
    cookie: SessionCookie,
}

impl RequiredSession {
    /// The session id.
    pub(crate) fn id(&self) -> &SessionId {
        &self.id
    }

    /// The problem for `err`, clearing the cookie first when `err` means the session is over.
    pub(crate) fn problem_for<E: EndsSession + Into<Problem>>(&self, err: E) -> Problem {
        self.cookie.problem_for(err)
    }
}

impl<'a> FromRequest<'a> for RequiredSession {
    async fn from_request(req: &'a Request, _body: &mut RequestBody) -> poem::Result<Self> {
        let (mut cookie, ended) = SessionCookie::read_admitted(req).await?;
        if let Some(err) = ended {
            return Err(Problem::from(err).into());
        }
        let id = cookie.id.take().ok_or_else(Problem::no_session)?;
        Ok(Self { id, cookie })
    }
}

/// Domain errors that can mean the browser's session is over.
pub(crate) trait EndsSession {
    /// Whether the session cookie should go.
    fn ends_session(&self) -> bool;
}

impl EndsSession for bff_domain::SessionError {
    fn ends_session(&self) -> bool {
        Self::ends_session(self)
    }
}

impl EndsSession for bff_domain::RefreshError {
    fn ends_session(&self) -> bool {
        Self::ends_session(self)
    }
}

impl EndsSession for bff_domain::LoginError {
    fn ends_session(&self) -> bool {
        Self::ends_session(self)
    }
}

impl EndsSession for bff_domain::LogoutError {
    fn ends_session(&self) -> bool {
        Self::ends_session(self)
    }
}

#[cfg(test)]
mod tests {
    use poem::middleware::CookieJarManager;
    use poem::{Endpoint, EndpointExt};

    use super::*;

    /// What poem's cookie jar gives for `name` from these `Cookie` lines.
    async fn jar_value(lines: &[&str], name: &'static str) -> Option<String> {
        let endpoint = poem::endpoint::make_sync(move |req: Request| {
            req.cookie()
                .get(name)
                .map(|cookie| cookie.value_str().to_owned())
                .unwrap_or_else(|| "<none>".to_owned())
        })
        .with(CookieJarManager::new());
        let mut req = Request::builder().finish();
        for line in lines {
            req.headers_mut()
                .append(header::COOKIE, HeaderValue::from_str(line).unwrap());
        }
        let body = endpoint
            .call(req)
            .await
            .unwrap()
            .into_body()
            .into_string()
            .await
            .unwrap();
        (body != "<none>").then_some(body)
    }

    #[tokio::test]
    async fn the_header_reader_finds_the_cookie_the_jar_finds() {
        let name = "__Host-Http-bff";
        let cases: &[&[&str]] = &[
            &["__Host-Http-bff=abc"],
            &["theme=dark; __Host-Http-bff=abc; lang=en"],
            &["__Host-Http-bff=first; __Host-Http-bff=second"],
            &["a=1", "__Host-Http-bff=in-the-second-line"],
            &["__Host-Http-bff=x", "__Host-Http-bff=y"],
            &["%5F_Host-Http-bff=decoded-name"],
            &["__Host-Http-bff=per%63ent"],
            &["  __Host-Http-bff = spaced ;x=1"],
            &["__host-http-bff=other-case"],
            &["__Host-Http-bffx=longer-name; x__Host-Http-bff=prefixed"],
            &["__Host-Http-bff"],
            &["__Host-Http-bff="],
            &["=nameless; ;; __Host-Http-bff=after-junk"],
            &["__Host-Http-bff=\"quoted\""],
            // Session-id-like values (the reader's shortcut) next to ones it parses.
            &["__Host-Http-bff=dGhpcy1pcy1hLXNlc3Npb24taWQtXzAxMjM0NTY3ODk"],
            &["__Host-Http-bff=plain_first; __Host-Http-bff=per%63ent"],
            &["%5F_Host-Http-bff=decoded-first; __Host-Http-bff=plain_second"],
            &["__Host-Http-bff=pl+us", "__Host-Http-bff=plain"],
            &[""],
            &[],
        ];
        for lines in cases {
            let header_map = {
                let mut map = HeaderMap::new();
                for line in lines.iter() {
                    map.append(header::COOKIE, HeaderValue::from_str(line).unwrap());
                }
                map
            };
            assert_eq!(
                cookie_value(&header_map, name),
                jar_value(lines, name).await,
                "{lines:?}"
            );
        }
        // The table is not vacuous: these find a cookie.
        let found = HeaderMap::from_iter([(
            header::COOKIE,
            HeaderValue::from_static("a=1; __Host-Http-bff=first; __Host-Http-bff=second"),
        )]);
        assert_eq!(cookie_value(&found, name).as_deref(), Some("first"));
    }

    #[test]
    fn a_header_read_session_cookie_writes_its_renewal_and_removal_as_set_cookie() {
        let settings = Arc::new(HttpSettings {
            prefix: "/bff".into(),
            session_cookie: "__Host-Http-bff".into(),
            binding_cookie: "__Host-Http-bff-login".into(),
            logout_cookie: "__Host-Http-bff-logout".into(),
            secure_cookies: true,
            app_origins: vec![],
            cors: false,
            trusted_proxies: Default::default(),
            request_limits: Default::default(),
        });
        let jar = CookieJar::default();
        let mut headers = HeaderMap::new();
        set_cookies_from(&jar, &mut headers);
        assert!(headers.is_empty(), "nothing written, nothing set");
        let cookie = SessionCookie::from_headers(&HeaderMap::new(), settings, jar.clone());
        assert!(cookie.id().is_none());
        cookie.clear();
        set_cookies_from(&jar, &mut headers);
        let set: Vec<&str> = headers
            .get_all(header::SET_COOKIE)
            .iter()
            .map(|v| v.to_str().unwrap())
            .collect();
        assert_eq!(set.len(), 1, "{set:?}");
        for attribute in [
            "__Host-Http-bff=",
            "Max-Age=0",
            "HttpOnly",
            "Secure",
            "Path=/",
        ] {
            assert!(set[0].contains(attribute), "{attribute} in {}", set[0]);
        }
    }
}
