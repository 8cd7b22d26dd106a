//! Hostile input and hostile clients: names and headers, raw and malformed requests,
//! connection hygiene and limits, stalled responses.
pub(crate) mod edges;
pub(crate) mod garbage;
pub(crate) mod http;
pub(crate) mod input;
pub(crate) mod stalled;
