//! Checks of `docker/`, run as ordinary tests, for machines without a Docker engine: the compose
//! file validates, the Keycloak realm and the bff-server settings in the compose file agree
//! (client, secret, issuer, redirect and logout URLs, the API audience), the Dockerfile copies
//! only files that exist, and the image's entry point and health check scripts work.
//!
//! Standard library only: the JSON, YAML and TOML read here are the subsets these files use,
//! parsed by hand. A file that leaves that subset fails a test rather than passing unchecked.

use std::collections::BTreeMap;
use std::fs;
use std::io::{Read as _, Write as _};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// The repository root, from the run-time `CARGO_MANIFEST_DIR` (see `xtask`'s `root`).
fn root() -> PathBuf {
    std::env::var_os("CARGO_MANIFEST_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn docker_dir() -> PathBuf {
    root().join("docker")
}

fn read(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()))
}

// ---------------------------------------------------------------------------------------------
// JSON (the realm file)
// ---------------------------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq)]
enum Json {
    Null,
    Bool(bool),
    Number(f64),
    Text(String),
    List(Vec<Json>),
    Object(Vec<(String, Json)>),
}

impl Json {
    fn parse(text: &str) -> Result<Json, String> {
        let mut parser = JsonParser {
            bytes: text.as_bytes(),
            at: 0,
        };
        let value = parser.value()?;
        parser.skip_space();
        if parser.at != parser.bytes.len() {
            return Err(format!("trailing characters at byte {}", parser.at));
        }
        Ok(value)
    }

    fn get(&self, key: &str) -> Option<&Json> {
        match self {
            Json::Object(members) => members.iter().find(|(k, _)| k == key).map(|(_, v)| v),
            _ => None,
        }
    }

    fn text(&self, key: &str) -> Option<&str> {
        match self.get(key) {
            Some(Json::Text(s)) => Some(s),
            _ => None,
        }
    }

    fn flag(&self, key: &str) -> Option<bool> {
        match self.get(key) {
            Some(Json::Bool(b)) => Some(*b),
            _ => None,
        }
    }

    fn list(&self, key: &str) -> &[Json] {
        match self.get(key) {
            Some(Json::List(items)) => items,
            _ => &[],
        }
    }

    fn texts(&self, key: &str) -> Vec<&str> {
        self.list(key)
            .iter()
            .filter_map(|v| match v {
                Json::Text(s) => Some(s.as_str()),
                _ => None,
            })
            .collect()
    }
}

struct JsonParser<'a> {
    bytes: &'a [u8],
    at: usize,
}

impl JsonParser<'_> {
    fn skip_space(&mut self) {
        while self
            .bytes
            .get(self.at)
            .is_some_and(|b| b" \t\r\n".contains(b))
        {
            self.at += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_space();
        if self.bytes.get(self.at) == Some(&byte) {
            self.at += 1;
            Ok(())
        } else {
            Err(format!("expected {:?} at byte {}", byte as char, self.at))
        }
    }

    fn literal(&mut self, word: &str, value: Json) -> Result<Json, String> {
        if self.bytes[self.at..].starts_with(word.as_bytes()) {
            self.at += word.len();
            Ok(value)
        } else {
            Err(format!("unexpected input at byte {}", self.at))
        }
    }

    fn value(&mut self) -> Result<Json, String> {
        self.skip_space();
        match self.bytes.get(self.at) {
            Some(b'{') => {
                self.at += 1;
                let mut members = Vec::new();
                self.skip_space();
                if self.bytes.get(self.at) == Some(&b'}') {
                    self.at += 1;
                    return Ok(Json::Object(members));
                }
                loop {
                    self.skip_space();
                    let key = self.string()?;
                    self.expect(b':')?;
                    let value = self.value()?;
                    if members.iter().any(|(k, _)| *k == key) {
                        return Err(format!("duplicate key {key:?}"));
                    }
                    members.push((key, value));
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b'}') => {
                            self.at += 1;
                            return Ok(Json::Object(members));
                        }
                        _ => return Err(format!("expected , or }} at byte {}", self.at)),
                    }
                }
            }
            Some(b'[') => {
                self.at += 1;
                let mut items = Vec::new();
                self.skip_space();
                if self.bytes.get(self.at) == Some(&b']') {
                    self.at += 1;
                    return Ok(Json::List(items));
                }
                loop {
                    items.push(self.value()?);
                    self.skip_space();
                    match self.bytes.get(self.at) {
                        Some(b',') => self.at += 1,
                        Some(b']') => {
                            self.at += 1;
                            return Ok(Json::List(items));
                        }
                        _ => return Err(format!("expected , or ] at byte {}", self.at)),
                    }
                }
            }
            Some(b'"') => self.string().map(Json::Text),
            Some(b't') => self.literal("true", Json::Bool(true)),
            Some(b'f') => self.literal("false", Json::Bool(false)),
            Some(b'n') => self.literal("null", Json::Null),
            Some(b'-' | b'0'..=b'9') => {
                let start = self.at;
                while self
                    .bytes
                    .get(self.at)
                    .is_some_and(|b| b"+-.eE0123456789".contains(b))
                {
                    self.at += 1;
                }
                let number = std::str::from_utf8(&self.bytes[start..self.at]).unwrap();
                number
                    .parse()
                    .map(Json::Number)
                    .map_err(|_| format!("bad number {number:?}"))
            }
            _ => Err(format!("unexpected input at byte {}", self.at)),
        }
    }

    fn string(&mut self) -> Result<String, String> {
        if self.bytes.get(self.at) != Some(&b'"') {
            return Err(format!("expected a string at byte {}", self.at));
        }
        self.at += 1;
        let mut out = String::new();
        loop {
            let rest = std::str::from_utf8(&self.bytes[self.at..]).map_err(|e| e.to_string())?;
            let mut chars = rest.chars();
            let c = chars.next().ok_or("unterminated string")?;
            self.at += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let escape = chars.next().ok_or("unterminated escape")?;
                    self.at += 1;
                    match escape {
                        '"' | '\\' | '/' => out.push(escape),
                        'b' => out.push('\u{8}'),
                        'f' => out.push('\u{c}'),
                        'n' => out.push('\n'),
                        'r' => out.push('\r'),
                        't' => out.push('\t'),
                        'u' => {
                            let hex = rest.get(2..6).ok_or("short \\u escape")?;
                            let code = u32::from_str_radix(hex, 16).map_err(|e| e.to_string())?;
                            self.at += 4;
                            // Surrogate pairs do not occur in these files; refuse them plainly.
                            out.push(char::from_u32(code).ok_or("surrogate \\u escape")?);
                        }
                        other => return Err(format!("bad escape \\{other}")),
                    }
                }
                c if (c as u32) < 0x20 => return Err("control character in string".into()),
                c => out.push(c),
            }
        }
    }
}

