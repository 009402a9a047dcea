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
                .add_directive("rustls=error".parse().expect("a valid directive")),
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
        let broker = match tokio::task::spawn_blocking(move || gregor::Broker::open(config)).await {
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
        gregor::run(broker, sockets, shutdown_signal()).await;
        ExitCode::SUCCESS
    })
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
