//! The userinfo endpoint (OIDC Core 5.3): a bearer `GET`, answered with a JSON object whose
//! `sub` must be the ID token's. Signed (`application/jwt`) answers are refused rather than
//! trusted unverified.

use bff_domain::ports::ProviderError;
use bff_domain::{Claims, Secret};
use serde_json::Value;

use super::{OidcProvider, unavailable};

/// The claims at `endpoint` for `access_token`.
pub(super) async fn fetch(
    provider: &OidcProvider,
    endpoint: &str,
    access_token: &Secret,
    expected_subject: &str,
) -> Result<Claims, ProviderError> {
    let (status, content_type, body) = provider
        .within(async {
            let response = provider
                .http
                .get(endpoint)
                .bearer_auth(access_token.expose())
                .header(reqwest::header::ACCEPT, "application/json")
                .send()
                .await
                .map_err(|e| unavailable(e.without_url()))?;
            let status = response.status();
            let content_type = response
                .headers()
                .get(reqwest::header::CONTENT_TYPE)
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_ascii_lowercase();
            let body = response
                .bytes()
                .await
                .map_err(|e| unavailable(e.without_url()))?;
            Ok((status, content_type, body))
        })
        .await?;
    if status == reqwest::StatusCode::UNAUTHORIZED {
        return Err(ProviderError::Rejected("invalid_token".into()));
    }
    if status.is_server_error() {
        return Err(unavailable(format!("userinfo answered HTTP {status}")));
    }
    if !status.is_success() {
        return Err(ProviderError::Protocol(format!(
            "userinfo answered HTTP {status}"
        )));
    }
    if content_type.starts_with("application/jwt") {
        return Err(ProviderError::Protocol(
            "signed userinfo not supported".into(),
        ));
    }
    let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&body) else {
        return Err(ProviderError::Protocol(
            "userinfo is not a JSON object".into(),
        ));
    };
    let claims = Claims::new(map);
    if claims.subject() != Some(expected_subject) {
        return Err(ProviderError::Protocol(
            "userinfo sub differs from the ID token's".into(),
        ));
    }
    Ok(claims)
}
