//! Every answer carries the server's own request id (`x-request-id`), and a problem answer also
//! as its `instance`, so what a user reports can be found in the logs.

use std::sync::Arc;

use bff_domain::testkit::FakeProvider;
use bff_http::REQUEST_ID_HEADER;
use poem::http::StatusCode;
use poem::{Endpoint, IntoResponse, Request, Response};

use crate::support::{self, ISSUER};

fn app() -> impl Endpoint {
    let provider = Arc::new(FakeProvider::new("main", ISSUER));
    bff_http::app(
        support::bff(provider),
        Arc::new(support::settings(true)),
        Vec::new(),
        None,
        None,
    )
}

async fn call(app: &impl Endpoint, req: Request) -> (StatusCode, String, serde_json::Value) {
    let resp: Response = app
        .call(req)
        .await
        .map(IntoResponse::into_response)
        .unwrap_or_else(poem::Error::into_response);
    let status = resp.status();
    let id = resp
        .headers()
        .get(REQUEST_ID_HEADER)
        .map(|v| v.to_str().unwrap().to_owned())
        .expect("no x-request-id");
    let body = resp.into_body().into_string().await.unwrap();
    (status, id, serde_json::from_str(&body).unwrap())
}

#[tokio::test]
async fn a_problem_names_its_request_and_every_request_gets_its_own_id() {
    let app = app();
    let no_session = || {
        Request::builder()
            .uri_str("/bff/user")
            .header("x-csrf", "1")
            // A client cannot choose the id its lines are logged under.
            .header(REQUEST_ID_HEADER, "forged-id")
            .finish()
    };
    let (status, first, problem) = call(&app, no_session()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let parsed = uuid::Uuid::parse_str(&first).expect("the id is a UUID");
    assert_eq!(parsed.get_version_num(), 7, "{first}");
    assert_eq!(problem["instance"], format!("urn:bff:request:{first}"));
    assert_eq!(problem["code"], "no_session", "{problem}");

    let (_, second, again) = call(&app, no_session()).await;
    assert_ne!(first, second);
    assert_eq!(again["instance"], format!("urn:bff:request:{second}"));
}

#[tokio::test]
async fn a_successful_answer_carries_the_id_and_an_unchanged_body() {
    let (status, id, body) = call(&app(), Request::builder().uri_str("/healthz").finish()).await;
    assert_eq!(status, StatusCode::OK);
    assert!(uuid::Uuid::parse_str(&id).is_ok(), "{id}");
    assert_eq!(body, serde_json::json!({"status": "ok"}));
}
