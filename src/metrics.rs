//! The Prometheus endpoint (`metrics.address`, text format at `/metrics`) and the gauges sampled
//! from broker state. Counters and histograms are recorded where things happen (`metrics::` macros);
//! names follow the conventions of Kafka's JMX-exporter dashboards where Kafka has the metric
//! (`kafka_server_brokertopicmetrics_*`, `kafka_log_log_*`, `kafka_consumergroup_*`), and use a
//! `gregor_` prefix otherwise. Label cardinality: `topic` (per topic), `topic`+`partition` (per
//! partition), `group` (per group), `group`+`topic`+`partition` (per committed offset), `api` and
//! `error` (bounded by the protocol).

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use metrics_exporter_prometheus::PrometheusBuilder;
use tokio_util::sync::CancellationToken;

use crate::broker::Broker;
use crate::group::state::State;

/// How often broker state is sampled into gauges.
const SAMPLE_INTERVAL: Duration = Duration::from_secs(5);

/// Latency buckets (seconds) for request and storage histograms: 100 µs .. 30 s.
const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    5.0, 10.0, 30.0,
];

/// Installs the global recorder and serves `/metrics` on `addr`.
pub fn install(addr: SocketAddr) -> Result<(), String> {
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets(LATENCY_BUCKETS)
        .map_err(|e| e.to_string())?
        .install()
        .map_err(|e| e.to_string())?;
    describe();
    register_at_zero();
    metrics::gauge!("gregor_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    Ok(())
}

/// Series that would otherwise appear only at their first event, registered at zero so that a
/// fresh broker's dashboards show 0 rather than "No data" (as Kafka's meters exist from start-up).
fn register_at_zero() {
    for api in crate::dispatch::SUPPORTED {
        let name = crate::dispatch::api_name(api.key);
        metrics::counter!("gregor_requests_total", "api" => name).increment(0);
        let _ = metrics::histogram!("gregor_request_seconds", "api" => name);
    }
    for error in crate::handler::produce::COUNTED_ERRORS {
        metrics::counter!("gregor_produce_errors_total", "error" => format!("{error:?}"))
            .increment(0);
    }
    for name in [
        "gregor_connections_created_total",
        "gregor_group_rebalances_total",
        "gregor_group_offset_commits_total",
        "gregor_log_preallocate_budget_exhausted_total",
        "gregor_fetch_reads_waited_total",
        "gregor_storage_panics_total",
        "gregor_connections_closed_slow_request_total",
        "gregor_connections_closed_idle_total",
        "gregor_partitions_refused_total",
        "gregor_connection_accept_errors_total",
        "gregor_log_segment_file_opens_total",
        "gregor_log_segment_file_closes_total",
        "gregor_fetch_regions_copied_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    for name in [
        "gregor_connections_open",
        "gregor_log_open_segment_files",
        "gregor_fetch_waiting",
        "kafka_log_logmanager_offlinelogdirectorycount",
    ] {
        metrics::gauge!(name).set(0.0);
    }
    for name in [
        "kafka_server_delayedoperationpurgatory_numdelayedoperations",
        "kafka_server_delayedoperationpurgatory_purgatorysize",
    ] {
        metrics::gauge!(name, "delayedOperation" => "Fetch").set(0.0);
    }
    for name in ["gregor_log_flush_seconds", "gregor_meta_flush_seconds"] {
        let _ = metrics::histogram!(name);
    }
}

fn describe() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "kafka_server_socket_server_metrics_successful_authentication_total",
        "SASL authentications that succeeded, per listener"
    );
    describe_counter!(
        "kafka_server_socket_server_metrics_failed_authentication_total",
        "SASL authentications that failed, per listener"
    );
    describe_counter!(
        "kafka_server_socket_server_metrics_successful_reauthentication_total",
        "SASL re-authentications (KIP-368) that succeeded, per listener"
    );
    describe_counter!(
        "kafka_server_socket_server_metrics_expired_connections_killed_total",
        "Connections closed because their SASL session ended without re-authentication"
    );
    describe_counter!(
        "kafka_server_brokertopicmetrics_bytesin_total",
        Unit::Bytes,
        "Record batch bytes produced, per topic"
    );
    describe_counter!(
        "kafka_server_brokertopicmetrics_bytesout_total",
        Unit::Bytes,
        "Record batch bytes fetched, per topic"
    );
    describe_counter!(
        "kafka_server_brokertopicmetrics_messagesin_total",
        "Records appended, per topic"
    );
    describe_counter!("gregor_requests_total", "Requests received, per API");
    describe_counter!(
        "gregor_connection_accept_errors_total",
        "Failed accepts (out of file descriptors and the like); accepting backs off 100 ms each"
    );
    describe_counter!(
        "gregor_partitions_refused_total",
        "Topic creations or growths refused because the broker would hold more than gregor.max.broker.partitions"
    );
    describe_counter!(
        "gregor_log_segment_file_opens_total",
        "Segment files opened again after the descriptor cache closed them"
    );
    describe_counter!(
        "gregor_log_segment_file_closes_total",
        "Segment files closed by the descriptor cache (gregor.log.open.files.max)"
    );
    describe_counter!(
        "gregor_fetch_regions_copied_total",
        "Fetched regions read into memory because responses waiting to be sent held their share of descriptors"
    );
    describe_gauge!(
        "gregor_log_open_segment_files",
        "Segment files the descriptor cache holds open"
    );
    describe_counter!(
        "gregor_connections_closed_idle_total",
        "Connections closed after connections.max.idle.ms with no request, or no response byte taken"
    );
    describe_counter!(
        "gregor_connections_closed_slow_request_total",
        "Connections closed for a request not received whole within gregor.request.receive.timeout.ms"
    );
    describe_counter!(
        "gregor_fetch_reads_waited_total",
        "Fetch read passes the page cache could not serve, run again where blocking is allowed"
    );
    describe_counter!(
        "gregor_storage_panics_total",
        "Storage work that panicked (answered KAFKA_STORAGE_ERROR)"
    );
    describe_counter!(
        "gregor_produce_errors_total",
        "Partitions refused in produce requests, per error code"
    );
    describe_histogram!(
        "gregor_request_seconds",
        Unit::Seconds,
        "Time from decoding a request to its response being ready, per API"
    );
    describe_histogram!(
        "gregor_request_queue_seconds",
        Unit::Seconds,
        "Time a request waited after being read until its handling began, per API"
    );
    describe_histogram!(
        "gregor_response_send_seconds",
        Unit::Seconds,
        "Time to write a response to the socket, per API"
    );
    describe_gauge!("gregor_requests_in_flight", "Requests being handled");
    describe_counter!(
        "gregor_fetch_errors_total",
        "Partitions answered with an error in fetch responses, per error code"
    );
    describe_counter!(
        "gregor_connections_closed_total",
        "Client connections closed"
    );
    describe_histogram!(
        "gregor_log_flush_messages",
        "Messages made durable by one fsync (group commit size)"
    );
    describe_histogram!(
        "gregor_log_flush_seconds",
        Unit::Seconds,
        "fsync latency of partition logs"
    );
    describe_counter!(
        "gregor_log_preallocated_bytes_total",
        Unit::Bytes,
        "Disk space reserved ahead of active segments' appends (given back when they are sealed)"
    );
    describe_histogram!(
        "gregor_log_preallocate_seconds",
        Unit::Seconds,
        "Latency of one reservation ahead of appends (fallocate, on the append path)"
    );
    describe_counter!(
        "gregor_log_preallocate_errors_total",
        "Reservations ahead of appends that failed (the appends themselves go on)"
    );
    describe_counter!(
        "gregor_log_preallocate_budget_exhausted_total",
        "Appends that reserved nothing ahead because all reservations together were at gregor.log.preallocate.total.max.bytes"
    );
    describe_gauge!(
        "gregor_log_preallocate_outstanding_bytes",
        Unit::Bytes,
        "Disk space reserved ahead of appends across all partitions (bounded by gregor.log.preallocate.total.max.bytes)"
    );
    describe_histogram!(
        "gregor_meta_flush_seconds",
        Unit::Seconds,
        "flush latency of the meta store (sled)"
    );
    describe_gauge!(
        "kafka_log_log_logendoffset",
        "Log end offset, per partition"
    );
    describe_gauge!(
        "kafka_log_log_logstartoffset",
        "Log start offset, per partition"
    );
    describe_gauge!(
        "kafka_log_log_size",
        Unit::Bytes,
        "Bytes of segment files, per partition"
    );
    describe_gauge!(
        "kafka_log_log_numlogsegments",
        "Segment files, per partition"
    );
    describe_log_maintenance();
    describe_gauge!(
        "gregor_request_memory_bytes",
        Unit::Bytes,
        "Request bytes buffered or being handled, of queued.max.request.bytes"
    );
    describe_counter!(
        "gregor_connection_accept_waits_total",
        "Times accepting waited because max.connections were open"
    );
    describe_gauge!(
        "gregor_log_dir_free_bytes",
        Unit::Bytes,
        "Free space of the data directory"
    );
    describe_counter!(
        "gregor_storage_errors_total",
        "Failed storage operations, per op (append, fsync, read, meta; disk_low: produce refused for want of free space)"
    );
    describe_counter!(
        "gregor_request_memory_waits_total",
        "Times a connection waited for queued.max.request.bytes before reading more"
    );
    describe_gauge!(
        "gregor_partition_high_watermark",
        "High watermark, per partition"
    );
    describe_gauge!(
        "kafka_consumergroup_current_offset",
        "Committed offset, per group and partition"
    );
    describe_gauge!(
        "kafka_consumergroup_lag",
        "Log end offset minus committed offset, per group and partition"
    );
    describe_gauge!("gregor_groups", "Consumer groups, per state");
    describe_gauge!("gregor_group_members", "Members, per group");
    describe_counter!("gregor_group_rebalances_total", "Rebalances started");
    describe_counter!("gregor_group_offset_commits_total", "Offsets committed");
    describe_gauge!("gregor_connections_open", "Open client connections");
    describe_counter!(
        "gregor_connections_created_total",
        "Client connections accepted"
    );
    describe_gauge!(
        "gregor_fetch_waiting",
        "Fetch requests parked waiting for data"
    );
    describe_gauge!("gregor_alloc_lazy_reserved_bytes", Unit::Bytes, "Address space reserved (untouched) for huge allocations, e.g. requests with lying array counts");
    describe_gauge!(
        "gregor_meta_disk_bytes",
        Unit::Bytes,
        "Size of the meta store (sled) on disk"
    );
}

