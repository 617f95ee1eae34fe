//! Reading the time-series store back: the read model ([`model`]), the names a query may use
//! ([`names`]: validated once, so every store's query language can embed them safely), the
//! port each store's reader implements ([`ports`]), and the port's answers computed from stored
//! readings ([`evaluate`]) for the stores that hold readings rather than run queries.

pub mod evaluate;
pub mod model;
pub mod names;
pub mod ports;
