//! The providers a credential is for, their fields (which are secret), the checks a
//! credential must pass before it is saved, and `verify`: the provider's cheapest
//! authenticated call, answered as what the provider said.
//!
//! | provider | verify call |
//! |---|---|
//! | hetzner | `GET {hetzner_api_url}/servers?per_page=1` with the token |
//! | cloudflare | `GET {cloudflare_api_url}/user/tokens/verify` |
//! | steam | `GET {steam_api_url}/ISteamWebAPIUtil/GetSupportedAPIList/v1/?key=` |
//! | aws | STS `GetCallerIdentity`, signed with SigV4 |
//! | gcp | a service-account JWT (RS256) exchanged at the OAuth token endpoint |
//! | oci | `GET /20160918/users/{user}` of the Identity API, HTTP-signature signed |
//! | powerdns | its zones (`GET {api_url}/api/v1/servers/{server_id}/zones`) |
//! | rfc2136 | a zone transfer (AXFR) of its first zone, signed with its TSIG key |

use std::time::Duration;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{AppError, AppResult};
use crate::state::AppState;

/// One field of a provider's credential.
#[derive(Debug, Clone, Copy)]
pub struct Field {
    pub name: &'static str,
    pub label: &'static str,
    pub required: bool,
    /// Sealed at rest, never answered (a masked hint instead).
    pub secret: bool,
    /// Typed over several lines (a JSON key file, a PEM key).
    pub multiline: bool,
}

/// One provider.
#[derive(Debug, Clone, Copy)]
pub struct Provider {
    pub id: &'static str,
    pub name: &'static str,
    pub fields: &'static [Field],
}

const fn field(name: &'static str, label: &'static str, required: bool, secret: bool) -> Field {
    Field {
        name,
        label,
        required,
        secret,
        multiline: false,
    }
}

const fn long_secret(name: &'static str, label: &'static str) -> Field {
    Field {
        name,
        label,
        required: true,
        secret: true,
        multiline: true,
    }
}

/// Every provider, in the order they are listed.
pub const PROVIDERS: &[Provider] = &[
    Provider {
        id: "hetzner",
        name: "Hetzner Cloud",
        fields: &[field("token", "API token (read & write)", true, true)],
    },
    Provider {
        id: "aws",
        name: "Amazon Web Services",
        fields: &[
            field("access_key_id", "Access key ID", true, false),
            field("secret_access_key", "Secret access key", true, true),
            field("region", "Region (default us-east-1)", false, false),
        ],
    },
    Provider {
        id: "gcp",
        name: "Google Cloud",
        fields: &[long_secret(
            "service_account_json",
            "Service account key (JSON)",
        )],
    },
    Provider {
        id: "oci",
        name: "Oracle Cloud Infrastructure",
        fields: &[
            field("tenancy_ocid", "Tenancy OCID", true, false),
            field("user_ocid", "User OCID", true, false),
            field("fingerprint", "API key fingerprint", true, false),
            field("region", "Region (e.g. eu-frankfurt-1)", true, false),
            long_secret("private_key", "API private key (PEM)"),
        ],
    },
    Provider {
        id: "cloudflare",
        name: "Cloudflare",
        fields: &[
            field("api_token", "API token", true, true),
            field("account_id", "Account ID", false, false),
        ],
    },
    Provider {
        id: "powerdns",
        name: "PowerDNS Authoritative",
        fields: &[
            field(
                "api_url",
                "API address (http://ns1.example.net:8081)",
                true,
                false,
            ),
            field("api_key", "API key", true, true),
            field("server_id", "Server id (default localhost)", false, false),
        ],
    },
    Provider {
        id: "rfc2136",
        name: "RFC 2136 dynamic DNS (BIND, Knot, PowerDNS)",
        fields: &[
            field(
                "server",
                "Server (host:port, port 53 by default)",
                true,
                false,
            ),
            field("zones", "Zones, separated by commas", true, false),
            field("tsig_key_name", "TSIG key name", true, false),
            field(
                "tsig_algorithm",
                "TSIG algorithm (hmac-sha256 by default)",
                false,
                false,
            ),
            field("tsig_secret", "TSIG secret (base64)", true, true),
        ],
    },
    Provider {
        id: "steam",
        name: "Steam Web API",
        fields: &[field("api_key", "Web API key", true, true)],
    },
];

/// The provider `id`.
#[must_use]
pub fn find(id: &str) -> Option<&'static Provider> {
    PROVIDERS.iter().find(|p| p.id == id)
}

