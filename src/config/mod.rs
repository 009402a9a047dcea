//! Broker configuration with Kafka's property names (`server.properties`) plus `--override`s.
//! Honoured keys are validated (an invalid value fails start-up naming the key and the value);
//! other Kafka keys are accepted with one warning each; keys Kafka does not know are warned about.

pub mod broker_configs;
pub mod describe;
pub mod group;
mod kafka_keys;
mod listeners;
pub mod quorum;
mod raw;
pub mod retention;
pub mod topic;
pub(crate) mod values;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use crate::group::GroupConfig;
use crate::log::rewrite::TopicCompression;
use crate::log::LogConfig;
pub use listeners::{Endpoint, Listener};
pub use raw::RawConfig;
pub use retention::CleanerConfig;
use values::{int, invalid, opt_bool, opt_int};

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot parse config file {path}: {message}")]
    Parse { path: PathBuf, message: String },
    #[error("--override expects key=value, got '{0}'")]
    Override(String),
    #[error("invalid value '{value}' for config '{key}': {reason}")]
    Invalid {
        key: String,
        value: String,
        reason: String,
    },
}

#[derive(Debug, Clone)]
pub struct Config {
    /// The client listeners (`listeners`, `advertised.listeners`), in configured order.
    pub listeners: Vec<Arc<Listener>>,
    /// The first of `log.dirs`: the meta store and the format file live here.
    pub data_dir: PathBuf,
    /// Every directory of `log.dirs` (`log.dir`), in configured order; partitions are spread
    /// over them (JBOD). `log_dirs[0] == data_dir`.
    pub log_dirs: Vec<PathBuf>,
    pub node_id: i32,
    pub num_partitions: i32,
    pub default_replication_factor: i16,
    pub auto_create_topics: bool,
    pub socket_request_max_bytes: usize,
    /// `queued.max.request.bytes`: request bytes buffered across all connections before reading
    /// from sockets waits (back-pressure); `None` is unbounded.
    pub queued_max_request_bytes: Option<usize>,
    /// `gregor.log.dir.min.free.bytes`: produce is refused while less is free (0: never).
    pub log_dir_min_free_bytes: u64,
    /// `connections.max.idle.ms`: a connection with no request for this long is closed.
    pub connections_max_idle_ms: u64,
    /// `gregor.request.receive.timeout.ms`: a request frame must arrive whole within this long of
    /// its size prefix (and of its share of `queued.max.request.bytes` being granted).
    pub request_receive_timeout_ms: u64,
    /// `gregor.max.broker.partitions`: topic creations and growths past this many partitions on
    /// the broker are refused.
    pub max_broker_partitions: usize,
    /// `gregor.log.open.files.max`: segment files kept open (0: half the open-file limit).
    pub log_open_files_max: usize,
    /// `max.connections`: accepting waits while this many connections are open.
    pub max_connections: usize,
    /// `max.connections.per.ip`: further connections from one address are closed at once.
    pub max_connections_per_ip: usize,
    pub max_incremental_fetch_session_cache_slots: usize,
    /// `fetch.max.bytes`: the most bytes one fetch answer carries, whatever the client asks.
    pub fetch_max_bytes: u64,
    pub log: LogConfig,
    pub group: GroupConfig,
    /// The `group.{consumer,share,streams}.*` keys that default and bound group configs.
    pub group_configs: group::GroupConfigDefaults,
    /// The log cleaner and retention checker.
    pub cleaner: CleanerConfig,
    /// `metrics.address`: where `/metrics` is served; `None` when set empty (disabled).
    pub metrics_address: Option<std::net::SocketAddr>,
    /// The metadata quorum, when this node is one of a cluster's (`controller.quorum.voters`).
    pub quorum: Option<quorum::QuorumConfig>,
    /// The authorizer, when `authorizer.class.name` names one.
    pub authorizer: Option<crate::security::AuthorizerConfig>,
    /// Every key given, after overrides (for describing configs and for warnings).
    pub raw: RawConfig,
}

/// gregor's default for `gregor.max.broker.partitions`.
const DEFAULT_MAX_BROKER_PARTITIONS: i64 = 100_000;

/// gregor's default for `queued.max.request.bytes` (Kafka's is -1, unbounded): 512 MiB.
const DEFAULT_QUEUED_MAX_REQUEST_BYTES: i64 = 512 << 20;

