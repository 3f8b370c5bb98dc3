//! Tests of the proxy allowlist: tables of hostile and legitimate targets, route validation, and
//! the credential checks.

use super::*;

const ORDERS: &str = "/api/orders";
const ADMIN: &str = "/api/orders/admin";
const PUBLIC: &str = "/api/public";

fn route(spec: RouteSpec) -> Route {
    match Route::new(spec) {
        Ok(route) => route,
        Err(e) => panic!("valid spec refused: {e}"),
    }
}

fn method(name: &str) -> Method {
    Method::parse(name).unwrap()
}

/// Three routes: a user API, a nested admin API on another upstream (longest prefix), and a
/// public API at an upstream's root.
fn table() -> RouteTable {
    let orders = RouteSpec::new(ORDERS, "https://orders.internal/v1");
    let admin = RouteSpec {
        methods: vec![Method::GET],
        required_scopes: vec!["orders:admin".into()],
        ..RouteSpec::new(ADMIN, "https://admin.internal:8443/root")
    };
    let public = RouteSpec {
        token: TokenPolicy::None,
        methods: vec![Method::GET, Method::HEAD],
        ..RouteSpec::new(PUBLIC, "http://127.0.0.1:8081")
    };
    RouteTable::new(vec![route(orders), route(admin), route(public)]).unwrap()
}

fn path(defect: TargetDefect) -> ProxyRefusal {
    ProxyRefusal::PathNotAllowed(defect)
}

