//! The SASL exchange of one connection on a SASL listener, as Kafka's `SaslServerAuthenticator`:
//! before authenticating, a client may send ApiVersions, then SaslHandshake naming a mechanism the
//! listener enables, then that mechanism's tokens in SaslAuthenticate requests (or, after a v0
//! handshake, as bare length-prefixed tokens). Anything else closes the connection, and so does a
//! failed authentication, once its error is answered (after
//! `connection.failed.authentication.delay.ms`). Frames above `sasl.server.max.receive.size` are
//! refused by the connection's reader until the client is authenticated.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, RequestHeader, SaslAuthenticateRequest, SaslAuthenticateResponse,
    SaslHandshakeRequest, SaslHandshakeResponse,
};
use kafka_protocol::protocol::{Message, StrBytes};

use super::scram::{ScramServer, Step as ScramStep};
use super::{plain, Failure, Mechanism, SaslConfig};
use crate::broker::Broker;
use crate::codec;
use crate::condition::Condition;
use crate::config::Listener;
use crate::dispatch::{encode, Outcome};
use crate::wire::{Attached, Chunk};

/// Failed authentications: logged once, then counted.
static FAILED: Condition = Condition::new("failed authentications");

/// Kafka's UNSUPPORTED_SASL_MECHANISM, ILLEGAL_SASL_STATE and SASL_AUTHENTICATION_FAILED.
const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
pub const ILLEGAL_SASL_STATE: i16 = 34;
const SASL_AUTHENTICATION_FAILED: i16 = 58;

/// Kafka's authentication counters of a SASL listener, at zero before its first client.
pub fn register_metrics(listener: &str) {
    for name in [
        "kafka_server_socket_server_metrics_successful_authentication_total",
        "kafka_server_socket_server_metrics_failed_authentication_total",
        "kafka_server_socket_server_metrics_successful_reauthentication_total",
        "kafka_server_socket_server_metrics_expired_connections_killed_total",
    ] {
        metrics::counter!(name, "listener" => listener.to_string()).absolute(0);
    }
}

/// What the connection does with a frame.
pub enum Step {
    /// An ordinary request (ApiVersions before authentication, anything after): dispatch it.
    Dispatch(Bytes),
    /// Part of the exchange, answered here.
    Answer(Outcome),
}

enum Exchange {
    Plain,
    Scram(ScramServer),
    /// A re-authentication naming another mechanism than the first: fails at its token.
    BadMechanism(String),
}

/// Where the connection sends a frame.
pub enum Route {
    Authenticator,
    Dispatch,
    /// The session (`connections.max.reauth.ms`) ended and the client did not re-authenticate.
    Expired,
}

/// Kafka's shortest interval between two re-authentications of a connection.
const MIN_REAUTH_INTERVAL: Duration = Duration::from_secs(1);

enum State {
    /// Waiting for SaslHandshake; ApiVersions is allowed once (again after a version the broker
    /// answered UNSUPPORTED_VERSION), as Kafka allows it.
    Handshake { versions_seen: bool },
    /// The mechanism chosen; `raw` after a v0 handshake (tokens without Kafka headers).
    Authenticate { exchange: Exchange, raw: bool },
    /// Authenticated.
    Done,
}

/// One connection's authentication.
pub struct Authenticator {
    config: Arc<SaslConfig>,
    listener: Arc<Listener>,
    state: State,
    mechanism: Mechanism,
    /// The authenticated user, kept across re-authentications (which may not change it).
    user: Option<String>,
    /// When the session ends (`connections.max.reauth.ms`), once authenticated.
    session_end: Option<Instant>,
    /// When the last re-authentication began.
    reauth_began: Option<Instant>,
}

impl Authenticator {
    pub fn new(config: Arc<SaslConfig>, listener: Arc<Listener>) -> Authenticator {
        let mechanism = config.mechanisms[0];
        Authenticator {
            config,
            listener,
            state: State::Handshake {
                versions_seen: false,
            },
            mechanism,
            user: None,
            session_end: None,
            reauth_began: None,
        }
    }

    /// Where `frame` goes: to the exchange until authenticated, and again for a SaslHandshake
    /// that re-authenticates an expiring session (KIP-368); a session past its end gets nothing
    /// else.
    pub fn route(&mut self, frame: &[u8]) -> Route {
        if !self.done() {
            return Route::Authenticator;
        }
        let Some(end) = self.session_end else {
            return Route::Dispatch;
        };
        let now = Instant::now();
        let handshake = codec::peek_header(frame)
            .is_some_and(|(key, _, _)| key == ApiKey::SaslHandshake as i16);
        if handshake
            && self
                .reauth_began
                .is_none_or(|t| now.duration_since(t) >= MIN_REAUTH_INTERVAL)
        {
            self.reauth_began = Some(now);
            self.state = State::Handshake {
                versions_seen: false,
            };
            return Route::Authenticator;
        }
        if now >= end {
            metrics::counter!("kafka_server_socket_server_metrics_expired_connections_killed_total", "listener" => self.listener.name.clone()).increment(1);
            return Route::Expired;
        }
        Route::Dispatch
    }

