//! Authentication on SASL listeners, configured with Kafka's keys: the mechanisms a listener
//! enables (`[listener.name.<l>.]sasl.enabled.mechanisms`), PLAIN users from its
//! `listener.name.<l>.plain.sasl.jaas.config`, SCRAM credentials from the meta store (managed
//! with AlterUserScramCredentials), and the per-connection exchange of SaslHandshake and
//! SaslAuthenticate (KIP-43, KIP-152) in `sasl`.

pub mod acl;
pub mod authorizer;
pub mod credentials;
pub mod jaas;
mod plain;
pub mod principal;
pub mod sasl;
pub mod scram;
pub mod tls;

use std::collections::BTreeMap;

use crate::config::values::invalid;
use crate::config::ConfigError;
use scram::ScramMechanism;

/// Why an exchange failed, as Kafka tells the client.
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// A message the client may see (Kafka's `SaslAuthenticationException`).
    Told(String),
    /// Anything else: Kafka names only the mechanism, never why (the user may not exist).
    Generic,
}

/// A SASL mechanism gregor implements.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mechanism {
    Plain,
    Scram(ScramMechanism),
}

impl Mechanism {
    pub fn name(self) -> &'static str {
        match self {
            Mechanism::Plain => "PLAIN",
            Mechanism::Scram(m) => m.name(),
        }
    }

    fn parse(name: &str) -> Option<Mechanism> {
        match name {
            "PLAIN" => Some(Mechanism::Plain),
            "SCRAM-SHA-256" => Some(Mechanism::Scram(ScramMechanism::Sha256)),
            "SCRAM-SHA-512" => Some(Mechanism::Scram(ScramMechanism::Sha512)),
            _ => None,
        }
    }
}

/// Kafka's `sasl.server.max.receive.size`: the largest frame an unauthenticated client may send.
const DEFAULT_MAX_RECEIVE_SIZE: usize = 524_288;
/// Kafka's `connection.failed.authentication.delay.ms`.
const DEFAULT_FAILURE_DELAY_MS: u64 = 100;

/// How a SASL listener authenticates.
#[derive(Clone, PartialEq, Eq)]
pub struct SaslConfig {
    /// Enabled mechanisms, in configured order (SaslHandshake lists them so).
    pub mechanisms: Vec<Mechanism>,
    /// PLAIN's users and passwords.
    plain_users: BTreeMap<String, String>,
    /// Frames larger than this close an unauthenticated connection.
    pub max_receive_size: usize,
    /// How long a failed authentication waits before its answer (slows password guessing).
    pub failure_delay: std::time::Duration,
    /// `connections.max.reauth.ms` per mechanism (0: sessions never end).
    reauth_ms: Vec<(Mechanism, u64)>,
}

impl std::fmt::Debug for SaslConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SaslConfig")
            .field("mechanisms", &self.mechanisms)
            .field("plain_users", &self.plain_users.keys().collect::<Vec<_>>())
            .finish_non_exhaustive()
    }
}

impl SaslConfig {
    /// How long a session authenticated with `mechanism` lasts (0: for ever).
    pub fn reauth_ms(&self, mechanism: Mechanism) -> u64 {
        self.reauth_ms
            .iter()
            .find(|(m, _)| *m == mechanism)
            .map_or(0, |(_, ms)| *ms)
    }

    pub fn plain_users(&self) -> &BTreeMap<String, String> {
        &self.plain_users
    }