#[test]
fn hostile_targets_are_refused_for_the_right_reason() {
    use TargetDefect::*;
    let too_long = format!("/api/orders/{}", "a".repeat(MAX_TARGET_LEN));
    let table = table();
    let cases: Vec<(&str, ProxyRefusal)> = vec![
        // Size.
        (&too_long, path(TooLong)),
        // Host changes: absolute and authority forms.
        ("http://evil.example/api/orders", path(NotOriginForm)),
        ("https://orders.internal/v1/1", path(NotOriginForm)),
        ("evil.example:443", path(NotOriginForm)),
        ("api/orders", path(NotOriginForm)),
        ("*", path(NotOriginForm)),
        ("", path(NotOriginForm)),
        // Raw non-ASCII, in the path or the query.
        ("/api/orders/caf\u{e9}", path(NonAscii)),
        ("/api/orders/1?q=\u{e9}", path(NonAscii)),
        ("/api/orders/\u{ff0e}\u{ff0e}/admin", path(NonAscii)),
        // Control bytes, raw anywhere or encoded in the path.
        ("/api/orders/\0", path(ControlCharacter)),
        (
            "/api/orders/1\r\nHost: evil.example",
            path(ControlCharacter),
        ),
        ("/api/orders/1?q=\t", path(ControlCharacter)),
        ("/api/orders/1\x7f", path(ControlCharacter)),
        ("/api/orders/%00", path(ControlCharacter)),
        ("/api/orders/1%00.json", path(ControlCharacter)),
        ("/api/orders/a%0d%0aHost:%20evil", path(ControlCharacter)),
        ("/api/orders/%09", path(ControlCharacter)),
        ("/api/orders/%1f", path(ControlCharacter)),
        ("/api/orders/%7F", path(ControlCharacter)),
        // Characters outside the URI grammar, or that the query cannot carry unchanged.
        ("/api/orders/a b", path(InvalidCharacter)),
        ("/api/orders/<script>", path(InvalidCharacter)),
        ("/api/orders/\"x\"", path(InvalidCharacter)),
        ("/api/orders/{id}", path(InvalidCharacter)),
        ("/api/orders/a|b", path(InvalidCharacter)),
        ("/api/orders/[::1]", path(InvalidCharacter)),
        ("/api/orders/a^b", path(InvalidCharacter)),
        ("/api/orders/1?q=a b", path(InvalidCharacter)),
        ("/api/orders/1?q='x'", path(InvalidCharacter)),
        ("/api/orders/1?q=<x>", path(InvalidCharacter)),
        ("/api/orders/1?q=\"x\"", path(InvalidCharacter)),
        // Fragments, wherever they are.
        ("/api/orders/1#top", path(Fragment)),
        ("/api/orders#/../admin", path(Fragment)),
        ("/api/orders/1?x=1#f", path(Fragment)),
        ("/api/orders/#", path(Fragment)),
        // Broken escapes.
        ("/api/orders/%", path(InvalidPercentEncoding)),
        ("/api/orders/%2", path(InvalidPercentEncoding)),
        ("/api/orders/%zz", path(InvalidPercentEncoding)),
        ("/api/orders/%g0", path(InvalidPercentEncoding)),
        (
            "/api/orders/%u002e%u002e/admin",
            path(InvalidPercentEncoding),
        ),
        ("/api/orders/%%32%65", path(InvalidPercentEncoding)),
        // Double encoding, also when built from escaped digits.
        ("/api/orders/%252e%252e/admin", path(DoubleEncoding)),
        ("/api/orders/%252E", path(DoubleEncoding)),
        ("/api/orders/%252f", path(DoubleEncoding)),
        ("/api/orders/%255c", path(DoubleEncoding)),
        ("/api/orders/%2541", path(DoubleEncoding)),
        ("/api/orders/%25%32%65%25%32%65/admin", path(DoubleEncoding)),
        // Escapes that are not UTF-8, such as overlong dots and slashes.
        ("/api/orders/%c0%ae%c0%ae/admin", path(InvalidUtf8)),
        ("/api/orders/%C0%AF", path(InvalidUtf8)),
        ("/api/orders/%e0%80%ae", path(InvalidUtf8)),
        ("/api/orders/%ff", path(InvalidUtf8)),
        ("/api/orders/%c3", path(InvalidUtf8)),
        // Encoded separators.
        ("/api/orders/%2F", path(EncodedSeparator)),
        ("/api/orders/a%2fb", path(EncodedSeparator)),
        ("/api/orders/..%2fadmin", path(EncodedSeparator)),
        ("/api/orders/%2e%2e%2fadmin", path(EncodedSeparator)),
        ("/api/orders/%5c..%5cadmin", path(EncodedSeparator)),
        ("/api/orders/%5C", path(EncodedSeparator)),
        // Raw backslashes.
        ("/api/orders\\..\\admin", path(Backslash)),
        ("/api/orders/\\\\evil.example", path(Backslash)),
        ("/\\evil.example/api/orders", path(Backslash)),
        // Path parameters.
        ("/api/orders/..;/admin", path(PathParameter)),
        ("/api/orders;jsessionid=1", path(PathParameter)),
        ("/api/orders/1;x", path(PathParameter)),
        ("/api/orders/%3b", path(PathParameter)),
        ("/api/orders/..%3B/admin", path(PathParameter)),
        // Userinfo markers.
        ("/api/orders@evil.example", path(AtSign)),
        ("/api/orders/@evil.example", path(AtSign)),
        ("//user@evil.example/api/orders", path(AtSign)),
        // Empty segments, also as a host.
        ("//evil.example/api/orders", path(EmptySegment)),
        ("//api/orders", path(EmptySegment)),
        ("/api//orders", path(EmptySegment)),
        ("/api/orders//1", path(EmptySegment)),
        ("/api/orders//", path(EmptySegment)),
        // Dot segments, raw and encoded in every case mix; any dot-only segment is refused.
        ("/api/orders/../admin", path(DotSegment)),
        ("/api/orders/..", path(DotSegment)),
        ("/api/orders/../", path(DotSegment)),
        ("/api/orders/1/..", path(DotSegment)),
        ("/api/orders/./1", path(DotSegment)),
        ("/api/orders/.", path(DotSegment)),
        ("/api/orders/...", path(DotSegment)),
        ("/api/../api/orders/1", path(DotSegment)),
        ("/api/orders/admin/../../public", path(DotSegment)),
        ("/api/orders/%2e%2e/admin", path(DotSegment)),
        ("/api/orders/%2E%2E/admin", path(DotSegment)),
        ("/api/orders/.%2e/admin", path(DotSegment)),
        ("/api/orders/%2e./admin", path(DotSegment)),
        ("/api/orders/%2E.", path(DotSegment)),
        ("/api/orders/%2e", path(DotSegment)),
        ("/api/orders/%2e%2e?next=1", path(DotSegment)),
        // Well-formed paths that no route covers, including segment-boundary neighbours.
        ("/api/ordersX", ProxyRefusal::NoRoute),
        ("/api/ordersX/1", ProxyRefusal::NoRoute),
        ("/api/orders-v2", ProxyRefusal::NoRoute),
        ("/api/order", ProxyRefusal::NoRoute),
        ("/api/publicity", ProxyRefusal::NoRoute),
        ("/API/orders", ProxyRefusal::NoRoute),
        ("/api", ProxyRefusal::NoRoute),
        ("/api/", ProxyRefusal::NoRoute),
        ("/", ProxyRefusal::NoRoute),
        ("/?/api/orders", ProxyRefusal::NoRoute),
        ("/bff/session", ProxyRefusal::NoRoute),
    ];
    for (target, expected) in cases {
        let got = table.resolve(&Method::GET, target);
        assert_eq!(
            got.as_ref().err(),
            Some(&expected),
            "{target:?} gave {got:?}"
        );
    }
}

#[test]
fn methods_a_route_does_not_allow_are_refused_with_the_allowed_ones() {
    let table = table();
    let admin_allowed = vec![Method::GET];
    let orders_allowed = vec![
        Method::DELETE,
        Method::GET,
        Method::HEAD,
        Method::PATCH,
        Method::POST,
        Method::PUT,
    ];
    let cases = [
        (Method::DELETE, "/api/orders/admin/1", &admin_allowed),
        (Method::POST, "/api/orders/admin", &admin_allowed),
        (Method::OPTIONS, "/api/orders", &orders_allowed),
        (method("get"), "/api/orders/1", &orders_allowed),
        (method("CONNECT"), "/api/orders", &orders_allowed),
        (method("TRACE"), "/api/orders/1", &orders_allowed),
        (method("PROPFIND"), "/api/orders/1", &orders_allowed),
    ];
    for (method, target, allowed) in cases {
        let got = table.resolve(&method, target);
        let expected = ProxyRefusal::MethodNotAllowed {
            allowed: allowed.clone(),
        };
        assert_eq!(got.as_ref().err(), Some(&expected), "{method} {target}");
        assert_eq!(expected.code(), "route_not_allowed");
        assert_eq!(expected.reason(), Some("method_not_allowed"));
    }
    // A path defect is reported before the method: the target is never looked up.
    assert_eq!(
        table
            .resolve(&Method::DELETE, "/api/orders/admin/../x")
            .err(),
        Some(path(TargetDefect::DotSegment))
    );
}