    fn reauthenticating(&self) -> bool {
        self.user.is_some()
    }

    /// Whether the client has authenticated: every request is then dispatched.
    /// The authenticated user, once there is one.
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    pub fn done(&self) -> bool {
        matches!(self.state, State::Done)
    }

    /// The largest frame the client may send now.
    pub fn max_frame(&self, authenticated_max: usize) -> usize {
        if self.done() {
            authenticated_max
        } else {
            self.config.max_receive_size.min(authenticated_max)
        }
    }

    /// Takes a frame read before authentication completed.
    pub async fn take(&mut self, broker: &Arc<Broker>, frame: Bytes) -> Step {
        if let State::Authenticate { raw: true, .. } = self.state {
            return Step::Answer(self.raw_token(broker, &frame).await);
        }
        let Some((key, version, _)) = codec::peek_header(&frame) else {
            return Step::Answer(Outcome::Close(
                "a frame too short for a request header".into(),
            ));
        };
        let key = ApiKey::try_from(key).ok();
        match (&self.state, key) {
            (
                State::Handshake {
                    versions_seen: false,
                },
                Some(ApiKey::ApiVersions),
            ) => {
                let known = (0..=ApiVersionsRequest::VERSIONS.max).contains(&version);
                self.state = State::Handshake {
                    versions_seen: known,
                };
                Step::Dispatch(frame)
            }
            (State::Handshake { .. }, Some(ApiKey::SaslHandshake)) => {
                Step::Answer(self.handshake(frame).await)
            }
            (State::Authenticate { .. }, Some(ApiKey::SaslAuthenticate)) => {
                Step::Answer(self.authenticate(broker, frame).await)
            }
            (_, key) => Step::Answer(Outcome::Close(format!(
                "unexpected request {} during SASL {} on listener {}",
                key.map_or("of an unknown API", crate::dispatch::api_name),
                if matches!(self.state, State::Handshake { .. }) {
                    "handshake"
                } else {
                    "authentication"
                },
                self.listener.name
            ))),
        }
    }

    async fn handshake(&mut self, mut frame: Bytes) -> Outcome {
        let (header, request) = match decode::<SaslHandshakeRequest>(&mut frame, 0..=1) {
            Ok(d) => d,
            Err(reason) => return Outcome::Close(reason),
        };
        let mut response = SaslHandshakeResponse::default();
        response.mechanisms = self
            .config
            .mechanisms
            .iter()
            .map(|m| StrBytes::from_static_str(m.name()))
            .collect();
        let wanted = request.mechanism.as_str();
        let Some(&mechanism) = self.config.mechanisms.iter().find(|m| m.name() == wanted) else {
            response.error_code = UNSUPPORTED_SASL_MECHANISM;
            tokio::time::sleep(self.config.failure_delay).await;
            let reason = format!(
                "SASL mechanism {wanted:.64} is not enabled on listener {}",
                self.listener.name
            );
            return answer_then_close(ApiKey::SaslHandshake, &header, &response, reason);
        };
        let exchange = if self.reauthenticating() && mechanism != self.mechanism {
            Exchange::BadMechanism(format!(
                "SASL mechanism '{}' requested by client is not supported for re-authentication of mechanism '{}'",
                mechanism.name(),
                self.mechanism.name()
            ))
        } else {
            match mechanism {
                Mechanism::Plain => Exchange::Plain,
                Mechanism::Scram(m) => Exchange::Scram(ScramServer::new(m)),
            }
        };
        self.mechanism = mechanism;
        self.state = State::Authenticate {
            exchange,
            raw: header.request_api_version == 0,
        };
        encode(
            ApiKey::SaslHandshake,
            &header,
            &response,
            Attached::default(),
        )
    }

    async fn authenticate(&mut self, broker: &Arc<Broker>, mut frame: Bytes) -> Outcome {
        let (header, request) = match decode::<SaslAuthenticateRequest>(&mut frame, 0..=2) {
            Ok(d) => d,
            Err(reason) => return Outcome::Close(reason),
        };
        let mut response = SaslAuthenticateResponse::default();
        match self.evaluate(broker, &request.auth_bytes) {
            Ok(reply) => {
                // Kafka's answer carries an empty message (the codec's default), not null.
                response.auth_bytes = Bytes::from(reply);
                if self.done() {
                    response.session_lifetime_ms = self.config.reauth_ms(self.mechanism) as i64;
                }
                encode(
                    ApiKey::SaslAuthenticate,
                    &header,
                    &response,
                    Attached::default(),
                )
            }
            Err(failure) => {
                let message = self.failed(failure);
                tokio::time::sleep(self.config.failure_delay).await;
                response.error_code = SASL_AUTHENTICATION_FAILED;
                response.error_message = Some(StrBytes::from_string(message.clone()));
                answer_then_close(ApiKey::SaslAuthenticate, &header, &response, message)
            }
        }
    }

