//! SCRAM credentials, stored salted in the meta store as Kafka's ScramControlManager keeps them
//! (salt, StoredKey, ServerKey, iterations per user and mechanism), changed and listed with
//! Kafka's rules and messages for AlterUserScramCredentials and DescribeUserScramCredentials.

use std::collections::BTreeMap;
use std::io;
use std::sync::{Mutex, RwLock};

use super::scram::{Credential, ScramMechanism};

/// Kafka's error codes for these two APIs.
pub const RESOURCE_NOT_FOUND: i16 = 91;
pub const DUPLICATE_RESOURCE: i16 = 92;
pub const UNACCEPTABLE_CREDENTIAL: i16 = 93;
pub const UNSUPPORTED_SASL_MECHANISM: i16 = 33;
const UNKNOWN_SERVER_ERROR: i16 = -1;
const KAFKA_STORAGE_ERROR: i16 = 56;

/// Kafka's most records one controller operation may write.
const MAX_CHANGES: usize = 10_000;

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
    /// Held by an alteration from its checks to its in-memory swap.
    altering: Mutex<()>,
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
            altering: Mutex::new(()),
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
            // Named users in request order, each once; a name given twice is answered once, as
            // a duplicate (linear: a client may name any number of users).
            let mut position: std::collections::HashMap<&String, usize> =
                std::collections::HashMap::new();
            for user in users {
                match position.get(user) {
                    Some(&i) => wanted[i].1 = true,
                    None => {
                        position.insert(user, wanted.len());
                        wanted.push((user.clone(), false));
                    }
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

    /// AlterUserScramCredentials with Kafka's rules: at most 10,000 changes (Kafka's limit on one
    /// controller operation), one change per user per request, names not empty, known mechanisms,
    /// 4,096 to 16,384 iterations, deletions of what exists. The valid changes are applied together
    /// and made durable before the answer. Alterations run one at a time; logins only wait for the
    /// in-memory swap at the end, never for the meta store.
    pub fn alter(&self, deletions: Vec<Change>, upsertions: Vec<Change>) -> Vec<Outcome> {
        let _one_at_a_time = self.altering.lock().unwrap_or_else(|p| p.into_inner());
        if deletions.len() + upsertions.len() > MAX_CHANGES {
            let mut users: Vec<String> = deletions
                .iter()
                .chain(&upsertions)
                .map(|c| c.user().to_string())
                .collect();
            users.sort();
            users.dedup();
            let message = "Unable to perform excessively large batch operation.";
            return users
                .into_iter()
                .map(|u| (u, UNKNOWN_SERVER_ERROR, Some(message.to_string())))
                .collect();
        }
        let mut errors: BTreeMap<String, (i16, String)> = BTreeMap::new();
        // The valid changes, by user; a user changed twice moves to `errors`.
        let mut accepted: Vec<Option<Change>> = Vec::new();
        let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
        {
            let all = self.by_user.read().unwrap_or_else(|p| p.into_inner());
            for change in deletions.into_iter().chain(upsertions) {
                let user = change.user().to_string();
                if errors.contains_key(&user) {
                    continue;
                }
                if let Some(i) = index.remove(&user) {
                    accepted[i] = None;
                    errors.insert(
                        user,
                        (
                            DUPLICATE_RESOURCE,
                            "A user credential cannot be altered twice in the same request"
                                .to_string(),
                        ),
                    );
                    continue;
                }
                match validate(&change, &all) {
                    Ok(()) => {
                        index.insert(user, accepted.len());
                        accepted.push(Some(change));
                    }
                    Err(e) => {
                        errors.insert(user, e);
                    }
                }
            }
        }
        let accepted: Vec<Change> = accepted.into_iter().flatten().collect();
        let mut out: Vec<Outcome> = errors
            .into_iter()
            .map(|(u, (code, m))| (u, code, Some(m)))
            .collect();
        let code = match self.apply(&accepted) {
            Ok(()) => 0,
            Err(e) => {
                tracing::error!(error = %e, "cannot store SCRAM credentials");
                KAFKA_STORAGE_ERROR
            }
        };
        out.extend(accepted.iter().map(|c| (c.user().to_string(), code, None)));
        out
    }

    /// Writes the accepted changes in one batch, durably, then shows them to logins.
    fn apply(&self, accepted: &[Change]) -> io::Result<()> {
        let mut batch = sled::Batch::default();
        let mut applied = Vec::new();
        for change in accepted {
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
            let mut all = self.by_user.write().unwrap_or_else(|p| p.into_inner());
            for (k, c) in applied {
                match c {
                    Some(c) => all.insert(k, c),
                    None => all.remove(&k),
                };
            }
        }
        Ok(())
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
        // Java's HMAC refuses an empty key; Kafka answers the exception.
        Change::Upsert {
            salted_password, ..
        } if salted_password.is_empty() => Err((UNKNOWN_SERVER_ERROR, "Empty key".into())),
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
        let out = c.alter(
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
        );
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
        let out = c.alter(vec![delete("alice", 1)], vec![]);
        assert_eq!(out, vec![("alice".into(), 0, None)]);
        assert!(c.describe(&[]).is_empty());
    }

    /// A client may name any number of users in DescribeUserScramCredentials: each is answered
    /// once, in request order, a repeated one as a duplicate; finding repeats was quadratic in the
    /// names given (50,000 names: 2.4 s holding the lock logins read).
    #[test]
    fn many_named_users_are_described_once_each() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let c = Credentials::open(&db).unwrap();
        c.alter(vec![], vec![upsert("u7", 1, 4096)]);
        let mut names: Vec<String> = (0..50_000).map(|i| format!("u{i}")).collect();
        names.push("u7".into());
        let started = std::time::Instant::now();
        let d = c.describe(&names);
        eprintln!("50,001 names described in {:?}", started.elapsed());
        assert_eq!(d.len(), 50_000);
        assert_eq!(d[0].0 .1, RESOURCE_NOT_FOUND);
        assert_eq!((d[7].0 .0.as_str(), d[7].0 .1), ("u7", DUPLICATE_RESOURCE));
        assert_eq!(d[49_999].0 .0, "u49999");
    }

    /// From the attack on SASL: 100,000 changes in one request took 33 s under the lock logins
    /// wait for (a duplicate check per change scanned every change before it). Kafka refuses more
    /// than 10,000 records in one operation; 10,000 distinct users are checked in linear time.
    #[test]
    fn more_than_ten_thousand_changes_are_refused_and_ten_thousand_go_fast() {
        let dir = tempfile::tempdir().unwrap();
        let db = sled::open(dir.path()).unwrap();
        let c = Credentials::open(&db).unwrap();
        let many: Vec<Change> = (0..10_001)
            .map(|i| upsert(&format!("u{i}"), 1, 4096))
            .collect();
        let out = c.alter(vec![], many);
        assert_eq!(out.len(), 10_001);
        assert!(out.iter().all(|(_, e, m)| *e == -1
            && m.as_deref() == Some("Unable to perform excessively large batch operation.")));
        assert!(c.describe(&[]).is_empty());
        let mut changes: Vec<Change> = (0..9_999)
            .map(|i| upsert(&format!("u{i}"), 1, 4096))
            .collect();
        changes.push(upsert("u0", 2, 4096));
        let started = std::time::Instant::now();
        let out = c.alter(vec![], changes);
        let failed: Vec<_> = out.iter().filter(|(_, e, _)| *e != 0).collect();
        assert_eq!(failed.len(), 1);
        assert_eq!(failed[0].1, DUPLICATE_RESOURCE);
        assert_eq!(c.describe(&[]).len(), 9_998);
        // Not a timing assertion on the broker: a quadratic check of 10,000 changes takes seconds.
        eprintln!("10,000 changes in {:?}", started.elapsed());
        let out = c.alter(
            vec![],
            vec![Change::Upsert {
                user: "empty".into(),
                mechanism: 1,
                iterations: 4096,
                salt: b"s".to_vec(),
                salted_password: Vec::new(),
            }],
        );
        assert_eq!(out, vec![("empty".into(), -1, Some("Empty key".into()))]);
    }
}
