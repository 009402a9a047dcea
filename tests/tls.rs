//! TLS listeners (SSL, SASL_SSL) with Kafka's `ssl.*` keys: PEM files, inline PEM, encrypted keys,
//! PKCS12; client certificates required or not; what a plaintext client, an untrusted client and
//! a wrong key password get. Records read back through TLS (which cannot use sendfile) are exact.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};
use common::TestBroker;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::{Decodable, Encodable, StrBytes};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// Salt and IV for encrypting a test key (not a secret).
struct TestRng(u64);

impl pkcs8::rand_core::RngCore for TestRng {
    fn next_u32(&mut self) -> u32 {
        self.next_u64() as u32
    }
    fn next_u64(&mut self) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        self.0
    }
    fn fill_bytes(&mut self, dest: &mut [u8]) {
        for b in dest {
            *b = (self.next_u64() >> 33) as u8;
        }
    }
    fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), pkcs8::rand_core::Error> {
        self.fill_bytes(dest);
        Ok(())
    }
}

impl pkcs8::rand_core::CryptoRng for TestRng {}

/// A certificate authority and what it signs.
struct Ca(CertifiedIssuer<'static, KeyPair>);

impl Ca {
    fn new(name: &str) -> Ca {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(DnType::CommonName, name);
        Ca(CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap())
    }

    fn pem(&self) -> String {
        self.0.pem()
    }

    /// (certificate PEM, PKCS#8 key PEM) for `names` (DNS names or IP addresses).
    fn sign(&self, cn: &str, names: &[&str]) -> (String, String) {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        params.distinguished_name.push(DnType::CommonName, cn);
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.0).unwrap();
        (cert.pem(), key.serialize_pem())
    }
}

async fn tls_client(
    addr: SocketAddr,
    trusted: &str,
    identity: Option<&(String, String)>,
) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
    let mut roots = RootCertStore::empty();
    for c in CertificateDer::pem_slice_iter(trusted.as_bytes()) {
        roots.add(c.unwrap()).unwrap();
    }
    let builder = ClientConfig::builder_with_provider(Arc::new(
        tokio_rustls::rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots);
    let config = match identity {
        Some((cert, key)) => builder
            .with_client_auth_cert(
                CertificateDer::pem_slice_iter(cert.as_bytes())
                    .map(Result::unwrap)
                    .collect(),
                PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap(),
            )
            .unwrap(),
        None => builder.with_no_client_auth(),
    };
    let tcp = TcpStream::connect(addr).await?;
    let mut tls = tokio_rustls::TlsConnector::from(Arc::new(config))
        .connect(ServerName::try_from("localhost").unwrap(), tcp)
        .await?;
    // TLS 1.3 reports a refused client certificate only at the first read: make it happen here.
    let (_, frame) = frame(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    tls.write_all(&frame).await?;
    let mut len = [0u8; 4];
    tls.read_exact(&mut len).await?;
    let mut rest = vec![0u8; i32::from_be_bytes(len) as usize];
    tls.read_exact(&mut rest).await?;
    Ok(tls)
}

fn frame<T: Encodable>(api: ApiKey, version: i16, body: &T) -> (i32, Bytes) {
    let mut header = RequestHeader::default();
    header.request_api_key = api as i16;
    header.request_api_version = version;
    header.correlation_id = 7;
    let mut buf = BytesMut::new();
    buf.put_i32(0);
    header
        .encode(&mut buf, api.request_header_version(version))
        .unwrap();
    body.encode(&mut buf, version).unwrap();
    let len = (buf.len() - 4) as i32;
    buf[..4].copy_from_slice(&len.to_be_bytes());
    (7, buf.freeze())
}

async fn request<S, Req, Resp>(s: &mut S, api: ApiKey, version: i16, body: &Req) -> Resp
where
    S: AsyncRead + AsyncWrite + Unpin,
    Req: Encodable,
    Resp: Decodable,
{
    let (corr, f) = frame(api, version, body);
    s.write_all(&f).await.unwrap();
    let mut len = [0u8; 4];
    s.read_exact(&mut len).await.unwrap();
    let mut rest = vec![0u8; i32::from_be_bytes(len) as usize];
    s.read_exact(&mut rest).await.unwrap();
    common::decode_response(api, version, corr, &mut Bytes::from(rest))
}

/// Creates a topic, writes `values` and reads them back, all through `s`.
async fn round_trip<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S, topic: &str, values: &[&[u8]]) {
    let r: CreateTopicsResponse =
        request(s, ApiKey::CreateTopics, 7, &common::create_req(topic, 1)).await;
    assert_eq!(r.topics[0].error_code, 0);
    let produce = common::produce_req(topic, 0, common::batch(values, None), -1);
    let r: ProduceResponse = request(s, ApiKey::Produce, 9, &produce).await;
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    let fetch = common::fetch_req(topic, 0, 0, 0, 1);
    let r: FetchResponse = request(s, ApiKey::Fetch, 12, &fetch).await;
    let p = &r.responses[0].partitions[0];
    assert_eq!(p.error_code, 0);
    let got: Vec<Vec<u8>> = common::store::decode(p.records.as_ref().unwrap())
        .into_iter()
        .map(|r| r.2.unwrap_or_default())
        .collect();
    assert_eq!(got, values.iter().map(|v| v.to_vec()).collect::<Vec<_>>());
}