    /// A token after a v0 handshake: answered bare; a failure just closes, as Kafka does.
    async fn raw_token(&mut self, broker: &Arc<Broker>, token: &[u8]) -> Outcome {
        match self.evaluate(broker, token) {
            Ok(reply) => {
                let mut b = BytesMut::with_capacity(4 + reply.len());
                b.put_i32(reply.len() as i32);
                b.put_slice(&reply);
                Outcome::Respond(vec![Chunk::Memory(b.freeze())])
            }
            Err(failure) => {
                let message = self.failed(failure);
                tokio::time::sleep(self.config.failure_delay).await;
                Outcome::Close(message)
            }
        }
    }

    /// Feeds one token to the mechanism: its reply, the state moving to `Done` when complete.
    fn evaluate(&mut self, broker: &Arc<Broker>, token: &[u8]) -> Result<Vec<u8>, Failure> {
        let State::Authenticate { exchange, .. } = &mut self.state else {
            return Err(Failure::Generic);
        };
        let (reply, user) = match exchange {
            Exchange::Plain => (
                Vec::new(),
                Some(plain::authenticate(self.config.plain_users(), token)?),
            ),
            Exchange::Scram(server) => {
                let m = server.mechanism();
                match server.evaluate(token, |user| broker.credentials.get(user, m))? {
                    ScramStep::Challenge(c) => (c, None),
                    ScramStep::Complete(last, user) => (last, Some(user)),
                }
            }
            Exchange::BadMechanism(message) => return Err(Failure::Told(message.clone())),
        };
        if let Some(user) = user {
            if let Some(previous) = self.user.as_deref().filter(|p| *p != user) {
                return Err(Failure::Told(format!(
                    "Cannot change principals during re-authentication from User.{previous}: User.{user}"
                )));
            }
            let reauth_ms = self.config.reauth_ms(self.mechanism);
            self.session_end =
                (reauth_ms > 0).then(|| Instant::now() + Duration::from_millis(reauth_ms));
            metrics::counter!("kafka_server_socket_server_metrics_successful_authentication_total", "listener" => self.listener.name.clone()).increment(1);
            if self.reauthenticating() {
                metrics::counter!("kafka_server_socket_server_metrics_successful_reauthentication_total", "listener" => self.listener.name.clone()).increment(1);
            }
            tracing::debug!(principal = %format!("User:{user}"), mechanism = self.mechanism.name(), "authenticated");
            self.user = Some(user);
            self.state = State::Done;
        }
        Ok(reply)
    }

    /// Counts and logs a failure; Kafka's message for the client.
    fn failed(&mut self, failure: Failure) -> String {
        self.state = State::Handshake {
            versions_seen: false,
        };
        metrics::counter!("kafka_server_socket_server_metrics_failed_authentication_total", "listener" => self.listener.name.clone()).increment(1);
        let message =
            match failure {
                Failure::Told(m) => m,
                Failure::Generic => format!(
                "Authentication failed during {} due to invalid credentials with SASL mechanism {}",
                if self.reauthenticating() { "re-authentication" } else { "authentication" },
                self.mechanism.name()
            ),
            };
        FAILED.occurred(|| {
            format!(
                "failed authentication on listener {} with {}: {message}",
                self.listener.name,
                self.mechanism.name()
            )
        });
        message
    }
}

/// Decodes a handshake-phase request of a version in `versions`.
fn decode<T: kafka_protocol::protocol::Decodable>(
    frame: &mut Bytes,
    versions: std::ops::RangeInclusive<i16>,
) -> Result<(RequestHeader, T), String> {
    let (api, header) = codec::decode_header(frame).map_err(|e| e.to_string())?;
    let version = header.request_api_version;
    if !versions.contains(&version) {
        return Err(format!("{api:?} v{version} is not supported"));
    }
    let body = codec::decode_body::<T>(api, version, frame).map_err(|e| e.to_string())?;
    Ok((header, body))
}

/// `header`'s answer, after which the connection is closed for `reason` (a failed exchange).
fn answer_then_close<T: kafka_protocol::protocol::Encodable>(
    api: ApiKey,
    header: &RequestHeader,
    body: &T,
    reason: String,
) -> Outcome {
    match encode(api, header, body, Attached::default()) {
        Outcome::Respond(chunks) => Outcome::RespondThenClose(chunks, reason),
        other => other,
    }
}
