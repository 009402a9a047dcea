//! The authorizer, with Kafka's StandardAuthorizer semantics: super users are allowed anything;
//! otherwise the ACLs on the resource (its literal name, the `*` wildcard and every prefix)
//! decide, a DENY that applies winning over any ALLOW; a resource no ACL names is allowed only
//! with `allow.everyone.if.no.acl.found`. ACLs live in memory for the checks and in the meta
//! store for restarts, each change durable before it is answered.

use std::collections::{BTreeSet, HashMap, HashSet};
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, RwLock};

use super::acl::{Acl, Filter, Operation, PatternType, Permission, ResourceType, Verdict};
use crate::condition::Condition;

/// Kafka's StandardAuthorizer, the class `authorizer.class.name` must name.
pub const STANDARD_AUTHORIZER: &str = "org.apache.kafka.metadata.authorizer.StandardAuthorizer";

/// Kafka's most records one controller operation may write.
pub const MAX_CHANGES: usize = 10_000;

/// Denied requests: logged once per minute with counts (Kafka logs each at INFO).
static DENIED: Condition = Condition::new("authorization denied");

/// Who is asking, as the authorizer sees a request.
#[derive(Debug, Clone)]
pub struct Session {
    /// `User:<name>`: the SASL user, the TLS client certificate's mapped name, or ANONYMOUS.
    pub principal: String,
    /// The client's address as Java's `InetAddress.getHostAddress` writes it.
    pub host: String,
    pub peer: SocketAddr,
}

impl Session {
    pub fn new(principal: String, peer: SocketAddr) -> Session {
        Session {
            principal,
            host: java_host_address(peer.ip()),
            peer,
        }
    }
}

/// The principal of a connection that has not authenticated (PLAINTEXT, or TLS with no client
/// certificate).
pub const ANONYMOUS: &str = "User:ANONYMOUS";

/// `InetAddress.getHostAddress`: dotted IPv4 (also for IPv4-mapped IPv6), IPv6 as eight
/// uncompressed hexadecimal groups.
pub fn java_host_address(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => v4.to_string(),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => v4.to_string(),
            None => v6
                .segments()
                .iter()
                .map(|s| format!("{s:x}"))
                .collect::<Vec<_>>()
                .join(":"),
        },
    }
}

/// The ACLs, indexed for the checks every request makes.
#[derive(Default)]
struct Index {
    all: BTreeSet<Acl>,
    /// LITERAL ACLs (the `*` wildcard among them) by resource type and name (looked up by
    /// `&str`: a check allocates nothing).
    literal: HashMap<ResourceType, HashMap<String, Vec<Acl>>>,
    /// PREFIXED ACLs by resource type and prefix.
    prefixed: HashMap<ResourceType, HashMap<String, Vec<Acl>>>,
    /// The prefix lengths in use per resource type: a name is looked up once per length, not
    /// once per character.
    prefix_lengths: HashMap<ResourceType, BTreeSet<usize>>,
}

impl Index {
    fn build(all: BTreeSet<Acl>) -> Index {
        let mut index = Index::default();
        for acl in &all {
            let by_name = match acl.pattern {
                PatternType::Literal => &mut index.literal,
                PatternType::Prefixed => {
                    index
                        .prefix_lengths
                        .entry(acl.resource_type)
                        .or_default()
                        .insert(acl.name.len());
                    &mut index.prefixed
                }
            };
            by_name
                .entry(acl.resource_type)
                .or_default()
                .entry(acl.name.clone())
                .or_default()
                .push(acl.clone());
        }
        index.all = all;
        index
    }

