//! SCRAM-SHA-256 and SCRAM-SHA-512 (RFC 5802, RFC 7677), the server side of Kafka's
//! `ScramSaslServer`: gs2 header `n` only (no channel binding), extensions accepted and ignored
//! (`tokenauth` refused: gregor has no delegation tokens), credentials stored as Kafka stores them,
//! salt, StoredKey and ServerKey, never the password or the salted password.
//!
//! Written on the RustCrypto primitives (hmac, sha2) rather than a SCRAM crate: the maintained
//! one (scram-rs) derives its keys from the salted password on every exchange, so it would have
//! to be stored, and a salted password is enough to log in; Kafka stores only what verifies one.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use hmac::{Hmac, Mac};
use rand::distr::{Alphanumeric, SampleString};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256, Sha512};
use subtle::ConstantTimeEq;

use super::Failure;

/// Kafka's ScramMechanism, with its type byte in Describe/AlterUserScramCredentials.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ScramMechanism {
    Sha256,
    Sha512,
}

impl ScramMechanism {
    pub const ALL: [ScramMechanism; 2] = [ScramMechanism::Sha256, ScramMechanism::Sha512];
    /// Kafka's bounds on a credential's iterations.
    pub const MIN_ITERATIONS: i32 = 4096;
    pub const MAX_ITERATIONS: i32 = 16384;

    pub fn from_type(t: i8) -> Option<Self> {
        match t {
            1 => Some(Self::Sha256),
            2 => Some(Self::Sha512),
            _ => None,
        }
    }

    pub fn type_byte(self) -> i8 {
        match self {
            Self::Sha256 => 1,
            Self::Sha512 => 2,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Sha256 => "SCRAM-SHA-256",
            Self::Sha512 => "SCRAM-SHA-512",
        }
    }

    fn hmac(self, key: &[u8], data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => {
                let mut m = Hmac::<Sha256>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
            Self::Sha512 => {
                let mut m = Hmac::<Sha512>::new_from_slice(key).expect("HMAC takes any key");
                m.update(data);
                m.finalize().into_bytes().to_vec()
            }
        }
    }

    fn hash(self, data: &[u8]) -> Vec<u8> {
        match self {
            Self::Sha256 => Sha256::digest(data).to_vec(),
            Self::Sha512 => Sha512::digest(data).to_vec(),
        }
    }
}

/// A user's credential for one mechanism, as Kafka's `ScramCredential`.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Credential {
    pub salt: Vec<u8>,
    pub stored_key: Vec<u8>,
    pub server_key: Vec<u8>,
    pub iterations: i32,
}

impl std::fmt::Debug for Credential {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Credential")
            .field("iterations", &self.iterations)
            .finish_non_exhaustive()
    }
}

impl Credential {
    /// What AlterUserScramCredentials sends (the salted password, Hi(password, salt, i)) turned
    /// into what is stored.
    pub fn from_salted_password(
        mechanism: ScramMechanism,
        salt: &[u8],
        salted_password: &[u8],
        iterations: i32,
    ) -> Credential {
        let client_key = mechanism.hmac(salted_password, b"Client Key");
        Credential {
            salt: salt.to_vec(),
            stored_key: mechanism.hash(&client_key),
            server_key: mechanism.hmac(salted_password, b"Server Key"),
            iterations,
        }
    }
}

/// What the server answers a client message with.
#[derive(Debug)]
pub enum Step {
    /// The exchange goes on with this challenge.
    Challenge(Vec<u8>),
    /// The client proved it knows the password: the server's final message, and the user.
    Complete(Vec<u8>, String),
}

enum State {
    ClientFirst,
    ClientFinal {
        user: String,
        /// `client-first-message-bare "," server-first-message "," ` of the AuthMessage.
        auth_start: String,
        nonce: String,
        credential: Credential,
    },
    Finished,
}

/// One SCRAM exchange, server side.
pub struct ScramServer {
    mechanism: ScramMechanism,
    state: State,
}

