//! TLS for SSL and SASL_SSL listeners, with rustls, configured with Kafka's `ssl.*` keys (each
//! also under the listener's prefix `listener.name.<listener>.`): the key store as PEM (a file,
//! or `ssl.keystore.certificate.chain` and `ssl.keystore.key` inline; an encrypted PKCS#8 key
//! takes `ssl.key.password`) or PKCS12 (`ssl.keystore.password`); the trust store for client
//! certificates (`ssl.client.auth=required|requested`) likewise; `ssl.enabled.protocols` and
//! `ssl.cipher.suites`. Errors name keys, never passwords or key material.

use std::collections::BTreeMap;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;
use rustls::{RootCertStore, ServerConfig};

use crate::config::values::invalid;
use crate::config::ConfigError;

/// A listener's TLS: the acceptor clients' handshakes go through.
#[derive(Clone)]
pub struct Tls {
    pub acceptor: tokio_rustls::TlsAcceptor,
    /// `ssl.client.auth`, for the start-up log.
    pub client_auth: String,
    /// `ssl.principal.mapping.rules`: a client certificate's principal from its subject.
    pub principals: super::principal::Mapper,
}

impl std::fmt::Debug for Tls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tls")
            .field("client_auth", &self.client_auth)
            .finish_non_exhaustive()
    }
}

impl PartialEq for Tls {
    fn eq(&self, other: &Self) -> bool {
        self.client_auth == other.client_auth && self.principals == other.principals
    }
}

impl Eq for Tls {}

/// Keys read here (also under `listener.name.<listener>.`).
pub const HONOURED: &[&str] = &[
    "ssl.keystore.type",
    "ssl.keystore.location",
    "ssl.keystore.password",
    "ssl.keystore.certificate.chain",
    "ssl.keystore.key",
    "ssl.key.password",
    "ssl.truststore.type",
    "ssl.truststore.location",
    "ssl.truststore.password",
    "ssl.truststore.certificates",
    "ssl.client.auth",
    "ssl.enabled.protocols",
    "ssl.protocol",
    "ssl.cipher.suites",
    "ssl.principal.mapping.rules",
];

/// A listener's view of the `ssl.*` keys: its own prefixed key first, then the broker's.
struct Keys<'a> {
    raw: &'a BTreeMap<String, String>,
    prefix: String,
}

impl Keys<'_> {
    /// (the key found, its value).
    fn get(&self, key: &str) -> Option<(String, &str)> {
        let own = format!("{}{key}", self.prefix);
        if let Some(v) = self.raw.get(&own) {
            return Some((own, v.as_str()));
        }
        self.raw.get(key).map(|v| (key.to_string(), v.as_str()))
    }

    fn value(&self, key: &str) -> Option<&str> {
        self.get(key)
            .map(|(_, v)| v)
            .filter(|v| !v.trim().is_empty())
    }
}

/// A secret's error: the key and why, never the value.
fn bad(key: &str, reason: &str) -> ConfigError {
    invalid(key, "(hidden)", reason)
}

fn read_file(key: &str, path: &str) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| invalid(key, path, &format!("cannot read it: {e}")))
}

fn pem_certs(key: &str, pem: &[u8]) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let certs: Vec<_> = CertificateDer::pem_slice_iter(pem)
        .collect::<Result<_, _>>()
        .map_err(|e| bad(key, &format!("not PEM certificates: {e}")))?;
    if certs.is_empty() {
        return Err(bad(key, "holds no certificate"));
    }
    Ok(certs)
}

/// A PEM private key: PKCS#8, encrypted with `password` (`ssl.key.password`) or not.
fn pem_key(
    key: &str,
    pem: &[u8],
    password: Option<&str>,
) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let text = std::str::from_utf8(pem).map_err(|_| bad(key, "not PEM"))?;
    if text.contains("-----BEGIN ENCRYPTED PRIVATE KEY-----") {
        let password = password.ok_or_else(|| {
            bad(
                key,
                "the private key is encrypted: its password is ssl.key.password",
            )
        })?;
        let start = text
            .find("-----BEGIN ENCRYPTED PRIVATE KEY-----")
            .expect("found");
        let end = text[start..]
            .find("-----END ENCRYPTED PRIVATE KEY-----")
            .map(|e| start + e + "-----END ENCRYPTED PRIVATE KEY-----".len())
            .ok_or_else(|| bad(key, "an encrypted private key is not closed"))?;
        let (_, doc) = pkcs8::SecretDocument::from_pem(&text[start..end])
            .map_err(|e| bad(key, &format!("not a PKCS#8 key: {e}")))?;
        let encrypted = pkcs8::EncryptedPrivateKeyInfo::try_from(doc.as_bytes())
            .map_err(|e| bad(key, &format!("not an encrypted PKCS#8 key: {e}")))?;
        let plain = encrypted
            .decrypt(password)
            .map_err(|_| bad(key, "cannot decrypt the private key with ssl.key.password"))?;
        return Ok(PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(
            plain.as_bytes().to_vec(),
        )));
    }
    PrivateKeyDer::from_pem_slice(pem).map_err(|e| bad(key, &format!("no PEM private key: {e}")))
}