/// A credential's fields: the public ones and the secret ones.
#[derive(Debug, Clone, Default)]
pub struct Parts {
    pub public: Map<String, Value>,
    pub secrets: Map<String, Value>,
}

/// Longest value of a one-line field, in characters.
const MAX_LINE: usize = 500;
/// Longest value of a key file, in bytes.
const MAX_KEY: usize = 16 * 1024;

/// Checks `config` (every field of `provider`, as given) and splits it; `previous`
/// fills the secrets left out (an update that does not change them).
///
/// # Errors
/// 400 naming the field (`config.<name>`) at fault.
pub fn parse(
    provider: &Provider,
    config: &Map<String, Value>,
    previous: &Parts,
) -> AppResult<Parts> {
    if let Some(unknown) = config
        .keys()
        .find(|k| !provider.fields.iter().any(|f| f.name == k.as_str()))
    {
        return Err(AppError::invalid_field(
            format!("config.{unknown}"),
            format!("{} has no field {unknown}", provider.name),
        ));
    }
    let mut parts = Parts::default();
    for f in provider.fields {
        let path = format!("config.{}", f.name);
        let value = match config.get(f.name) {
            None | Some(Value::Null) if f.secret => previous.secrets.get(f.name).cloned(),
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(Value::String(s.trim().to_owned())),
            Some(_) => {
                return Err(AppError::invalid_field(
                    path,
                    format!("{} must be text", f.name),
                ));
            }
        }
        .filter(|v| v.as_str().is_some_and(|s| !s.is_empty()));
        let Some(value) = value else {
            if f.required {
                return Err(AppError::invalid_field(
                    path,
                    format!("{} is required", f.label),
                ));
            }
            continue;
        };
        let text = value.as_str().unwrap_or_default();
        let fits = if f.multiline {
            text.len() <= MAX_KEY
        } else {
            text.chars().count() <= MAX_LINE && !text.chars().any(char::is_control)
        };
        if !fits {
            return Err(AppError::invalid_field(
                path,
                format!("{} is too long or holds control characters", f.label),
            ));
        }
        if f.secret {
            parts.secrets.insert(f.name.to_owned(), value);
        } else {
            parts.public.insert(f.name.to_owned(), value);
        }
    }
    if provider.id == "gcp" {
        service_account(&parts)?;
    }
    if provider.id == "powerdns" {
        crate::dns::powerdns::check_fields(&parts)?;
    }
    if provider.id == "rfc2136" {
        crate::dns::rfc2136::check_fields(&parts)?;
    }
    if provider.id == "oci" && !text_of(&parts.secrets, "private_key").contains("PRIVATE KEY-----")
    {
        return Err(AppError::invalid_field(
            "config.private_key",
            "the API private key must be a PEM file (-----BEGIN PRIVATE KEY-----)",
        ));
    }
    Ok(parts)
}

fn text_of<'a>(map: &'a Map<String, Value>, key: &str) -> &'a str {
    map.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The masked hint of a secret: its last four characters.
#[must_use]
pub fn hint(secret: &str) -> String {
    let tail: String = secret
        .chars()
        .rev()
        .take(4)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    if secret.chars().count() <= 8 {
        "••••".to_owned()
    } else {
        format!("••••{tail}")
    }
}

/// The parts of a Google service account key the verify call needs.
#[derive(Debug, Deserialize)]
struct ServiceAccount {
    client_email: String,
    private_key: String,
    #[serde(default)]
    token_uri: String,
}

fn service_account(parts: &Parts) -> AppResult<ServiceAccount> {
    let key: ServiceAccount = serde_json::from_str(text_of(&parts.secrets, "service_account_json"))
        .map_err(|_| {
            AppError::invalid_field(
                "config.service_account_json",
                "a service account key file (JSON with client_email and private_key)",
            )
        })?;
    if key.client_email.is_empty() || !key.private_key.contains("PRIVATE KEY-----") {
        return Err(AppError::invalid_field(
            "config.service_account_json",
            "a service account key file (JSON with client_email and private_key)",
        ));
    }
    Ok(key)
}

/// What a verify call found.
#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Verified {
    /// The provider accepted the credential.
    pub ok: bool,
    /// The HTTP status the provider answered (none when it could not be reached).
    pub status: Option<u16>,
    /// What it said, in a line: the account it names, or its error.
    pub message: String,
}

impl Verified {
    fn unreachable(why: impl Into<String>) -> Self {
        Self {
            ok: false,
            status: None,
            message: why.into(),
        }
    }
}

