//! The metadata quorum from Kafka's KRaft keys: `process.roles`, `controller.quorum.voters`,
//! `controller.listener.names` and the controller listener in `listeners`.
//!
//! A node is part of a cluster when `controller.quorum.voters` names a node other than itself;
//! otherwise (no voters, or only itself, as in Kafka's sample `server.properties`) it is a single
//! node exactly as before, its own quorum of one with nothing to agree with.

use std::collections::BTreeMap;

use super::listeners::{parse_endpoints, protocol_map, Endpoint};
use super::values::{invalid, opt_int};
use super::ConfigError;
use crate::security::tls::Tls;

/// One voter of `controller.quorum.voters`: `{id}@{host}:{port}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Voter {
    pub id: i32,
    pub endpoint: Endpoint,
}

/// TLS on the controller listener (`listener.security.protocol.map` maps it to SSL): the
/// listener's `ssl.*` keys serve it and connect to the other nodes' (with the key store as the
/// client certificate). With `ssl.client.auth=required` only nodes with a certificate the trust
/// store accepts get a word in.
#[derive(Clone)]
pub struct ControllerTls {
    pub acceptor: Tls,
    pub connector: tokio_rustls::TlsConnector,
}

impl std::fmt::Debug for ControllerTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.acceptor.fmt(f)
    }
}

impl PartialEq for ControllerTls {
    fn eq(&self, other: &Self) -> bool {
        self.acceptor == other.acceptor
    }
}

impl Eq for ControllerTls {}

/// What a node of a cluster needs to join the metadata quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuorumConfig {
    /// TLS on the controller listener, when it is an SSL listener.
    pub tls: Option<ControllerTls>,
    /// Every voter, this node among them, by id.
    pub voters: Vec<Voter>,
    /// The controller listener's name (the first of `controller.listener.names`).
    pub controller_listener: String,
    /// Where this node's controller listener binds.
    pub controller_bind: Endpoint,
    /// `broker.heartbeat.interval.ms`.
    pub heartbeat_interval_ms: u64,
    /// `broker.session.timeout.ms`: a broker not heard from for this long is fenced.
    pub session_timeout_ms: u64,
    /// `controller.quorum.election.timeout.ms`.
    pub election_timeout_ms: u64,
    /// `controller.quorum.election.backoff.max.ms`.
    pub election_backoff_max_ms: u64,
    /// `controller.quorum.request.timeout.ms`.
    pub request_timeout_ms: u64,
}

/// `controller.quorum.voters` as voters, in the order given.
fn voters(v: &str) -> Result<Vec<Voter>, ConfigError> {
    const KEY: &str = "controller.quorum.voters";
    let mut out: Vec<Voter> = Vec::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |reason: &str| invalid(KEY, v, reason);
        let (id, addr) = part
            .split_once('@')
            .ok_or_else(|| bad("expected {id}@{host}:{port},..."))?;
        let id: i32 = id
            .trim()
            .parse()
            .ok()
            .filter(|id| *id >= 0)
            .ok_or_else(|| bad(&format!("bad node id '{id}'")))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected {id}@{host}:{port},..."))?;
        let port: u16 = port
            .parse()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad(&format!("bad port '{port}'")))?;
        if host.is_empty() {
            return Err(bad("a voter needs a host"));
        }
        if out.iter().any(|o| o.id == id) {
            return Err(bad(&format!("node id {id} is listed twice")));
        }
        out.push(Voter {
            id,
            endpoint: Endpoint {
                host: host.trim_start_matches('[').trim_end_matches(']').into(),
                port,
            },
        });
    }
    Ok(out)
}

