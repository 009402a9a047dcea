//! SCRAM credentials, stored salted in the meta store as Kafka's ScramControlManager keeps them
//! (salt, StoredKey, ServerKey, iterations per user and mechanism), changed and listed with
//! Kafka's rules and messages for AlterUserScramCredentials and DescribeUserScramCredentials.

use std::collections::BTreeMap;
use std::io;
use std::sync::RwLock;

use super::scram::{Credential, ScramMechanism};

/// Kafka's error codes for these two APIs.
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;

/// One change AlterUserScramCredentials asks for.
pub enum Change {
    Delete {
        user: String,
        mechanism: i8,
    },
    Upsert {
        user: String,
        mechanism: i8,
        iterations: i32,
        salt: Vec<u8>,
        salted_password: Vec<u8>,
    },
}

impl Change {
    fn user(&self) -> &str {
        match self {
            Change::Delete { user, .. } | Change::Upsert { user, .. } => user,
        }
    }
}

/// A user's outcome: (user, error code, message).
pub type Outcome = (String, i16, Option<String>);

/// The credentials, in memory for authentication and in sled for restarts.
pub struct Credentials {
    tree: sled::Tree,
    db: sled::Db,
    by_user: RwLock<BTreeMap<(String, ScramMechanism), Credential>>,
}

/// The mechanism's type byte, then the user name: unambiguous for any name.
fn key(user: &str, mechanism: ScramMechanism) -> Vec<u8> {
    let mut k = vec![mechanism.type_byte() as u8];
    k.extend_from_slice(user.as_bytes());
    k
}

fn to_io(e: sled::Error) -> io::Error {
    io::Error::other(e)
}

impl Credentials {
    pub fn open(db: &sled::Db) -> io::Result<Credentials> {
        let tree = db.open_tree("scram_credentials").map_err(to_io)?;
        let mut by_user = BTreeMap::new();
        for kv in tree.iter() {
            let (k, v) = kv.map_err(to_io)?;
            let mechanism = k
                .first()
                .and_then(|t| ScramMechanism::from_type(*t as i8))
                .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "bad SCRAM key"))?;
            let user = String::from_utf8(k[1..].to_vec())
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            let credential: Credential = postcard::from_bytes(&v)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            by_user.insert((user, mechanism), credential);
        }
        Ok(Credentials {
            tree,
            db: db.clone(),
            by_user: RwLock::new(by_user),
        })
    }

    /// `user`'s credential for `mechanism`.
    pub fn get(&self, user: &str, mechanism: ScramMechanism) -> Option<Credential> {
        self.by_user
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .get(&(user.to_string(), mechanism))
            .cloned()
    }

    /// DescribeUserScramCredentials: every user with a credential when `users` is empty, else
    /// each named user once: (user, error, message, [(mechanism type, iterations)]).
    pub fn describe(&self, users: &[String]) -> Vec<(Outcome, Vec<(i8, i32)>)> {
        let all = self.by_user.read().unwrap_or_else(|p| p.into_inner());
        let mut wanted: Vec<(String, bool)> = Vec::new();
        if users.is_empty() {
            for (user, _) in all.keys() {
                if wanted.last().is_none_or(|(u, _)| u != user) {
                    wanted.push((user.clone(), false));
                }
            }
        } else {
            for user in users {
                match wanted.iter_mut().find(|(u, _)| u == user) {
                    Some(seen) => seen.1 = true,
                    None => wanted.push((user.clone(), false)),
                }
            }
        }
        wanted
            .into_iter()
            .map(|(user, twice)| {
                let infos: Vec<(i8, i32)> = ScramMechanism::ALL
                    .iter()
                    .filter_map(|m| {
                        all.get(&(user.clone(), *m))
                            .map(|c| (m.type_byte(), c.iterations))
                    })
                    .collect();
                if twice {
                    let msg = format!("Cannot describe SCRAM credentials for the same user twice in a single request: {user}");
                    ((user, DUPLICATE_RESOURCE, Some(msg)), Vec::new())
                } else if infos.is_empty() {
                    let msg =
                        format!("Attempt to describe a user credential that does not exist: {user}");
                    ((user, RESOURCE_NOT_FOUND, Some(msg)), Vec::new())
                } else {
                    ((user, 0, None), infos)
                }
            })
            .collect()
    }

    /// AlterUserScramCredentials with Kafka's rules: one change per user per request, names not
    /// empty, known mechanisms, 4,096 to 16,384 iterations, deletions of what exists. The valid
    /// changes are applied together and made durable before the answer.
    pub fn alter(
        &self,
        deletions: Vec<Change>,
        upsertions: Vec<Change>,
    ) -> io::Result<Vec<Outcome>> {
        let mut all = self.by_user.write().unwrap_or_else(|p| p.into_inner());
        let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
        let mut accepted: Vec<Change> = Vec::new();
        let twice = || {
            (
                DUPLICATE_RESOURCE,
                "A user credential cannot be altered twice in the same request".to_string(),
            )
        };
        for change in deletions.into_iter().chain(upsertions) {
            let user = change.user().to_string();
            if errors.contains_key(&user) {
                continue;
            }
            if let Some(i) = accepted.iter().position(|c| c.user() == user) {
                accepted.remove(i);
                errors.insert(user, twice());
                continue;
            }
            match validate(&change, &all) {
                Ok(()) => accepted.push(change),
                Err(e) => {
                    errors.insert(user, e);
                }
            }
        }
        let mut batch = sled::Batch::default();
        let mut applied = Vec::new();
        for change in &accepted {
            match change {
                Change::Delete { user, mechanism } => {
                    let m = ScramMechanism::from_type(*mechanism).expect("validated");
                    batch.remove(key(user, m));
                    applied.push(((user.clone(), m), None));
                }
                Change::Upsert {
                    user,
                    mechanism,
                    iterations,
                    salt,
                    salted_password,
                } => {
                    let m = ScramMechanism::from_type(*mechanism).expect("validated");
                    let c = Credential::from_salted_password(m, salt, salted_password, *iterations);
                    batch.insert(
                        key(user, m),
                        postcard::to_stdvec(&c).map_err(io::Error::other)?,
                    );
                    applied.push(((user.clone(), m), Some(c)));
                }
            }
        }
        if !applied.is_empty() {
            self.tree.apply_batch(batch).map_err(to_io)?;
            self.db.flush().map_err(to_io)?;
            for (k, c) in applied {
                match c {
                    Some(c) => all.insert(k, c),
                    None => all.remove(&k),
                };
            }
        }
        let mut out: Vec<Outcome> = accepted
            .iter()
            .map(|c| (c.user().to_string(), 0, None))
            .collect();
        out.extend(errors.into_iter().map(|(u, (code, m))| (u, code, Some(m))));
        Ok(out)
    }
}