/// The key store: (certificate chain, private key).
fn key_store(
    k: &Keys,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), ConfigError> {
    let kind = k
        .value("ssl.keystore.type")
        .unwrap_or("JKS")
        .to_ascii_uppercase();
    let key_password = k.value("ssl.key.password");
    if let (Some((chain_key, chain)), Some((key_key, key))) = (
        k.get("ssl.keystore.certificate.chain"),
        k.get("ssl.keystore.key"),
    ) {
        if kind != "PEM" {
            return Err(bad(
                &chain_key,
                "inline certificates need ssl.keystore.type=PEM",
            ));
        }
        return Ok((
            pem_certs(&chain_key, chain.as_bytes())?,
            pem_key(&key_key, key.as_bytes(), key_password)?,
        ));
    }
    let (location_key, location) = k
        .get("ssl.keystore.location")
        .filter(|(_, v)| !v.trim().is_empty())
        .ok_or_else(|| {
            invalid(
                &format!("{}ssl.keystore.location", k.prefix),
                "",
                "a TLS listener needs a key store (ssl.keystore.location, or ssl.keystore.certificate.chain and ssl.keystore.key)",
            )
        })?;
    let data = read_file(&location_key, location)?;
    match kind.as_str() {
        "PEM" => Ok((
            pem_certs(&location_key, &data)?,
            pem_key(&location_key, &data, key_password)?,
        )),
        "PKCS12" => {
            let password = k.value("ssl.keystore.password").unwrap_or("");
            let store = p12_keystore::KeyStore::from_pkcs12(
                &data,
                password,
                p12_keystore::Pkcs12ImportPolicy::Strict,
            )
            .map_err(|e| bad(&location_key, &format!("cannot open the PKCS12 key store (ssl.keystore.password): {e}")))?;
            let (_, chain) = store
                .private_key_chain()
                .ok_or_else(|| bad(&location_key, "the PKCS12 key store holds no private key with its certificates"))?;
            Ok((
                chain
                    .certs()
                    .iter()
                    .map(|c| CertificateDer::from(c.as_der().to_vec()))
                    .collect(),
                PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(chain.key().as_der().to_vec())),
            ))
        }
        other => Err(invalid(
            "ssl.keystore.type",
            other,
            "gregor reads PEM and PKCS12 key stores (convert a JKS one with keytool -importkeystore -deststoretype PKCS12)",
        )),
    }
}

/// The trust store's certificates, if one is configured.
fn trust_store(k: &Keys) -> Result<Option<RootCertStore>, ConfigError> {
    let kind = k
        .value("ssl.truststore.type")
        .unwrap_or("JKS")
        .to_ascii_uppercase();
    let certs = if let Some((key, pem)) = k.get("ssl.truststore.certificates") {
        pem_certs(&key, pem.as_bytes())?
    } else if let Some((key, location)) = k
        .get("ssl.truststore.location")
        .filter(|(_, v)| !v.trim().is_empty())
    {
        let data = read_file(&key, location)?;
        match kind.as_str() {
            "PEM" => pem_certs(&key, &data)?,
            "PKCS12" => {
                let password = k.value("ssl.truststore.password").unwrap_or("");
                let store = p12_keystore::KeyStore::from_pkcs12(
                    &data,
                    password,
                    p12_keystore::Pkcs12ImportPolicy::Relaxed,
                )
                .map_err(|e| bad(&key, &format!("cannot open the PKCS12 trust store (ssl.truststore.password): {e}")))?;
                store
                    .entries()
                    .filter_map(|(_, e)| match e {
                        p12_keystore::KeyStoreEntry::Certificate(c) => {
                            Some(CertificateDer::from(c.as_der().to_vec()))
                        }
                        _ => None,
                    })
                    .collect()
            }
            other => {
                return Err(invalid(
                    "ssl.truststore.type",
                    other,
                    "gregor reads PEM and PKCS12 trust stores (convert a JKS one with keytool -importkeystore -deststoretype PKCS12)",
                ))
            }
        }
    } else {
        return Ok(None);
    };
    let mut roots = RootCertStore::empty();
    for c in certs {
        roots.add(c).map_err(|e| {
            bad(
                "ssl.truststore.location",
                &format!("a certificate is not usable: {e}"),
            )
        })?;
    }
    Ok(Some(roots))
}

/// `ssl.cipher.suites` (IANA names, as Java's) as the provider's suites; all when unset.
fn cipher_suites(
    k: &Keys,
    provider: &CryptoProvider,
) -> Result<Vec<rustls::SupportedCipherSuite>, ConfigError> {
    let Some((key, list)) = k
        .get("ssl.cipher.suites")
        .filter(|(_, v)| !v.trim().is_empty())
    else {
        return Ok(provider.cipher_suites.clone());
    };
    let mut out = Vec::new();
    for name in list.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let found = provider.cipher_suites.iter().find(|s| {
            let ours = format!("{:?}", s.suite());
            ours == name || ours.replacen("TLS13_", "TLS_", 1) == name
        });
        match found {
            Some(s) => out.push(*s),
            None => {
                tracing::warn!(key = %key, suite = name, "cipher suite not available in gregor's TLS; ignored")
            }
        }
    }
    if out.is_empty() {
        return Err(invalid(
            &key,
            list,
            "none of these cipher suites is available",
        ));
    }
    Ok(out)
}