/// The quorum this node belongs to, or `None` for a single node.
pub(super) fn quorum(
    raw: &BTreeMap<String, String>,
    node_id: i32,
) -> Result<Option<QuorumConfig>, ConfigError> {
    let get = |k: &str| raw.get(k).map(String::as_str);
    let voters = voters(get("controller.quorum.voters").unwrap_or(""))?;
    if !voters.iter().any(|v| v.id != node_id) {
        if voters.is_empty() {
            let bootstrap = get("controller.quorum.bootstrap.servers").unwrap_or("");
            if bootstrap
                .split(',')
                .filter(|s| !s.trim().is_empty())
                .count()
                > 1
            {
                return Err(invalid(
                    "controller.quorum.bootstrap.servers",
                    bootstrap,
                    "a dynamic quorum is not supported: list the voters in controller.quorum.voters",
                ));
            }
        }
        return Ok(None);
    }
    let roles: Vec<String> = get("process.roles")
        .unwrap_or("")
        .split(',')
        .map(|r| r.trim().to_ascii_lowercase())
        .filter(|r| !r.is_empty())
        .collect();
    let combined = roles.len() == 2
        && ["broker", "controller"]
            .iter()
            .all(|r| roles.iter().any(|x| x == r));
    if !combined {
        return Err(invalid(
            "process.roles",
            get("process.roles").unwrap_or(""),
            "a node of a cluster must be broker,controller (combined mode); separate broker and controller roles are not supported yet",
        ));
    }
    if !voters.iter().any(|v| v.id == node_id) {
        return Err(invalid(
            "controller.quorum.voters",
            get("controller.quorum.voters").unwrap_or(""),
            &format!("node.id {node_id} is a controller but not one of the voters"),
        ));
    }
    let names = get("controller.listener.names").unwrap_or("");
    let first = names
        .split(',')
        .map(|n| n.trim().to_ascii_uppercase())
        .find(|n| !n.is_empty())
        .ok_or_else(|| {
            invalid(
                "controller.listener.names",
                names,
                "a controller needs a controller listener",
            )
        })?;
    let listeners = parse_endpoints("listeners", get("listeners").unwrap_or(""))?;
    let controller_bind = listeners
        .into_iter()
        .find(|(n, _)| *n == first)
        .map(|(_, e)| e)
        .ok_or_else(|| {
            invalid(
                "listeners",
                get("listeners").unwrap_or(""),
                &format!("the controller listener {first} (controller.listener.names) is not in listeners"),
            )
        })?;
    let me = voters
        .iter()
        .find(|v| v.id == node_id)
        .expect("checked above");
    if me.endpoint.port != controller_bind.port {
        return Err(invalid(
            "controller.quorum.voters",
            get("controller.quorum.voters").unwrap_or(""),
            &format!(
                "node {node_id}'s entry has port {}, but its controller listener {first} listens on {}",
                me.endpoint.port, controller_bind.port
            ),
        ));
    }
    // KRaft's default maps a controller listener with no explicit mapping to PLAINTEXT.
    let tls = match protocol_map(raw)?.get(&first).map(String::as_str) {
        None | Some("PLAINTEXT") => None,
        Some("SSL") => Some(ControllerTls {
            acceptor: Tls::load(raw, &first)?,
            connector: crate::security::tls::connector(raw, &first)?,
        }),
        Some(protocol) => {
            return Err(invalid(
                "listener.security.protocol.map",
                get("listener.security.protocol.map").unwrap_or(""),
                &format!("the controller listener {first} is {protocol}: PLAINTEXT and SSL controller listeners are implemented, SASL not yet"),
            ))
        }
    };
    let ms = |key: &str, default: i64| -> Result<u64, ConfigError> {
        Ok(opt_int(raw, key, default, 1, i64::from(i32::MAX))? as u64)
    };
    let heartbeat_interval_ms = ms("broker.heartbeat.interval.ms", 2000)?;
    let session_timeout_ms = ms("broker.session.timeout.ms", 9000)?;
    if session_timeout_ms <= heartbeat_interval_ms {
        return Err(invalid(
            "broker.session.timeout.ms",
            &session_timeout_ms.to_string(),
            "must be longer than broker.heartbeat.interval.ms",
        ));
    }
    Ok(Some(QuorumConfig {
        tls,
        voters,
        controller_listener: first,
        controller_bind,
        heartbeat_interval_ms,
        session_timeout_ms,
        election_timeout_ms: ms("controller.quorum.election.timeout.ms", 1000)?,
        election_backoff_max_ms: ms("controller.quorum.election.backoff.max.ms", 1000)?,
        request_timeout_ms: ms("controller.quorum.request.timeout.ms", 2000)?,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Option<QuorumConfig>, ConfigError> {
        let raw = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        quorum(&raw, 2)
    }

    const THREE: &str = "1@127.0.0.1:9093,2@127.0.0.1:9095,3@localhost:9097";

    #[test]
    fn no_voters_or_only_this_node_is_a_single_node() {
        assert_eq!(load(&[]).unwrap(), None);
        assert_eq!(
            load(&[
                ("process.roles", "broker,controller"),
                ("controller.quorum.voters", "2@localhost:9093"),
            ])
            .unwrap(),
            None
        );
        // Kafka's sample server.properties: a quorum of one found through bootstrap servers.
        assert_eq!(
            load(&[("controller.quorum.bootstrap.servers", "localhost:9093")]).unwrap(),
            None
        );
        assert!(load(&[(
            "controller.quorum.bootstrap.servers",
            "localhost:9093,localhost:9095"
        )])
        .is_err());
    }

    #[test]
    fn three_voters_in_combined_mode() {
        let q = load(&[
            ("process.roles", "broker, controller"),
            ("controller.quorum.voters", THREE),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "PLAINTEXT://:9094,CONTROLLER://127.0.0.1:9095"),
            ("broker.session.timeout.ms", "3000"),
        ])
        .unwrap()
        .unwrap();
        assert_eq!(q.voters.len(), 3);
        assert_eq!(q.voters[2].endpoint.host, "localhost");
        assert_eq!(q.controller_bind.port, 9095);
        assert_eq!(q.session_timeout_ms, 3000);
        assert_eq!(q.heartbeat_interval_ms, 2000);
    }

    #[test]
    fn refusals_name_the_key() {
        let base = [
            ("process.roles", "broker,controller"),
            ("controller.quorum.voters", THREE),
            ("controller.listener.names", "CONTROLLER"),
            ("listeners", "PLAINTEXT://:9094,CONTROLLER://:9095"),
        ];
        let with = |k: &str, v: &str| {
            let mut p: Vec<(&str, &str)> = base.iter().filter(|(x, _)| *x != k).copied().collect();
            p.push((k, v));
            match load(&p) {
                Err(ConfigError::Invalid { key, .. }) => key,
                other => panic!("{k}={v}: {other:?}"),
            }
        };
        assert_eq!(with("process.roles", "broker"), "process.roles");
        assert_eq!(with("process.roles", ""), "process.roles");
        assert_eq!(
            with("controller.quorum.voters", "1@h:1,3@h:3"),
            "controller.quorum.voters"
        );
        assert_eq!(
            with("controller.quorum.voters", "1@h:1,1@h:3"),
            "controller.quorum.voters"
        );
        assert_eq!(
            with("controller.quorum.voters", "x@h:1,2@h:3"),
            "controller.quorum.voters"
        );
        assert_eq!(
            with("controller.quorum.voters", "1@h:0,2@h:3"),
            "controller.quorum.voters"
        );
        assert_eq!(
            with("controller.listener.names", ""),
            "controller.listener.names"
        );
        assert_eq!(with("listeners", "PLAINTEXT://:9094"), "listeners");
        assert_eq!(
            with("broker.session.timeout.ms", "1000"),
            "broker.session.timeout.ms"
        );
        assert_eq!(
            with("listeners", "PLAINTEXT://:9094,CONTROLLER://:9099"),
            "controller.quorum.voters"
        );
        assert_eq!(
            with(
                "listener.security.protocol.map",
                "PLAINTEXT:PLAINTEXT,CONTROLLER:SASL_SSL"
            ),
            "listener.security.protocol.map"
        );
    }
}