    /// The configuration of SASL listener `listener` (upper-case name) from the raw keys.
    pub fn load(raw: &BTreeMap<String, String>, listener: &str) -> Result<SaslConfig, ConfigError> {
        let prefix = format!("listener.name.{}.", listener.to_ascii_lowercase());
        let key = format!("{prefix}sasl.enabled.mechanisms");
        let (key, value) = match raw.get(&key) {
            Some(v) => (key.as_str(), v.as_str()),
            // Kafka's default is GSSAPI, which gregor does not implement: refused below.
            None => (
                "sasl.enabled.mechanisms",
                raw.get("sasl.enabled.mechanisms")
                    .map_or("GSSAPI", String::as_str),
            ),
        };
        let mut mechanisms = Vec::new();
        for name in value.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let m = Mechanism::parse(name).ok_or_else(|| {
                invalid(key, value, &format!(
                    "SASL mechanism {name} of listener {listener} is not implemented by gregor (PLAIN, SCRAM-SHA-256 and SCRAM-SHA-512 are)"
                ))
            })?;
            if !mechanisms.contains(&m) {
                mechanisms.push(m);
            }
        }
        if mechanisms.is_empty() {
            return Err(invalid(
                key,
                value,
                &format!("no SASL mechanism is enabled for listener {listener}"),
            ));
        }
        let mut plain_users = BTreeMap::new();
        for m in &mechanisms {
            let jaas_key = format!("{prefix}{}.sasl.jaas.config", m.name().to_ascii_lowercase());
            let expected = match m {
                Mechanism::Plain => "org.apache.kafka.common.security.plain.PlainLoginModule",
                Mechanism::Scram(_) => "org.apache.kafka.common.security.scram.ScramLoginModule",
            };
            let module = match raw.get(&jaas_key) {
                // The value holds passwords: errors show neither it nor its parts.
                Some(v) => Some(jaas::parse(v).map_err(|e| invalid(&jaas_key, "(hidden)", &e))?),
                None if *m == Mechanism::Plain => {
                    return Err(invalid(
                        &jaas_key,
                        "",
                        &format!("PLAIN is enabled on listener {listener}: its users are given as {expected} required user_<name>=\"<password>\";"),
                    ))
                }
                None => None,
            };
            if let Some(module) = module {
                if module.class != expected {
                    // The class is not shown: a malformed value may put a password there.
                    return Err(invalid(
                        &jaas_key,
                        "(hidden)",
                        &format!("the login module is not one gregor implements ({expected} is)"),
                    ));
                }
                if *m == Mechanism::Plain {
                    plain_users = module
                        .options
                        .into_iter()
                        .filter_map(|(k, v)| Some((k.strip_prefix("user_")?.to_string(), v)))
                        .collect();
                }
            }
        }
        // Kafka's INT keys: 0 to 2^31-1; LONG keys (connections.max.*.ms) to 2^63-1.
        let number =
            |key: &str, default: u64, max: u64| -> Result<u64, ConfigError> {
                raw.get(key).map_or(Ok(default), |v| {
                    v.trim().parse().ok().filter(|n| *n <= max).ok_or_else(|| {
                        invalid(key, v, &format!("expected an integer from 0 to {max}"))
                    })
                })
            };
        let int = i32::MAX as u64;
        let long = i64::MAX as u64;
        // The listener's own key first, as Kafka reads listener-prefixed keys.
        let own = |key: &str| -> String {
            let prefixed = format!("{prefix}{key}");
            if raw.contains_key(&prefixed) {
                prefixed
            } else {
                key.to_string()
            }
        };
        let failure_delay = number(
            &own("connection.failed.authentication.delay.ms"),
            DEFAULT_FAILURE_DELAY_MS,
            int,
        )?;
        let idle = number("connections.max.idle.ms", 600_000, long)?;
        if failure_delay >= idle {
            return Err(invalid(
                "connection.failed.authentication.delay.ms",
                &failure_delay.to_string(),
                &format!("should always be less than connections.max.idle.ms={idle} to avoid connection timeouts"),
            ));
        }
        let mut reauth_ms = Vec::new();
        for m in &mechanisms {
            let own = format!(
                "{prefix}{}.connections.max.reauth.ms",
                m.name().to_ascii_lowercase()
            );
            let key = if raw.contains_key(&own) {
                own.as_str()
            } else {
                "connections.max.reauth.ms"
            };
            reauth_ms.push((*m, number(key, 0, long)?));
        }
        Ok(SaslConfig {
            reauth_ms,
            mechanisms,
            plain_users,
            max_receive_size: usize::try_from(number(
                &own("sasl.server.max.receive.size"),
                DEFAULT_MAX_RECEIVE_SIZE as u64,
                int,
            )?)
            .unwrap_or(usize::MAX),
            failure_delay: std::time::Duration::from_millis(failure_delay),
        })
    }
}

/// The authorizer's configuration (`authorizer.class.name` naming Kafka's StandardAuthorizer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthorizerConfig {
    /// `super.users`: `User:a;User:b`.
    pub super_users: String,
    /// `allow.everyone.if.no.acl.found`.
    pub allow_if_no_acl: bool,
}

impl AuthorizerConfig {
    /// `None` when `authorizer.class.name` is unset or empty (no authorizer, as Kafka).
    pub fn load(raw: &BTreeMap<String, String>) -> Result<Option<AuthorizerConfig>, ConfigError> {
        let class = raw.get("authorizer.class.name").map_or("", |c| c.trim());
        if class.is_empty() {
            return Ok(None);
        }
        if class != authorizer::STANDARD_AUTHORIZER {
            return Err(invalid(
                "authorizer.class.name",
                class,
                &format!("gregor implements {} only", authorizer::STANDARD_AUTHORIZER),
            ));
        }
        let allow_if_no_acl = match raw
            .get("allow.everyone.if.no.acl.found")
            .map(|v| v.trim().to_ascii_lowercase())
        {
            None => false,
            Some(v) if v == "true" => true,
            Some(v) if v == "false" => false,
            Some(v) => {
                return Err(invalid(
                    "allow.everyone.if.no.acl.found",
                    &v,
                    "expected true or false",
                ))
            }
        };
        let super_users = raw.get("super.users").cloned().unwrap_or_default();
        for user in super_users
            .split(';')
            .map(str::trim)
            .filter(|u| !u.is_empty())
        {
            acl::parse_principal(user).map_err(|e| invalid("super.users", user, &e))?;
        }
        Ok(Some(AuthorizerConfig {
            super_users,
            allow_if_no_acl,
        }))
    }
}