type Versions = Vec<&'static rustls::SupportedProtocolVersion>;

/// The cipher suites and protocol versions the keys allow (and the versions' key value).
fn provider_and_versions<'a>(
    k: &'a Keys,
) -> Result<(Arc<CryptoProvider>, &'a str, Versions), ConfigError> {
    let base = rustls::crypto::ring::default_provider();
    let provider = Arc::new(CryptoProvider {
        cipher_suites: cipher_suites(k, &base)?,
        ..base
    });
    let protocols = k
        .value("ssl.enabled.protocols")
        .unwrap_or("TLSv1.2,TLSv1.3");
    let mut versions = Vec::new();
    for p in protocols.split(',').map(str::trim) {
        match p {
            "TLSv1.3" => versions.push(&rustls::version::TLS13),
            "TLSv1.2" => versions.push(&rustls::version::TLS12),
            _ => tracing::warn!(
                protocol = p,
                "TLS protocol not supported by gregor (TLSv1.2 and TLSv1.3 are); ignored"
            ),
        }
    }
    if versions.is_empty() {
        return Err(invalid(
            "ssl.enabled.protocols",
            protocols,
            "enables neither TLSv1.2 nor TLSv1.3",
        ));
    }
    Ok((provider, protocols, versions))
}

/// How a node connects to the other nodes' TLS controller listeners: the listener's trust store
/// checks their certificates (and that they name the host connected to), its key store is this
/// node's client certificate.
pub fn connector(
    raw: &BTreeMap<String, String>,
    listener: &str,
) -> Result<tokio_rustls::TlsConnector, ConfigError> {
    let k = Keys {
        raw,
        prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
    };
    let (chain, key) = key_store(&k)?;
    let (provider, protocols, versions) = provider_and_versions(&k)?;
    let roots = trust_store(&k)?.ok_or_else(|| {
        bad(
            "ssl.truststore.location",
            "a TLS controller listener needs a trust store: nodes check each other's certificates",
        )
    })?;
    let config = rustls::ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(&versions)
        .map_err(|e| invalid("ssl.enabled.protocols", protocols, &e.to_string()))?
        .with_root_certificates(roots)
        .with_client_auth_cert(chain, key)
        .map_err(|e| {
            bad(
                "ssl.keystore.location",
                &format!("the key does not go with the certificate: {e}"),
            )
        })?;
    Ok(tokio_rustls::TlsConnector::from(Arc::new(config)))
}

impl Tls {
    /// The TLS of listener `listener` (upper-case name) from the raw keys.
    pub fn load(raw: &BTreeMap<String, String>, listener: &str) -> Result<Tls, ConfigError> {
        let k = Keys {
            raw,
            prefix: format!("listener.name.{}.", listener.to_ascii_lowercase()),
        };
        let (chain, key) = key_store(&k)?;
        let (provider, protocols, versions) = provider_and_versions(&k)?;
        let client_auth = k
            .value("ssl.client.auth")
            .unwrap_or("none")
            .to_ascii_lowercase();
        let builder = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&versions)
            .map_err(|e| invalid("ssl.enabled.protocols", protocols, &e.to_string()))?;
        let builder = match client_auth.as_str() {
            "none" => builder.with_no_client_auth(),
            "required" | "requested" => {
                let roots = trust_store(&k)?.ok_or_else(|| {
                    invalid(
                        "ssl.client.auth",
                        &client_auth,
                        "client certificates need a trust store (ssl.truststore.location or ssl.truststore.certificates)",
                    )
                })?;
                let verifier =
                    WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider);
                let verifier = if client_auth == "requested" {
                    verifier.allow_unauthenticated()
                } else {
                    verifier
                };
                builder.with_client_cert_verifier(
                    verifier
                        .build()
                        .map_err(|e| invalid("ssl.client.auth", &client_auth, &e.to_string()))?,
                )
            }
            other => {
                return Err(invalid(
                    "ssl.client.auth",
                    other,
                    "expected none, requested or required",
                ))
            }
        };
        let config = builder.with_single_cert(chain, key).map_err(|e| {
            bad(
                "ssl.keystore.location",
                &format!("the key does not go with the certificate: {e}"),
            )
        })?;
        let principals = match k.get("ssl.principal.mapping.rules") {
            None => super::principal::Mapper::default(),
            Some((key, rules)) => {
                super::principal::Mapper::parse(rules).map_err(|e| invalid(&key, rules, &e))?
            }
        };
        Ok(Tls {
            acceptor: tokio_rustls::TlsAcceptor::from(Arc::new(config)),
            client_auth,
            principals,
        })
    }
}