/// Keys gregor honours (Kafka names and gregor's own).
const HONOURED: &[&str] = &[
    "listeners",
    "advertised.listeners",
    "listener.security.protocol.map",
    "log.dirs",
    "log.dir",
    "node.id",
    "broker.id",
    "num.partitions",
    "default.replication.factor",
    "auto.create.topics.enable",
    "message.max.bytes",
    "socket.request.max.bytes",
    "queued.max.request.bytes",
    "log.segment.bytes",
    "log.roll.ms",
    "log.roll.hours",
    "log.index.interval.bytes",
    "log.flush.interval.messages",
    "log.flush.interval.ms",
    "producer.id.expiration.ms",
    "max.incremental.fetch.session.cache.slots",
    "fetch.max.bytes",
    "log.message.timestamp.after.max.ms",
    "log.message.timestamp.before.max.ms",
    "gregor.produce.validate.compressed",
    "gregor.log.dir.min.free.bytes",
    "gregor.request.receive.timeout.ms",
    "gregor.max.broker.partitions",
    "gregor.log.open.files.max",
    "gregor.log.preallocate.max.bytes",
    "gregor.log.preallocate.total.max.bytes",
    "log.preallocate",
    "metrics.address",
    "connections.max.idle.ms",
    "max.connections",
    "max.connections.per.ip",
    "compression.type",
    "log.message.timestamp.type",
    "group.min.session.timeout.ms",
    "group.max.session.timeout.ms",
    "group.max.size",
    "group.initial.rebalance.delay.ms",
    "offsets.retention.minutes",
    "offsets.retention.check.interval.ms",
    "offset.metadata.max.bytes",
    // The metadata quorum (config::quorum):
    "process.roles",
    "controller.listener.names",
    "controller.quorum.voters",
    "controller.quorum.bootstrap.servers",
    "controller.quorum.election.timeout.ms",
    "controller.quorum.election.backoff.max.ms",
    "controller.quorum.request.timeout.ms",
    "broker.heartbeat.interval.ms",
    "broker.session.timeout.ms",
    "inter.broker.listener.name",
];

impl Config {
    /// Reads `path` (if any), applies `overrides` (`key=value`), validates and logs warnings.
    pub fn load(path: Option<&Path>, overrides: &[String]) -> Result<Config, ConfigError> {
        let mut raw = BTreeMap::new();
        if let Some(path) = path {
            let file = std::fs::File::open(path).map_err(|source| ConfigError::Read {
                path: path.into(),
                source,
            })?;
            let props = java_properties::read(std::io::BufReader::new(file)).map_err(|e| {
                ConfigError::Parse {
                    path: path.into(),
                    message: e.to_string(),
                }
            })?;
            raw.extend(props);
        }
        for o in overrides {
            let (k, v) = o
                .split_once('=')
                .ok_or_else(|| ConfigError::Override(o.clone()))?;
            raw.insert(k.trim().to_string(), v.trim().to_string());
        }
        let config = Self::from_map(raw)?;
        config.warn_unhonoured();
        Ok(config)
    }

