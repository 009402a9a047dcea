//! `listeners`, `advertised.listeners` and `listener.security.protocol.map` as Kafka reads them:
//! every client listener is served (controller listeners, `controller.listener.names`, are not: a
//! single node has no quorum to serve), each under its name, and clients are told the advertised
//! endpoint of the listener they connected to. Each of Kafka's security protocols is served with
//! the TLS and SASL authentication `security` configures for the listener; a listener whose
//! security cannot be set up stops start-up: serving it would serve it without the security asked
//! for.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::values::invalid;
use super::ConfigError;
use crate::security::tls::Tls;
use crate::security::SaslConfig;

/// A host and port.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    pub host: String,
    pub port: u16,
}

/// A listener clients connect to: its name, where it binds, what clients connected to it are told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listener {
    pub name: String,
    pub bind: Endpoint,
    pub advertised: Endpoint,
    /// How clients authenticate on SASL_PLAINTEXT and SASL_SSL listeners.
    pub sasl: Option<Arc<SaslConfig>>,
    /// TLS on SSL and SASL_SSL listeners.
    pub tls: Option<Tls>,
}

/// gregor's embedded default: `PLAINTEXT://127.0.0.1:9092` (Kafka's `PLAINTEXT://:9092`).
const DEFAULT_LISTENERS: &str = "PLAINTEXT://127.0.0.1:9092";

/// Kafka's security protocols.
const PROTOCOLS: [&str; 4] = ["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"];

/// `NAME://host:port,...` as (upper-cased name, endpoint) pairs.
pub(super) fn parse_endpoints(key: &str, v: &str) -> Result<Vec<(String, Endpoint)>, ConfigError> {
    let mut out = Vec::new();
    for part in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let bad = |reason: &str| invalid(key, v, reason);
        let (name, addr) = part
            .split_once("://")
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let (host, port) = addr
            .rsplit_once(':')
            .ok_or_else(|| bad("expected NAME://host:port"))?;
        let port: u16 = port
            .parse()
            .map_err(|_| bad(&format!("bad port '{port}'")))?;
        if name.is_empty() || name.bytes().any(|b| b.is_ascii_whitespace() || b == b':') {
            return Err(bad(&format!("bad listener name '{name}'")));
        }
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_string();
        out.push((name.to_ascii_uppercase(), Endpoint { host, port }));
    }
    Ok(out)
}

/// `listener.security.protocol.map`: listener name → security protocol (Kafka's default maps each
/// protocol's name to itself).
pub(super) fn protocol_map(
    raw: &BTreeMap<String, String>,
) -> Result<BTreeMap<String, String>, ConfigError> {
    const KEY: &str = "listener.security.protocol.map";
    let Some(v) = raw.get(KEY) else {
        return Ok(PROTOCOLS
            .iter()
            .map(|p| (p.to_string(), p.to_string()))
            .collect());
    };
    let mut map = BTreeMap::new();
    for pair in v.split(',').map(str::trim).filter(|p| !p.is_empty()) {
        let (name, protocol) = pair
            .split_once(':')
            .ok_or_else(|| invalid(KEY, v, "expected NAME:PROTOCOL,..."))?;
        let protocol = protocol.trim().to_ascii_uppercase();
        if !PROTOCOLS.contains(&protocol.as_str()) {
            return Err(invalid(
                KEY,
                v,
                &format!("unknown security protocol '{protocol}'"),
            ));
        }
        map.insert(name.trim().to_ascii_uppercase(), protocol);
    }
    Ok(map)
}