/// Calls the provider's cheapest authenticated endpoint with `parts`.
pub async fn verify(state: &AppState, provider: &str, parts: &Parts) -> Verified {
    let cloud = &state.config.cloud;
    let public = |k: &str| text_of(&parts.public, k).to_owned();
    let secret = |k: &str| text_of(&parts.secrets, k).to_owned();
    let outcome = match provider {
        "hetzner" => {
            let url = format!(
                "{}/servers?per_page=1",
                cloud.hetzner_api_url.trim_end_matches('/')
            );
            let token = secret("token");
            call(
                state,
                reqwest::Method::GET,
                &url,
                |r| r.bearer_auth(token),
                hetzner_said,
            )
            .await
        }
        "cloudflare" => {
            let url = format!(
                "{}/user/tokens/verify",
                cloud.cloudflare_api_url.trim_end_matches('/')
            );
            let token = secret("api_token");
            call(
                state,
                reqwest::Method::GET,
                &url,
                |r| r.bearer_auth(token),
                cloudflare_said,
            )
            .await
        }
        "steam" => {
            let url = format!(
                "{}/ISteamWebAPIUtil/GetSupportedAPIList/v1/",
                cloud.steam_api_url.trim_end_matches('/')
            );
            let key = secret("api_key");
            call(
                state,
                reqwest::Method::GET,
                &url,
                |r| r.query(&[("key", key)]),
                steam_said,
            )
            .await
        }
        "aws" => {
            aws(
                state,
                &public("access_key_id"),
                &secret("secret_access_key"),
                &public("region"),
            )
            .await
        }
        "gcp" => match service_account(parts) {
            Ok(key) => gcp(state, &key).await,
            Err(e) => Err(Verified::unreachable(e.to_string())),
        },
        "oci" => oci(state, parts).await,
        "powerdns" | "rfc2136" => Ok(crate::dns::verify(state, provider, parts).await),
        other => Err(Verified::unreachable(format!("unknown provider {other}"))),
    };
    outcome.unwrap_or_else(|v| v)
}

/// What a provider answered: its status and body.
struct Answer {
    status: u16,
    body: String,
}

/// Sends one request through the outbound guard; `read` turns the answer into the
/// outcome. Transport failures are the outcome's message.
async fn call(
    state: &AppState,
    method: reqwest::Method,
    url: &str,
    build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
    read: fn(&Answer) -> (bool, String),
) -> Result<Verified, Verified> {
    let answer = send(state, method, url, build).await?;
    let (ok, message) = read(&answer);
    Ok(Verified {
        ok,
        status: Some(answer.status),
        message,
    })
}