#[test]
fn legitimate_targets_go_to_the_exact_upstream_url() {
    let table = table();
    let cases: [(Method, &str, &str, &str); 32] = [
        // The prefix itself, with and without a trailing slash.
        (
            Method::GET,
            "/api/orders",
            ORDERS,
            "https://orders.internal/v1",
        ),
        (
            Method::GET,
            "/api/orders/",
            ORDERS,
            "https://orders.internal/v1/",
        ),
        (
            Method::POST,
            "/api/orders/1",
            ORDERS,
            "https://orders.internal/v1/1",
        ),
        (
            Method::HEAD,
            "/api/orders/1/lines/2",
            ORDERS,
            "https://orders.internal/v1/1/lines/2",
        ),
        // Dots inside segments are not dot segments.
        (
            Method::GET,
            "/api/orders/a..b",
            ORDERS,
            "https://orders.internal/v1/a..b",
        ),
        (
            Method::GET,
            "/api/orders/..a",
            ORDERS,
            "https://orders.internal/v1/..a",
        ),
        (
            Method::GET,
            "/api/orders/a..",
            ORDERS,
            "https://orders.internal/v1/a..",
        ),
        (
            Method::GET,
            "/api/orders/.well-known",
            ORDERS,
            "https://orders.internal/v1/.well-known",
        ),
        (
            Method::GET,
            "/api/orders/1.json",
            ORDERS,
            "https://orders.internal/v1/1.json",
        ),
        // Escapes that are data stay escaped, with upper-case hex.
        (
            Method::GET,
            "/api/orders/%20x",
            ORDERS,
            "https://orders.internal/v1/%20x",
        ),
        (
            Method::GET,
            "/api/orders/caf%c3%a9",
            ORDERS,
            "https://orders.internal/v1/caf%C3%A9",
        ),
        (
            Method::GET,
            "/api/orders/a%40b.example",
            ORDERS,
            "https://orders.internal/v1/a%40b.example",
        ),
        (
            Method::GET,
            "/api/orders/%3F%23",
            ORDERS,
            "https://orders.internal/v1/%3F%23",
        ),
        (
            Method::GET,
            "/api/orders/100%25",
            ORDERS,
            "https://orders.internal/v1/100%25",
        ),
        (
            Method::GET,
            "/api/orders/%25zz",
            ORDERS,
            "https://orders.internal/v1/%25zz",
        ),
        // Escaped unreserved characters are decoded before matching and forwarding.
        (
            Method::GET,
            "/api/orders/%61bc%7e",
            ORDERS,
            "https://orders.internal/v1/abc~",
        ),
        (
            Method::GET,
            "/api/%6Frders/1",
            ORDERS,
            "https://orders.internal/v1/1",
        ),
        (
            Method::GET,
            "/api/orders/%2e%2ea",
            ORDERS,
            "https://orders.internal/v1/..a",
        ),
        // Sub-delimiters and ':' are ordinary path characters.
        (
            Method::GET,
            "/api/orders/a:b!$&'()*+,=",
            ORDERS,
            "https://orders.internal/v1/a:b!$&'()*+,=",
        ),
        // The query is passed on byte for byte and never matched.
        (
            Method::GET,
            "/api/orders/1?next=../../admin",
            ORDERS,
            "https://orders.internal/v1/1?next=../../admin",
        ),
        (
            Method::GET,
            "/api/orders?",
            ORDERS,
            "https://orders.internal/v1?",
        ),
        (
            Method::GET,
            "/api/orders?q=%2e%2e%2f%00&x=%zz&filter[a]=b|c",
            ORDERS,
            "https://orders.internal/v1?q=%2e%2e%2f%00&x=%zz&filter[a]=b|c",
        ),
        (
            Method::GET,
            "/api/orders/1?a=\\b&c=@d;e//f?g",
            ORDERS,
            "https://orders.internal/v1/1?a=\\b&c=@d;e//f?g",
        ),
        (
            Method::GET,
            "/api/orders?/api/orders/admin",
            ORDERS,
            "https://orders.internal/v1?/api/orders/admin",
        ),
        // The longest prefix wins, on segment boundaries only.
        (
            Method::GET,
            "/api/orders/admin",
            ADMIN,
            "https://admin.internal:8443/root",
        ),
        (
            Method::GET,
            "/api/orders/admin/",
            ADMIN,
            "https://admin.internal:8443/root/",
        ),
        (
            Method::GET,
            "/api/orders/admin/users/7?x=1",
            ADMIN,
            "https://admin.internal:8443/root/users/7?x=1",
        ),
        (
            Method::GET,
            "/api/orders/%61dmin/users",
            ADMIN,
            "https://admin.internal:8443/root/users",
        ),
        (
            Method::POST,
            "/api/orders/adminX",
            ORDERS,
            "https://orders.internal/v1/adminX",
        ),
        (
            Method::POST,
            "/api/orders/1/admin",
            ORDERS,
            "https://orders.internal/v1/1/admin",
        ),
        // An upstream at its root.
        (Method::GET, "/api/public", PUBLIC, "http://127.0.0.1:8081/"),
        (
            Method::HEAD,
            "/api/public/x/y?z",
            PUBLIC,
            "http://127.0.0.1:8081/x/y?z",
        ),
    ];
    for (method, target, prefix, expected) in cases {
        let resolved = match table.resolve(&method, target) {
            Ok(resolved) => resolved,
            Err(e) => panic!("{method} {target:?} refused: {e} ({})", e.code()),
        };
        assert_eq!(resolved.route().prefix(), prefix, "{target:?}");
        assert_eq!(resolved.url().as_str(), expected, "{target:?}");
    }
}

