//! [`TpchScanCodec`]: a TPC-H scan travels as `{table, scale factor, naming, parts, projection,
//! limit}`; the worker generates the rows itself.

use std::sync::Arc;

use braid_connector_spi::{ConnectorError, ScanCodec};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::config::ColumnNaming;
use crate::exec::TpchScanExec;
use crate::metadata::TpchTableKind;

/// Encodes and decodes [`TpchScanExec`].
#[derive(Debug, Default)]
pub struct TpchScanCodec;

#[derive(Serialize, Deserialize)]
struct Payload {
    catalog: String,
    table: TpchTableKind,
    scale_factor: f64,
    naming: ColumnNaming,
    parts: usize,
    projection: Vec<usize>,
    limit: Option<usize>,
}

impl ScanCodec for TpchScanCodec {
    fn try_encode(&self, node: &dyn ExecutionPlan) -> Result<Option<Vec<u8>>> {
        let Some(scan) = node.as_any().downcast_ref::<TpchScanExec>() else {
            return Ok(None);
        };
        let payload = Payload {
            catalog: scan.catalog().to_string(),
            table: scan.table(),
            scale_factor: scan.scale_factor(),
            naming: scan.naming(),
            parts: scan.parts(),
            projection: scan.projection().to_vec(),
            limit: scan.limit(),
        };
        let bytes = serde_json::to_vec(&payload).map_err(|e| ConnectorError::Codec {
            kind: crate::KIND,
            reason: e.to_string(),
        })?;
        Ok(Some(bytes))
    }

    fn try_decode(&self, payload: &[u8], _ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        let p: Payload = serde_json::from_slice(payload).map_err(|e| ConnectorError::Codec {
            kind: crate::KIND,
            reason: e.to_string(),
        })?;
        Ok(Arc::new(TpchScanExec::new(
            p.catalog,
            p.table,
            p.scale_factor,
            p.naming,
            p.parts,
            Some(p.projection),
            p.limit,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    #[test]
    fn scan_round_trips() {
        let scan = TpchScanExec::new(
            "tpch".into(),
            TpchTableKind::Orders,
            0.1,
            ColumnNaming::Simplified,
            7,
            Some(vec![3, 0]),
            Some(10),
        )
        .expect("scan");
        let bytes = TpchScanCodec
            .try_encode(&scan)
            .expect("encode")
            .expect("mine");
        let ctx = SessionContext::new().task_ctx();
        let back = TpchScanCodec.try_decode(&bytes, &ctx).expect("decode");
        assert_eq!(
            displayable(&scan).one_line().to_string(),
            displayable(back.as_ref()).one_line().to_string()
        );
        assert_eq!(back.schema(), scan.schema());
    }
}
