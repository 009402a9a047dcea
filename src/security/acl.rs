//! ACLs as Kafka models them (`org.apache.kafka.common.acl` and `common.resource`): the codes
//! the protocol carries, an ACL binding, the filters DescribeAcls and DeleteAcls take, and the
//! checks Kafka makes before it stores a new ACL.

use serde::{Deserialize, Serialize};

/// Kafka's `ResourceType` codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ResourceType {
    Topic = 2,
    Group = 3,
    Cluster = 4,
    TransactionalId = 5,
    DelegationToken = 6,
    User = 7,
}

impl ResourceType {
    pub fn from_code(code: i8) -> Option<ResourceType> {
        Some(match code {
            2 => ResourceType::Topic,
            3 => ResourceType::Group,
            4 => ResourceType::Cluster,
            5 => ResourceType::TransactionalId,
            6 => ResourceType::DelegationToken,
            7 => ResourceType::User,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            ResourceType::Topic => "TOPIC",
            ResourceType::Group => "GROUP",
            ResourceType::Cluster => "CLUSTER",
            ResourceType::TransactionalId => "TRANSACTIONAL_ID",
            ResourceType::DelegationToken => "DELEGATION_TOKEN",
            ResourceType::User => "USER",
        }
    }
}

/// A stored pattern's type: Kafka's `PatternType` LITERAL and PREFIXED.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum PatternType {
    Literal = 3,
    Prefixed = 4,
}

/// Kafka's `PatternType` codes a filter may also carry.
pub const PATTERN_ANY: i8 = 1;
pub const PATTERN_MATCH: i8 = 2;

impl PatternType {
    pub fn from_code(code: i8) -> Option<PatternType> {
        match code {
            3 => Some(PatternType::Literal),
            4 => Some(PatternType::Prefixed),
            _ => None,
        }
    }
}

/// Kafka's `AclOperation` codes (UNKNOWN 0 and ANY 1 are filter-only).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Operation {
    All = 2,
    Read = 3,
    Write = 4,
    Create = 5,
    Delete = 6,
    Alter = 7,
    Describe = 8,
    ClusterAction = 9,
    DescribeConfigs = 10,
    AlterConfigs = 11,
    IdempotentWrite = 12,
    CreateTokens = 13,
    DescribeTokens = 14,
    TwoPhaseCommit = 15,
}

impl Operation {
    pub fn from_code(code: i8) -> Option<Operation> {
        use Operation::*;
        Some(match code {
            2 => All,
            3 => Read,
            4 => Write,
            5 => Create,
            6 => Delete,
            7 => Alter,
            8 => Describe,
            9 => ClusterAction,
            10 => DescribeConfigs,
            11 => AlterConfigs,
            12 => IdempotentWrite,
            13 => CreateTokens,
            14 => DescribeTokens,
            15 => TwoPhaseCommit,
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use Operation::*;
        match self {
            All => "ALL",
            Read => "READ",
            Write => "WRITE",
            Create => "CREATE",
            Delete => "DELETE",
            Alter => "ALTER",
            Describe => "DESCRIBE",
            ClusterAction => "CLUSTER_ACTION",
            DescribeConfigs => "DESCRIBE_CONFIGS",
            AlterConfigs => "ALTER_CONFIGS",
            IdempotentWrite => "IDEMPOTENT_WRITE",
            CreateTokens => "CREATE_TOKENS",
            DescribeTokens => "DESCRIBE_TOKENS",
            TwoPhaseCommit => "TWO_PHASE_COMMIT",
        }
    }

    /// The bit of this operation in the `*_authorized_operations` fields.
    pub fn bit(self) -> i32 {
        1 << (self as i32)
    }

    /// Whether an ALLOW ACL for `self` also allows `wanted` (StandardAuthorizerData.findResult:
    /// READ, WRITE, DELETE and ALTER imply DESCRIBE; ALTER_CONFIGS implies DESCRIBE_CONFIGS).
    fn allows(self, wanted: Operation) -> bool {
        use Operation::*;
        self == All
            || self == wanted
            || (wanted == Describe && matches!(self, Read | Write | Delete | Alter))
            || (wanted == DescribeConfigs && self == AlterConfigs)
    }
}

/// Kafka's `AclPermissionType` codes DENY and ALLOW.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Permission {
    Deny = 2,
    Allow = 3,
}

impl Permission {
    pub fn from_code(code: i8) -> Option<Permission> {
        match code {
            2 => Some(Permission::Deny),
            3 => Some(Permission::Allow),
            _ => None,
        }
    }
}

/// The resource name that, as a LITERAL pattern, matches every resource of its type.
pub const WILDCARD: &str = "*";
/// The principal that matches every user.
pub const WILDCARD_PRINCIPAL: &str = "User:*";
/// The only name a CLUSTER resource has.
pub const CLUSTER_NAME: &str = "kafka-cluster";

/// One ACL binding: a resource pattern and an access control entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Acl {
    pub resource_type: ResourceType,
    pub name: String,
    pub pattern: PatternType,
    /// `Type:name`, as given (Kafka compares the parsed type and name, which is the same).
    pub principal: String,
    pub host: String,
    pub operation: Operation,
    pub permission: Permission,
}

