//! [`PostgresScanCodec`]: a postgres scan travels as its catalog name, column types and the
//! SQL of each split; the worker's codec for that catalog holds the connection pool made from
//! the worker's own catalog file, so no credential is ever in a plan.

use std::sync::Arc;

use braid_connector_spi::ScanExecCodec;

use crate::exec::{PostgresScan, PostgresScanHandle};
use crate::pool::Pool;

/// Encodes and decodes the `PostgresScanExec`s of one catalog.
pub type PostgresScanCodec = ScanExecCodec<PostgresScan>;

/// The codec of the catalog whose connections `pool` holds.
pub fn codec(pool: Arc<Pool>) -> PostgresScanCodec {
    let catalog = pool.catalog().to_string();
    ScanExecCodec::new(catalog, move |handle: PostgresScanHandle| {
        PostgresScan::new(handle, pool.clone())
    })
}
