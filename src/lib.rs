//! gregor: a Kafka wire-protocol-compatible message broker.
//!
//! # Module map
//! - [`server`] accepts connections; [`connection`] frames requests and answers them in order;
//!   [`codec`] turns frames into typed requests on kafka-protocol; [`dispatch`] routes by API key
//!   (and generates the ApiVersions table); [`handler`] holds one module per API family.
//! - [`broker`] is the shared state: [`config`], the [`meta`] store (sled), the [`topics`] registry.
//! - [`cluster`] is a cluster node's metadata quorum (openraft): the active controller, broker
//!   registration and fencing; absent on a single node.
//! - [`store`] is the layer between the handlers and the logs, in the shape of Kafka's
//!   ReplicaManager: appends, fetches, the purgatory where they wait, durability, log dir health;
//!   no file or meta-store I/O runs on an async worker below it.
//! - [`log`] is the partition store: segment files of record batches, indexes, recovery,
//!   retention and compaction; [`housekeeping`] runs retention passes and the log cleaner.
//!
//! # The two paths
//! - **Produce**: `server` → `connection` reads a frame → `codec` decodes header and body →
//!   `dispatch` (version check) → `handler::produce` checks the request's rules →
//!   `store::Store::append_records` refuses offline or full log dirs and, on the blocking pool,
//!   `log::Partition::append` validates the batch (framing, magic, CRC32C, records), patches
//!   `baseOffset`, appends the bytes as sent to the active segment (page cache) → the store wakes
//!   parked fetches and waits for the fsync the flush policy asks (group-committed) →
//!   per-partition response → `codec` encodes → `connection` writes (nothing for acks=0).
//! - **Fetch**: `connection` → `codec` → `dispatch` → `handler::fetch` resolves partitions →
//!   `store::Store::fetch_records` reads each up to its byte budget on the blocking pool → if fewer
//!   than `min_bytes`, parks in the fetch purgatory until an append or `max_wait_ms` → reads again
//!   → response with the stored bytes untouched.

pub mod alloc;
pub mod broker;
pub mod cluster;
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
pub mod security;
pub mod server;
pub mod store;
pub mod topics;
pub mod wire;

#[global_allocator]
static GLOBAL: alloc::LazyReserve = alloc::LazyReserve;

pub use broker::Broker;
pub use config::Config;
pub use server::run;