/// A rule that decides one request: the answer and whether the ACL applies to this principal,
/// host and operation.
#[derive(Debug, PartialEq, Eq)]
pub enum Verdict {
    Allow,
    Deny,
    /// The ACL is on the resource but says nothing of this request.
    Silent,
}

impl Acl {
    /// What this ACL (already known to be on the resource) says of `principal` from `host`
    /// doing `wanted` (StandardAuthorizerData.findResult).
    pub fn verdict(&self, principal: &str, host: &str, wanted: Operation) -> Verdict {
        if self.principal != principal && self.principal != WILDCARD_PRINCIPAL {
            return Verdict::Silent;
        }
        if self.host != WILDCARD && self.host != host {
            return Verdict::Silent;
        }
        let applies = match self.permission {
            Permission::Allow => self.operation.allows(wanted),
            // A DENY of READ does not deny DESCRIBE: implication is for ALLOW only.
            Permission::Deny => self.operation == Operation::All || self.operation == wanted,
        };
        match (applies, self.permission) {
            (false, _) => Verdict::Silent,
            (true, Permission::Allow) => Verdict::Allow,
            (true, Permission::Deny) => Verdict::Deny,
        }
    }

    /// Whether this ACL's pattern applies to the resource `name` of its type.
    pub fn covers(&self, name: &str) -> bool {
        match self.pattern {
            PatternType::Literal => self.name == name || self.name == WILDCARD,
            PatternType::Prefixed => name.starts_with(&self.name),
        }
    }
}

/// Why Kafka refuses a CreateAcls entry whose codes parse (see [`parsable`]).
#[derive(Debug, PartialEq, Eq)]
pub enum Refusal {
    /// An ANY (or MATCH) code where an ACL needs a value: the whole request fails with
    /// UNKNOWN_SERVER_ERROR.
    Unbindable,
    /// This entry alone fails with INVALID_REQUEST and this message.
    Invalid(String),
}

/// Whether `code` is one of the values the protocol defines up to `max` (UNKNOWN, 0, is not).
fn known(code: i8, max: i8) -> bool {
    (1..=max).contains(&code)
}

/// Why Kafka cannot parse a CreateAclsRequest (and closes the connection).
pub const UNPARSABLE: &str = "CreateAclsRequest contains UNKNOWN elements";

/// Whether Kafka can parse a new ACL's codes at all (no UNKNOWN, no code it does not know); a
/// cheap check made before anything else, as Kafka makes it when it reads the request.
pub fn parsable(resource_type: i8, pattern: i8, operation: i8, permission: i8) -> bool {
    known(resource_type, ResourceType::User as i8)
        && known(pattern, PatternType::Prefixed as i8)
        && known(operation, Operation::TwoPhaseCommit as i8)
        && known(permission, Permission::Allow as i8)
}

/// Checks a CreateAcls entry whose codes are [`parsable`] as Kafka does (AclApis and
/// AclControlManager.validateNewAcl, in that order).
pub fn validate_new(
    resource_type: i8,
    name: &str,
    pattern: i8,
    principal: &str,
    host: &str,
    operation: i8,
    permission: i8,
) -> Result<Acl, Refusal> {
    let (Some(resource_type), Some(pattern), Some(operation), Some(permission)) = (
        ResourceType::from_code(resource_type),
        PatternType::from_code(pattern),
        Operation::from_code(operation),
        Permission::from_code(permission),
    ) else {
        return Err(Refusal::Unbindable);
    };
    if resource_type == ResourceType::Cluster && name != CLUSTER_NAME {
        return Err(Refusal::Invalid(
            "The only valid name for the CLUSTER resource is kafka-cluster".into(),
        ));
    }
    if name.is_empty() {
        return Err(Refusal::Invalid("Invalid empty resource name".into()));
    }
    parse_principal(principal).map_err(Refusal::Invalid)?;
    Ok(Acl {
        resource_type,
        name: name.to_string(),
        pattern,
        principal: principal.to_string(),
        host: host.to_string(),
        operation,
        permission,
    })
}

