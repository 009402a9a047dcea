//! SASL on a SASL_PLAINTEXT listener, frame by frame, as Kafka's SaslServerAuthenticator answers:
//! before authenticating only ApiVersions and the exchange are served, a failure is answered and
//! the connection closed, SCRAM credentials made with AlterUserScramCredentials survive a restart.

mod common;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use bytes::{BufMut, Bytes, BytesMut};
use common::{Client, TestBroker};
use hmac::{Hmac, Mac};
use kafka_protocol::messages::alter_user_scram_credentials_request::ScramCredentialUpsertion;
use kafka_protocol::messages::*;
use kafka_protocol::protocol::StrBytes;
use sha2::{Digest, Sha512};

const JAAS: &str = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret";"#;

async fn sasl_broker() -> TestBroker {
    TestBroker::start(&[
        ("listeners", "SASL_PLAINTEXT://{addr}"),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ("connection.failed.authentication.delay.ms", "0"),
    ])
    .await
}

async fn handshake(c: &mut Client, version: i16, mechanism: &str) -> SaslHandshakeResponse {
    let mut req = SaslHandshakeRequest::default();
    req.mechanism = StrBytes::from_string(mechanism.to_string());
    c.request(ApiKey::SaslHandshake, version, &req).await
}

async fn authenticate(c: &mut Client, token: &[u8]) -> SaslAuthenticateResponse {
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::copy_from_slice(token);
    c.request(ApiKey::SaslAuthenticate, 2, &req).await
}

async fn metadata_answered(c: &mut Client) -> bool {
    let (_, frame) = c.frame(ApiKey::Metadata, 12, &MetadataRequest::default());
    c.send_raw(&frame).await;
    c.read_frame().await.is_some()
}

async fn plain_login(c: &mut Client, password: &str) -> SaslAuthenticateResponse {
    assert_eq!(handshake(c, 1, "PLAIN").await.error_code, 0);
    authenticate(c, format!("\0alice\0{password}").as_bytes()).await
}

#[tokio::test]
async fn only_api_versions_and_the_exchange_are_served_before_authenticating() {
    let b = sasl_broker().await;
    let mut c = b.client().await;
    let v: ApiVersionsResponse = c
        .request(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default())
        .await;
    assert_eq!(v.error_code, 0);
    assert!(v
        .api_keys
        .iter()
        .any(|k| k.api_key == 36 && k.max_version == 2));
    assert!(!metadata_answered(&mut c).await, "Metadata before SASL");
    // ApiVersions once, as Kafka: a second one closes the connection.
    let mut c = b.client().await;
    for answered in [true, false] {
        let (_, f) = c.frame(ApiKey::ApiVersions, 2, &ApiVersionsRequest::default());
        c.send_raw(&f).await;
        assert_eq!(c.read_frame().await.is_some(), answered);
    }
    // SaslAuthenticate before a handshake closes too.
    let mut c = b.client().await;
    let mut req = SaslAuthenticateRequest::default();
    req.auth_bytes = Bytes::from_static(b"\0alice\0alice-secret");
    let (_, frame) = c.frame(ApiKey::SaslAuthenticate, 2, &req);
    c.send_raw(&frame).await;
    assert!(c.read_frame().await.is_none());
    b.stop().await;
}

#[tokio::test]
async fn a_mechanism_not_enabled_is_answered_with_the_enabled_ones_then_closed() {
    let b = sasl_broker().await;
    let mut c = b.client().await;
    let r = handshake(&mut c, 1, "GSSAPI").await;
    assert_eq!(r.error_code, 33, "UNSUPPORTED_SASL_MECHANISM");
    let names: Vec<&str> = r.mechanisms.iter().map(|m| m.as_str()).collect();
    assert_eq!(names, ["PLAIN", "SCRAM-SHA-512"]);
    assert!(c.closed_by_broker().await);
    b.stop().await;
}

#[tokio::test]
async fn plain_authenticates_and_the_exchange_is_then_refused_as_kafka_refuses_it() {
    let b = sasl_broker().await;
    let mut c = b.client().await;
    let r = plain_login(&mut c, "alice-secret").await;
    assert_eq!(
        (r.error_code, r.error_message.as_deref(), r.auth_bytes.len()),
        (0, Some(""), 0)
    );
    assert!(metadata_answered(&mut c).await);
    assert_eq!(handshake(&mut c, 1, "PLAIN").await.error_code, 34);
    let r = authenticate(&mut c, b"\0alice\0alice-secret").await;
    assert_eq!(r.error_code, 34, "ILLEGAL_SASL_STATE");
    assert_eq!(
        r.error_message.as_deref(),
        Some("SaslAuthenticate request received after successful authentication")
    );
    assert!(metadata_answered(&mut c).await);
    b.stop().await;
}