#[test]
fn the_json_reader_refuses_what_it_does_not_understand() {
    assert!(Json::parse(r#"{"a": [1, true, null, "x\"y"]}"#).is_ok());
    assert_eq!(
        Json::parse(r#"{"a": "\u00e9\n"}"#).unwrap().text("a"),
        Some("é\n")
    );
    for bad in [
        r#"{"a": 1,}"#,
        r#"{"a": 1} x"#,
        r#"{"a": 1, "a": 2}"#,
        r#"{"a" 1}"#,
        "[1 2]",
        "\"open",
    ] {
        assert!(Json::parse(bad).is_err(), "{bad}");
    }
}

// ---------------------------------------------------------------------------------------------
// YAML (the compose file): block mappings and sequences, scalars on one line
// ---------------------------------------------------------------------------------------------

/// A compose file as (indent, content) lines, comments and blank lines dropped.
struct Yaml {
    lines: Vec<(usize, String)>,
}

impl Yaml {
    fn parse(text: &str) -> Yaml {
        let lines = text
            .lines()
            .filter_map(|raw| {
                let content = strip_comment(raw.trim_start()).trim_end();
                (!content.is_empty()).then(|| (raw.len() - raw.trim_start().len(), content.into()))
            })
            .collect();
        Yaml { lines }
    }

    /// The lines nested under `path` (mapping keys from the top).
    fn block(&self, path: &[&str]) -> &[(usize, String)] {
        let mut current: &[(usize, String)] = &self.lines;
        for key in path {
            let indent = current.iter().map(|(i, _)| *i).min().unwrap_or(0);
            let start = current
                .iter()
                .position(|(i, c)| *i == indent && mapping_key(c) == Some(key))
                .unwrap_or_else(|| panic!("compose.yaml: no {key:?} under {path:?}"));
            let end = current[start + 1..]
                .iter()
                .position(|(i, _)| *i <= indent)
                .map_or(current.len(), |n| start + 1 + n);
            current = &current[start + 1..end];
        }
        current
    }

    /// The scalar value of `path`, e.g. `["services", "keycloak", "image"]`.
    fn scalar(&self, path: &[&str]) -> String {
        let (last, parents) = path.split_last().unwrap();
        self.map(parents)
            .remove(*last)
            .unwrap_or_else(|| panic!("compose.yaml: no scalar at {path:?}"))
    }

    /// The `key: value` children of `path` whose value is on the same line.
    fn map(&self, path: &[&str]) -> BTreeMap<String, String> {
        let block = self.block(path);
        let indent = block.iter().map(|(i, _)| *i).min().unwrap_or(0);
        block
            .iter()
            .filter(|(i, _)| *i == indent)
            .filter_map(|(_, c)| {
                let (key, value) = c.split_once(':')?;
                let value = value.trim();
                (!value.is_empty()).then(|| (key.trim().to_owned(), unquote(value)))
            })
            .collect()
    }

    /// The `- item` children of `path`, or the items of a one-line `[a, b]` value.
    fn list(&self, path: &[&str]) -> Vec<String> {
        let (last, parents) = path.split_last().unwrap();
        if let Some(flow) = self.map(parents).get(*last)
            && let Some(inner) = flow.strip_prefix('[').and_then(|f| f.strip_suffix(']'))
        {
            return inner.split(',').map(|s| unquote(s.trim())).collect();
        }
        let block = self.block(path);
        let indent = block.iter().map(|(i, _)| *i).min().unwrap_or(0);
        block
            .iter()
            .filter(|(i, _)| *i == indent)
            .filter_map(|(_, c)| c.strip_prefix("- ").map(|item| unquote(item.trim())))
            .collect()
    }

    /// Names of the direct children of `path`.
    fn keys(&self, path: &[&str]) -> Vec<String> {
        let block = self.block(path);
        let indent = block.iter().map(|(i, _)| *i).min().unwrap_or(0);
        block
            .iter()
            .filter(|(i, _)| *i == indent)
            .filter_map(|(_, c)| mapping_key(c).map(str::to_owned))
            .collect()
    }
}

fn mapping_key(content: &str) -> Option<&str> {
    let (key, _) = content.split_once(':')?;
    (!key.starts_with('-') && !key.contains(' ')).then_some(key)
}

/// Drops a ` # comment` outside quotes.
fn strip_comment(line: &str) -> &str {
    let mut quote = None;
    let mut previous = ' ';
    for (at, c) in line.char_indices() {
        match (quote, c) {
            (None, '#') if previous == ' ' => return &line[..at],
            (None, '"' | '\'') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            _ => {}
        }
        previous = c;
    }
    line
}

fn unquote(value: &str) -> String {
    for q in ['"', '\''] {
        if let Some(inner) = value.strip_prefix(q).and_then(|v| v.strip_suffix(q)) {
            return inner.to_owned();
        }
    }
    value.to_owned()
}

struct Compose {
    yaml: Yaml,
}

impl Compose {
    fn load() -> Compose {
        Compose {
            yaml: Yaml::parse(&read(&docker_dir().join("compose.yaml"))),
        }
    }

    fn env(&self, service: &str) -> BTreeMap<String, String> {
        self.yaml.map(&["services", service, "environment"])
    }

    fn bff_env(&self, name: &str) -> String {
        self.env("bff-server")
            .remove(name)
            .unwrap_or_else(|| panic!("compose.yaml: bff-server sets no {name}"))
    }

    /// `host:container[:mode]` volume mounts of a service, as (host, container).
    fn mounts(&self, service: &str) -> Vec<(String, String)> {
        self.yaml
            .list(&["services", service, "volumes"])
            .iter()
            .map(|m| {
                let mut parts = m.split(':');
                (
                    parts.next().unwrap_or_default().to_owned(),
                    parts.next().unwrap_or_default().to_owned(),
                )
            })
            .collect()
    }

    /// The file a compose secret is read from, relative to the repository root.
    fn secret_file(&self, secret: &str) -> PathBuf {
        let file = self.yaml.scalar(&["secrets", secret, "file"]);
        docker_dir().join(file)
    }
}

#[test]
fn the_yaml_reader_reads_nested_blocks_and_lists() {
    let yaml = Yaml::parse(
        "a:\n  b: 1 # note\n  c:\n    - x\n    - \"y # z\"\n  d: [p, 'q']\n  e:\n    f: g\nh: i\n",
    );
    assert_eq!(yaml.scalar(&["a", "b"]), "1");
    assert_eq!(yaml.list(&["a", "c"]), ["x", "y # z"]);
    assert_eq!(yaml.list(&["a", "d"]), ["p", "q"]);
    assert_eq!(yaml.scalar(&["a", "e", "f"]), "g");
    assert_eq!(yaml.keys(&["a"]), ["b", "c", "d", "e"]);
    assert_eq!(yaml.scalar(&["h"]), "i");
}

// ---------------------------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------------------------

fn realm() -> Json {
    Json::parse(&read(&docker_dir().join("keycloak/realm.json")))
        .unwrap_or_else(|e| panic!("docker/keycloak/realm.json is not valid JSON: {e}"))
}

fn bff_client(realm: &Json, client_id: &str) -> Json {
    realm
        .list("clients")
        .iter()
        .find(|c| c.text("clientId") == Some(client_id))
        .unwrap_or_else(|| panic!("realm.json has no client {client_id:?}"))
        .clone()
}

/// `scheme://host:port` of a URL, and its port (default 80/443).
fn origin_and_port(url: &str) -> (String, u16) {
    let (scheme, rest) = url.split_once("://").unwrap();
    let authority = rest.split('/').next().unwrap();
    let port = match authority.rsplit_once(':') {
        Some((_, port)) => port.parse().unwrap(),
        None if scheme == "https" => 443,
        None => 80,
    };
    (format!("{scheme}://{authority}"), port)
}

/// The host of a `scheme://[user[:password]@]host[:port]/...` URL.
fn url_host(url: &str) -> String {
    let rest = url.split_once("://").unwrap().1;
    let authority = rest.split('/').next().unwrap();
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    host_port.split(':').next().unwrap().to_owned()
}

/// Whether a CI run requires every prerequisite (see `crates/bff-test-services`).
fn under_ci() -> bool {
    std::env::var_os("CI").is_some()
}

/// Prints `SKIPPED <test>: <what> unavailable: <why>` to the process's stderr, uncaptured, or
/// panics under `CI`, where skipping must not pass.
fn skip_or_fail(what: &str, why: &str) {
    let test = std::thread::current().name().unwrap_or("a test").to_owned();
    if under_ci() {
        panic!("{test}: {what} is required under CI: {why}");
    }
    let _ = writeln!(
        std::io::stderr().lock(),
        "SKIPPED {test}: {what} unavailable: {why}"
    );
}

// ---------------------------------------------------------------------------------------------
// compose.yaml
// ---------------------------------------------------------------------------------------------

#[test]
fn compose_file_validates() {
    let output = Command::new("docker-compose")
        .current_dir(root())
        .args(["-f", "docker/compose.yaml", "config", "-q"])
        .output();
    match output {
        Err(e) => skip_or_fail("docker-compose", &e.to_string()),
        Ok(output) => assert!(
            output.status.success(),
            "docker-compose config rejects docker/compose.yaml:\n{}",
            String::from_utf8_lossy(&output.stderr)
        ),
    }
}

#[test]
fn realm_client_is_the_one_bff_server_is_configured_with() {
    let compose = Compose::load();
    let realm = realm();
    let realm_name = realm.text("realm").unwrap();
    let client = bff_client(
        &realm,
        &compose.bff_env("BFF_PROVIDERS__KEYCLOAK__CLIENT_ID"),
    );

    // The issuer bff-server is given is the one Keycloak puts in its tokens.
    let hostname = compose.env("keycloak")["KC_HOSTNAME"].clone();
    assert_eq!(
        compose.bff_env("BFF_PROVIDERS__KEYCLOAK__ISSUER"),
        format!("{hostname}/realms/{realm_name}")
    );
    assert_eq!(compose.bff_env("BFF_DEFAULT_PROVIDER"), "keycloak");

    // Confidential, code flow only, with the secret bff-server reads.
    assert_eq!(client.flag("publicClient"), Some(false));
    assert_eq!(
        client.text("clientAuthenticatorType"),
        Some("client-secret")
    );
    assert_eq!(client.flag("standardFlowEnabled"), Some(true));
    assert_eq!(client.flag("implicitFlowEnabled"), Some(false));
    assert_eq!(client.flag("directAccessGrantsEnabled"), Some(false));
    let secret_path = compose.bff_env("BFF_PROVIDERS__KEYCLOAK__CLIENT_SECRET_FILE");
    let secret_name = secret_path.strip_prefix("/run/secrets/").unwrap();
    let secret = read(&compose.secret_file(secret_name));
    assert_eq!(client.text("secret"), Some(secret.trim_end_matches('\n')));

    let public = compose.bff_env("BFF_SERVER__PUBLIC_URL");
    let redirects = client.texts("redirectUris");
    for expected in [format!("{public}/bff/callback"), format!("{public}/")] {
        assert!(redirects.contains(&expected.as_str()), "{redirects:?}");
    }
    assert!(
        redirects.iter().all(|r| !r.contains('*')),
        "no wildcard redirect URIs: {redirects:?}"
    );

    let attributes = client.get("attributes").unwrap();
    assert_eq!(attributes.text("pkce.code.challenge.method"), Some("S256"));
    // bff-server requires the RFC 9207 `iss` in the authorization response.
    assert_ne!(
        attributes.text("exclude.issuer.from.auth.response"),
        Some("true")
    );
    assert_eq!(
        attributes.text("backchannel.logout.url"),
        Some(format!("{public}/bff/backchannel-logout").as_str())
    );
    assert_eq!(
        attributes.text("backchannel.logout.session.required"),
        Some("true")
    );
    assert_eq!(client.flag("frontchannelLogout"), Some(false));
    let post_logout: Vec<&str> = attributes
        .text("post.logout.redirect.uris")
        .unwrap()
        .split("##")
        .collect();
    for expected in [
        format!("{public}/bff/logout/callback"),
        format!("{public}/"),
    ] {
        assert!(post_logout.contains(&expected.as_str()), "{post_logout:?}");
    }
}

#[test]
fn realm_keeps_keycloaks_default_client_scopes() {
    // A realm file with a `clientScopes` list replaces Keycloak's built-in scopes (profile,
    // email, basic with the `sub` mapper, ...), and the BFF's default scopes would then be
    // refused. The API audience therefore comes from a mapper on the client.
    let realm = realm();
    let compose = Compose::load();
    assert!(realm.get("clientScopes").is_none());
    let client = bff_client(
        &realm,
        &compose.bff_env("BFF_PROVIDERS__KEYCLOAK__CLIENT_ID"),
    );
    assert!(client.get("defaultClientScopes").is_none());
    let audience_mapper = client
        .list("protocolMappers")
        .iter()
        .find(|m| m.text("protocolMapper") == Some("oidc-audience-mapper"))
        .expect("an audience mapper on the bff client")
        .get("config")
        .unwrap()
        .clone();
    assert_eq!(
        audience_mapper.text("included.custom.audience"),
        Some(compose.env("demo-api")["EXPECTED_AUDIENCE"].as_str())
    );
    assert_eq!(audience_mapper.text("access.token.claim"), Some("true"));
}

#[test]
fn realm_has_two_test_users_that_can_log_in_and_the_readme_names_them() {
    let realm = realm();
    let readme = read(&docker_dir().join("README.md"));
    let users = realm.list("users");
    assert!(users.len() >= 2, "two test users, found {}", users.len());
    for user in users {
        let name = user.text("username").unwrap();
        assert_eq!(user.flag("enabled"), Some(true), "{name}");
        // Without these, Keycloak's user profile sends the user to an "update account" form.
        assert_eq!(user.flag("emailVerified"), Some(true), "{name}");
        for field in ["email", "firstName", "lastName"] {
            assert!(
                user.text(field).is_some_and(|v| !v.is_empty()),
                "{name}: {field}"
            );
        }
        assert!(user.get("requiredActions").is_none(), "{name}");
        let password = user
            .list("credentials")
            .iter()
            .find(|c| c.text("type") == Some("password"))
            .unwrap_or_else(|| panic!("{name} has no password"));
        assert_eq!(password.flag("temporary"), Some(false), "{name}");
        let value = password.text("value").unwrap();
        assert!(
            readme.contains(&format!("`{name}` / `{value}`")),
            "docker/README.md names `{name}` / `{value}`"
        );
    }
}

#[test]
fn readme_gives_the_one_command_and_the_urls() {
    let readme = read(&docker_dir().join("README.md"));
    let compose = Compose::load();
    for expected in [
        "docker compose -f docker/compose.yaml up".to_owned(),
        compose.bff_env("BFF_SERVER__PUBLIC_URL"),
        compose.env("keycloak")["KC_HOSTNAME"].clone(),
        "allow_plain_http".to_owned(),
    ] {
        assert!(
            readme.contains(&expected),
            "docker/README.md names {expected}"
        );
    }
}

#[test]
fn secrets_come_from_files_that_exist_and_agree() {
    let compose = Compose::load();
    let service_secrets = compose.yaml.list(&["services", "bff-server", "secrets"]);
    let declared = compose.yaml.keys(&["secrets"]);
    let file_variables: Vec<(String, String)> = compose
        .env("bff-server")
        .into_iter()
        .filter(|(name, _)| name.ends_with("_FILE"))
        .collect();
    assert!(file_variables.len() >= 2, "{file_variables:?}");
    for (name, path) in &file_variables {
        let secret = path
            .strip_prefix("/run/secrets/")
            .unwrap_or_else(|| panic!("{name} should name /run/secrets/<secret>"));
        assert!(service_secrets.iter().any(|s| s == secret), "{name}");
        assert!(declared.iter().any(|s| s == secret), "{name}");
        assert!(compose.secret_file(secret).is_file(), "{name}");
        let plain = name.strip_suffix("_FILE").unwrap();
        assert!(
            !compose.env("bff-server").contains_key(plain),
            "{plain} and {name} both set: the entry point refuses that"
        );
    }

    // The vault keys: a TOML list of { id, key } with a 32-byte base64 key.
    let keys_path = compose.bff_env("BFF_VAULT_KEYS_FILE");
    let keys = read(&compose.secret_file(keys_path.strip_prefix("/run/secrets/").unwrap()));
    let keys = keys.trim();
    assert!(keys.starts_with("[{") && keys.ends_with("}]"), "{keys}");
    let key = keys
        .split("key = \"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .expect("key = \"…\"");
    assert_eq!(base64_len(key), Some(32), "vault key must be 32 bytes");

    // The database password bff-server uses is the one Postgres is started with.
    let postgres = compose.env("postgres");
    let url = compose.bff_env("BFF_STORE__POSTGRES__URL");
    let credentials = url
        .strip_prefix("postgres://")
        .unwrap()
        .split('@')
        .next()
        .unwrap();
    assert_eq!(
        credentials,
        format!(
            "{}:{}",
            postgres["POSTGRES_USER"], postgres["POSTGRES_PASSWORD"]
        )
    );
    assert!(
        url.ends_with(&format!("/{}", postgres["POSTGRES_DB"])),
        "{url}"
    );

    // Committed demo secrets say so.
    for value in [
        read(&compose.secret_file("bff_client_secret")),
        keys.to_owned(),
        postgres["POSTGRES_PASSWORD"].clone(),
        compose.env("keycloak")["KC_BOOTSTRAP_ADMIN_PASSWORD"].clone(),
    ] {
        assert!(
            value.contains("CHANGE-ME"),
            "{value:?} should say CHANGE-ME"
        );
    }
}

/// Decoded length of standard padded base64, or `None` when it is not that.
fn base64_len(text: &str) -> Option<usize> {
    let body = text.trim_end_matches('=');
    let padding = text.len() - body.len();
    let alphabet_ok = body
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || b == b'+' || b == b'/');
    (alphabet_ok && text.len().is_multiple_of(4) && padding <= 2)
        .then(|| text.len() / 4 * 3 - padding)
}

#[test]
fn bff_server_reaches_its_stores_keycloak_and_the_browser() {
    let compose = Compose::load();
    let services = compose.yaml.keys(&["services"]);

    assert_eq!(compose.bff_env("BFF_STORE__KIND"), "postgres+redis");
    assert_eq!(
        compose.bff_env("BFF_STORE__POSTGRES__MIGRATE_ON_START"),
        "true"
    );
    assert_eq!(compose.bff_env("BFF_DEV__ALLOW_PLAIN_HTTP"), "true");
    for url in ["BFF_STORE__POSTGRES__URL", "BFF_STORE__REDIS__URL"] {
        let host = url_host(&compose.bff_env(url));
        assert!(
            services.contains(&host),
            "{url} names {host}, not a service"
        );
    }

    // bff-server shares Keycloak's network namespace: localhost:<issuer port> is Keycloak for
    // it, and the owner of the namespace publishes both the app's and Keycloak's ports.
    let owner = compose
        .yaml
        .scalar(&["services", "bff-server", "network_mode"]);
    let owner = owner
        .strip_prefix("service:")
        .expect("network_mode: service:…");
    assert_eq!(owner, "keycloak");
    let published = compose.yaml.list(&["services", owner, "ports"]);
    let (public_origin, public_port) = origin_and_port(&compose.bff_env("BFF_SERVER__PUBLIC_URL"));
    let (issuer_origin, issuer_port) =
        origin_and_port(&compose.bff_env("BFF_PROVIDERS__KEYCLOAK__ISSUER"));
    assert_eq!(public_origin, format!("http://localhost:{public_port}"));
    assert_eq!(issuer_origin, format!("http://localhost:{issuer_port}"));
    let keycloak_env = compose.env("keycloak");
    assert_eq!(keycloak_env["KC_HTTP_PORT"], issuer_port.to_string());
    for port in [public_port, issuer_port] {
        assert!(
            published
                .iter()
                .any(|p| p.ends_with(&format!(":{port}:{port}"))),
            "{owner} publishes {port}: {published:?}"
        );
    }
    // bff-server listens where the image says, on the port of the public URL.
    assert!(!compose.env("bff-server").contains_key("BFF_SERVER__LISTEN"));
    assert!(
        dockerfile_instructions()
            .contains(&format!("ENV BFF_SERVER__LISTEN=0.0.0.0:{public_port}")),
        "the image listens on {public_port}"
    );
    for service in ["keycloak", "postgres", "redis", "demo-api"] {
        assert!(
            compose
                .yaml
                .keys(&["services", "bff-server", "depends_on"])
                .iter()
                .any(|s| s == service),
            "bff-server depends on {service}"
        );
    }

    // Keycloak imports the realm at start.
    let command = compose.yaml.list(&["services", "keycloak", "command"]);
    assert_eq!(command, ["start-dev", "--import-realm"]);
    assert!(
        compose.mounts("keycloak").contains(&(
            "./keycloak/realm.json".into(),
            "/opt/keycloak/data/import/bff-demo-realm.json".into()
        )),
        "{:?}",
        compose.mounts("keycloak")
    );

    // The sample app and the routes file.
    let mounts = compose.mounts("bff-server");
    let static_dir = compose.bff_env("BFF_SERVER__STATIC_DIR");
    let app = mounts
        .iter()
        .find(|(_, inside)| *inside == static_dir)
        .expect("the static dir is mounted");
    for file in ["index.html", "app.js"] {
        assert!(docker_dir().join(&app.0).join(file).is_file(), "{file}");
    }
    assert!(mounts.contains(&("./bff.toml".into(), "/etc/bff-server/bff.toml".into())));

    // Every image but ours names a version, not `latest`.
    for service in &services {
        let image = compose.yaml.scalar(&["services", service, "image"]);
        let tag = image.rsplit_once(':').map(|(_, t)| t).unwrap_or_default();
        assert!(
            !tag.is_empty() && tag != "latest" && tag.chars().any(|c| c.is_ascii_digit())
                || service == "bff-server",
            "{service}: pin {image}"
        );
    }
}

#[test]
fn proxy_route_sends_user_tokens_to_the_demo_api() {
    let compose = Compose::load();
    let config = read(&docker_dir().join("bff.toml"));
    let route: BTreeMap<&str, &str> = config
        .split("[[routes]]")
        .nth(1)
        .expect("a [[routes]] entry")
        .lines()
        .filter_map(|l| l.split_once(" = "))
        .map(|(k, v)| (k.trim(), v.trim()))
        .collect();
    assert_eq!(route["path"], "\"/api/demo\"");
    assert_eq!(route["token"], "\"user\"");
    let demo = compose.env("demo-api");
    assert_eq!(
        route["upstream"],
        format!("\"http://demo-api:{}\"", demo["PORT"])
    );
    assert!(
        !compose
            .yaml
            .keys(&["services", "demo-api"])
            .contains(&"ports".to_owned()),
        "the demo API is reached through the proxy only"
    );

    // The demo API checks tokens against what Keycloak issues.
    let realm = realm();
    let realm_name = realm.text("realm").unwrap();
    assert_eq!(
        demo["EXPECTED_ISSUER"],
        compose.bff_env("BFF_PROVIDERS__KEYCLOAK__ISSUER")
    );
    assert_eq!(
        demo["JWKS_URL"],
        format!(
            "http://keycloak:{}/realms/{realm_name}/protocol/openid-connect/certs",
            compose.env("keycloak")["KC_HTTP_PORT"]
        )
    );
    assert!(
        compose
            .mounts("demo-api")
            .contains(&("./demo-api".into(), "/app".into()))
    );
    assert!(docker_dir().join("demo-api/server.mjs").is_file());
}

// ---------------------------------------------------------------------------------------------
// Dockerfile
// ---------------------------------------------------------------------------------------------

/// Dockerfile instructions with continuation lines joined and comments dropped.
fn dockerfile_instructions() -> Vec<String> {
    let text = read(&docker_dir().join("Dockerfile"));
    let mut instructions = Vec::new();
    let mut current = String::new();
    for line in text.lines() {
        let trimmed = line.trim();
        if trimmed.starts_with('#') || trimmed.is_empty() {
            continue;
        }
        match trimmed.strip_suffix('\\') {
            Some(start) => {
                current.push_str(start);
                current.push(' ');
            }
            None => {
                current.push_str(trimmed);
                instructions.push(std::mem::take(&mut current));
            }
        }
    }
    instructions
}

fn dockerignore_patterns() -> Vec<String> {
    read(&docker_dir().join("Dockerfile.dockerignore"))
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(str::to_owned)
        .collect()
}

/// Whether the ignore file keeps `path` out of the build context (the patterns it uses: a
/// path, `**/name` anywhere, `**/*.ext`).
fn ignored(path: &str, patterns: &[String]) -> bool {
    let path = path.trim_end_matches('/');
    patterns.iter().any(|pattern| {
        if let Some(ext) = pattern.strip_prefix("**/*.") {
            path.ends_with(&format!(".{ext}"))
        } else if let Some(name) = pattern.strip_prefix("**/") {
            path.split('/').any(|part| part == name)
        } else {
            path == pattern || path.starts_with(&format!("{pattern}/"))
        }
    })
}

#[test]
fn dockerfile_copies_only_files_that_exist_in_the_build_context() {
    let patterns = dockerignore_patterns();
    assert!(ignored("target/release/x", &patterns));
    assert!(ignored("e2e/idp/node_modules", &patterns));
    assert!(ignored("docker/secrets/bff_vault_keys", &patterns));
    let mut stages = Vec::new();
    let mut copies = 0;
    for instruction in dockerfile_instructions() {
        let mut words = instruction.split_whitespace();
        match words.next() {
            Some("FROM") => {
                let words: Vec<&str> = instruction.split_whitespace().collect();
                if let [_, _, as_, name] = words[..] {
                    assert!(as_.eq_ignore_ascii_case("AS"), "{instruction}");
                    stages.push(name.to_owned());
                }
            }
            Some("COPY") => {
                let args: Vec<&str> = words.collect();
                if let Some(stage) = args.iter().find_map(|a| a.strip_prefix("--from=")) {
                    assert!(stages.iter().any(|s| s == stage), "{instruction}");
                    continue;
                }
                let paths: Vec<&str> = args
                    .iter()
                    .copied()
                    .filter(|a| !a.starts_with("--"))
                    .collect();
                assert!(paths.len() >= 2, "{instruction}");
                for source in &paths[..paths.len() - 1] {
                    assert!(
                        !source.contains('*') && !source.contains('$'),
                        "{instruction}: keep COPY sources literal so this test can check them"
                    );
                    copies += 1;
                    assert!(
                        root().join(source).exists(),
                        "{instruction}: {source} is missing"
                    );
                    assert!(
                        *source == "." || !ignored(source, &patterns),
                        "{instruction}: {source} is excluded by Dockerfile.dockerignore"
                    );
                }
            }
            _ => {}
        }
    }
    assert!(copies >= 4, "found {copies} COPY sources");
    assert_eq!(stages, ["skeleton", "build", "runtime"]);
}

#[test]
fn dockerfile_builds_with_a_supported_rust_and_runs_as_a_non_root_user() {
    let instructions = dockerfile_instructions();
    let manifest = read(&root().join("Cargo.toml"));
    let required = manifest
        .lines()
        .find_map(|l| l.strip_prefix("rust-version = "))
        .map(|v| v.trim_matches('"').to_owned())
        .expect("rust-version in Cargo.toml");
    let used = instructions
        .iter()
        .find_map(|i| i.strip_prefix("ARG RUST_VERSION="))
        .expect("ARG RUST_VERSION=…");
    let version = |v: &str| -> (u32, u32) {
        let mut parts = v.split('.').map(|p| p.parse::<u32>().unwrap());
        (parts.next().unwrap(), parts.next().unwrap())
    };
    assert!(
        version(used) >= version(&required),
        "the builder's Rust {used} is older than rust-version {required}"
    );
    let froms: Vec<&String> = instructions
        .iter()
        .filter(|i| i.starts_with("FROM "))
        .collect();
    for from in &froms[..froms.len() - 1] {
        assert!(
            from.starts_with("FROM rust:${RUST_VERSION}-slim-bookworm "),
            "{from}"
        );
    }
    // The runtime has the builder's Debian release, so the binary finds its glibc.
    assert_eq!(
        *froms.last().unwrap(),
        "FROM debian:bookworm-slim AS runtime"
    );

    let runtime_start = instructions
        .iter()
        .position(|i| i == "FROM debian:bookworm-slim AS runtime")
        .unwrap();
    let runtime = &instructions[runtime_start..];
    let user = runtime
        .iter()
        .rev()
        .find_map(|i| i.strip_prefix("USER "))
        .expect("the runtime stage sets USER");
    let uid = user.split(':').next().unwrap();
    assert!(uid != "root" && uid != "0", "USER {user}");
    let health = runtime
        .iter()
        .find(|i| i.starts_with("HEALTHCHECK "))
        .expect("a HEALTHCHECK");
    assert!(health.contains("CMD [\"bff-healthcheck\"]"), "{health}");
    for (script, installed) in [
        ("docker/healthcheck.sh", "/usr/local/bin/bff-healthcheck"),
        ("docker/entrypoint.sh", "/usr/local/bin/bff-entrypoint"),
    ] {
        assert!(
            runtime.iter().any(|i| i.starts_with("COPY --chmod=0755 ")
                && i.ends_with(&format!("{script} {installed}"))),
            "{script} is installed as {installed}"
        );
    }
    assert!(runtime.contains(&"ENTRYPOINT [\"bff-entrypoint\"]".to_owned()));
    assert!(runtime.contains(&"ENV BFF_SERVER__LISTEN=0.0.0.0:8080".to_owned()));
    assert!(
        runtime
            .iter()
            .any(|i| i == "COPY migrations/ /usr/share/bff-server/migrations/")
    );
}

// ---------------------------------------------------------------------------------------------
// The image's scripts, run here
// ---------------------------------------------------------------------------------------------

/// A scratch directory for one test.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("bff-docker-{}-{test}", std::process::id()));
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs `docker/entrypoint.sh serve` with a stand-in `bff-server` that prints its `BFF_`
/// environment and arguments, and with exactly `env` besides PATH.
#[cfg(unix)]
fn run_entrypoint(dir: &Path, env: &[(&str, String)]) -> Output {
    use std::os::unix::fs::PermissionsExt as _;
    let fake = dir.join("bff-server");
    fs::write(
        &fake,
        "#!/bin/sh\nenv | grep '^BFF_' | sort\necho \"args: $*\"\n",
    )
    .unwrap();
    fs::set_permissions(&fake, fs::Permissions::from_mode(0o755)).unwrap();
    let path = format!(
        "{}:{}",
        dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    Command::new("sh")
        .arg(docker_dir().join("entrypoint.sh"))
        .arg("serve")
        .env_clear()
        .env("PATH", path)
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .stdin(Stdio::null())
        .output()
        .unwrap()
}

#[cfg(unix)]
#[test]
fn entrypoint_turns_file_variables_into_values_and_never_prints_them() {
    let dir = scratch("entrypoint");
    let hostile = "s3cret $(touch pwned) `touch pwned` \"q\" 'x' ; *";
    fs::write(dir.join("client_secret"), format!("{hostile}\n\n")).unwrap();
    fs::write(
        dir.join("vault_keys"),
        "[{ id = \"k1\", key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\" }]\n",
    )
    .unwrap();
    let file = |name: &str| dir.join(name).display().to_string();

    let output = run_entrypoint(
        &dir,
        &[
            (
                "BFF_PROVIDERS__MAIN__CLIENT_SECRET_FILE",
                file("client_secret"),
            ),
            ("BFF_VAULT_KEYS_FILE", file("vault_keys")),
            ("BFF_SERVER__PUBLIC_URL", "http://localhost:8080".into()),
        ],
    );
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(output.status.success(), "{output:?}");
    assert!(
        stdout.contains(&format!("BFF_PROVIDERS__MAIN__CLIENT_SECRET={hostile}\n")),
        "the value is the file's contents, unevaluated, trailing newlines dropped:\n{stdout}"
    );
    assert!(stdout.contains(
        "BFF_VAULT_KEYS=[{ id = \"k1\", key = \"AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=\" }]\n"
    ));
    assert!(stdout.contains("BFF_SERVER__PUBLIC_URL=http://localhost:8080\n"));
    assert!(
        !stdout.contains("_FILE="),
        "file variables are removed:\n{stdout}"
    );
    assert!(stdout.contains("args: serve\n"), "{stdout}");
    assert!(!dir.join("pwned").exists() && !Path::new("pwned").exists());

    // Both the value and the file: refused, naming the variables, not the secret.
    let output = run_entrypoint(
        &dir,
        &[
            (
                "BFF_PROVIDERS__MAIN__CLIENT_SECRET_FILE",
                file("client_secret"),
            ),
            ("BFF_PROVIDERS__MAIN__CLIENT_SECRET", "inline".into()),
        ],
    );
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(
        stderr.contains("BFF_PROVIDERS__MAIN__CLIENT_SECRET_FILE"),
        "{stderr}"
    );
    assert!(
        !stderr.contains("s3cret") && !stderr.contains("inline"),
        "{stderr}"
    );
    assert!(output.stdout.is_empty(), "bff-server must not start");

    // A missing file: refused before bff-server starts.
    let output = run_entrypoint(&dir, &[("BFF_VAULT_KEYS_FILE", file("no-such-file"))]);
    assert_eq!(output.status.code(), Some(2), "{output:?}");
    assert!(String::from_utf8_lossy(&output.stderr).contains("BFF_VAULT_KEYS_FILE"));
    assert!(output.stdout.is_empty(), "bff-server must not start");
    let _ = fs::remove_dir_all(&dir);
}

/// Serves one canned HTTP answer on 127.0.0.1 and returns the port and a handle that yields
/// the request it received.
fn one_answer(answer: &'static str) -> (u16, std::thread::JoinHandle<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buffer = [0; 1024];
        while !request.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut buffer).unwrap();
            if n == 0 {
                break;
            }
            request.extend_from_slice(&buffer[..n]);
        }
        stream.write_all(answer.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).into_owned()
    });
    (port, handle)
}