/// The client listeners the configuration describes, in the order given.
pub(super) fn listeners(raw: &BTreeMap<String, String>) -> Result<Vec<Arc<Listener>>, ConfigError> {
    let controllers: Vec<String> = raw
        .get("controller.listener.names")
        .map_or("", String::as_str)
        .split(',')
        .map(|n| n.trim().to_ascii_uppercase())
        .filter(|n| !n.is_empty())
        .collect();
    let value = raw
        .get("listeners")
        .map_or(DEFAULT_LISTENERS, String::as_str);
    let all = parse_endpoints("listeners", value)?;
    for (i, (name, e)) in all.iter().enumerate() {
        let rest = &all[i + 1..];
        if rest.iter().any(|(n, _)| n == name) {
            return Err(invalid(
                "listeners",
                value,
                "Each listener must have a different name",
            ));
        }
        // As Kafka: a port is shared only by one IPv4 and one IPv6 listener.
        let family = |h: &str| h.parse::<std::net::IpAddr>().ok().map(|ip| ip.is_ipv4());
        let shared = |o: &Endpoint| match (family(&e.host), family(&o.host)) {
            (Some(a), Some(b)) => a != b,
            _ => false,
        };
        if e.port != 0 && rest.iter().any(|(_, o)| o.port == e.port && !shared(o)) {
            return Err(invalid(
                "listeners",
                value,
                "Each listener must have a different port unless exactly one listener has an IPv4 address and the other listener has an IPv6 address",
            ));
        }
    }
    let protocols = protocol_map(raw)?;
    let advertised = match raw.get("advertised.listeners") {
        Some(v) => {
            let given = parse_endpoints("advertised.listeners", v)?;
            if given.iter().any(|(_, e)| e.host == "0.0.0.0") {
                return Err(invalid(
                    "advertised.listeners",
                    v,
                    "advertised.listeners cannot use the nonroutable meta-address 0.0.0.0. Use a routable IP address.",
                ));
            }
            if let Some((name, _)) = given.iter().find(|(n, _)| !all.iter().any(|(l, _)| l == n)) {
                return Err(invalid(
                    "advertised.listeners",
                    v,
                    &format!("listener {name} is not in listeners: advertised.listeners names must be a subset of those of listeners"),
                ));
            }
            given
        }
        None => Vec::new(),
    };
    let mut out = Vec::new();
    for (name, bind) in all {
        if controllers.contains(&name) {
            continue;
        }
        let protocol = protocols.get(&name).ok_or_else(|| {
            invalid(
                "listener.security.protocol.map",
                raw.get("listener.security.protocol.map")
                    .map_or("", String::as_str),
                &format!("No security protocol defined for listener {name}"),
            )
        })?;
        let sasl = match protocol.as_str() {
            "SASL_PLAINTEXT" | "SASL_SSL" => Some(Arc::new(SaslConfig::load(raw, &name)?)),
            _ => None,
        };
        let tls = match protocol.as_str() {
            "SSL" | "SASL_SSL" => Some(Tls::load(raw, &name)?),
            _ => None,
        };
        // An empty or wildcard host is advertised as `localhost` (Kafka: the canonical host name);
        // port 0 as the port bound (see `main`).
        let given = advertised
            .iter()
            .find(|(n, _)| *n == name)
            .map_or(&bind, |(_, e)| e);
        let advertised = Endpoint {
            host: if given.host.is_empty() || given.host == "0.0.0.0" || given.host == "::" {
                "localhost".into()
            } else {
                given.host.clone()
            },
            port: given.port,
        };
        out.push(Arc::new(Listener {
            name,
            bind,
            advertised,
            sasl,
            tls,
        }));
    }
    if out.is_empty() {
        return Err(invalid(
            "listeners",
            value,
            "no client listener (every listener is a controller listener)",
        ));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Vec<Arc<Listener>>, ConfigError> {
        listeners(
            &pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    fn endpoint(host: &str, port: u16) -> Endpoint {
        Endpoint {
            host: host.into(),
            port,
        }
    }

    #[test]
    fn the_default_is_plaintext_on_localhost_9092() {
        let l = load(&[]).unwrap();
        assert_eq!(l.len(), 1);
        assert_eq!(
            *l[0],
            Listener {
                name: "PLAINTEXT".into(),
                bind: endpoint("127.0.0.1", 9092),
                advertised: endpoint("127.0.0.1", 9092),
                sasl: None,
                tls: None,
            }
        );
    }

    #[test]
    fn every_client_listener_is_served_with_its_own_advertised_endpoint() {
        let l = load(&[
            (
                "listeners",
                "INTERNAL://0.0.0.0:9092,external://:9094,CONTROLLER://:9093",
            ),
            (
                "advertised.listeners",
                "INTERNAL://gregor:9092,EXTERNAL://localhost:19094",
            ),
            (
                "listener.security.protocol.map",
                "INTERNAL:PLAINTEXT,EXTERNAL:plaintext,CONTROLLER:PLAINTEXT",
            ),
            ("controller.listener.names", "CONTROLLER"),
        ])
        .unwrap();
        let got: Vec<_> = l
            .iter()
            .map(|l| (l.name.as_str(), l.bind.clone(), l.advertised.clone()))
            .collect();
        assert_eq!(
            got,
            vec![
                (
                    "INTERNAL",
                    endpoint("0.0.0.0", 9092),
                    endpoint("gregor", 9092)
                ),
                ("EXTERNAL", endpoint("", 9094), endpoint("localhost", 19094)),
            ]
        );
    }

    #[test]
    fn security_that_cannot_be_set_up_is_refused_not_served_in_plaintext() {
        for (listeners, map, why) in [
            ("SASL_PLAINTEXT://:9092", None, "GSSAPI"),
            ("SSL://:9093", None, "needs a key store"),
            (
                "PLAINTEXT://:9092,SECURE://:9093",
                Some("PLAINTEXT:PLAINTEXT,SECURE:SSL"),
                "needs a key store",
            ),
        ] {
            let mut pairs = vec![("listeners", listeners)];
            pairs.extend(map.map(|m| ("listener.security.protocol.map", m)));
            let e = load(&pairs).unwrap_err().to_string();
            assert!(e.contains(why), "{e}");
        }
    }

    #[test]
    fn kafkas_listener_rules_hold() {
        let e = |pairs: &[(&str, &str)]| load(pairs).unwrap_err().to_string();
        assert!(
            e(&[("listeners", "PLAINTEXT://:9092,PLAINTEXT://:9093")]).contains("different name")
        );
        let map = (
            "listener.security.protocol.map",
            "PLAINTEXT:PLAINTEXT,OTHER:PLAINTEXT",
        );
        for same_port in [
            "PLAINTEXT://:9092,OTHER://:9092",
            "PLAINTEXT://127.0.0.1:9092,OTHER://127.0.0.2:9092",
            "PLAINTEXT://localhost:9092,OTHER://127.0.0.1:9092",
        ] {
            assert!(e(&[("listeners", same_port), map]).contains("different port"));
        }
        assert!(load(&[
            ("listeners", "PLAINTEXT://127.0.0.1:9092,OTHER://[::1]:9092"),
            map
        ])
        .is_ok());
        assert!(e(&[
            ("listeners", "PLAINTEXT://:9092"),
            ("advertised.listeners", "PLAINTEXT://0.0.0.0:9092")
        ])
        .contains("nonroutable meta-address 0.0.0.0"));
        let dashed = load(&[
            ("listeners", "in-1://:9092"),
            ("listener.security.protocol.map", "IN-1:PLAINTEXT"),
            ("advertised.listeners", "IN-1://:9092"),
        ])
        .unwrap();
        assert_eq!(
            (dashed[0].name.as_str(), dashed[0].advertised.host.as_str()),
            ("IN-1", "localhost")
        );
        assert!(e(&[("listeners", "OTHER://:9092")])
            .contains("No security protocol defined for listener OTHER"));
        assert!(e(&[
            ("listeners", "PLAINTEXT://:9092"),
            ("advertised.listeners", "PLAINTEXT://a:9092,EXTRA://b:1")
        ])
        .contains("EXTRA is not in listeners"));
        assert!(e(&[("listeners", "nonsense")]).contains("NAME://host:port"));
        assert!(e(&[
            ("listeners", "CONTROLLER://:9093"),
            ("controller.listener.names", "CONTROLLER")
        ])
        .contains("no client listener"));
    }
}