/// An `n=`/`a=` saslname decoded, as Kafka's pattern takes it: characters 0x01 to 0x7F other
/// than `,` and `=`, and the escapes `=2C` (`,`) and `=3D` (`=`).
fn sasl_name(name: &str) -> Option<String> {
    let mut out = String::new();
    let mut rest = name;
    while let Some(c) = rest.chars().next() {
        match c {
            '=' => {
                match rest.get(..3) {
                    Some("=2C") => out.push(','),
                    Some("=3D") => out.push('='),
                    _ => return None,
                }
                rest = &rest[3..];
            }
            '\u{1}'..='\u{7f}' if c != ',' => {
                out.push(c);
                rest = &rest[1..];
            }
            _ => return None,
        }
    }
    (!out.is_empty()).then_some(out)
}

/// The value of attribute `key` (`k=value`) of a message part.
fn attr(part: Option<&str>, key: char) -> Option<&str> {
    let part = part?;
    part.strip_prefix(key)?.strip_prefix('=')
}

fn printable(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| (0x21..=0x7e).contains(&b) && b != b',')
}

impl ScramServer {
    pub fn new(mechanism: ScramMechanism) -> ScramServer {
        ScramServer {
            mechanism,
            state: State::ClientFirst,
        }
    }

    pub fn mechanism(&self) -> ScramMechanism {
        self.mechanism
    }

    /// Takes the client's next message; `lookup` finds a user's credential for this mechanism.
    pub fn evaluate(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credential>,
    ) -> Result<Step, Failure> {
        let result = self.step(message, lookup);
        if result.is_err() {
            self.state = State::Finished;
        }
        result
    }