#[test]
fn the_target_carries_what_the_credential_needs() {
    let table = table();
    let admin = table.resolve(&Method::GET, "/api/orders/admin/1").unwrap();
    assert_eq!(admin.token(), TokenPolicy::User);
    assert_eq!(
        admin.required_scopes().iter().collect::<Vec<_>>(),
        ["orders:admin"]
    );
    assert_eq!(admin.provider(), None);
    let public = table.resolve(&Method::GET, "/api/public").unwrap();
    assert_eq!(public.token(), TokenPolicy::None);
    assert!(public.required_scopes().is_empty());
}

#[test]
fn longest_prefix_wins_whatever_the_configured_order() {
    let make = |prefix: &str, upstream: &str| route(RouteSpec::new(prefix, upstream));
    let routes = vec![
        make("/api", "https://gateway.internal/api"),
        make("/api/orders", "https://orders.internal/v1"),
        make("/api/orders/lines", "https://lines.internal"),
    ];
    let mut reversed = routes.clone();
    reversed.reverse();
    for routes in [routes, reversed] {
        let table = RouteTable::new(routes).unwrap();
        let url = |target: &str| {
            table
                .resolve(&Method::GET, target)
                .unwrap()
                .url()
                .to_string()
        };
        assert_eq!(url("/api/orders/lines/3"), "https://lines.internal/3");
        assert_eq!(
            url("/api/orders/linesX"),
            "https://orders.internal/v1/linesX"
        );
        assert_eq!(url("/api/orders/1"), "https://orders.internal/v1/1");
        // Not on a boundary of /api/orders, so the shorter /api takes it.
        assert_eq!(url("/api/ordersX"), "https://gateway.internal/api/ordersX");
        assert_eq!(url("/api"), "https://gateway.internal/api");
        assert_eq!(
            table.resolve(&Method::GET, "/apiX").err(),
            Some(ProxyRefusal::NoRoute)
        );
    }
}

#[test]
fn two_routes_with_one_prefix_are_refused() {
    let a = route(RouteSpec::new("/api/orders", "https://a.internal"));
    let b = route(RouteSpec::new("/api/orders", "https://b.internal"));
    // Same length as the duplicates, and between them in configured order.
    let c = route(RouteSpec::new("/api/orderz", "https://c.internal"));
    let err = RouteTable::new(vec![a, c, b]).unwrap_err();
    assert_eq!(
        err,
        RouteError::DuplicatePrefix {
            prefix: "/api/orders".into()
        }
    );
    assert_eq!(
        err.to_string(),
        "route \"/api/orders\": two routes have this prefix"
    );
    // Same length, different prefix: fine.
    let d = route(RouteSpec::new("/api/aaaaaa", "https://d.internal"));
    let e = route(RouteSpec::new("/api/bbbbbb", "https://e.internal"));
    assert_eq!(RouteTable::new(vec![d, e]).unwrap().routes().len(), 2);
}

#[test]
fn an_empty_table_routes_nothing() {
    let table = RouteTable::new(Vec::new()).unwrap();
    assert_eq!(
        table.resolve(&Method::GET, "/api/orders").err(),
        Some(ProxyRefusal::NoRoute)
    );
}

/// Every combination of hostile and harmless segments: whatever is accepted is forwarded under
/// the upstream base, and survives a round trip through the URL parser unchanged.
#[test]
fn nothing_accepted_leaves_the_upstream_base() {
    let table = table();
    let pieces = [
        "a", "..", ".", "%2e", "%2E", ".%2e", "%2e.", "%252e", "%2f", "%5c", "\\", ";", "%3b", "",
        "a..b", "%00", "@x", "%c0%ae", "%61dmin", "admin",
    ];
    let mut accepted = 0;
    for first in pieces {
        for second in pieces {
            for third in pieces {
                let target = format!("/api/orders/{first}/{second}/{third}");
                let Ok(resolved) = table.resolve(&Method::GET, &target) else {
                    continue;
                };
                accepted += 1;
                let url = resolved.url();
                let reparsed = Url::parse(url.as_str()).unwrap();
                assert_eq!(reparsed.path(), url.path(), "{target}");
                let base = resolved.route().upstream_base_path.clone();
                assert!(
                    url.path().starts_with(&format!("{base}/")),
                    "{target} -> {url}"
                );
                assert_eq!(url.origin(), resolved.route().upstream().origin());
                for segment in url.path().split('/') {
                    assert!(!is_dot_segment(segment), "{target} -> {url}");
                    let lower = segment.to_ascii_lowercase();
                    for bad in ["%2e", "%2f", "%5c", "%25", "%3b", ";", "\\", "@"] {
                        assert!(!lower.contains(bad), "{target} -> {url}");
                    }
                }
            }
        }
    }
    // Only `a`, `a..b`, `%61dmin` and `admin` pass, plus an empty last segment (a trailing
    // slash): 4 x 4 x 5.
    assert_eq!(accepted, 80);
}

