//! Properties of the domain's parsers of attacker input, over inputs built from the pieces
//! attackers use against URL and path parsers (dot segments, encoded separators, double
//! encoding, backslashes, `@`, controls, look-alike Unicode) mixed with arbitrary characters.
//!
//! - Session cookie values: never panic; accepted only in the id's exact shape.
//! - Return URLs: never panic; an accepted one resolves to the app's own origin from any page
//!   of it, and is kept as written.
//! - The proxy's route allowlist: never panics; an accepted target is forwarded to its route's
//!   upstream origin, under the upstream's base path, without dot segments or encoded
//!   separators, saying (once decoded) exactly the path that was matched, with the query as
//!   received; well-formed targets under a prefix are always accepted.

use bff_domain::allowlist::{Method, Route, RouteSpec, RouteTable, TokenPolicy};
use bff_domain::{ReturnUrl, SessionId};
use proptest::prelude::*;
use url::Url;

/// Pieces that make URL and path parsers disagree.
const HOSTILE_PIECES: &[&str] = &[
    "/",
    "//",
    "\\",
    ".",
    "..",
    "...",
    "%2e",
    "%2E",
    "%2e%2e",
    "%2f",
    "%2F",
    "%5c",
    "%5C",
    "%25",
    "%252e",
    "%252f",
    "%00",
    "%0a",
    "%c0%ae",
    "%C0%AF",
    "%e2%80%ae",
    "%",
    "%zz",
    "%4",
    ";",
    "%3b",
    "@",
    ":",
    "?",
    "#",
    "&",
    "=",
    " ",
    "\t",
    "\n",
    "\r",
    "\0",
    "evil.example",
    "https:",
    "\\evil.example",
    "/evil.example",
    "evil.example:443",
    "javascript:",
    "a",
    "orders",
    "api",
    "files",
    "~",
    "-",
    "_",
    "%41",
    "%7e",
    "\u{e9}",
    "\u{202e}",
    "\u{ff0f}",
    "\u{2215}",
];

/// Text made of [`HOSTILE_PIECES`] and arbitrary characters.
fn hostile_text() -> impl Strategy<Value = String> {
    let piece = prop_oneof![
        4 => prop::sample::select(HOSTILE_PIECES).prop_map(str::to_owned),
        1 => any::<char>().prop_map(String::from),
    ];
    prop::collection::vec(piece, 0..16).prop_map(|pieces| pieces.concat())
}

/// Pieces that decide where a URL goes when they come first: hosts, separators, schemes.
const LEADING_PIECES: &[&str] = &[
    "/",
    "\\",
    "/evil.example",
    "\\evil.example",
    "%2f",
    "%5c",
    "\t/",
    "\n/",
    ".",
    "..",
    "evil.example",
    "https:",
    "@evil.example",
];

/// Text that starts with two pieces that decide where a URL goes, where the parsers'
/// first-character rules bite.
fn hostile_start() -> impl Strategy<Value = String> {
    let piece = || prop::sample::select(LEADING_PIECES);
    (piece(), piece(), hostile_text()).prop_map(|(a, b, rest)| format!("{a}{b}{rest}"))
}