async fn send(
    state: &AppState,
    method: reqwest::Method,
    url: &str,
    build: impl FnOnce(reqwest::RequestBuilder) -> reqwest::RequestBuilder,
) -> Result<Answer, Verified> {
    let checked = state
        .config
        .outbound
        .resolve_url(url)
        .await
        .map_err(|e| Verified::unreachable(format!("could not reach the provider: {e}")))?;
    let client = checked
        .pin(reqwest::Client::builder())
        .timeout(Duration::from_secs(state.config.cloud.timeout_secs.max(1)))
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("Shardlyn/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Verified::unreachable(format!("http client: {e}")))?;
    let response = build(client.request(method, checked.url.clone()))
        .send()
        .await
        .map_err(|e| {
            Verified::unreachable(if e.is_timeout() {
                "the provider did not answer in time".to_owned()
            } else {
                "could not connect to the provider".to_owned()
            })
        })?;
    let status = response.status().as_u16();
    let body = response.text().await.unwrap_or_default();
    Ok(Answer { status, body })
}

/// The first `error.message`-like text of a JSON body, else its first 200 characters.
fn said(body: &str) -> String {
    let v: Value = serde_json::from_str(body).unwrap_or(Value::Null);
    let candidates = [
        v.pointer("/error/message"),
        v.pointer("/errors/0/message"),
        v.pointer("/error_description"),
        v.pointer("/message"),
        v.pointer("/error").filter(|e| e.is_string()),
    ];
    candidates
        .into_iter()
        .flatten()
        .find_map(Value::as_str)
        .map_or_else(|| body.chars().take(200).collect(), str::to_owned)
}

fn hetzner_said(a: &Answer) -> (bool, String) {
    if a.status == 200 {
        (true, "the token reads this project's servers".into())
    } else {
        (
            false,
            format!("Hetzner answered {}: {}", a.status, said(&a.body)),
        )
    }
}

fn cloudflare_said(a: &Answer) -> (bool, String) {
    let v: Value = serde_json::from_str(&a.body).unwrap_or(Value::Null);
    let status = v
        .pointer("/result/status")
        .and_then(Value::as_str)
        .unwrap_or("");
    if a.status == 200 && v["success"] == Value::Bool(true) && status == "active" {
        (true, "the token is active".into())
    } else if a.status == 200 {
        (
            false,
            format!(
                "the token is {}",
                if status.is_empty() {
                    "not active"
                } else {
                    status
                }
            ),
        )
    } else {
        (
            false,
            format!("Cloudflare answered {}: {}", a.status, said(&a.body)),
        )
    }
}

fn steam_said(a: &Answer) -> (bool, String) {
    match a.status {
        200 => (true, "the Web API key is accepted".into()),
        401 | 403 => (false, format!("Steam refused the key ({})", a.status)),
        s => (false, format!("Steam answered {s}: {}", said(&a.body))),
    }
}

/// STS `GetCallerIdentity`: the account and ARN the keys belong to.
async fn aws(
    state: &AppState,
    access_key_id: &str,
    secret_access_key: &str,
    region: &str,
) -> Result<Verified, Verified> {
    let region = if region.is_empty() {
        "us-east-1"
    } else {
        region
    };
    let base = if state.config.cloud.aws_sts_url.is_empty() {
        format!("https://sts.{region}.amazonaws.com")
    } else {
        state
            .config
            .cloud
            .aws_sts_url
            .trim_end_matches('/')
            .to_owned()
    };
    let url = reqwest::Url::parse(&format!("{base}/"))
        .map_err(|_| Verified::unreachable("the STS address is not a URL"))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return Err(Verified::unreachable("the STS address has no host")),
    };
    let body = b"Action=GetCallerIdentity&Version=2011-06-15".to_vec();
    let signed = crate::sigv4::sign(
        crate::sigv4::Request {
            method: "POST",
            host: &host,
            path: url.path(),
            body: &body,
            service: "sts",
            region,
        },
        (access_key_id, secret_access_key),
        chrono::Utc::now(),
    );
    let answer = send(state, reqwest::Method::POST, url.as_str(), |r| {
        r.header("content-type", "application/x-www-form-urlencoded")
            .header("x-amz-date", signed.amz_date)
            .header("x-amz-content-sha256", signed.payload_sha256)
            .header(reqwest::header::AUTHORIZATION, signed.authorization)
            .body(body)
    })
    .await?;
    let between = |open: &str, close: &str| {
        let start = answer.body.find(open)? + open.len();
        let end = answer.body[start..].find(close)? + start;
        Some(answer.body[start..end].to_owned())
    };
    let (ok, message) = if answer.status == 200 {
        let arn = between("<Arn>", "</Arn>").unwrap_or_default();
        (true, format!("the keys belong to {arn}"))
    } else {
        let why = between("<Message>", "</Message>").unwrap_or_else(|| said(&answer.body));
        (false, format!("AWS answered {}: {why}", answer.status))
    };
    Ok(Verified {
        ok,
        status: Some(answer.status),
        message,
    })
}

/// Google: a JWT signed with the service account's key, exchanged for an access token.
async fn gcp(state: &AppState, key: &ServiceAccount) -> Result<Verified, Verified> {
    let token_url = if state.config.cloud.gcp_token_url.is_empty() {
        if key.token_uri.is_empty() {
            "https://oauth2.googleapis.com/token".to_owned()
        } else {
            key.token_uri.clone()
        }
    } else {
        state.config.cloud.gcp_token_url.clone()
    };
    let now = chrono::Utc::now().timestamp();
    let claims = serde_json::json!({
        "iss": key.client_email,
        "scope": "https://www.googleapis.com/auth/cloud-platform.read-only",
        "aud": token_url,
        "iat": now,
        "exp": now + 600,
    });
    let signing = jsonwebtoken::EncodingKey::from_rsa_pem(key.private_key.as_bytes())
        .map_err(|_| Verified::unreachable("the service account's private key does not parse"))?;
    let jwt = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::RS256),
        &claims,
        &signing,
    )
    .map_err(|e| Verified::unreachable(format!("signing the token request: {e}")))?;
    let form = [
        (
            "grant_type",
            "urn:ietf:params:oauth:grant-type:jwt-bearer".to_owned(),
        ),
        ("assertion", jwt),
    ];
    let answer = send(state, reqwest::Method::POST, &token_url, |r| r.form(&form)).await?;
    let v: Value = serde_json::from_str(&answer.body).unwrap_or(Value::Null);
    let ok = answer.status == 200 && v["access_token"].as_str().is_some_and(|t| !t.is_empty());
    Ok(Verified {
        ok,
        status: Some(answer.status),
        message: if ok {
            format!("{} signs in", key.client_email)
        } else {
            format!("Google answered {}: {}", answer.status, said(&answer.body))
        },
    })
}

