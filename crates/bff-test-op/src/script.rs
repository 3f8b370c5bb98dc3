//! What the provider does ([`Script`]) and what it recorded. Tests change the script between
//! calls through [`crate::TestOp::script`].

use std::time::Duration;

use serde_json::Value;

use crate::keys::Signer;
use crate::{CLIENT_ID, NOW, SUBJECT};

/// The time ID tokens are issued at (`iat`; `exp` is five minutes later).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IssueTime {
    /// A fixed Unix time, for clients whose clock the test injects.
    Fixed(i64),
    /// The system clock, for a client that reads the real time (the server binary).
    System,
}

/// The `iss` parameter of the authorization response (RFC 9207).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub enum IssParameter {
    /// This provider's issuer, as it should be.
    #[default]
    Issuer,
    /// Another value (a mix-up attack).
    Value(String),
    /// No `iss` at all.
    Omitted,
}

/// How the provider behaves, and what it recorded.
#[derive(Debug)]
pub struct Script {
    /// The issuer the discovery document claims (default: its own).
    pub claimed_issuer: Option<String>,
    /// Merged into the discovery document; `null` removes a member.
    pub metadata_overrides: Value,
    /// Publish key 2 (`k2`) in the JWKS.
    pub publish_ec2: bool,
    /// Which key signs ID tokens.
    pub signer: Signer,
    /// The `kid` ID tokens name (default: the signer's own).
    pub kid_override: Option<String>,
    /// When ID tokens are issued.
    pub issue_time: IssueTime,
    /// The `aud` of ID tokens.
    pub client_id: String,
    /// The `sub` of ID tokens.
    pub subject: String,
    /// Merged into the ID token claims; `null` removes a claim.
    pub claim_overrides: Value,
    /// Merged into the ID token claims *after* signing, keeping the signature (tampering).
    pub claims_changed_after_signing: Option<Value>,
    /// Return exactly this ID token.
    pub raw_id_token: Option<String>,
    /// Leave the ID token out of the token response.
    pub omit_id_token: bool,
    /// Members merged into the token response; `null` removes one.
    pub token_response_overrides: Value,
    /// Answer the token endpoint with this OAuth error (HTTP 400).
    pub token_error: Option<String>,
    /// Answer the token endpoint with this status and body instead (a proxy's error page, an
    /// overloaded provider).
    pub token_answer: Option<(u16, String)>,
    /// Wait this long before answering the token endpoint.
    pub token_delay: Option<Duration>,
    /// The `iss` of authorization responses.
    pub iss_parameter: IssParameter,
    /// The `sub` userinfo answers with.
    pub userinfo_sub: String,
    /// Answer userinfo with a signed JWT (`application/jwt`).
    pub userinfo_jwt: bool,
    /// Recorded: the query of every authorization request.
    pub authorization_requests: Vec<Vec<(String, String)>>,
    /// Recorded: every token endpoint call.
    pub token_calls: Vec<TokenCall>,
    /// Recorded: every revocation call.
    pub revocations: Vec<TokenCall>,
    /// Recorded: the bearer token of every userinfo call.
    pub userinfo_bearers: Vec<String>,
}

impl Default for Script {
    /// An honest provider issuing tokens at [`NOW`] for [`SUBJECT`] to [`CLIENT_ID`], signed by
    /// [`Signer::Ec1`].
    fn default() -> Self {
        Self {
            claimed_issuer: None,
            metadata_overrides: Value::Null,
            publish_ec2: false,
            signer: Signer::default(),
            kid_override: None,
            issue_time: IssueTime::Fixed(NOW),
            client_id: CLIENT_ID.to_owned(),
            subject: SUBJECT.to_owned(),
            claim_overrides: Value::Null,
            claims_changed_after_signing: None,
            raw_id_token: None,
            omit_id_token: false,
            token_response_overrides: Value::Null,
            token_error: None,
            token_answer: None,
            token_delay: None,
            iss_parameter: IssParameter::default(),
            userinfo_sub: SUBJECT.to_owned(),
            userinfo_jwt: false,
            authorization_requests: Vec::new(),
            token_calls: Vec::new(),
            revocations: Vec::new(),
            userinfo_bearers: Vec::new(),
        }
    }
}

/// What the token or revocation endpoint saw.
#[derive(Clone, Debug)]
pub struct TokenCall {
    /// `basic`, `post`, `private_key_jwt` (an assertion and no secret), or a description when
    /// both secrets or none were used.
    pub auth: String,
    /// The client id, from whichever authentication was used.
    pub client_id: String,
    /// The client secret, from whichever authentication was used.
    pub client_secret: String,
    /// The form parameters.
    pub form: Vec<(String, String)>,
}

impl TokenCall {
    /// The first form parameter called `name`.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.form
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

/// Merges `overrides` into `target` (both objects); a `null` override removes the member.
pub(crate) fn merge(target: &mut Value, overrides: &Value) {
    if let (Some(target), Some(overrides)) = (target.as_object_mut(), overrides.as_object()) {
        for (k, v) in overrides {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    }
}