/// Kafka's `SecurityUtils.parseKafkaPrincipal`: `Type:name`, the type before the first colon.
pub fn parse_principal(principal: &str) -> Result<(&str, &str), String> {
    principal.split_once(':').ok_or_else(|| {
        format!(
            "Could not parse principal from `{principal}` (no colon is present separating the principal type from the principal name)"
        )
    })
}

/// A DescribeAcls or DeleteAcls filter (`AclBindingFilter`): `None` fields match anything.
#[derive(Debug, Clone)]
pub struct Filter {
    pub resource_type: Option<ResourceType>,
    pub name: Option<String>,
    /// `PATTERN_ANY`, `PATTERN_MATCH`, or a stored type's code.
    pub pattern: i8,
    pub principal: Option<String>,
    pub host: Option<String>,
    pub operation: Option<Operation>,
    pub permission: Option<Permission>,
}

impl Filter {
    /// A filter from its wire fields; `None` when one is UNKNOWN (Kafka does not parse such a
    /// request and closes the connection).
    #[allow(clippy::too_many_arguments)]
    pub fn from_wire(
        resource_type: i8,
        name: Option<&str>,
        pattern: i8,
        principal: Option<&str>,
        host: Option<&str>,
        operation: i8,
        permission: i8,
    ) -> Option<Filter> {
        if !parsable(resource_type, pattern, operation, permission) {
            return None;
        }
        Some(Filter {
            resource_type: ResourceType::from_code(resource_type),
            name: name.map(str::to_string),
            pattern,
            principal: principal.map(str::to_string),
            host: host.map(str::to_string),
            operation: Operation::from_code(operation),
            permission: Permission::from_code(permission),
        })
    }

    /// `AclBindingFilter.matches`.
    pub fn matches(&self, acl: &Acl) -> bool {
        self.matches_pattern(acl)
            && self.principal.as_ref().is_none_or(|p| *p == acl.principal)
            && self.host.as_ref().is_none_or(|h| *h == acl.host)
            && self.operation.is_none_or(|o| o == acl.operation)
            && self.permission.is_none_or(|p| p == acl.permission)
    }