#[cfg(unix)]
fn run_healthcheck(port: u16) -> Option<Output> {
    match Command::new("bash")
        .arg(docker_dir().join("healthcheck.sh"))
        .env("BFF_SERVER__LISTEN", format!("0.0.0.0:{port}"))
        .output()
    {
        Ok(output) => Some(output),
        Err(e) => {
            skip_or_fail("bash", &e.to_string());
            None
        }
    }
}

#[cfg(unix)]
#[test]
fn healthcheck_is_healthy_only_when_healthz_answers_200() {
    let (port, server) = one_answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok");
    let Some(output) = run_healthcheck(port) else {
        return;
    };
    assert!(output.status.success(), "{output:?}");
    let request = server.join().unwrap();
    assert!(
        request.starts_with("GET /healthz HTTP/1.0\r\n"),
        "{request:?}"
    );

    for answer in [
        "HTTP/1.1 503 Service Unavailable\r\n\r\n",
        "HTTP/1.1 2000 OK\r\n\r\n",
        "HTTP/1.1 302 Found\r\nLocation: /\r\n\r\n",
        "garbage\r\n\r\n",
        "",
    ] {
        let (port, server) = one_answer(answer);
        let output = run_healthcheck(port).unwrap();
        assert_eq!(output.status.code(), Some(1), "{answer:?}: {output:?}");
        server.join().unwrap();
    }

    // Nothing listening: a port just freed.
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let output = run_healthcheck(port).unwrap();
    assert_eq!(output.status.code(), Some(1), "{output:?}");
}

/// bff-server's allocator (jemalloc) is built from C source with `make`: the build stage must
/// install it, since the slim Rust image has only the compiler.
#[test]
fn dockerfile_build_stage_has_make_for_jemalloc() {
    let manifest = read(&root().join("crates/bff-server/Cargo.toml"));
    if !manifest.contains("tikv-jemallocator") {
        return;
    }
    let instructions = dockerfile_instructions();
    let build = instructions
        .iter()
        .position(|i| i.starts_with("FROM ") && i.ends_with(" AS build"))
        .expect("a build stage");
    let first_cargo = instructions[build..]
        .iter()
        .position(|i| i.contains("cargo build"))
        .expect("cargo build in the build stage");
    assert!(
        instructions[build..build + first_cargo]
            .iter()
            .any(|i| i.starts_with("RUN ") && i.contains("apt-get install") && i.contains(" make")),
        "the build stage installs make before its first cargo build: {:?}",
        &instructions[build..build + first_cargo]
    );
}