/// `%XX` escapes decoded (invalid ones kept as written), as bytes.
fn percent_decoded(text: &str) -> Vec<u8> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escape = (bytes[i] == b'%')
            .then(|| bytes.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| std::str::from_utf8(hex).ok())
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escape {
            Some(byte) => {
                out.push(byte);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// Session cookie values
// ---------------------------------------------------------------------------------------------

proptest! {
    #[test]
    fn a_session_cookie_value_is_accepted_only_in_the_ids_shape(value in prop_oneof![
        hostile_text(),
        any::<String>(),
        "[A-Za-z0-9_=+/.-]{40,46}",
    ]) {
        let shaped = value.len() == 43
            && value.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
        match SessionId::parse(&value) {
            Ok(id) => {
                prop_assert!(shaped, "accepted {value:?}");
                prop_assert_eq!(id.expose(), value.as_str());
            }
            Err(_) => prop_assert!(!shaped, "refused {value:?}"),
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Return URLs
// ---------------------------------------------------------------------------------------------

/// Pages of the app a return URL might be resolved from.
const APP_PAGES: &[&str] = &[
    "https://app.example/",
    "https://app.example/deep/page?x=1#top",
    "http://127.0.0.1:8080/",
];

proptest! {
    #[test]
    fn an_accepted_return_url_never_leaves_the_apps_origin(value in prop_oneof![
        hostile_text(),
        hostile_text().prop_map(|rest| format!("/{rest}")),
        hostile_start().prop_map(|rest| format!("/{rest}")),
        any::<String>(),
    ]) {
        let Ok(parsed) = ReturnUrl::parse(&value) else {
            return Ok(());
        };
        prop_assert_eq!(parsed.as_str(), value.as_str());
        prop_assert!(value.starts_with('/'));
        for page in APP_PAGES {
            let page = Url::parse(page).unwrap();
            let resolved = page.join(&value);
            prop_assert!(resolved.is_ok(), "{value:?} does not resolve from {page}");
            let resolved = resolved.unwrap();
            prop_assert_eq!(
                resolved.origin(),
                page.origin(),
                "{:?} leaves {} for {}",
                value,
                page,
                resolved
            );
        }
    }

    #[test]
    fn plain_local_paths_are_accepted_as_return_urls(
        segments in prop::collection::vec("[A-Za-z0-9._~-]{1,12}", 0..6),
        query in proptest::option::of("[a-z0-9=&]{0,20}"),
    ) {
        let mut path = format!("/{}", segments.join("/"));
        if let Some(query) = query {
            path = format!("{path}?{query}");
        }
        prop_assert!(ReturnUrl::parse(&path).is_ok(), "{path:?} refused");
    }
}

// ---------------------------------------------------------------------------------------------
// The proxy's route allowlist
// ---------------------------------------------------------------------------------------------

/// Route prefixes and their upstreams, nested (`/api` and `/api/orders`) and at a root.
const ROUTES: &[(&str, &str)] = &[
    ("/api/orders", "https://orders.internal/v1"),
    ("/api", "https://api.internal"),
    ("/files", "http://files.internal:8080/base/dir"),
];

fn table() -> RouteTable {
    let routes = ROUTES
        .iter()
        .map(|(prefix, upstream)| {
            let mut spec = RouteSpec::new(*prefix, *upstream);
            spec.token = TokenPolicy::None;
            Route::new(spec).unwrap()
        })
        .collect();
    RouteTable::new(routes).unwrap()
}

/// A raw target: hostile text alone, or after a route prefix.
fn raw_target() -> impl Strategy<Value = String> {
    let prefix = prop::sample::select(ROUTES.iter().map(|(p, _)| *p).collect::<Vec<_>>());
    prop_oneof![
        hostile_text(),
        (prefix.clone(), hostile_text()).prop_map(|(p, rest)| format!("{p}{rest}")),
        (prefix.clone(), hostile_text()).prop_map(|(p, rest)| format!("{p}/{rest}")),
        (prefix, hostile_start()).prop_map(|(p, rest)| format!("{p}/{rest}")),
    ]
}

proptest! {
    #[test]
    fn an_accepted_target_stays_under_its_routes_upstream(raw in raw_target()) {
        let table = table();
        let Ok(target) = table.resolve(&Method::GET, &raw) else {
            return Ok(());
        };
        let route = target.route();
        let url = target.url();
        let upstream = route.upstream();
        prop_assert_eq!(url.origin(), upstream.origin(), "{:?} -> {}", raw, url);

        // Under the upstream's base path, on a segment boundary.
        let base = upstream.path().trim_end_matches('/');
        let path = url.path();
        let rest = path.strip_prefix(base);
        prop_assert!(
            rest.is_some_and(|rest| rest.is_empty() || rest.starts_with('/')),
            "{:?} -> {} is not under {}", raw, url, upstream
        );

        // Nothing a later parser would read as another path.
        let lower = path.to_ascii_lowercase();
        prop_assert!(!lower.contains("%2f") && !lower.contains("%5c") && !path.contains('\\'),
            "{:?} -> {}", raw, url);
        prop_assert!(!path.contains("//"), "{:?} -> {}", raw, url);
        for segment in path.split('/') {
            let decoded = percent_decoded(segment);
            prop_assert!(
                decoded.is_empty() || !decoded.iter().all(|&b| b == b'.'),
                "{:?} -> {} has the dot segment {:?}", raw, url, segment
            );
        }

        // It says what was matched: the raw path under the prefix, decoded, is what the
        // upstream gets under its base path, decoded; the query passes as received.
        let (raw_path, raw_query) = match raw.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (raw.as_str(), None),
        };
        let raw_decoded = percent_decoded(raw_path);
        let prefix = route.prefix().as_bytes();
        prop_assert!(raw_decoded.starts_with(prefix), "{:?} matched {}", raw, route.prefix());
        let raw_rest = &raw_decoded[prefix.len()..];
        prop_assert!(raw_rest.is_empty() || raw_rest.starts_with(b"/"));
        let forwarded = percent_decoded(path);
        // An upstream at its root gets `/` for the prefix itself: a URL path is never empty.
        let forwarded_rest = match &forwarded[base.len()..] {
            b"/" if raw_rest.is_empty() && base.is_empty() => &b""[..],
            rest => rest,
        };
        prop_assert_eq!(
            String::from_utf8_lossy(forwarded_rest),
            String::from_utf8_lossy(raw_rest),
            "{:?} -> {}", raw, url
        );
        prop_assert_eq!(url.query().unwrap_or(""), raw_query.unwrap_or(""));
    }

    #[test]
    fn well_formed_targets_under_a_prefix_are_forwarded(
        route in 0..ROUTES.len(),
        segments in prop::collection::vec("[A-Za-z0-9_~-][A-Za-z0-9._~-]{0,10}", 0..6),
        query in proptest::option::of("[a-z0-9=&]{0,20}"),
    ) {
        let (prefix, _) = ROUTES[route];
        let mut raw = prefix.to_owned();
        for segment in &segments {
            raw.push('/');
            raw.push_str(segment);
        }
        // `/api/orders/...` belongs to the longer prefix, whichever route was drawn.
        let owner = ROUTES
            .iter()
            .filter(|(p, _)| raw == *p || raw.starts_with(&format!("{p}/")))
            .max_by_key(|(p, _)| p.len())
            .unwrap();
        let rest = &raw[owner.0.len()..];
        let expected = format!("{}{rest}", owner.1.trim_end_matches('/'));
        if let Some(query) = &query {
            raw = format!("{raw}?{query}");
        }
        let table = table();
        let target = table.resolve(&Method::GET, &raw);
        prop_assert!(target.is_ok(), "{:?} refused: {:?}", raw, target.err());
        let target = target.unwrap();
        prop_assert_eq!(target.route().prefix(), owner.0);
        let mut forwarded = target.url().clone();
        forwarded.set_query(None);
        prop_assert_eq!(forwarded.as_str().trim_end_matches('/'), expected.trim_end_matches('/'));
        prop_assert_eq!(target.url().query(), query.as_deref());
    }
}