/// Retention and the log cleaner (registered at start so dashboards see them before the first pass).
fn describe_log_maintenance() {
    use metrics::{describe_counter, describe_gauge, describe_histogram, Unit};
    describe_counter!(
        "gregor_log_segments_deleted_total",
        "Segments deleted by retention, per reason (retention_ms, retention_bytes, log_start_offset)"
    );
    describe_counter!(
        "gregor_log_reclaimed_bytes_total",
        Unit::Bytes,
        "Disk bytes given back, per reason (retention: unlinked after file.delete.delay.ms; compaction)"
    );
    describe_counter!(
        "gregor_log_retention_passes_total",
        "Retention passes over all partitions"
    );
    describe_counter!(
        "gregor_log_retention_errors_total",
        "Partitions whose retention pass failed"
    );
    describe_counter!("gregor_log_cleaner_passes_total", "Log cleanings completed");
    describe_histogram!(
        "gregor_log_cleaner_pass_seconds",
        Unit::Seconds,
        "Duration of one log cleaning"
    );
    describe_counter!(
        "gregor_log_cleaner_read_bytes_total",
        Unit::Bytes,
        "Bytes the cleaner read (mapping and copying)"
    );
    describe_counter!(
        "gregor_log_cleaner_written_bytes_total",
        Unit::Bytes,
        "Bytes the cleaner wrote to cleaned segments"
    );
    describe_counter!(
        "gregor_log_cleaner_records_removed_total",
        "Records the cleaner removed (superseded, expired tombstones, keyless)"
    );
    describe_histogram!(
        "gregor_log_cleaner_throttle_seconds",
        Unit::Seconds,
        "Time the cleaner slept to honour log.cleaner.io.max.bytes.per.second"
    );
    describe_gauge!(
        "kafka_log_logcleaner_cleaner_recopy_percent",
        "Bytes written over bytes read by the last cleaning, in percent"
    );
    describe_gauge!(
        "kafka_log_logcleaner_max_clean_time_secs",
        "Duration of the last cleaning"
    );
    describe_gauge!(
        "kafka_log_logcleaner_max_buffer_utilization_percent",
        "Offset map use of the last cleaning, in percent of its share of log.cleaner.dedupe.buffer.size"
    );
    describe_gauge!(
        "kafka_log_logcleanermanager_max_dirty_percent",
        "Dirty ratio of the dirtiest compacted log, in percent"
    );
    describe_gauge!(
        "kafka_log_logcleanermanager_uncleanable_partitions_count",
        "Partitions the cleaner gave up on after an error"
    );
    for reason in ["retention", "compaction"] {
        metrics::counter!("gregor_log_reclaimed_bytes_total", "reason" => reason).increment(0);
    }
    for name in [
        "gregor_log_cleaner_passes_total",
        "gregor_log_cleaner_read_bytes_total",
        "gregor_log_cleaner_written_bytes_total",
        "gregor_log_cleaner_records_removed_total",
    ] {
        metrics::counter!(name).increment(0);
    }
    metrics::counter!("gregor_log_retention_passes_total").increment(0);
}

