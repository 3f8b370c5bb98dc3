//! The RP-initiated logout URL (OpenID Connect RP-Initiated Logout 1.0): the provider's
//! `end_session_endpoint` (its own query kept) with the ID token hint, the post-logout redirect,
//! the client id and the `state` the BFF checks when the browser comes back.

use bff_domain::Secret;

use crate::config::OidcProviderConfig;

/// The logout URL at `endpoint`, or `None` when `endpoint` is not a URL.
pub(super) fn url(
    endpoint: &str,
    config: &OidcProviderConfig,
    id_token_hint: Option<&Secret>,
    state: &str,
) -> Option<String> {
    let mut url = url::Url::parse(endpoint).ok()?;
    {
        let mut query = url.query_pairs_mut();
        if let Some(hint) = id_token_hint {
            query.append_pair("id_token_hint", hint.expose());
        }
        if let Some(uri) = &config.post_logout_redirect_uri {
            query.append_pair("post_logout_redirect_uri", uri);
        }
        query.append_pair("client_id", &config.client_id);
        query.append_pair("state", state);
    }
    Some(url.to_string())
}
