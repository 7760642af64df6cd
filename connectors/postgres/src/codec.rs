//! [`PostgresScanCodec`]: a [`PostgresScanExec`] travels as its catalog name, SQL per split and
//! column types; the worker's codec for that catalog holds the connection pool made from the
//! worker's own catalog file, so no credential is ever in a plan.

use std::sync::Arc;

use braid_connector_spi::{ConnectorError, ScanCodec};
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::exec::PostgresScanExec;
use crate::pool::Pool;
use crate::types::PgKind;

#[derive(Serialize, Deserialize)]
struct Payload {
    catalog: String,
    relation: String,
    queries: Vec<String>,
    columns: Vec<(String, PgKind, bool)>,
}

/// Encodes and decodes the scans of one `postgres` catalog.
#[derive(Debug)]
pub struct PostgresScanCodec {
    pool: Arc<Pool>,
}

impl PostgresScanCodec {
    /// The codec of the catalog whose connections `pool` holds.
    pub fn new(pool: Arc<Pool>) -> Self {
        Self { pool }
    }
}

fn codec_error(reason: String) -> ConnectorError {
    ConnectorError::Codec {
        kind: crate::KIND,
        reason,
    }
}

impl ScanCodec for PostgresScanCodec {
    fn try_encode(&self, node: &dyn ExecutionPlan) -> Result<Option<Vec<u8>>> {
        let Some(scan) = node
            .as_any()
            .downcast_ref::<PostgresScanExec>()
            .filter(|scan| scan.catalog() == self.pool.catalog())
        else {
            return Ok(None);
        };
        let schema = scan.schema();
        let payload = Payload {
            catalog: scan.catalog().to_string(),
            relation: scan.relation().to_string(),
            queries: scan.queries().to_vec(),
            columns: schema
                .fields()
                .iter()
                .zip(scan.kinds())
                .map(|(f, k)| (f.name().clone(), k.clone(), f.is_nullable()))
                .collect(),
        };
        serde_json::to_vec(&payload)
            .map(Some)
            .map_err(|e| codec_error(e.to_string()).into())
    }

    fn try_decode(&self, payload: &[u8], _ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        let payload: Payload =
            serde_json::from_slice(payload).map_err(|e| codec_error(e.to_string()))?;
        if payload.catalog != self.pool.catalog() {
            return Err(codec_error(format!(
                "a scan of catalog '{}' reached the codec of catalog '{}'",
                payload.catalog,
                self.pool.catalog()
            ))
            .into());
        }
        let schema = Arc::new(Schema::new(
            payload
                .columns
                .iter()
                .map(|(name, kind, nullable)| Field::new(name, kind.arrow_type(), *nullable))
                .collect::<Vec<_>>(),
        ));
        Ok(Arc::new(PostgresScanExec::new(
            payload.catalog,
            payload.relation,
            payload.queries,
            payload
                .columns
                .into_iter()
                .map(|(_, kind, _)| kind)
                .collect(),
            schema,
            self.pool.clone(),
        )))
    }
}