/// OCI: the Identity API's user record, signed per OCI's HTTP signatures (RSA-SHA256
/// over `(request-target)`, `date` and `host`).
async fn oci(state: &AppState, parts: &Parts) -> Result<Verified, Verified> {
    use base64::Engine as _;
    let get = |k: &str| text_of(&parts.public, k).to_owned();
    let region = get("region");
    let user = get("user_ocid");
    let base = state
        .config
        .cloud
        .oci_identity_url
        .replace("{region}", &region);
    let url = reqwest::Url::parse(&format!(
        "{}/20160918/users/{}",
        base.trim_end_matches('/'),
        urlencoding(&user)
    ))
    .map_err(|_| Verified::unreachable("the OCI address is not a URL"))?;
    let host = match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{h}:{p}"),
        (Some(h), None) => h.to_owned(),
        _ => return Err(Verified::unreachable("the OCI address has no host")),
    };
    let date = chrono::Utc::now()
        .format("%a, %d %b %Y %H:%M:%S GMT")
        .to_string();
    let signing_string = format!(
        "(request-target): get {}\ndate: {date}\nhost: {host}",
        url.path()
    );
    let key =
        jsonwebtoken::EncodingKey::from_rsa_pem(text_of(&parts.secrets, "private_key").as_bytes())
            .map_err(|_| Verified::unreachable("the API private key does not parse (RSA PEM)"))?;
    let signature = jsonwebtoken::crypto::sign(
        signing_string.as_bytes(),
        &key,
        jsonwebtoken::Algorithm::RS256,
    )
    .map_err(|e| Verified::unreachable(format!("signing: {e}")))?;
    // jsonwebtoken answers base64url without padding; OCI wants standard base64.
    let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(signature)
        .map_err(|e| Verified::unreachable(format!("signing: {e}")))?;
    let signature = base64::engine::general_purpose::STANDARD.encode(raw);
    let authorization = format!(
        "Signature version=\"1\",keyId=\"{}/{}/{}\",algorithm=\"rsa-sha256\",\
         headers=\"(request-target) date host\",signature=\"{signature}\"",
        get("tenancy_ocid"),
        user,
        get("fingerprint")
    );
    let answer = send(state, reqwest::Method::GET, url.as_str(), |r| {
        r.header("date", date)
            .header(reqwest::header::AUTHORIZATION, authorization)
    })
    .await?;
    let ok = answer.status == 200;
    Ok(Verified {
        ok,
        status: Some(answer.status),
        message: if ok {
            "the API key signs in as its user".to_owned()
        } else {
            format!("OCI answered {}: {}", answer.status, said(&answer.body))
        },
    })
}

/// A path segment, percent-encoded.
fn urlencoding(s: &str) -> String {
    form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_are_checked_and_secrets_kept_apart() {
        let hetzner = find("hetzner").expect("hetzner");
        let config = json!({"token": "  abcdefghijkl  "});
        let parts = parse(
            hetzner,
            config.as_object().expect("object"),
            &Parts::default(),
        )
        .expect("valid");
        assert_eq!(parts.secrets["token"], "abcdefghijkl");
        assert!(parts.public.is_empty());
        // Left out on update: the previous secret stays.
        let kept = parse(hetzner, &Map::new(), &parts).expect("kept");
        assert_eq!(kept.secrets["token"], "abcdefghijkl");
        let missing = parse(hetzner, &Map::new(), &Parts::default()).expect_err("required");
        assert!(missing.to_string().contains("required"), "{missing}");
        let unknown = json!({"token": "x", "region": "fsn1"});
        assert!(
            parse(
                hetzner,
                unknown.as_object().expect("object"),
                &Parts::default()
            )
            .is_err()
        );
        let gcp = find("gcp").expect("gcp");
        let bad = json!({"service_account_json": "{\"client_email\": \"a@b\"}"});
        assert!(parse(gcp, bad.as_object().expect("object"), &Parts::default()).is_err());
        assert_eq!(hint("abcdefghijkl"), "••••ijkl");
        assert_eq!(hint("short"), "••••");
    }
}
