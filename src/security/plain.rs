//! SASL/PLAIN (RFC 4616) as Kafka's `PlainSaslServer` checks it: one message
//! `authzid NUL username NUL password`, users and passwords from the listener's
//! `PlainLoginModule` options `user_<name>="<password>"`.

use std::collections::BTreeMap;

use subtle::ConstantTimeEq;

use super::Failure;

/// The principal's user name when `token` carries a known user's password.
pub(super) fn authenticate(
    users: &BTreeMap<String, String>,
    token: &[u8],
) -> Result<String, Failure> {
    // As Java's `new String(bytes, UTF_8)`: invalid sequences become U+FFFD.
    let text = String::from_utf8_lossy(token);
    // Kafka's extractTokens: at most four NUL-separated tokens are looked for.
    let parts: Vec<&str> = text.splitn(4, '\0').collect();
    let [authzid, username, password] = parts[..] else {
        return Err(Failure::Told(format!(
            "Invalid SASL/PLAIN response: expected 3 tokens, got {}",
            parts.len()
        )));
    };
    if username.is_empty() {
        return Err(Failure::Told(
            "Authentication failed: username not specified".into(),
        ));
    }
    if password.is_empty() {
        return Err(Failure::Told(
            "Authentication failed: password not specified".into(),
        ));
    }
    let known = users
        .get(username)
        .is_some_and(|expected| bool::from(expected.as_bytes().ct_eq(password.as_bytes())));
    if !known {
        return Err(Failure::Told(
            "Authentication failed: Invalid username or password".into(),
        ));
    }
    if !authzid.is_empty() && authzid != username {
        return Err(Failure::Told(
            "Authentication failed: Client requested an authorization id that is different from username".into(),
        ));
    }
    Ok(username.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn users() -> BTreeMap<String, String> {
        [("alice".to_string(), "alice-secret".to_string())].into()
    }

    fn told(token: &[u8]) -> String {
        match authenticate(&users(), token) {
            Err(Failure::Told(m)) => m,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn kafkas_answers() {
        assert_eq!(
            authenticate(&users(), b"\0alice\0alice-secret").unwrap(),
            "alice"
        );
        assert_eq!(
            authenticate(&users(), b"alice\0alice\0alice-secret").unwrap(),
            "alice"
        );
        let invalid = "Authentication failed: Invalid username or password";
        assert_eq!(told(b"\0alice\0wrong"), invalid);
        assert_eq!(told(b"\0mallory\0alice-secret"), invalid);
        assert_eq!(
            told(b"\0\0x"),
            "Authentication failed: username not specified"
        );
        assert_eq!(
            told(b"\0alice\0"),
            "Authentication failed: password not specified"
        );
        assert!(told(b"bob\0alice\0alice-secret").contains("authorization id"));
        assert_eq!(
            told(b"alice"),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 1"
        );
        assert_eq!(
            told(b"\0a\0b\0c"),
            "Invalid SASL/PLAIN response: expected 3 tokens, got 4"
        );
        assert_eq!(told(b"\xff\0a\0b"), invalid);
    }
}
