//! The load a bill is for: devices, how often they report, what a message carries, and
//! where they sit in the hierarchy.

use crate::MONTH_SECONDS;

/// A load: how many devices report how often, with how many metrics, in how many readings per
/// message (gateway batches carry several).
#[derive(Debug, Clone, PartialEq)]
pub struct Load {
    pub name: String,
    pub devices: u64,
    pub interval_seconds: f64,
    pub metrics: usize,
    pub readings_per_message: usize,
    /// The devices' heartbeat (`no_data` after it), which sets how fresh `last_seen` is kept.
    pub heartbeat_seconds: Option<u32>,
    /// Alert rules each reading is evaluated by (the baseline prices one IoT Events detector
    /// per rule).
    pub rules: u32,
    /// Where the devices sit in the hierarchy: the rollup job keeps a series per place too.
    pub places: Places,
}

/// How a load's devices sit in the site/zone/section/spot hierarchy, which decides how many
/// place series the rollup job keeps beside the devices' own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Places {
    /// Each device its own site (a battery box per home; a load you describe by its numbers).
    OwnSite,
    /// Homes of `rooms` devices, one per room: `home/room`.
    Homes { rooms: usize },
    /// Walls of `spots` sensors in `zones` zones of `sections` sections each:
    /// `wall/zone/section/spot`.
    Walls {
        spots: usize,
        zones: usize,
        sections: usize,
    },
}

impl Places {
    /// Series of one whole unit (a site, a home, a wall): the rollup sample runs that many, so
    /// the places they share are counted once.
    pub fn unit(self) -> usize {
        match self {
            Places::OwnSite => 1,
            Places::Homes { rooms } => rooms,
            Places::Walls { spots, .. } => spots,
        }
    }

    /// The path of the unit's `n`th series.
    pub fn path(self, unit: usize, n: usize) -> String {
        match self {
            Places::OwnSite => format!("site-{unit}"),
            Places::Homes { .. } => format!("home-{unit}/room-{n}"),
            Places::Walls {
                spots,
                zones,
                sections,
            } => {
                let per_zone = spots.div_ceil(zones.max(1));
                let zone = n / per_zone;
                let per_section = per_zone.div_ceil(sections.max(1));
                let section = n % per_zone / per_section;
                format!("wall-{unit}/zone-{zone}/section-{section}/spot-{n:02}")
            }
        }
    }
}

impl Load {
    /// The reference customers, as docs/cost.md defines them.
    pub fn references() -> Vec<Load> {
        vec![
            Load {
                name: "battery boxes: 100,000 units every 5 minutes, 6 metrics".into(),
                devices: 100_000,
                interval_seconds: 300.0,
                metrics: 6,
                readings_per_message: 1,
                heartbeat_seconds: Some(900),
                rules: 3,
                places: Places::OwnSite,
            },
            Load {
                name: "thermostats: 5,000 messages/s of 2 metrics".into(),
                devices: 50_000,
                interval_seconds: 10.0,
                metrics: 2,
                readings_per_message: 1,
                heartbeat_seconds: None,
                rules: 2,
                places: Places::Homes { rooms: 3 },
            },
            Load {
                name: "green walls: 1,000 walls × 50 spots hourly, 5-hour gateway batches".into(),
                devices: 1_000,
                interval_seconds: 5.0 * 3_600.0,
                metrics: 2,
                readings_per_message: 50 * 5,
                heartbeat_seconds: Some(6 * 3_600),
                rules: 2,
                places: Places::Walls {
                    spots: 50,
                    zones: 2,
                    sections: 5,
                },
            },
        ]
    }

    pub fn messages_per_month(&self) -> f64 {
        self.devices as f64 * MONTH_SECONDS / self.interval_seconds
    }

    pub fn readings_per_month(&self) -> f64 {
        self.messages_per_month() * self.readings_per_message as f64
    }
}

/// One sample message of `load` from device `n`, as a device would publish it.
pub fn sample_payload(load: &Load, n: usize, now_ms: i64) -> String {
    let metrics = |k: usize| -> String {
        (0..load.metrics)
            .map(|m| format!(r#""metric_{m}":{:.3}"#, 20.0 + (k + m) as f64 * 0.137))
            .collect::<Vec<_>>()
            .join(",")
    };
    if load.readings_per_message == 1 {
        format!(r#"{{"ts":{now_ms},"metrics":{{{}}}}}"#, metrics(n))
    } else {
        let items: Vec<String> = (0..load.readings_per_message)
            .map(|i| {
                format!(
                    r#"{{"device_id":"spot-{n}-{:02}","ts":{},"metrics":{{{}}}}}"#,
                    i % 50,
                    now_ms - (i / 50) as i64 * 3_600_000,
                    metrics(i)
                )
            })
            .collect();
        format!(r#"{{"readings":[{}]}}"#, items.join(","))
    }
}
