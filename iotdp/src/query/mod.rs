//! Reading the time-series store back: the read model ([`model`]), the names a query may use
//! ([`names`]: validated once, so every store's query language can embed them safely), and the
//! port each store's reader implements ([`ports`]).

pub mod model;
pub mod names;
pub mod ports;