    /// `ResourcePatternFilter.matches`: MATCH finds the patterns that apply to a name.
    fn matches_pattern(&self, acl: &Acl) -> bool {
        if self.resource_type.is_some_and(|t| t != acl.resource_type) {
            return false;
        }
        let exact = self.pattern == PATTERN_ANY || self.pattern == acl.pattern as i8;
        if !exact && self.pattern != PATTERN_MATCH {
            return false;
        }
        let Some(name) = &self.name else {
            return true;
        };
        if exact {
            return *name == acl.name;
        }
        acl.covers(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn acl(pattern: PatternType, name: &str, op: Operation, permission: Permission) -> Acl {
        Acl {
            resource_type: ResourceType::Topic,
            name: name.into(),
            pattern,
            principal: "User:alice".into(),
            host: "*".into(),
            operation: op,
            permission,
        }
    }

    #[test]
    fn allow_implies_describe_but_deny_does_not() {
        let read = acl(
            PatternType::Literal,
            "t",
            Operation::Read,
            Permission::Allow,
        );
        assert_eq!(
            read.verdict("User:alice", "1.2.3.4", Operation::Describe),
            Verdict::Allow
        );
        assert_eq!(
            read.verdict("User:alice", "1.2.3.4", Operation::Write),
            Verdict::Silent
        );
        let deny_read = acl(PatternType::Literal, "t", Operation::Read, Permission::Deny);
        assert_eq!(
            deny_read.verdict("User:alice", "h", Operation::Describe),
            Verdict::Silent
        );
        assert_eq!(
            deny_read.verdict("User:alice", "h", Operation::Read),
            Verdict::Deny
        );
        let alter_configs = acl(
            PatternType::Literal,
            "t",
            Operation::AlterConfigs,
            Permission::Allow,
        );
        assert_eq!(
            alter_configs.verdict("User:alice", "h", Operation::DescribeConfigs),
            Verdict::Allow
        );
        assert_eq!(
            alter_configs.verdict("User:alice", "h", Operation::Describe),
            Verdict::Silent
        );
        let all = acl(PatternType::Literal, "t", Operation::All, Permission::Deny);
        assert_eq!(
            all.verdict("User:alice", "h", Operation::Describe),
            Verdict::Deny
        );
        assert_eq!(
            all.verdict("User:bob", "h", Operation::Describe),
            Verdict::Silent
        );
    }

    #[test]
    fn wildcard_principal_and_host() {
        let mut a = acl(
            PatternType::Literal,
            "t",
            Operation::Read,
            Permission::Allow,
        );
        a.principal = WILDCARD_PRINCIPAL.into();
        a.host = "10.0.0.1".into();
        assert_eq!(
            a.verdict("User:anyone", "10.0.0.1", Operation::Read),
            Verdict::Allow
        );
        assert_eq!(
            a.verdict("User:anyone", "10.0.0.2", Operation::Read),
            Verdict::Silent
        );
    }

    #[test]
    fn patterns_cover_names() {
        assert!(acl(
            PatternType::Literal,
            "*",
            Operation::Read,
            Permission::Allow
        )
        .covers("x"));
        assert!(acl(
            PatternType::Prefixed,
            "pay",
            Operation::Read,
            Permission::Allow
        )
        .covers("payments"));
        assert!(!acl(
            PatternType::Prefixed,
            "pay",
            Operation::Read,
            Permission::Allow
        )
        .covers("pa"));
        // A PREFIXED "*" is a prefix like any other.
        assert!(!acl(
            PatternType::Prefixed,
            "*",
            Operation::Read,
            Permission::Allow
        )
        .covers("x"));
    }

    #[test]
    fn filters_as_kafka_matches_them() {
        let prefixed = acl(
            PatternType::Prefixed,
            "pay",
            Operation::Read,
            Permission::Allow,
        );
        let literal = acl(
            PatternType::Literal,
            "payments",
            Operation::Read,
            Permission::Allow,
        );
        let wildcard = acl(
            PatternType::Literal,
            "*",
            Operation::Read,
            Permission::Allow,
        );
        let f = |name: Option<&str>, pattern: i8| {
            Filter::from_wire(2, name, pattern, None, None, 1, 1).unwrap()
        };
        let matched = |f: &Filter| -> Vec<bool> {
            [&prefixed, &literal, &wildcard]
                .iter()
                .map(|a| f.matches(a))
                .collect()
        };
        assert_eq!(
            matched(&f(Some("payments"), PATTERN_MATCH)),
            [true, true, true]
        );
        assert_eq!(
            matched(&f(Some("payments"), PATTERN_ANY)),
            [false, true, false]
        );
        assert_eq!(matched(&f(Some("pay"), 4)), [true, false, false]);
        assert_eq!(matched(&f(None, 3)), [false, true, true]);
        assert_eq!(matched(&f(None, PATTERN_ANY)), [true, true, true]);
        assert!(Filter::from_wire(0, None, 1, None, None, 1, 1).is_none());
        assert!(Filter::from_wire(2, None, 0, None, None, 1, 1).is_none());
        assert!(Filter::from_wire(2, None, 5, None, None, 1, 1).is_none());
        assert!(Filter::from_wire(2, None, 1, None, None, 16, 1).is_none());
    }

    #[test]
    fn new_acls_are_checked_as_kafka_checks_them() {
        let ok = validate_new(2, "t", 3, "User:a", "*", 3, 3).unwrap();
        assert_eq!(ok.operation, Operation::Read);
        let invalid = |m: &str| Err(Refusal::Invalid(m.into()));
        assert_eq!(
            validate_new(4, "", 3, "User:a", "*", 7, 3),
            invalid("The only valid name for the CLUSTER resource is kafka-cluster")
        );
        assert_eq!(
            validate_new(2, "", 3, "User:a", "*", 3, 3),
            invalid("Invalid empty resource name")
        );
        assert_eq!(
            validate_new(1, "t", 3, "User:a", "*", 3, 3),
            Err(Refusal::Unbindable)
        );
        assert_eq!(
            validate_new(2, "t", 2, "User:a", "*", 3, 3),
            Err(Refusal::Unbindable)
        );
        assert_eq!(
            validate_new(2, "t", 3, "User:a", "*", 1, 3),
            Err(Refusal::Unbindable)
        );
        assert_eq!(
            validate_new(2, "t", 3, "User:a", "*", 3, 1),
            Err(Refusal::Unbindable)
        );
        assert!(parsable(2, 3, 3, 3) && parsable(1, 2, 1, 1));
        assert!(!parsable(0, 3, 3, 3) && !parsable(2, 3, 3, 4) && !parsable(2, 5, 3, 3));
        assert_eq!(
            validate_new(2, "t", 3, "alice", "*", 3, 3),
            invalid("Could not parse principal from `alice` (no colon is present separating the principal type from the principal name)")
        );
        // Kafka checks neither the principal's type nor the host.
        assert!(validate_new(2, "t", 3, "Group:x", "not a host", 3, 3).is_ok());
    }
}