/// Keys read here, besides the per-listener ones (`listener.name.<l>.`...).
pub const HONOURED: &[&str] = &[
    "authorizer.class.name",
    "super.users",
    "allow.everyone.if.no.acl.found",
    "sasl.enabled.mechanisms",
    "sasl.server.max.receive.size",
    "connection.failed.authentication.delay.ms",
    "connections.max.reauth.ms",
];

/// Whether a per-listener key is one this module reads.
pub fn honoured(key: &str) -> bool {
    let Some(rest) = key.strip_prefix("listener.name.") else {
        return false;
    };
    let Some((_, rest)) = rest.split_once('.') else {
        return false;
    };
    tls::HONOURED.contains(&rest)
        || rest == "sasl.enabled.mechanisms"
        || ["plain", "scram-sha-256", "scram-sha-512"].iter().any(|m| {
            rest == format!("{m}.sasl.jaas.config")
                || rest == format!("{m}.connections.max.reauth.ms")
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<SaslConfig, ConfigError> {
        SaslConfig::load(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            "SASL_PLAINTEXT",
        )
    }

    const PLAIN: &str = "listener.name.sasl_plaintext.plain.sasl.jaas.config";

    #[test]
    fn kafkas_keys_configure_a_listener() {
        let c = load(&[
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512, PLAIN"),
            (
                PLAIN,
                r#"org.apache.kafka.common.security.plain.PlainLoginModule required username="a" password="b" user_alice="alice-secret";"#,
            ),
        ])
        .unwrap();
        assert_eq!(
            c.mechanisms,
            vec![Mechanism::Scram(ScramMechanism::Sha512), Mechanism::Plain]
        );
        assert_eq!(c.plain_users()["alice"], "alice-secret");
        assert_eq!(c.plain_users().len(), 1);
        assert_eq!(c.max_receive_size, 524_288);
        assert!(!format!("{c:?}").contains("secret"));
        // The listener's own list wins.
        let c = load(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (
                "listener.name.sasl_plaintext.sasl.enabled.mechanisms",
                "SCRAM-SHA-256",
            ),
        ])
        .unwrap();
        assert_eq!(c.mechanisms, vec![Mechanism::Scram(ScramMechanism::Sha256)]);
    }

    #[test]
    fn what_gregor_cannot_do_stops_start_up_without_showing_secrets() {
        let e = |pairs: &[(&str, &str)]| load(pairs).unwrap_err().to_string();
        assert!(e(&[]).contains("GSSAPI"));
        assert!(e(&[("sasl.enabled.mechanisms", "OAUTHBEARER")]).contains("OAUTHBEARER"));
        assert!(e(&[("sasl.enabled.mechanisms", "PLAIN")]).contains(PLAIN));
        let bad = e(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (PLAIN, r#"Module required user_alice="s3cret""#),
        ]);
        assert!(bad.contains(PLAIN) && !bad.contains("s3cret"), "{bad}");
        let other = e(&[
            ("sasl.enabled.mechanisms", "PLAIN"),
            (PLAIN, r#"com.example.Other required user_alice="s3cret";"#),
        ]);
        assert!(other.contains("not one gregor implements") && !other.contains("s3cret"));
        let plain = (
            PLAIN,
            r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_a="b";"#,
        );
        let mechanism = ("sasl.enabled.mechanisms", "PLAIN");
        assert!(e(&[
            mechanism,
            plain,
            ("connection.failed.authentication.delay.ms", "600000")
        ])
        .contains("less than connections.max.idle.ms=600000"));
        assert!(e(&[
            mechanism,
            plain,
            ("sasl.server.max.receive.size", "2147483648")
        ])
        .contains("from 0 to 2147483647"));
        let c = load(&[
            mechanism,
            plain,
            (
                "listener.name.sasl_plaintext.sasl.server.max.receive.size",
                "4096",
            ),
        ])
        .unwrap();
        assert_eq!(c.max_receive_size, 4096);
    }
}