    pub fn from_map(raw: BTreeMap<String, String>) -> Result<Config, ConfigError> {
        let get = |k: &str| raw.get(k).map(String::as_str);
        let listeners = listeners::listeners(&raw)?;
        let mut log_dirs: Vec<PathBuf> = Vec::new();
        for d in get("log.dirs")
            .or(get("log.dir"))
            .unwrap_or("./data")
            .split(',')
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            let d = PathBuf::from(d);
            if log_dirs.contains(&d) {
                return Err(ConfigError::Invalid {
                    key: "log.dirs".into(),
                    value: d.display().to_string(),
                    reason: "the same directory is listed twice".into(),
                });
            }
            log_dirs.push(d);
        }
        if log_dirs.is_empty() {
            log_dirs.push(PathBuf::from("./data"));
        }
        let data_dir = log_dirs[0].clone();
        let roll_ms = match (get("log.roll.ms"), get("log.roll.hours")) {
            (Some(v), _) => int(&raw, "log.roll.ms", v, 1, i64::MAX)?,
            (None, Some(v)) => int(&raw, "log.roll.hours", v, 1, i64::MAX / 3_600_000)? * 3_600_000,
            _ => 168 * 3_600_000,
        };
        let defaults = LogConfig::default();
        let mut log = LogConfig {
            segment_bytes: opt_int(
                &raw,
                "log.segment.bytes",
                1 << 30,
                1 << 20,
                i64::from(i32::MAX),
            )? as u64,
            roll_ms,
            index_interval_bytes: opt_int(
                &raw,
                "log.index.interval.bytes",
                4096,
                0,
                i64::from(i32::MAX),
            )? as u64,
            flush_interval_messages: opt_int(
                &raw,
                "log.flush.interval.messages",
                i64::MAX,
                1,
                i64::MAX,
            )? as u64,
            flush_interval_ms: opt_int(&raw, "log.flush.interval.ms", i64::MAX, 0, i64::MAX)?,
            max_message_bytes: opt_int(
                &raw,
                "message.max.bytes",
                1_048_588,
                0,
                i64::from(i32::MAX),
            )? as usize,
            timestamp_after_max_ms: opt_int(
                &raw,
                "log.message.timestamp.after.max.ms",
                defaults.timestamp_after_max_ms,
                0,
                i64::MAX,
            )?,
            timestamp_before_max_ms: opt_int(
                &raw,
                "log.message.timestamp.before.max.ms",
                defaults.timestamp_before_max_ms,
                0,
                i64::MAX,
            )?,
            validate_compressed: opt_bool(&raw, "gregor.produce.validate.compressed", true)?,
            preallocate: opt_bool(&raw, "log.preallocate", false)?,
            preallocate_max_bytes: opt_int(
                &raw,
                "gregor.log.preallocate.max.bytes",
                defaults.preallocate_max_bytes as i64,
                0,
                i64::MAX,
            )? as u64,
            preallocate_total_max_bytes: opt_int(
                &raw,
                "gregor.log.preallocate.total.max.bytes",
                defaults.preallocate_total_max_bytes as i64,
                0,
                i64::MAX,
            )? as u64,
            compression: match get("compression.type") {
                Some(v) => TopicCompression::parse(v).ok_or_else(|| {
                    invalid(
                        "compression.type",
                        v,
                        "expected one of uncompressed, zstd, lz4, snappy, gzip, producer",
                    )
                })?,
                None => TopicCompression::Producer,
            },
            log_append_time: match get("log.message.timestamp.type").map(str::trim) {
                None | Some("CreateTime") => false,
                Some("LogAppendTime") => true,
                Some(v) => {
                    return Err(invalid(
                        "log.message.timestamp.type",
                        v,
                        "expected CreateTime or LogAppendTime",
                    ))
                }
            },
            producer_id_expiration_ms: opt_int(
                &raw,
                "producer.id.expiration.ms",
                86_400_000,
                1,
                i64::MAX,
            )?,
            ..defaults
        };
        retention::apply_broker(&raw, &mut log)?;
        let cleaner = retention::cleaner(&raw)?;
        let node_id = match get("node.id").or(get("broker.id")) {
            Some(v) => int(&raw, "node.id", v, 0, i64::from(i32::MAX))? as i32,
            None => 1,
        };
        let rf = opt_int(
            &raw,
            "default.replication.factor",
            1,
            1,
            i64::from(i16::MAX),
        )?;
        if rf != 1 {
            return Err(invalid(
                "default.replication.factor",
                &rf.to_string(),
                "a single broker can only hold one replica",
            ));
        }
        let group_defaults = GroupConfig::default();
        let group = GroupConfig {
            min_session_timeout_ms: opt_int(
                &raw,
                "group.min.session.timeout.ms",
                i64::from(group_defaults.min_session_timeout_ms),
                0,
                i64::from(i32::MAX),
            )? as i32,
            max_session_timeout_ms: opt_int(
                &raw,
                "group.max.session.timeout.ms",
                i64::from(group_defaults.max_session_timeout_ms),
                0,
                i64::from(i32::MAX),
            )? as i32,
            max_size: opt_int(
                &raw,
                "group.max.size",
                i64::from(i32::MAX),
                1,
                i64::from(i32::MAX),
            )? as usize,
            initial_rebalance_delay_ms: opt_int(
                &raw,
                "group.initial.rebalance.delay.ms",
                group_defaults.initial_rebalance_delay_ms,
                0,
                i64::from(i32::MAX),
            )?,
            offsets_retention_ms: opt_int(
                &raw,
                "offsets.retention.minutes",
                7 * 24 * 60,
                1,
                i64::from(i32::MAX),
            )? * 60_000,
            offsets_retention_check_interval_ms: opt_int(
                &raw,
                "offsets.retention.check.interval.ms",
                group_defaults.offsets_retention_check_interval_ms,
                1,
                i64::MAX,
            )?,
            offset_metadata_max_bytes: opt_int(
                &raw,
                "offset.metadata.max.bytes",
                4096,
                0,
                i64::from(i32::MAX),
            )? as usize,
        };
        if group.min_session_timeout_ms > group.max_session_timeout_ms {
            return Err(invalid(
                "group.min.session.timeout.ms",
                &group.min_session_timeout_ms.to_string(),
                "must not exceed group.max.session.timeout.ms",
            ));
        }
        let metrics_address = match get("metrics.address").map(str::trim) {
            Some("") => None,
            Some(v) => Some(v.parse().map_err(|_| {
                invalid(
                    "metrics.address",
                    v,
                    "expected HOST:PORT, e.g. 127.0.0.1:9308",
                )
            })?),
            None => Some(std::net::SocketAddr::from(([127, 0, 0, 1], 9308))),
        };
        let socket_request_max_bytes = opt_int(
            &raw,
            "socket.request.max.bytes",
            104_857_600,
            1,
            i64::from(i32::MAX),
        )? as usize;
        let queued = opt_int(
            &raw,
            "queued.max.request.bytes",
            DEFAULT_QUEUED_MAX_REQUEST_BYTES,
            i64::MIN,
            i64::MAX,
        )?;
        if queued > 0 && (queued as u64) < socket_request_max_bytes as u64 {
            return Err(invalid(
                "queued.max.request.bytes",
                &queued.to_string(),
                "queued.max.request.bytes must be larger than socket.request.max.bytes",
            ));
        }
        Ok(Config {
            log_dir_min_free_bytes: opt_int(
                &raw,
                "gregor.log.dir.min.free.bytes",
                64 << 20,
                0,
                i64::MAX,
            )? as u64,
            queued_max_request_bytes: usize::try_from(queued).ok().filter(|&q| q > 0),
            connections_max_idle_ms: opt_int(&raw, "connections.max.idle.ms", 600_000, 1, i64::MAX)?
                as u64,
            request_receive_timeout_ms: opt_int(
                &raw,
                "gregor.request.receive.timeout.ms",
                30_000,
                1,
                i64::MAX,
            )? as u64,
            max_broker_partitions: opt_int(
                &raw,
                "gregor.max.broker.partitions",
                DEFAULT_MAX_BROKER_PARTITIONS,
                1,
                i64::from(i32::MAX),
            )? as usize,
            log_open_files_max: opt_int(&raw, "gregor.log.open.files.max", 0, 0, i64::MAX)?
                as usize,
            max_connections: opt_int(
                &raw,
                "max.connections",
                i64::from(i32::MAX),
                1,
                i64::from(i32::MAX),
            )? as usize,
            max_connections_per_ip: opt_int(
                &raw,
                "max.connections.per.ip",
                i64::from(i32::MAX),
                0,
                i64::from(i32::MAX),
            )? as usize,
            metrics_address,
            group,
            group_configs: group::GroupConfigDefaults::from_raw(&raw)?,
            listeners,
            data_dir,
            log_dirs,
            node_id,
            num_partitions: opt_int(&raw, "num.partitions", 1, 1, i64::from(i32::MAX))? as i32,
            default_replication_factor: 1,
            auto_create_topics: opt_bool(&raw, "auto.create.topics.enable", true)?,
            socket_request_max_bytes,
            max_incremental_fetch_session_cache_slots: opt_int(
                &raw,
                "max.incremental.fetch.session.cache.slots",
                1000,
                0,
                i64::from(i32::MAX),
            )? as usize,
            fetch_max_bytes: opt_int(
                &raw,
                "fetch.max.bytes",
                57_671_680,
                1024,
                i64::from(i32::MAX),
            )? as u64,
            log,
            cleaner,
            quorum: quorum::quorum(&raw, node_id)?,
            authorizer: crate::security::AuthorizerConfig::load(&raw)?,
            raw: RawConfig(raw),
        })
    }

    fn warn_unhonoured(&self) {
        for key in self.raw.keys() {
            if HONOURED.contains(&key.as_str())
                || retention::HONOURED.contains(&key.as_str())
                || group::honoured(key)
                || crate::security::HONOURED.contains(&key.as_str())
                || crate::security::tls::HONOURED.contains(&key.as_str())
                || crate::security::honoured(key)
            {
                continue;
            }
            // Only the key is logged: a value may be a secret (ssl.keystore.password, ...).
            if kafka_keys::is_kafka_key(key) {
                tracing::warn!(key = %key, "Kafka config key accepted but not honoured by gregor yet");
            } else {
                tracing::warn!(key = %key, "unknown config key (neither Kafka nor gregor defines it); ignored");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(pairs: &[(&str, &str)]) -> Result<Config, ConfigError> {
        Config::from_map(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        )
    }

    #[test]
    fn defaults_serve_localhost_9092_in_data() {
        let c = load(&[]).unwrap();
        let l = &c.listeners[0];
        assert_eq!((l.bind.host.as_str(), l.bind.port), ("127.0.0.1", 9092));
        assert_eq!(c.data_dir, PathBuf::from("./data"));
        assert_eq!(c.log.max_message_bytes, 1_048_588);
        assert!(c.auto_create_topics);
    }

    #[test]
    fn invalid_values_name_key_and_value() {
        let e = load(&[("log.segment.bytes", "1000")])
            .unwrap_err()
            .to_string();
        assert!(e.contains("log.segment.bytes") && e.contains("1000"), "{e}");
        let e = load(&[("auto.create.topics.enable", "maybe")])
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("auto.create.topics.enable") && e.contains("maybe"),
            "{e}"
        );
        let e = load(&[("listeners", "nonsense")]).unwrap_err().to_string();
        assert!(e.contains("listeners"), "{e}");
    }
}