#[test]
fn the_forwarded_url_is_checked_even_if_the_target_rules_missed_something() {
    let upstream = Url::parse("https://orders.internal/v1").unwrap();
    for remainder in ["/../admin", "/%2e%2e/admin", "/.%2E/x", "/.."] {
        assert_eq!(
            forward_url(&upstream, "/v1", remainder, None),
            Err(TargetDefect::EscapesUpstream),
            "{remainder}"
        );
    }
    for (remainder, query) in [("/a b", None), ("/a#b", None), ("/1", Some("q='x'"))] {
        assert_eq!(
            forward_url(&upstream, "/v1", remainder, query),
            Err(TargetDefect::NotPreserved),
            "{remainder} {query:?}"
        );
    }
    assert_eq!(
        forward_url(&upstream, "/v1", "/1", Some("a=b"))
            .unwrap()
            .as_str(),
        "https://orders.internal/v1/1?a=b"
    );
}

#[test]
fn refusal_codes_are_stable() {
    use TargetDefect::*;
    let defects = [
        (TooLong, "target_too_long"),
        (NotOriginForm, "not_origin_form"),
        (NonAscii, "non_ascii"),
        (ControlCharacter, "control_character"),
        (InvalidCharacter, "invalid_character"),
        (Fragment, "fragment"),
        (InvalidPercentEncoding, "invalid_percent_encoding"),
        (DoubleEncoding, "double_encoding"),
        (InvalidUtf8, "invalid_utf8"),
        (EncodedSeparator, "encoded_separator"),
        (Backslash, "backslash"),
        (PathParameter, "path_parameter"),
        (AtSign, "at_sign"),
        (EmptySegment, "empty_segment"),
        (DotSegment, "dot_segment"),
        (EscapesUpstream, "escapes_upstream"),
        (NotPreserved, "not_preserved"),
    ];
    for (defect, code) in defects {
        assert_eq!(defect.code(), code);
        assert_eq!(ProxyRefusal::from(defect).code(), "route_not_allowed");
        assert_eq!(ProxyRefusal::from(defect).reason(), Some(code));
    }
    let provider = ProviderId::parse("partner").unwrap();
    // (refusal, code, reason)
    let refusals = [
        (ProxyRefusal::NoRoute, "route_not_allowed", Some("no_route")),
        (
            ProxyRefusal::MethodNotAllowed { allowed: vec![] },
            "route_not_allowed",
            Some("method_not_allowed"),
        ),
        (
            ProxyRefusal::InsufficientScope { missing: vec![] },
            "insufficient_scope",
            None,
        ),
        (
            ProxyRefusal::ProviderNotConnected { required: provider },
            "provider_not_connected",
            None,
        ),
    ];
    for (refusal, code, reason) in refusals {
        assert_eq!(refusal.code(), code);
        assert_eq!(refusal.reason(), reason);
    }
}

// ---------------------------------------------------------------------------------------------
// Route validation
// ---------------------------------------------------------------------------------------------

fn base_spec() -> RouteSpec {
    RouteSpec::new("/api/orders", "https://orders.internal/v1")
}

fn with_prefix(prefix: &str) -> RouteSpec {
    RouteSpec {
        prefix: prefix.into(),
        ..base_spec()
    }
}

fn with_upstream(upstream: &str) -> RouteSpec {
    RouteSpec {
        upstream: upstream.into(),
        ..base_spec()
    }
}

fn with_header(name: &str, value: &str) -> RouteSpec {
    RouteSpec {
        extra_headers: vec![(name.into(), Secret::new(value))],
        ..base_spec()
    }
}