/// A TLS broker whose key store is a PEM file (key and chain), as Kafka's `ssl.keystore.type=PEM`.
async fn tls_broker(ca: &Ca, files: &tempfile::TempDir, extra: &[(&str, &str)]) -> TestBroker {
    let (cert, key) = ca.sign("localhost", &["localhost", "127.0.0.1"]);
    let store = files.path().join("server.pem");
    std::fs::write(&store, format!("{key}{cert}")).unwrap();
    let store = store.display().to_string();
    let mut overrides = vec![
        ("listeners", "SSL://{addr}"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.location", store.as_str()),
    ];
    overrides.extend_from_slice(extra);
    TestBroker::start(&overrides).await
}

#[tokio::test]
async fn records_go_through_tls_exactly_and_plaintext_clients_are_refused() {
    let ca = Ca::new("gregor-test-ca");
    let files = tempfile::tempdir().unwrap();
    let b = tls_broker(&ca, &files, &[]).await;
    let mut s = tls_client(b.addr, &ca.pem(), None).await.unwrap();
    // Larger than the piece a file region is copied in, so fetches copy it in several.
    let big = vec![b'x'; 700_000];
    round_trip(&mut s, "over-tls", &[b"small", &big, b"last"]).await;
    // A plaintext client's request is not a TLS handshake: closed, nothing answered.
    let mut plain = b.client().await;
    let (_, f) = frame(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
    plain.send_raw(&f).await;
    assert!(plain.read_frame().await.is_none());
    // A client that does not trust the broker's CA stops at the handshake.
    let other = Ca::new("another-ca");
    assert!(tls_client(b.addr, &other.pem(), None).await.is_err());
    // The TLS connection is still served.
    let m: MetadataResponse =
        request(&mut s, ApiKey::Metadata, 12, &MetadataRequest::default()).await;
    assert_eq!(m.brokers.len(), 1);
    b.stop().await;
}

#[tokio::test]
async fn client_certificates_required_are_checked_against_the_trust_store() {
    let ca = Ca::new("gregor-test-ca");
    let files = tempfile::tempdir().unwrap();
    let trust = files.path().join("trust.pem");
    std::fs::write(&trust, ca.pem()).unwrap();
    let trust = trust.display().to_string();
    let b = tls_broker(
        &ca,
        &files,
        &[
            ("ssl.client.auth", "required"),
            ("ssl.truststore.type", "PEM"),
            ("ssl.truststore.location", trust.as_str()),
        ],
    )
    .await;
    assert!(
        tls_client(b.addr, &ca.pem(), None).await.is_err(),
        "no certificate"
    );
    let stranger = Ca::new("stranger").sign("mallory", &["localhost"]);
    assert!(tls_client(b.addr, &ca.pem(), Some(&stranger))
        .await
        .is_err());
    let alice = ca.sign("alice", &["localhost"]);
    let mut s = tls_client(b.addr, &ca.pem(), Some(&alice)).await.unwrap();
    round_trip(&mut s, "mtls", &[b"from alice"]).await;
    b.stop().await;
}

#[tokio::test]
async fn inline_pem_with_an_encrypted_key_and_sasl_over_tls() {
    let ca = Ca::new("gregor-test-ca");
    let (cert, key) = ca.sign("localhost", &["localhost", "127.0.0.1"]);
    // The key encrypted with PBES2 (what `openssl pkcs8 -topk8 -v2 aes-256-cbc` writes).
    let der = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let info = pkcs8::PrivateKeyInfo::try_from(der.secret_der()).unwrap();
    let encrypted = info
        .encrypt(TestRng(7), b"key-secret")
        .unwrap()
        .to_pem("ENCRYPTED PRIVATE KEY", pkcs8::LineEnding::LF)
        .unwrap();
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;
    let b = TestBroker::start(&[
        ("listeners", "SASL_SSL://{addr}"),
        ("ssl.keystore.type", "PEM"),
        ("ssl.keystore.certificate.chain", cert.as_str()),
        ("ssl.keystore.key", encrypted.as_str()),
        ("ssl.key.password", "key-secret"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_ssl.plain.sasl.jaas.config", jaas),
    ])
    .await;
    let mut s = tls_client(b.addr, &ca.pem(), None).await.unwrap();
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let r: SaslHandshakeResponse = request(&mut s, ApiKey::SaslHandshake, 1, &hs).await;
    assert_eq!(r.error_code, 0);
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = Bytes::from_static(b"\0alice\0alice-secret");
    let r: SaslAuthenticateResponse = request(&mut s, ApiKey::SaslAuthenticate, 2, &auth).await;
    assert_eq!(r.error_code, 0);
    round_trip(&mut s, "sasl-ssl", &[b"authenticated and encrypted"]).await;
    b.stop().await;
}

#[test]
fn a_pkcs12_key_store_serves_and_a_wrong_password_stops_start_up_without_showing_it() {
    let ca = Ca::new("gregor-test-ca");
    let (cert, key) = ca.sign("localhost", &["localhost", "127.0.0.1"]);
    let key_der = PrivateKeyDer::from_pem_slice(key.as_bytes()).unwrap();
    let chain = p12_keystore::PrivateKeyChain::new(
        b"1".to_vec(),
        p12_keystore::PrivateKey::from_der(key_der.secret_der()).unwrap(),
        [p12_keystore::Certificate::from_der(
            CertificateDer::from_pem_slice(cert.as_bytes())
                .unwrap()
                .as_ref(),
        )
        .unwrap()],
    );
    let mut store = p12_keystore::KeyStore::new();
    store.add_entry(
        "broker",
        p12_keystore::KeyStoreEntry::PrivateKeyChain(chain),
    );
    let files = tempfile::tempdir().unwrap();
    let path = files.path().join("broker.p12");
    std::fs::write(&path, store.writer("store-secret").write().unwrap()).unwrap();
    let load = |password: &str| {
        let raw: std::collections::BTreeMap<String, String> = [
            ("listeners", "SSL://127.0.0.1:0".to_string()),
            ("ssl.keystore.type", "PKCS12".into()),
            ("ssl.keystore.location", path.display().to_string()),
            ("ssl.keystore.password", password.into()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        gregor::Config::from_map(raw)
    };
    let config = load("store-secret").unwrap();
    assert!(config.listeners[0].tls.is_some());
    let e = load("wrong-guess").unwrap_err().to_string();
    assert!(
        e.contains("ssl.keystore.location") && !e.contains("wrong-guess"),
        "{e}"
    );
}