    /// Every ACL on the resource `name` of type `rt`.
    fn on<'a>(&'a self, rt: ResourceType, name: &'a str) -> impl Iterator<Item = &'a Acl> + 'a {
        let literal = self.literal.get(&rt);
        let literal = [name, super::acl::WILDCARD]
            .into_iter()
            .filter_map(move |n| literal?.get(n))
            .flatten();
        let prefixed = self.prefixed.get(&rt);
        let prefixed = self
            .prefix_lengths
            .get(&rt)
            .into_iter()
            .flatten()
            .take_while(move |len| **len <= name.len())
            .filter(move |len| name.is_char_boundary(**len))
            .filter_map(move |len| prefixed?.get(&name[..*len]))
            .flatten();
        literal.chain(prefixed)
    }
}

/// Why a CreateAcls or DeleteAcls changed nothing.
#[derive(Debug, thiserror::Error)]
pub enum ChangeError {
    #[error("more ACLs than one operation may change")]
    TooMany,
    #[error(transparent)]
    Io(#[from] io::Error),
}

pub struct Authorizer {
    super_users: HashSet<String>,
    allow_if_no_acl: bool,
    tree: sled::Tree,
    db: sled::Db,
    index: RwLock<Index>,
    /// Held by a change from its checks to its in-memory swap.
    changing: Mutex<()>,
}

fn to_io(e: sled::Error) -> io::Error {
    io::Error::other(e)
}

fn key(acl: &Acl) -> io::Result<Vec<u8>> {
    postcard::to_stdvec(acl).map_err(io::Error::other)
}

impl Authorizer {
    /// The authorizer with `super.users` (`User:a;User:b`) and the stored ACLs.
    pub fn open(db: &sled::Db, super_users: &str, allow_if_no_acl: bool) -> io::Result<Authorizer> {
        let tree = db.open_tree("acls").map_err(to_io)?;
        let mut all = BTreeSet::new();
        for kv in tree.iter() {
            let (k, _) = kv.map_err(to_io)?;
            let acl: Acl = postcard::from_bytes(&k)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
            all.insert(acl);
        }
        metrics::gauge!("kafka_server_authorizer_metrics_acls_total_count").set(all.len() as f64);
        // Kafka's authorizer meters exist from start-up.
        metrics::counter!("kafka_server_authorizer_metrics_authorization_allowed_total")
            .increment(0);
        metrics::counter!("kafka_server_authorizer_metrics_authorization_denied_total")
            .increment(0);
        Ok(Authorizer {
            super_users: super_users
                .split(';')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
            allow_if_no_acl,
            tree,
            db: db.clone(),
            index: RwLock::new(Index::build(all)),
            changing: Mutex::new(()),
        })
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Index> {
        self.index.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Whether `session` may do `op` on the resource `name` of type `rt`, counted and, when
    /// denied, logged.
    pub fn authorize(
        &self,
        session: &Session,
        op: Operation,
        rt: ResourceType,
        name: &str,
    ) -> bool {
        let allowed = self.decide(session, op, rt, name);
        if allowed {
            metrics::counter!("kafka_server_authorizer_metrics_authorization_allowed_total")
                .increment(1);
        } else {
            metrics::counter!("kafka_server_authorizer_metrics_authorization_denied_total")
                .increment(1);
            DENIED.occurred(|| {
                format!(
                    "Principal = {} is Denied operation = {} from host = {} on resource = {}:{}",
                    session.principal,
                    op.name(),
                    session.host,
                    rt.name(),
                    name
                )
            });
        }
        allowed
    }

    /// The decision alone (StandardAuthorizerData.authorize), neither counted nor logged.
    fn decide(&self, session: &Session, op: Operation, rt: ResourceType, name: &str) -> bool {
        if self.super_users.contains(&session.principal) {
            return true;
        }
        let index = self.read();
        let mut any_acl = false;
        let mut allowed = false;
        for acl in index.on(rt, name) {
            any_acl = true;
            match acl.verdict(&session.principal, &session.host, op) {
                Verdict::Deny => return false,
                Verdict::Allow => allowed = true,
                Verdict::Silent => {}
            }
        }
        allowed || (!any_acl && self.allow_if_no_acl)
    }

    /// Whether `session` may do `op` on at least one resource of type `rt`
    /// (`Authorizer.authorizeByResourceType`): an ALLOW on the `*` wildcard, or on a literal
    /// name or prefix no DENY of the same or a shorter prefix overrides.
    pub fn authorize_by_type(&self, session: &Session, op: Operation, rt: ResourceType) -> bool {
        if self.decide(session, op, rt, "hardcode") {
            return true;
        }
        let index = self.read();
        let applies = |acl: &&Acl| {
            acl.resource_type == rt
                && (acl.host == session.host || acl.host == super::acl::WILDCARD)
                && (acl.principal == session.principal
                    || acl.principal == super::acl::WILDCARD_PRINCIPAL)
                && (acl.operation == op || acl.operation == Operation::All)
        };
        let mut deny_literal = HashSet::new();
        let mut deny_prefixed = HashSet::new();
        let mut allows = Vec::new();
        let mut wildcard_allow = false;
        for acl in index.all.iter().filter(applies) {
            match (acl.permission, acl.pattern) {
                (Permission::Deny, PatternType::Literal) if acl.name == super::acl::WILDCARD => {
                    return false
                }
                (Permission::Deny, PatternType::Literal) => {
                    deny_literal.insert(acl.name.as_str());
                }
                (Permission::Deny, PatternType::Prefixed) => {
                    deny_prefixed.insert(acl.name.as_str());
                }
                // Decided only once every ACL is seen: a wildcard DENY later still wins.
                (Permission::Allow, PatternType::Literal) if acl.name == super::acl::WILDCARD => {
                    wildcard_allow = true
                }
                (Permission::Allow, _) => allows.push(acl),
            }
        }
        wildcard_allow
            || allows.iter().any(|acl| {
                if acl.pattern == PatternType::Literal && deny_literal.contains(acl.name.as_str()) {
                    return false;
                }
                !acl.name
                    .char_indices()
                    .map(|(i, c)| &acl.name[..i + c.len_utf8()])
                    .any(|prefix| deny_prefixed.contains(prefix))
            })
    }

    /// The `*_authorized_operations` bits of `ops` that `session` may do on the resource.
    pub fn authorized_operations(
        &self,
        session: &Session,
        rt: ResourceType,
        name: &str,
        ops: &[Operation],
    ) -> i32 {
        ops.iter()
            .filter(|op| self.decide(session, **op, rt, name))
            .fold(0, |bits, op| bits | op.bit())
    }

    /// CreateAcls: stores the valid ACLs durably (an ACL that exists already is a success),
    /// unless more than `max` are new.
    pub fn create(&self, acls: &[Acl], max: usize) -> Result<(), ChangeError> {
        let _one = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let new: BTreeSet<&Acl> = {
            let index = self.read();
            acls.iter().filter(|a| !index.all.contains(*a)).collect()
        };
        if new.len() > max {
            return Err(ChangeError::TooMany);
        }
        if new.is_empty() {
            return Ok(());
        }
        let mut batch = sled::Batch::default();
        for acl in &new {
            batch.insert(key(acl)?, &[][..]);
        }
        self.tree.apply_batch(batch).map_err(to_io)?;
        self.db.flush().map_err(to_io)?;
        let mut all = self.read().all.clone();
        all.extend(acls.iter().cloned());
        self.swap(all);
        Ok(())
    }

    /// DescribeAcls: the ACLs `filter` matches, in a stable order.
    pub fn describe(&self, filter: &Filter) -> Vec<Acl> {
        self.read()
            .all
            .iter()
            .filter(|a| filter.matches(a))
            .cloned()
            .collect()
    }

    /// DeleteAcls: removes what the filters match, durably, unless that is more than `max`
    /// ACLs; what each filter matched (an ACL matched by two filters is listed under both).
    pub fn delete(&self, filters: &[Filter], max: usize) -> Result<Vec<Vec<Acl>>, ChangeError> {
        let _one = self.changing.lock().unwrap_or_else(|p| p.into_inner());
        let mut all = self.read().all.clone();
        let removed: Vec<Vec<Acl>> = filters
            .iter()
            .map(|f| all.iter().filter(|a| f.matches(a)).cloned().collect())
            .collect();
        let mut gone: BTreeSet<&Acl> = BTreeSet::new();
        for acl in removed.iter().flatten() {
            gone.insert(acl);
            if gone.len() > max {
                return Err(ChangeError::TooMany);
            }
        }
        let mut batch = sled::Batch::default();
        for acl in &gone {
            all.remove(*acl);
            batch.remove(key(acl)?);
        }
        if !gone.is_empty() {
            self.tree.apply_batch(batch).map_err(to_io)?;
            self.db.flush().map_err(to_io)?;
            self.swap(all);
        }
        Ok(removed)
    }

    fn swap(&self, all: BTreeSet<Acl>) {
        metrics::gauge!("kafka_server_authorizer_metrics_acls_total_count").set(all.len() as f64);
        let index = Index::build(all);
        *self.index.write().unwrap_or_else(|p| p.into_inner()) = index;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::security::acl::validate_new;

    fn authorizer(dir: &tempfile::TempDir, allow_if_no_acl: bool) -> Authorizer {
        let db = sled::open(dir.path()).unwrap();
        Authorizer::open(&db, "User:admin; User:root", allow_if_no_acl).unwrap()
    }

    impl Authorizer {
        fn create_all(&self, acls: &[Acl]) -> Result<(), ChangeError> {
            self.create(acls, MAX_CHANGES)
        }
    }

    fn session(user: &str) -> Session {
        Session::new(format!("User:{user}"), "127.0.0.1:5000".parse().unwrap())
    }

    /// (resource type, name, pattern, principal, operation, permission) with any host.
    fn acl(rt: i8, name: &str, pattern: i8, principal: &str, op: i8, permission: i8) -> Acl {
        validate_new(rt, name, pattern, principal, "*", op, permission).unwrap()
    }

    const TOPIC: i8 = 2;
    const LITERAL: i8 = 3;
    const PREFIXED: i8 = 4;
    const READ: i8 = 3;
    const WRITE: i8 = 4;
    const ALL: i8 = 2;
    const DENY: i8 = 2;
    const ALLOW: i8 = 3;

    #[test]
    fn deny_wins_super_users_bypass_and_no_acl_rule() {
        let dir = tempfile::tempdir().unwrap();
        let a = authorizer(&dir, false);
        let t = ResourceType::Topic;
        assert!(!a.authorize(&session("alice"), Operation::Read, t, "orders"));
        assert!(a.authorize(&session("admin"), Operation::Read, t, "orders"));
        a.create_all(&[
            acl(TOPIC, "ord", PREFIXED, "User:alice", READ, ALLOW),
            acl(TOPIC, "orders-secret", LITERAL, "User:*", ALL, DENY),
        ])
        .unwrap();
        assert!(a.authorize(&session("alice"), Operation::Read, t, "orders"));
        assert!(a.authorize(&session("alice"), Operation::Describe, t, "orders"));
        assert!(!a.authorize(&session("alice"), Operation::Write, t, "orders"));
        assert!(!a.authorize(&session("alice"), Operation::Read, t, "orders-secret"));
        assert!(a.authorize(&session("root"), Operation::Read, t, "orders-secret"));
        assert!(!a.authorize(&session("bob"), Operation::Read, t, "orders"));

        // allow.everyone.if.no.acl.found: only where no ACL names the resource at all.
        let dir2 = tempfile::tempdir().unwrap();
        let open = authorizer(&dir2, true);
        open.create_all(&[acl(TOPIC, "orders", LITERAL, "User:alice", READ, ALLOW)])
            .unwrap();
        assert!(open.authorize(&session("bob"), Operation::Read, t, "other"));
        assert!(!open.authorize(&session("bob"), Operation::Read, t, "orders"));
    }

    #[test]
    fn acls_survive_a_restart_and_deletes_report_each_once() {
        let dir = tempfile::tempdir().unwrap();
        {
            let a = authorizer(&dir, false);
            a.create_all(&[
                acl(TOPIC, "a", LITERAL, "User:alice", READ, ALLOW),
                acl(TOPIC, "b", LITERAL, "User:alice", WRITE, ALLOW),
                acl(TOPIC, "a", LITERAL, "User:alice", READ, ALLOW),
            ])
            .unwrap();
        }
        let a = authorizer(&dir, false);
        let any = Filter::from_wire(1, None, 1, None, None, 1, 1).unwrap();
        assert!(matches!(
            a.delete(std::slice::from_ref(&any), 1),
            Err(ChangeError::TooMany)
        ));
        assert_eq!(a.describe(&any).len(), 2);
        let only_a = Filter::from_wire(2, Some("a"), 3, None, None, 1, 1).unwrap();
        let removed = a.delete(&[only_a, any.clone()], MAX_CHANGES).unwrap();
        assert_eq!(removed.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2]);
        assert!(a.describe(&any).is_empty());
        drop(a);
        assert!(authorizer(&dir, false).describe(&any).is_empty());
    }

    #[test]
    fn by_resource_type_as_kafka_decides_it() {
        let dir = tempfile::tempdir().unwrap();
        let a = authorizer(&dir, false);
        let t = ResourceType::Topic;
        assert!(!a.authorize_by_type(&session("alice"), Operation::Write, t));
        a.create_all(&[acl(TOPIC, "logs-", PREFIXED, "User:alice", WRITE, ALLOW)])
            .unwrap();
        assert!(a.authorize_by_type(&session("alice"), Operation::Write, t));
        a.create_all(&[acl(TOPIC, "log", PREFIXED, "User:alice", WRITE, DENY)])
            .unwrap();
        assert!(!a.authorize_by_type(&session("alice"), Operation::Write, t));
        assert!(a.authorize_by_type(&session("admin"), Operation::Write, t));

        // "Everyone but alice": a wildcard DENY wins over a wildcard ALLOW, whichever is seen
        // first.
        let dir = tempfile::tempdir().unwrap();
        let a = authorizer(&dir, false);
        a.create_all(&[
            acl(TOPIC, "*", LITERAL, "User:*", WRITE, ALLOW),
            acl(TOPIC, "*", LITERAL, "User:alice", WRITE, DENY),
        ])
        .unwrap();
        assert!(!a.authorize_by_type(&session("alice"), Operation::Write, t));
        assert!(a.authorize_by_type(&session("bob"), Operation::Write, t));
    }

    #[test]
    fn many_prefixes_are_found_per_length() {
        let dir = tempfile::tempdir().unwrap();
        let a = authorizer(&dir, false);
        let acls: Vec<Acl> = (0..2000)
            .map(|i| {
                acl(
                    TOPIC,
                    &format!("p{i}-"),
                    PREFIXED,
                    "User:alice",
                    READ,
                    ALLOW,
                )
            })
            .collect();
        a.create_all(&acls).unwrap();
        assert!(a.authorize(
            &session("alice"),
            Operation::Read,
            ResourceType::Topic,
            "p1999-x"
        ));
        assert!(!a.authorize(
            &session("alice"),
            Operation::Read,
            ResourceType::Topic,
            "p2000-x"
        ));
        let long = "é".repeat(40_000);
        assert!(!a.authorize(
            &session("alice"),
            Operation::Read,
            ResourceType::Topic,
            &long
        ));
    }

    #[test]
    fn java_host_addresses() {
        assert_eq!(java_host_address("::1".parse().unwrap()), "0:0:0:0:0:0:0:1");
        assert_eq!(
            java_host_address("::ffff:10.1.2.3".parse().unwrap()),
            "10.1.2.3"
        );
        assert_eq!(
            java_host_address("fe80::ab:1".parse().unwrap()),
            "fe80:0:0:0:0:0:ab:1"
        );
    }
}