/// Samples partition offsets and sizes, group states, committed offsets and lag until `stop`.
pub async fn sample(broker: Arc<Broker>, stop: CancellationToken) {
    let collector = metrics_process::Collector::default();
    collector.describe();
    let mut tick = tokio::time::interval(SAMPLE_INTERVAL);
    loop {
        tokio::select! {
            _ = tick.tick() => {}
            _ = stop.cancelled() => return,
        }
        collector.collect();
        sample_once(&broker).await;
    }
}

async fn sample_once(broker: &Broker) {
    for topic in broker.topics.all() {
        for p in &topic.partitions {
            let labels = [
                ("topic", topic.name.to_string()),
                ("partition", p.key.partition.to_string()),
            ];
            metrics::gauge!("kafka_log_log_logendoffset", &labels).set(p.log_end_offset() as f64);
            metrics::gauge!("kafka_log_log_logstartoffset", &labels)
                .set(p.log_start_offset() as f64);
            metrics::gauge!("gregor_partition_high_watermark", &labels)
                .set(p.high_watermark() as f64);
            metrics::gauge!("kafka_log_log_size", &labels).set(p.size_bytes() as f64);
            metrics::gauge!("kafka_log_log_numlogsegments", &labels).set(p.segment_count() as f64);
        }
    }
    let mut by_state = [
        (State::Empty, 0u32),
        (State::PreparingRebalance, 0),
        (State::CompletingRebalance, 0),
        (State::Stable, 0),
    ];
    for g in broker.groups.snapshots().await {
        if let Some(slot) = by_state.iter_mut().find(|(s, _)| *s == g.state) {
            slot.1 += 1;
        }
        metrics::gauge!("gregor_group_members", "group" => g.id.clone())
            .set(g.members.len() as f64);
        for ((topic, partition), c) in broker.groups.committed(&g.id, None).await {
            let Some(c) = c else { continue };
            let end = broker
                .topics
                .get(&topic)
                .and_then(|t| t.partition(partition).map(|p| p.high_watermark()));
            let labels = [
                ("group", g.id.clone()),
                ("topic", topic.clone()),
                ("partition", partition.to_string()),
            ];
            metrics::gauge!("kafka_consumergroup_current_offset", &labels).set(c.offset as f64);
            if let Some(end) = end {
                metrics::gauge!("kafka_consumergroup_lag", &labels)
                    .set((end - c.offset).max(0) as f64);
            }
        }
    }
    for (state, n) in by_state {
        metrics::gauge!("gregor_groups", "state" => state.name()).set(f64::from(n));
    }
    metrics::gauge!("gregor_meta_disk_bytes").set(broker.meta.size_on_disk() as f64);
    metrics::gauge!("gregor_request_memory_bytes").set(broker.request_memory.in_use() as f64);
    metrics::gauge!("gregor_log_dir_free_bytes").set(broker.store.disk.measure() as f64);
    metrics::gauge!("gregor_log_preallocate_outstanding_bytes").set(
        crate::log::preallocate::OUTSTANDING.load(std::sync::atomic::Ordering::Relaxed) as f64,
    );
    metrics::gauge!("gregor_alloc_lazy_reserved_bytes")
        .set(crate::alloc::LAZY_RESERVED.load(std::sync::atomic::Ordering::Relaxed) as f64);
}
