//! gregor: a Kafka wire-protocol-compatible message broker.
//!
//! # Module map
//! - [`server`] accepts connections; [`connection`] frames requests and answers them in order;
//!   [`codec`] turns frames into typed requests on kafka-protocol; [`dispatch`] routes by API key
//!   (and generates the ApiVersions table); [`handler`] holds one module per API family.
//! - [`broker`] is the shared state: [`config`], the [`meta`] store (sled), the [`topics`] registry.
//! - [`log`] is the partition store: segment files of record batches, indexes, recovery,
//!   retention and compaction; [`housekeeping`] runs retention passes and the log cleaner.
//!
//! # The two paths
//! - **Produce**: `server` → `connection` reads a frame → `codec` decodes header and body →
//!   `dispatch` (version check) → `handler::produce` sorts partitions into unknown / invalid / ok →
//!   `log::Partition::append` validates the batch (framing, magic, CRC32C, records), patches
//!   `baseOffset`, appends the bytes as sent to the active segment (page cache; fsync per the flush
//!   policy, group-committed) → the high watermark advances and wakes parked fetches →
//!   per-partition response → `codec` encodes → `connection` writes (nothing for acks=0).
//! - **Fetch**: `connection` → `codec` → `dispatch` → `handler::fetch` reads each partition up to
//!   its byte budget → if fewer than `min_bytes`, waits on the partitions' append signal until
//!   `max_wait_ms` → reads again → response with the stored bytes untouched.

pub mod alloc;
pub mod broker;
pub mod codec;
pub mod condition;
pub mod config;
pub mod connection;
pub mod disk_space;
pub mod dispatch;
pub mod group;
pub mod handler;
pub mod housekeeping;
pub mod log;
pub mod meta;
pub mod metrics;
pub mod request_memory;
pub mod server;
pub mod topics;
pub mod wire;

#[global_allocator]
static GLOBAL: alloc::LazyReserve = alloc::LazyReserve;

pub use broker::Broker;
pub use config::Config;
pub use server::run;