fn validate(
    change: &Change,
    all: &BTreeMap<(String, ScramMechanism), Credential>,
) -> Result<(), (i16, String)> {
    let (user, mechanism) = match change {
        Change::Delete { user, mechanism }
        | Change::Upsert {
            user, mechanism, ..
        } => (user, *mechanism),
    };
    if user.is_empty() {
        return Err((UNACCEPTABLE_CREDENTIAL, "Username must not be empty".into()));
    }
    let Some(m) = ScramMechanism::from_type(mechanism) else {
        return Err((UNSUPPORTED_SASL_MECHANISM, "Unknown SCRAM mechanism".into()));
    };
    match change {
        Change::Delete { .. } if !all.contains_key(&(user.clone(), m)) => Err((
            RESOURCE_NOT_FOUND,
            "Attempt to delete a user credential that does not exist".into(),
        )),
        Change::Upsert { iterations, .. } if *iterations < ScramMechanism::MIN_ITERATIONS => {
            Err((UNACCEPTABLE_CREDENTIAL, "Too few iterations".into()))
        }
        Change::Upsert { iterations, .. } if *iterations > ScramMechanism::MAX_ITERATIONS => {
            Err((UNACCEPTABLE_CREDENTIAL, "Too many iterations".into()))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn upsert(user: &str, mechanism: i8, iterations: i32) -> Change {
        Change::Upsert {
            user: user.into(),
            mechanism,
            iterations,
            salt: b"salt".to_vec(),
            salted_password: b"salted".to_vec(),
        }
    }

    fn delete(user: &str, mechanism: i8) -> Change {
        Change::Delete {
            user: user.into(),
            mechanism,
        }
    }

    #[test]
    fn kafkas_rules_and_messages_and_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let c = Credentials::open(&db).unwrap();
        let out = c
            .alter(
                vec![delete("ghost", 1)],
                vec![
                    upsert("alice", 1, 8192),
                    upsert("bob", 2, 4096),
                    upsert("bob", 1, 4096),
                    upsert("few", 1, 4095),
                    upsert("many", 2, 16385),
                    upsert("", 1, 4096),
                    upsert("odd", 0, 4096),
                ],
            )
            .unwrap();
        let codes: BTreeMap<_, _> = out
            .iter()
            .map(|(u, e, m)| (u.as_str(), (*e, m.clone())))
            .collect();
        assert_eq!(codes["alice"], (0, None));
        assert_eq!(codes["ghost"].0, RESOURCE_NOT_FOUND);
        assert_eq!(codes["bob"].0, DUPLICATE_RESOURCE);
        assert_eq!(
            codes["few"],
            (UNACCEPTABLE_CREDENTIAL, Some("Too few iterations".into()))
        );
        assert_eq!(
            codes["many"],
            (UNACCEPTABLE_CREDENTIAL, Some("Too many iterations".into()))
        );
        assert_eq!(codes[""].0, UNACCEPTABLE_CREDENTIAL);
        assert_eq!(codes["odd"].0, UNSUPPORTED_SASL_MECHANISM);
        assert_eq!(out.len(), 7);
        assert!(c.get("bob", ScramMechanism::Sha512).is_none());
        drop(c);
        let c = Credentials::open(&db).unwrap();
        assert_eq!(
            c.get("alice", ScramMechanism::Sha256).unwrap().iterations,
            8192
        );
        let d = c.describe(&[]);
        assert_eq!(d, vec![(("alice".into(), 0, None), vec![(1, 8192)])]);
        let d = c.describe(&["alice".into(), "nobody".into(), "alice".into()]);
        assert_eq!(d[0].0 .1, DUPLICATE_RESOURCE);
        assert_eq!(
            d[1].0,
            (
                "nobody".into(),
                RESOURCE_NOT_FOUND,
                Some("Attempt to describe a user credential that does not exist: nobody".into())
            )
        );
        let out = c.alter(vec![delete("alice", 1)], vec![]).unwrap();
        assert_eq!(out, vec![("alice".into(), 0, None)]);
        assert!(c.describe(&[]).is_empty());
    }
}