#[tokio::test]
async fn a_wrong_password_gets_kafkas_message_and_the_connection_is_closed() {
    let b = sasl_broker().await;
    let mut c = b.client().await;
    let r = plain_login(&mut c, "guess").await;
    assert_eq!(r.error_code, 58, "SASL_AUTHENTICATION_FAILED");
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed: Invalid username or password")
    );
    assert!(c.closed_by_broker().await);
    b.stop().await;
}

#[tokio::test]
async fn a_v0_handshake_takes_bare_tokens() {
    let b = sasl_broker().await;
    let mut c = b.client().await;
    assert_eq!(handshake(&mut c, 0, "PLAIN").await.error_code, 0);
    let token = b"\0alice\0alice-secret";
    let mut frame = BytesMut::new();
    frame.put_i32(token.len() as i32);
    frame.put_slice(token);
    c.send_raw(&frame).await;
    assert_eq!(c.read_frame().await.as_deref(), Some(&b""[..]));
    assert!(metadata_answered(&mut c).await);
    // A wrong bare token closes without an answer.
    let mut c = b.client().await;
    assert_eq!(handshake(&mut c, 0, "PLAIN").await.error_code, 0);
    c.send_raw(&[0, 0, 0, 7, 0, b'a', 0, b'n', b'o', b'p', b'e'])
        .await;
    assert!(c.read_frame().await.is_none());
    b.stop().await;
}

#[tokio::test]
async fn frames_beyond_sasl_server_max_receive_size_close_an_unauthenticated_connection() {
    let b = sasl_broker().await;
    let mut c = b.client().await;
    let mut frame = BytesMut::new();
    frame.put_i32(600_000);
    c.send_raw(&frame).await;
    assert!(c.closed_by_broker().await);
    // Once authenticated, the same size is an ordinary request.
    let mut c = b.client().await;
    assert_eq!(plain_login(&mut c, "alice-secret").await.error_code, 0);
    common::create_topic(&mut c, "big", 1).await;
    let value = vec![b'x'; 600_000];
    let (err, base) = common::produce(&mut c, "big", 0, common::batch(&[&value], None)).await;
    assert_eq!((err, base), (0, 0));
    b.stop().await;
}

/// A SCRAM-SHA-512 client (RFC 5802), independent of the broker's code: the proof for `password`,
/// checking the server's signature.
async fn scram_login(c: &mut Client, user: &str, password: &str) -> SaslAuthenticateResponse {
    type H = Hmac<Sha512>;
    let mac = |key: &[u8], data: &[u8]| {
        let mut m = H::new_from_slice(key).unwrap();
        m.update(data);
        m.finalize().into_bytes().to_vec()
    };
    assert_eq!(handshake(c, 1, "SCRAM-SHA-512").await.error_code, 0);
    let bare = format!("n={user},r=clientnonce123");
    let first = authenticate(c, format!("n,,{bare}").as_bytes()).await;
    if first.error_code != 0 {
        return first;
    }
    let server_first = String::from_utf8(first.auth_bytes.to_vec()).unwrap();
    let f: Vec<&str> = server_first.split(',').collect();
    let (nonce, salt, i) = (
        &f[0][2..],
        B64.decode(&f[1][2..]).unwrap(),
        f[2][2..].parse().unwrap(),
    );
    assert!(nonce.starts_with("clientnonce123") && nonce.len() > 14);
    let salted = pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), &salt, i);
    let client_key = mac(&salted, b"Client Key");
    let stored = Sha512::digest(&client_key);
    let without_proof = format!("c=biws,r={nonce}");
    let auth = format!("{bare},{server_first},{without_proof}");
    let proof: Vec<u8> = client_key
        .iter()
        .zip(mac(&stored, auth.as_bytes()))
        .map(|(a, b)| a ^ b)
        .collect();
    let last = authenticate(
        c,
        format!("{without_proof},p={}", B64.encode(proof)).as_bytes(),
    )
    .await;
    if last.error_code == 0 {
        let signature = mac(&mac(&salted, b"Server Key"), auth.as_bytes());
        assert_eq!(last.auth_bytes, format!("v={}", B64.encode(signature)));
    }
    last
}