    fn step(
        &mut self,
        message: &[u8],
        lookup: impl FnOnce(&str) -> Option<Credential>,
    ) -> Result<Step, Failure> {
        let text = std::str::from_utf8(message).map_err(|_| Failure::Generic)?;
        match std::mem::replace(&mut self.state, State::Finished) {
            State::ClientFirst => {
                // gs2-header: "n," [ "a=" saslname ] ","
                let rest = text.strip_prefix("n,").ok_or(Failure::Generic)?;
                let (authzid, bare) = rest.split_once(',').ok_or(Failure::Generic)?;
                let authzid = match authzid {
                    "" => String::new(),
                    a => sasl_name(a.strip_prefix("a=").ok_or(Failure::Generic)?)
                        .ok_or(Failure::Generic)?,
                };
                let mut parts = bare.split(',');
                let mut first = parts.next();
                if first.is_some_and(|p| p.starts_with("m=")) {
                    first = parts.next();
                }
                let user =
                    sasl_name(attr(first, 'n').ok_or(Failure::Generic)?).ok_or(Failure::Generic)?;
                let client_nonce = attr(parts.next(), 'r').ok_or(Failure::Generic)?;
                if !printable(client_nonce) {
                    return Err(Failure::Generic);
                }
                for extension in parts {
                    let (name, value) = extension.split_once('=').ok_or(Failure::Generic)?;
                    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_alphabetic()) {
                        return Err(Failure::Generic);
                    }
                    // Delegation tokens: gregor has none, so no token owner is ever found.
                    if name == "tokenauth" && value.eq_ignore_ascii_case("true") {
                        return Err(Failure::Generic);
                    }
                }
                let credential = lookup(&user).ok_or(Failure::Generic)?;
                if !authzid.is_empty() && authzid != user {
                    return Err(Failure::Told(
                        "Authentication failed: Client requested an authorization id that is different from username".into(),
                    ));
                }
                if credential.iterations < ScramMechanism::MIN_ITERATIONS {
                    return Err(Failure::Generic);
                }
                let nonce = format!(
                    "{client_nonce}{}",
                    Alphanumeric.sample_string(&mut rand::rng(), 32)
                );
                let server_first = format!(
                    "r={nonce},s={},i={}",
                    B64.encode(&credential.salt),
                    credential.iterations
                );
                let challenge = server_first.clone().into_bytes();
                self.state = State::ClientFinal {
                    user,
                    auth_start: format!("{bare},{server_first},"),
                    nonce,
                    credential,
                };
                Ok(Step::Challenge(challenge))
            }
            State::ClientFinal {
                user,
                auth_start,
                nonce,
                credential,
            } => {
                let (without_proof, proof) = text.rsplit_once(",p=").ok_or(Failure::Generic)?;
                let proof = B64.decode(proof).map_err(|_| Failure::Generic)?;
                let mut parts = without_proof.split(',');
                let binding = attr(parts.next(), 'c').ok_or(Failure::Generic)?;
                let binding = B64.decode(binding).map_err(|_| Failure::Generic)?;
                // The gs2 header again: "n,," or "n,a=<authzid>,".
                if !binding.starts_with(b"n,") || !binding.ends_with(b",") {
                    return Err(Failure::Generic);
                }
                if attr(parts.next(), 'r') != Some(nonce.as_str()) {
                    return Err(Failure::Generic);
                }
                let m = self.mechanism;
                let auth_message = format!("{auth_start}{without_proof}");
                let client_signature = m.hmac(&credential.stored_key, auth_message.as_bytes());
                if proof.len() != client_signature.len() {
                    return Err(Failure::Generic);
                }
                let client_key: Vec<u8> = proof
                    .iter()
                    .zip(&client_signature)
                    .map(|(a, b)| a ^ b)
                    .collect();
                if !bool::from(m.hash(&client_key).ct_eq(&credential.stored_key)) {
                    return Err(Failure::Generic);
                }
                let server_signature = m.hmac(&credential.server_key, auth_message.as_bytes());
                let last = format!("v={}", B64.encode(server_signature)).into_bytes();
                Ok(Step::Complete(last, user))
            }
            State::Finished => Err(Failure::Generic),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn salted(m: ScramMechanism, password: &str, salt: &[u8], i: u32) -> Vec<u8> {
        match m {
            ScramMechanism::Sha256 => {
                pbkdf2::pbkdf2_hmac_array::<Sha256, 32>(password.as_bytes(), salt, i).to_vec()
            }
            ScramMechanism::Sha512 => {
                pbkdf2::pbkdf2_hmac_array::<Sha512, 64>(password.as_bytes(), salt, i).to_vec()
            }
        }
    }

    /// A client's side of the exchange: (client-final-message, expected server signature).
    fn client_final(
        m: ScramMechanism,
        password: &str,
        bare: &str,
        server_first: &str,
    ) -> (String, Vec<u8>) {
        let fields: Vec<&str> = server_first.split(',').collect();
        let nonce = &fields[0][2..];
        let salt = B64.decode(&fields[1][2..]).unwrap();
        let i: u32 = fields[2][2..].parse().unwrap();
        let salted = salted(m, password, &salt, i);
        let client_key = m.hmac(&salted, b"Client Key");
        let stored = m.hash(&client_key);
        let without_proof = format!("c=biws,r={nonce}");
        let auth = format!("{bare},{server_first},{without_proof}");
        let signature = m.hmac(&stored, auth.as_bytes());
        let proof: Vec<u8> = client_key
            .iter()
            .zip(&signature)
            .map(|(a, b)| a ^ b)
            .collect();
        let server_key = m.hmac(&salted, b"Server Key");
        (
            format!("{without_proof},p={}", B64.encode(proof)),
            m.hmac(&server_key, auth.as_bytes()),
        )
    }

    fn credential(m: ScramMechanism, password: &str) -> Credential {
        let salt = b"0123456789abcdef";
        Credential::from_salted_password(m, salt, &salted(m, password, salt, 4096), 4096)
    }

    fn exchange(m: ScramMechanism, stored: &str, given: &str) -> Result<String, Failure> {
        let mut server = ScramServer::new(m);
        let bare = "n=us=3Der,r=fyko+d2lbbFgONRv9qkxdawL";
        let lookup = |u: &str| (u == "us=er").then(|| credential(m, stored));
        let Step::Challenge(first) = server.evaluate(format!("n,,{bare}").as_bytes(), lookup)?
        else {
            panic!("a challenge first")
        };
        let first = String::from_utf8(first).unwrap();
        assert!(first.starts_with("r=fyko+d2lbbFgONRv9qkxdawL") && first.ends_with(",i=4096"));
        let (last, signature) = client_final(m, given, bare, &first);
        match server.evaluate(last.as_bytes(), |_| unreachable!())? {
            Step::Complete(v, user) => {
                assert_eq!(v, format!("v={}", B64.encode(signature)).into_bytes());
                Ok(user)
            }
            Step::Challenge(_) => panic!("complete after the final message"),
        }
    }

    #[test]
    fn a_client_with_the_password_is_authenticated_and_the_server_proves_itself() {
        for m in ScramMechanism::ALL {
            assert_eq!(exchange(m, "pencil", "pencil").unwrap(), "us=er");
            assert!(matches!(
                exchange(m, "pencil", "pen"),
                Err(Failure::Generic)
            ));
        }
    }

    #[test]
    fn the_rfc_7677_example_verifies() {
        // RFC 7677 section 3: user "user", password "pencil".
        let m = ScramMechanism::Sha256;
        let salt = B64.decode("W22ZaJ0SNY7soEsUEjb6gQ==").unwrap();
        let cred =
            Credential::from_salted_password(m, &salt, &salted(m, "pencil", &salt, 4096), 4096);
        let bare = "n=user,r=rOprNGfwEbeRWgbNEkqO";
        let server_first =
            "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
        let mut server = ScramServer::new(m);
        server.state = State::ClientFinal {
            user: "user".into(),
            auth_start: format!("{bare},{server_first},"),
            nonce: "rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0".into(),
            credential: cred,
        };
        let last = "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
        let Step::Complete(v, _) = server.evaluate(last.as_bytes(), |_| None).unwrap() else {
            panic!()
        };
        assert_eq!(v, b"v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=");
    }

    #[test]
    fn malformed_unknown_and_out_of_order_messages_fail() {
        let m = ScramMechanism::Sha256;
        let known = |_: &str| Some(credential(m, "pw"));
        for first in [
            &b"y,,n=user,r=abc"[..],
            b"p=tls-server-end-point,,n=user,r=abc",
            b"n,,n=,r=abc",
            b"n,,n=us=2Xer,r=abc",
            b"n,,n=us\0er,r=abc",
            "n,,n=\u{e9}l\u{e8}ve,r=abc".as_bytes(),
            b"n,,r=abc,n=user",
            b"n,,n=user",
            b"n,,n=user,r=",
            b"n,,n=user,r=abc,tokenauth=true",
            b"\xff",
            b"",
        ] {
            assert!(
                matches!(
                    ScramServer::new(m).evaluate(first, known),
                    Err(Failure::Generic)
                ),
                "{first:?}"
            );
        }
        assert!(matches!(
            ScramServer::new(m).evaluate(b"n,,n=nobody,r=abc", |_| None),
            Err(Failure::Generic)
        ));
        let Err(Failure::Told(msg)) =
            ScramServer::new(m).evaluate(b"n,a=other,n=user,r=abc", known)
        else {
            panic!("an authzid other than the user is refused with Kafka's message")
        };
        assert!(msg.contains("authorization id"));
        let few = |_: &str| {
            let mut c = credential(m, "pw");
            c.iterations = 1000;
            Some(c)
        };
        assert!(ScramServer::new(m)
            .evaluate(b"n,,n=user,r=abc", few)
            .is_err());
        // A name with a comma and an equals sign (DN-style names) comes escaped, and is found.
        let mut s = ScramServer::new(m);
        let dn = |u: &str| (u == "CN=x,O=y").then(|| credential(m, "pw"));
        assert!(s.evaluate(b"n,,n=CN=3Dx=2CO=3Dy,r=abc", dn).is_ok());
        // Extensions and the reserved m= are accepted (and ignored).
        let mut s = ScramServer::new(m);
        assert!(s.evaluate(b"n,,m=x,n=user,r=abc,ext=1", known).is_ok());
        // A final message with the wrong nonce, and anything after a failure, fail.
        assert!(s.evaluate(b"c=biws,r=abcWRONG,p=AAAA", known).is_err());
        assert!(s.evaluate(b"c=biws,r=abc,p=AAAA", known).is_err());
    }
}
