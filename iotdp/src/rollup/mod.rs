//! Rollups: 1-minute (when devices report more often than once a minute), 1-hour and 1-day
//! aggregates of every device and every place, kept exact when readings arrive late, and the
//! reads that answer long ranges from them.
//!
//! - [`tier`]: the tiers, window arithmetic, and how a range splits into tiers and raw;
//! - [`aggregate`]: the mergeable aggregates each row keeps;
//! - [`finest`]: `RollupFinestTier`, and the finest tier measured from the reporting intervals;
//! - [`model`]: rows, series keys, selections, the job's state and late marks;
//! - [`compute`]: raw readings into rows, and each tier into the next;
//! - [`late`]: which stored readings are late, and the store wrapper that marks them;
//! - [`ports`]: the rollup store, the job's state store, the late-window marker;
//! - [`job`]: the scheduled job and the rebuild;
//! - [`reads`]: the read port answered from rollups and raw.

pub mod aggregate;
pub mod compute;
pub mod finest;
pub mod job;
pub mod late;
pub mod model;
pub mod ports;
pub mod reads;
pub mod tier;