#[tokio::test]
async fn scram_credentials_made_with_alter_user_scram_credentials_log_in_and_survive_a_restart() {
    let b = sasl_broker().await;
    let mut admin = b.client().await;
    assert_eq!(plain_login(&mut admin, "alice-secret").await.error_code, 0);
    let salt = b"a-salt-of-16-byt";
    let mut up = ScramCredentialUpsertion::default();
    up.name = StrBytes::from_static_str("carol");
    up.mechanism = 2;
    up.iterations = 4096;
    up.salt = Bytes::from_static(salt);
    up.salted_password = Bytes::copy_from_slice(&pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(
        b"carol-secret",
        salt,
        4096,
    ));
    let mut req = AlterUserScramCredentialsRequest::default();
    req.upsertions = vec![up];
    let r: AlterUserScramCredentialsResponse = admin
        .request(ApiKey::AlterUserScramCredentials, 0, &req)
        .await;
    assert_eq!(r.results[0].error_code, 0);
    let mut c = b.client().await;
    let r = scram_login(&mut c, "carol", "carol-secret").await;
    assert_eq!(r.error_code, 0, "{:?}", r.error_message);
    assert!(metadata_answered(&mut c).await);
    let mut c = b.client().await;
    let r = scram_login(&mut c, "carol", "wrong").await;
    assert_eq!(r.error_code, 58);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512")
    );
    // An unknown user fails at the first message, with the same message.
    let mut c = b.client().await;
    let r = scram_login(&mut c, "nobody", "carol-secret").await;
    assert_eq!(
        (r.error_code, r.error_message.as_deref()),
        (58, Some("Authentication failed during authentication due to invalid credentials with SASL mechanism SCRAM-SHA-512"))
    );
    assert!(r.auth_bytes.is_empty(), "no challenge for an unknown user");
    let dir = b.stop().await;
    let b = TestBroker::start_in(
        dir,
        &[
            ("listeners", "SASL_PLAINTEXT://{addr}"),
            ("sasl.enabled.mechanisms", "SCRAM-SHA-512"),
        ],
    )
    .await;
    let mut c = b.client().await;
    assert_eq!(
        scram_login(&mut c, "carol", "carol-secret")
            .await
            .error_code,
        0
    );
    let d: DescribeUserScramCredentialsResponse = c
        .request(
            ApiKey::DescribeUserScramCredentials,
            0,
            &DescribeUserScramCredentialsRequest::default(),
        )
        .await;
    // Kafka answers empty messages, not null, where there is no error (checked against its bytes).
    assert_eq!((d.error_code, d.error_message.as_deref()), (0, Some("")));
    assert_eq!(d.results[0].error_message.as_deref(), Some(""));
    let got: Vec<_> = d
        .results
        .iter()
        .map(|r| {
            (
                r.user.to_string(),
                r.credential_infos
                    .iter()
                    .map(|i| (i.mechanism, i.iterations))
                    .collect::<Vec<_>>(),
            )
        })
        .collect();
    assert_eq!(got, vec![("carol".to_string(), vec![(2, 4096)])]);
    b.stop().await;
}

#[tokio::test]
async fn sasl_requests_on_a_plaintext_listener_are_in_an_illegal_state() {
    let b = TestBroker::start(&[]).await;
    let mut c = b.client().await;
    assert_eq!(handshake(&mut c, 1, "PLAIN").await.error_code, 34);
    assert!(metadata_answered(&mut c).await);
    b.stop().await;
}