#[test]
fn invalid_route_specs_are_refused_for_the_right_reason() {
    use RoutePathProblem as P;
    let p = || "/api/orders".to_owned();
    let prefix_problem = |prefix: &str, problem| RouteError::Prefix {
        prefix: prefix.into(),
        problem,
    };
    let upstream_problem = |problem| RouteError::UpstreamPath {
        prefix: p(),
        problem,
    };
    let long_prefix = format!("/{}", "a".repeat(MAX_ROUTE_PATH_LEN));
    let partner = ProviderId::parse("partner").unwrap();
    let cases: Vec<(RouteSpec, RouteError)> = vec![
        // Prefix.
        (
            with_prefix("api/orders"),
            RouteError::PrefixNotAbsolute {
                prefix: "api/orders".into(),
            },
        ),
        (
            with_prefix(""),
            RouteError::PrefixNotAbsolute { prefix: "".into() },
        ),
        (with_prefix("/"), RouteError::PrefixIsRoot),
        (
            with_prefix("/api/orders/"),
            prefix_problem("/api/orders/", P::TrailingSlash),
        ),
        (
            with_prefix("/api//orders"),
            prefix_problem("/api//orders", P::EmptySegment),
        ),
        (
            with_prefix("//api"),
            prefix_problem("//api", P::EmptySegment),
        ),
        (
            with_prefix("/api/../admin"),
            prefix_problem("/api/../admin", P::DotSegment),
        ),
        (
            with_prefix("/api/./orders"),
            prefix_problem("/api/./orders", P::DotSegment),
        ),
        (
            with_prefix("/api/%6Frders"),
            prefix_problem("/api/%6Frders", P::Encoded),
        ),
        (
            with_prefix("/api/or ders"),
            prefix_problem("/api/or ders", P::Character),
        ),
        (
            with_prefix("/api;x"),
            prefix_problem("/api;x", P::Character),
        ),
        (
            with_prefix("/api\\orders"),
            prefix_problem("/api\\orders", P::Character),
        ),
        (
            with_prefix("/api/orders?x"),
            prefix_problem("/api/orders?x", P::Character),
        ),
        (
            with_prefix("/api/caf\u{e9}"),
            prefix_problem("/api/caf\u{e9}", P::Character),
        ),
        (
            with_prefix(&long_prefix),
            prefix_problem(&long_prefix, P::TooLong),
        ),
        // Upstream.
        (
            with_upstream("https://orders.internal/v 1"),
            RouteError::UpstreamCharacter { prefix: p() },
        ),
        (
            with_upstream(" https://orders.internal"),
            RouteError::UpstreamCharacter { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal/v\t1"),
            RouteError::UpstreamCharacter { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal\\v1"),
            RouteError::UpstreamCharacter { prefix: p() },
        ),
        (
            with_upstream("https://orders.intérnal"),
            RouteError::UpstreamCharacter { prefix: p() },
        ),
        (
            with_upstream("ftp://orders.internal/v1"),
            RouteError::UpstreamScheme { prefix: p() },
        ),
        (
            with_upstream("file:///etc/passwd"),
            RouteError::UpstreamScheme { prefix: p() },
        ),
        (
            with_upstream("https://user:pw@orders.internal/v1"),
            RouteError::UpstreamUserinfo { prefix: p() },
        ),
        (
            with_upstream("https://user@orders.internal/v1"),
            RouteError::UpstreamUserinfo { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal/v1?key=1"),
            RouteError::UpstreamQuery { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal/v1?"),
            RouteError::UpstreamQuery { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal/v1#x"),
            RouteError::UpstreamFragment { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal/v1#"),
            RouteError::UpstreamFragment { prefix: p() },
        ),
        (
            with_upstream("https://orders.internal/v1/"),
            upstream_problem(P::TrailingSlash),
        ),
        (
            with_upstream("https://orders.internal/a/../v1"),
            upstream_problem(P::DotSegment),
        ),
        (
            with_upstream("https://orders.internal/a//v1"),
            upstream_problem(P::EmptySegment),
        ),
        (
            with_upstream("https://orders.internal/%2e%2e/v1"),
            upstream_problem(P::Encoded),
        ),
        (
            with_upstream("https://orders.internal/v1;x"),
            upstream_problem(P::Character),
        ),
        (
            with_upstream("https://orders.internal/v1@evil.example"),
            upstream_problem(P::Character),
        ),
        // Methods.
        (
            RouteSpec {
                methods: vec![],
                ..base_spec()
            },
            RouteError::NoMethods { prefix: p() },
        ),
        (
            RouteSpec {
                methods: vec![Method::GET, method("get")],
                ..base_spec()
            },
            RouteError::MethodNotUpperCase {
                prefix: p(),
                method: "get".into(),
            },
        ),
        (
            RouteSpec {
                methods: vec![method("TRACE")],
                ..base_spec()
            },
            RouteError::MethodNeverProxied {
                prefix: p(),
                method: "TRACE".into(),
            },
        ),
        (
            RouteSpec {
                methods: vec![method("CONNECT")],
                ..base_spec()
            },
            RouteError::MethodNeverProxied {
                prefix: p(),
                method: "CONNECT".into(),
            },
        ),
        // Timeouts.
        (
            RouteSpec {
                connect_timeout: Duration::ZERO,
                ..base_spec()
            },
            RouteError::ConnectTimeoutZero { prefix: p() },
        ),
        (
            RouteSpec {
                total_timeout: Duration::ZERO,
                ..base_spec()
            },
            RouteError::TotalTimeoutZero { prefix: p() },
        ),
        (
            RouteSpec {
                connect_timeout: Duration::from_secs(10),
                total_timeout: Duration::from_secs(9),
                ..base_spec()
            },
            RouteError::ConnectTimeoutExceedsTotal { prefix: p() },
        ),
        // Scopes and provider.
        (
            RouteSpec {
                required_scopes: vec!["a b".into()],
                ..base_spec()
            },
            RouteError::InvalidScope {
                prefix: p(),
                scope: "a b".into(),
            },
        ),
        (
            RouteSpec {
                required_scopes: vec!["".into()],
                ..base_spec()
            },
            RouteError::InvalidScope {
                prefix: p(),
                scope: "".into(),
            },
        ),
        (
            RouteSpec {
                required_scopes: vec!["a\"b".into()],
                ..base_spec()
            },
            RouteError::InvalidScope {
                prefix: p(),
                scope: "a\"b".into(),
            },
        ),
        (
            RouteSpec {
                token: TokenPolicy::None,
                required_scopes: vec!["orders".into()],
                ..base_spec()
            },
            RouteError::CredentialRulesWithoutToken { prefix: p() },
        ),
        (
            RouteSpec {
                token: TokenPolicy::None,
                provider: Some(partner),
                ..base_spec()
            },
            RouteError::CredentialRulesWithoutToken { prefix: p() },
        ),
        // WebSocket.
        (
            RouteSpec {
                websocket: true,
                methods: vec![Method::POST],
                ..base_spec()
            },
            RouteError::WebsocketWithoutGet { prefix: p() },
        ),
        // Reads without the CSRF header, on routes that carry a credential.
        (
            RouteSpec {
                csrf_on_reads: false,
                ..base_spec()
            },
            RouteError::ReadsWithoutCsrfNeedNoToken { prefix: p() },
        ),
        (
            RouteSpec {
                csrf_on_reads: false,
                token: TokenPolicy::Client,
                ..base_spec()
            },
            RouteError::ReadsWithoutCsrfNeedNoToken { prefix: p() },
        ),
        // Extra headers.
        (
            with_header("", "v"),
            RouteError::ExtraHeaderName {
                prefix: p(),
                name: "".into(),
            },
        ),
        (
            with_header("X Api", "v"),
            RouteError::ExtraHeaderName {
                prefix: p(),
                name: "X Api".into(),
            },
        ),
        (
            with_header("X-Api:", "v"),
            RouteError::ExtraHeaderName {
                prefix: p(),
                name: "X-Api:".into(),
            },
        ),
        (
            with_header("X-Api\r\n", "v"),
            RouteError::ExtraHeaderName {
                prefix: p(),
                name: "X-Api\r\n".into(),
            },
        ),
    ];
    for (spec, expected) in cases {
        let shown = format!("{spec:?}");
        let got = Route::new(spec);
        assert_eq!(got.as_ref().err(), Some(&expected), "{shown}");
        assert!(!expected.to_string().contains('\n'), "{expected}");
    }
}

#[test]
fn extra_headers_may_not_touch_what_the_proxy_manages() {
    for name in [
        "Connection",
        "keep-alive",
        "Proxy-Connection",
        "Transfer-Encoding",
        "TE",
        "Trailer",
        "Upgrade",
        "Proxy-Authorization",
        "Proxy-Authenticate",
        "Authorization",
        "AUTHORIZATION",
        "Cookie",
        "Host",
        "Content-Length",
    ] {
        assert_eq!(
            Route::new(with_header(name, "v")).err(),
            Some(RouteError::ExtraHeaderForbidden {
                prefix: "/api/orders".into(),
                name: name.into()
            }),
            "{name}"
        );
    }
}

#[test]
fn extra_header_values_are_checked_and_never_shown() {
    let secret = "s3cr3t-api-key";
    for value in [
        "",
        " s3cr3t-api-key",
        "s3cr3t-api-key ",
        "s3cr3t-api-key\r\nX-Evil: 1",
        "s3cr3t-api-key\0",
        "s3cr3t-api-k\u{e9}y",
        "s3cr3t-api-key\t",
    ] {
        let err = Route::new(with_header("X-Api-Key", value)).unwrap_err();
        assert_eq!(
            err,
            RouteError::ExtraHeaderValue {
                prefix: "/api/orders".into(),
                name: "X-Api-Key".into()
            },
            "{value:?}"
        );
        if !value.is_empty() {
            assert!(!err.to_string().contains(secret));
            assert!(!format!("{err:?}").contains(secret));
        }
    }
    let duplicate = RouteSpec {
        extra_headers: vec![
            ("X-Api-Key".into(), Secret::new("a")),
            ("x-api-key".into(), Secret::new("b")),
        ],
        ..base_spec()
    };
    assert_eq!(
        Route::new(duplicate).err(),
        Some(RouteError::ExtraHeaderDuplicate {
            prefix: "/api/orders".into(),
            name: "x-api-key".into()
        })
    );
    let ok = route(with_header("X-Api-Key", "s3cr3t-api-key with space"));
    assert_eq!(ok.extra_headers()[0].name(), "X-Api-Key");
    assert_eq!(
        ok.extra_headers()[0].value().expose(),
        "s3cr3t-api-key with space"
    );
    assert!(!format!("{ok:?}").contains(secret));
    let target = RouteTable::new(vec![ok])
        .unwrap()
        .resolve(&Method::GET, "/api/orders/1")
        .map(|t| format!("{t:?}"))
        .unwrap();
    assert!(!target.contains(secret));
}

#[test]
fn valid_specs_keep_every_setting() {
    let partner = ProviderId::parse("partner").unwrap();
    let spec = RouteSpec {
        token: TokenPolicy::UserOrClient,
        methods: vec![Method::GET, Method::GET, method("PROPFIND")],
        required_scopes: vec!["orders:read".into(), "orders:read".into()],
        provider: Some(partner.clone()),
        connect_timeout: Duration::from_secs(2),
        total_timeout: Duration::from_secs(2),
        forward_set_cookie: true,
        websocket: true,
        ..RouteSpec::new(
            "/api/v2.0/orders_x/~me",
            "HTTP://Orders.Internal:8080/a-b/c.d",
        )
    };
    let configured = route(spec);
    assert_eq!(configured.prefix(), "/api/v2.0/orders_x/~me");
    assert_eq!(
        configured.upstream().as_str(),
        "http://orders.internal:8080/a-b/c.d"
    );
    assert_eq!(configured.token(), TokenPolicy::UserOrClient);
    assert_eq!(
        configured.methods().iter().collect::<Vec<_>>(),
        [&Method::GET, &method("PROPFIND")]
    );
    assert!(configured.allows(&Method::GET));
    assert!(!configured.allows(&Method::HEAD));
    assert_eq!(configured.required_scopes().len(), 1);
    assert_eq!(configured.provider(), Some(&partner));
    assert_eq!(configured.connect_timeout(), Duration::from_secs(2));
    assert_eq!(configured.total_timeout(), Duration::from_secs(2));
    assert!(configured.forward_set_cookie());
    assert!(configured.websocket());
    assert!(configured.extra_headers().is_empty());

    let open_reads = route(RouteSpec {
        token: TokenPolicy::None,
        csrf_on_reads: false,
        ..base_spec()
    });
    assert!(!open_reads.csrf_on_reads());

    let defaults = route(base_spec());
    assert!(defaults.csrf_on_reads());
    assert_eq!(defaults.token(), TokenPolicy::User);
    assert_eq!(defaults.connect_timeout(), DEFAULT_CONNECT_TIMEOUT);
    assert_eq!(defaults.total_timeout(), DEFAULT_TOTAL_TIMEOUT);
    assert!(!defaults.forward_set_cookie());
    assert!(!defaults.websocket());
    assert!(!defaults.allows(&Method::OPTIONS));

    for upstream in [
        "https://orders.internal",
        "https://orders.internal/",
        "http://127.0.0.1:9000",
        "http://[::1]:9000/v1",
    ] {
        assert!(Route::new(with_upstream(upstream)).is_ok(), "{upstream}");
    }
    for upstream in [
        "https:orders.internal/v1",
        "https:///orders.internal/v1",
        "/v1",
        "orders.internal",
    ] {
        assert!(
            matches!(
                Route::new(with_upstream(upstream)),
                Err(RouteError::UpstreamUnparsable { .. })
            ),
            "{upstream}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Credential checks, methods, policies
// ---------------------------------------------------------------------------------------------

#[test]
fn scopes_must_all_be_granted_exactly() {
    let scoped = route(RouteSpec {
        required_scopes: vec!["orders:read".into(), "orders:write".into()],
        ..base_spec()
    });
    let missing = |names: &[&str]| {
        Err(ProxyRefusal::InsufficientScope {
            missing: names.iter().map(|s| (*s).to_owned()).collect(),
        })
    };
    let cases: [(Option<&str>, Result<(), ProxyRefusal>); 9] = [
        (Some("orders:read orders:write"), Ok(())),
        (Some("openid orders:write profile orders:read"), Ok(())),
        (Some("  orders:read   orders:write "), Ok(())),
        (None, missing(&["orders:read", "orders:write"])),
        (Some(""), missing(&["orders:read", "orders:write"])),
        (Some("openid orders:read"), missing(&["orders:write"])),
        (Some("orders:readX orders:write"), missing(&["orders:read"])),
        (Some("ORDERS:READ orders:write"), missing(&["orders:read"])),
        (
            Some("orders:read,orders:write"),
            missing(&["orders:read", "orders:write"]),
        ),
    ];
    for (granted, expected) in cases {
        assert_eq!(check_scopes(&scoped, granted), expected, "{granted:?}");
    }
    let open = route(base_spec());
    assert_eq!(check_scopes(&open, None), Ok(()));
}

#[test]
fn a_route_for_another_provider_needs_that_provider() {
    let main = ProviderId::parse("main").unwrap();
    let partner = ProviderId::parse("partner").unwrap();
    let own = route(base_spec());
    let pinned = route(RouteSpec {
        provider: Some(partner.clone()),
        ..base_spec()
    });
    let none = |_: &ProviderId| false;
    let partner_connected = |p: &ProviderId| p.as_str() == "partner";
    let other_connected = |p: &ProviderId| p.as_str() == "other";
    // A route without a provider takes the session's own, connected or not.
    assert_eq!(check_provider(&own, &main, none), Ok(main.clone()));
    assert_eq!(
        check_provider(&own, &main, partner_connected),
        Ok(main.clone())
    );
    assert_eq!(check_provider(&own, &partner, none), Ok(partner.clone()));
    // A pinned route gets its provider's token: the session's own, or a connection's.
    assert_eq!(check_provider(&pinned, &partner, none), Ok(partner.clone()));
    assert_eq!(
        check_provider(&pinned, &main, partner_connected),
        Ok(partner.clone())
    );
    // Never the session's own (or another connection's) token instead.
    assert_eq!(
        check_provider(&pinned, &main, none),
        Err(ProxyRefusal::ProviderNotConnected {
            required: partner.clone()
        })
    );
    assert_eq!(
        check_provider(&pinned, &main, other_connected),
        Err(ProxyRefusal::ProviderNotConnected { required: partner })
    );
}

#[test]
fn methods_parse_as_tokens_and_compare_case_sensitively() {
    for ok in ["GET", "PROPFIND", "VERSION-CONTROL", "get", "M_1"] {
        assert_eq!(method(ok).as_str(), ok);
    }
    assert_eq!(method("GET"), Method::GET);
    assert_ne!(method("get"), Method::GET);
    let long = "A".repeat(33);
    for bad in ["", "GE T", "GET\r\n", "G(ET)", "GÉT", long.as_str()] {
        assert_eq!(Method::parse(bad), Err(InvalidMethod), "{bad:?}");
    }
}

#[test]
fn token_policies_round_trip() {
    for policy in [
        TokenPolicy::User,
        TokenPolicy::Client,
        TokenPolicy::UserOrClient,
        TokenPolicy::None,
    ] {
        assert_eq!(TokenPolicy::parse(policy.as_str()), Ok(policy));
    }
    assert_eq!(TokenPolicy::parse("User"), Err(InvalidTokenPolicy));
    assert_eq!(TokenPolicy::parse(""), Err(InvalidTokenPolicy));
}
