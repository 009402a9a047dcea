//! The `gregor` binary: `gregor [CONFIG] [--config FILE] [--override key=value]...`

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tracing_subscriber::EnvFilter;

/// A Kafka wire-protocol-compatible broker. With no arguments it serves 127.0.0.1:9092 with data
/// in ./data. Configuration uses Kafka's property names (server.properties).
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// A server.properties file (as given to kafka-server-start.sh).
    #[arg(value_name = "CONFIG")]
    positional_config: Option<PathBuf>,
    /// A server.properties file.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Overrides one property, e.g. --override log.dirs=/var/lib/gregor (repeatable).
    #[arg(long = "override", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| EnvFilter::new("info"))
                // sled's debug and trace lines dump stored records, SCRAM keys among them.
                .add_directive("sled=info".parse().expect("a valid directive"))
                // rustls warns once per bad handshake or alert: failed handshakes are logged once
                // and counted by gregor instead.
                .add_directive("rustls=error".parse().expect("a valid directive"))
                // openraft logs every failed RPC to an unreachable voter, ten times a second:
                // gregor logs the quorum's changes itself (cluster::watch).
                .add_directive("openraft=off".parse().expect("a valid directive")),
        )
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stdout()))
        .init();
    let cli = Cli::parse();
    let path = cli.config.or(cli.positional_config);
    let config = match gregor::Config::load(path.as_deref(), &cli.overrides) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!("{e}");
            return ExitCode::FAILURE;
        }
    };
    let metrics_address = config.metrics_address;
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(r) => r,
        Err(e) => {
            tracing::error!("cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    runtime.block_on(async move {
        if let Some(addr) = metrics_address {
            // Monitoring failing to bind should not take the broker down; say so loudly instead.
            match gregor::metrics::install(addr) {
                Ok(()) => tracing::info!(%addr, "serving Prometheus metrics at /metrics"),
                Err(e) => tracing::error!(%addr, error = %e, "cannot serve metrics (metrics.address)"),
            }
        }
        // Segment files held open, connections and the meta store share it.
        let open_files = gregor::log::descriptors::raise_open_file_limit();
        tracing::info!(limit = ?open_files, "open file limit");
        // SIGINT or SIGTERM from here on shuts down, also while the quorum is being joined.
        let stop = tokio_util::sync::CancellationToken::new();
        tokio::spawn({
            let stop = stop.clone();
            async move {
                shutdown_signal().await;
                stop.cancel();
            }
        });
        // A node of a cluster joins the metadata quorum first: the cluster id is the quorum's.
        let cluster = match config.quorum.clone() {
            None => None,
            Some(quorum) => {
                let joined = tokio::select! {
                    joined = join_quorum(&config, quorum) => joined,
                    _ = stop.cancelled() => {
                        tracing::info!("shut down before the metadata quorum agreed on a cluster id");
                        return ExitCode::SUCCESS;
                    }
                };
                match joined {
                    Ok(c) => Some(c),
                    Err(e) => {
                        tracing::error!("{e:#}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        };
        let opened = tokio::task::spawn_blocking(move || match cluster {
            None => gregor::Broker::open(config),
            Some((cluster, id)) => gregor::Broker::open_clustered(config, cluster, &id),
        });
        let broker = match opened.await {
            Ok(Ok(b)) => Arc::new(b),
            Ok(Err(e)) => {
                tracing::error!("{e}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                tracing::error!("start-up failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let mut sockets = Vec::new();
        let mut described = Vec::new();
        for l in &broker.config.listeners {
            let host = if l.bind.host.is_empty() { "0.0.0.0" } else { l.bind.host.as_str() };
            let socket = match tokio::net::TcpListener::bind((host, l.bind.port)).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::error!("cannot listen on {host}:{} (listener {}): {e}", l.bind.port, l.name);
                    return ExitCode::FAILURE;
                }
            };
            let bound = socket.local_addr().ok();
            // Port 0 binds an ephemeral port: clients are told that one (as Kafka does).
            let l = match bound {
                Some(a) if l.advertised.port == 0 => {
                    let mut fixed = gregor::config::Listener::clone(l);
                    fixed.advertised.port = a.port();
                    Arc::new(fixed)
                }
                _ => l.clone(),
            };
            let bound = bound.map(|a| a.to_string()).unwrap_or_default();
            let sasl = match &l.sasl {
                Some(config) => {
                    gregor::security::sasl::register_metrics(&l.name);
                    let names: Vec<_> = config.mechanisms.iter().map(|m| m.name()).collect();
                    format!(", SASL {}", names.join(","))
                }
                None => String::new(),
            };
            let sasl = match &l.tls {
                Some(tls) => format!(", TLS with client auth {}{sasl}", tls.client_auth),
                None => sasl,
            };
            described.push(format!("{}={bound} (advertised {}:{}{sasl})", l.name, l.advertised.host, l.advertised.port));
            sockets.push((socket, l));
        }
        tracing::info!(
            listeners = %described.join(", "),
            data = %broker.config.data_dir.display(),
            log_dirs = %broker.topics.log_dirs().iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(","),
            cluster_id = %broker.cluster_id,
            version = env!("CARGO_PKG_VERSION"),
            "gregor started"
        );
        let cluster = broker.cluster.clone();
        if cluster.is_none() {
            gregor::cluster::watch::single_node();
        }
        if let Some(c) = &cluster {
            c.start_broker(gregor::cluster::lifecycle::Registration {
                id: broker.config.node_id,
                incarnation: *uuid::Uuid::new_v4().as_bytes(),
                endpoints: sockets
                    .iter()
                    .map(|(_, l)| gregor::cluster::records::BrokerEndpoint {
                        listener: l.name.clone(),
                        host: l.advertised.host.clone(),
                        port: l.advertised.port,
                    })
                    .collect(),
                rack: broker.config.raw.get("broker.rack").cloned(),
            });
        }
        let shutdown = async move {
            stop.cancelled().await;
            if let Some(c) = cluster {
                c.shutdown().await;
            }
        };
        gregor::run(broker, sockets, shutdown).await;
        ExitCode::SUCCESS
    })
}

/// Starts this node's part of the metadata quorum and waits for the quorum's cluster id.
async fn join_quorum(
    config: &gregor::Config,
    quorum: gregor::config::quorum::QuorumConfig,
) -> anyhow::Result<(Arc<gregor::cluster::Cluster>, String)> {
    let dir = &config.data_dir;
    std::fs::create_dir_all(dir)?;
    // A node that ran before proposes its own id: a single node grown into a cluster keeps it.
    let proposed =
        gregor::broker::stored_cluster_id(dir)?.unwrap_or_else(gregor::broker::new_cluster_id);
    let voters: Vec<String> = quorum
        .voters
        .iter()
        .map(|v| format!("{}@{}:{}", v.id, v.endpoint.host, v.endpoint.port))
        .collect();
    let cluster = gregor::cluster::Cluster::start(config.node_id, quorum, dir, proposed).await?;
    tracing::info!(voters = %voters.join(","), "joined the metadata quorum; waiting for its cluster id");
    let id = cluster.cluster_id().await;
    Ok((cluster, id))
}

/// Completes on SIGINT or SIGTERM.
async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let mut term = match signal(SignalKind::terminate()) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("cannot listen for SIGTERM: {e}");
            let _ = tokio::signal::ctrl_c().await;
            return;
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        _ = term.recv() => {}
    }
}