/// KIP-368: with `connections.max.reauth.ms`, SaslAuthenticate tells the session's lifetime, a
/// client re-authenticates on the same connection with the same mechanism and principal, and a
/// connection whose session ended is closed at its next request.
#[tokio::test]
async fn sessions_end_unless_the_client_re_authenticates_as_itself() {
    let jaas = r#"org.apache.kafka.common.security.plain.PlainLoginModule required user_alice="alice-secret" user_bob="bob-secret";"#;
    let b = TestBroker::start(&[
        ("listeners", "SASL_PLAINTEXT://{addr}"),
        ("sasl.enabled.mechanisms", "PLAIN,SCRAM-SHA-512"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", jaas),
        ("connection.failed.authentication.delay.ms", "0"),
        ("connections.max.reauth.ms", "1500"),
    ])
    .await;
    let mut c = b.client().await;
    let r = plain_login(&mut c, "alice-secret").await;
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1500));
    assert!(metadata_answered(&mut c).await);
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    // Re-authenticating renews the session.
    let r = plain_login(&mut c, "alice-secret").await;
    assert_eq!((r.error_code, r.session_lifetime_ms), (0, 1500));
    tokio::time::sleep(std::time::Duration::from_millis(1100)).await;
    assert!(
        metadata_answered(&mut c).await,
        "within the renewed session"
    );
    tokio::time::sleep(std::time::Duration::from_millis(600)).await;
    assert!(!metadata_answered(&mut c).await, "after the session ended");
    // Another principal, or another mechanism, fails the re-authentication.
    let mut c = b.client().await;
    assert_eq!(plain_login(&mut c, "alice-secret").await.error_code, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(handshake(&mut c, 1, "PLAIN").await.error_code, 0);
    let r = authenticate(&mut c, b"\0bob\0bob-secret").await;
    assert_eq!(r.error_code, 58);
    assert_eq!(
        r.error_message.as_deref(),
        Some("Cannot change principals during re-authentication from User.alice: User.bob")
    );
    assert!(c.closed_by_broker().await);
    let mut c = b.client().await;
    assert_eq!(plain_login(&mut c, "alice-secret").await.error_code, 0);
    tokio::time::sleep(std::time::Duration::from_millis(1000)).await;
    assert_eq!(handshake(&mut c, 1, "SCRAM-SHA-512").await.error_code, 0);
    let r = authenticate(&mut c, b"n,,n=alice,r=abc").await;
    assert_eq!(
        (r.error_code, r.error_message.as_deref()),
        (58, Some("SASL mechanism 'SCRAM-SHA-512' requested by client is not supported for re-authentication of mechanism 'PLAIN'"))
    );
    b.stop().await;
}

/// From the attack on SASL: a request larger than `sasl.server.max.receive.size` sent in the same
/// write as the SaslAuthenticate that completes was read under the unauthenticated limit, and
/// the connection was closed. Kafka serves it.
#[tokio::test]
async fn a_large_request_right_behind_the_authentication_is_served() {
    let b = sasl_broker().await;
    let mut admin = b.client().await;
    assert_eq!(plain_login(&mut admin, "alice-secret").await.error_code, 0);
    common::create_topic(&mut admin, "behind", 1).await;
    let mut c = b.client().await;
    let mut hs = SaslHandshakeRequest::default();
    hs.mechanism = StrBytes::from_static_str("PLAIN");
    let mut auth = SaslAuthenticateRequest::default();
    auth.auth_bytes = Bytes::from_static(b"\0alice\0alice-secret");
    let value = vec![b'v'; 600_000];
    let produce = common::produce_req("behind", 0, common::batch(&[&value], None), -1);
    let mut all = BytesMut::new();
    all.extend_from_slice(&c.frame(ApiKey::SaslHandshake, 1, &hs).1);
    all.extend_from_slice(&c.frame(ApiKey::SaslAuthenticate, 2, &auth).1);
    let (corr, f) = c.frame(ApiKey::Produce, 9, &produce);
    all.extend_from_slice(&f);
    c.send_raw(&all).await;
    for _ in 0..2 {
        assert!(c.read_frame().await.is_some());
    }
    let mut answer = c.read_frame().await.expect("the produce is answered");
    let r: ProduceResponse = common::decode_response(ApiKey::Produce, 9, corr, &mut answer);
    assert_eq!(r.responses[0].partition_responses[0].error_code, 0);
    b.stop().await;
}

/// From the attack on SASL: unauthenticated clients announcing frames they never send took the
/// whole of `queued.max.request.bytes` (they are read whole before authenticating), and every
/// other client waited until the receive timeout closed them. They now have a budget of their
/// own.
#[tokio::test]
async fn unauthenticated_clients_cannot_make_authenticated_ones_wait() {
    let b = TestBroker::start(&[
        ("listeners", "SASL_PLAINTEXT://{addr}"),
        ("sasl.enabled.mechanisms", "PLAIN"),
        ("listener.name.sasl_plaintext.plain.sasl.jaas.config", JAAS),
        ("socket.request.max.bytes", "1048576"),
        ("queued.max.request.bytes", "8388608"),
    ])
    .await;
    let mut c = b.client().await;
    assert_eq!(plain_login(&mut c, "alice-secret").await.error_code, 0);
    let mut squatters = Vec::new();
    for _ in 0..20 {
        let mut s = b.client().await;
        // 16 frames of 4 + 524,284 bytes are exactly the 8 MiB budget.
        s.send_raw(&524_284i32.to_be_bytes()).await;
        squatters.push(s);
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let (_, f) = c.frame(ApiKey::Metadata, 12, &MetadataRequest::default());
    c.send_raw(&f).await;
    assert!(
        matches!(c.try_read_frame(3_000).await, Some(Some(_))),
        "an authenticated client waited behind unauthenticated ones"
    );
    drop(squatters);
    b.stop().await;
}
