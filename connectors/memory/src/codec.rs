//! [`MemoryScanCodec`]: a memory scan travels as its table handle, snapshot and splits; the
//! rows stay on the coordinator until a worker fetches them.

use std::sync::Arc;

use braid_connector_spi::{ConnectorError, ScanCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use serde::{Deserialize, Serialize};

use crate::exec::MemoryScanExec;

/// Encodes and decodes [`MemoryScanExec`].
#[derive(Debug, Default)]
pub struct MemoryScanCodec;

#[derive(Serialize, Deserialize)]
struct Payload {
    catalog: String,
    schema: String,
    table: String,
    table_id: String,
    /// The table's Arrow schema as an IPC message.
    columns: Vec<u8>,
    projection: Vec<usize>,
    batch_count: usize,
    parts: usize,
    endpoint: String,
}

fn codec_error(reason: impl ToString) -> ConnectorError {
    ConnectorError::Codec {
        kind: crate::KIND,
        reason: reason.to_string(),
    }
}

/// A schema as an Arrow IPC stream with no batches.
fn schema_to_ipc(schema: &SchemaRef) -> Result<Vec<u8>, ConnectorError> {
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, schema).map_err(codec_error)?;
    writer.finish().map_err(codec_error)?;
    drop(writer);
    Ok(buf)
}

fn schema_from_ipc(bytes: &[u8]) -> Result<SchemaRef, ConnectorError> {
    Ok(StreamReader::try_new(bytes, None)
        .map_err(codec_error)?
        .schema())
}

impl ScanCodec for MemoryScanCodec {
    fn try_encode(&self, node: &dyn ExecutionPlan) -> Result<Option<Vec<u8>>> {
        let Some(scan) = node.as_any().downcast_ref::<MemoryScanExec>() else {
            return Ok(None);
        };
        let payload = Payload {
            catalog: scan.catalog().to_string(),
            schema: scan.schema_name().to_string(),
            table: scan.table().to_string(),
            table_id: scan.table_id().to_string(),
            columns: schema_to_ipc(scan.table_schema())?,
            projection: scan.projection().to_vec(),
            batch_count: scan.batch_count(),
            parts: scan.parts(),
            endpoint: scan.endpoint().to_string(),
        };
        Ok(Some(serde_json::to_vec(&payload).map_err(codec_error)?))
    }

    fn try_decode(&self, payload: &[u8], _ctx: &TaskContext) -> Result<Arc<dyn ExecutionPlan>> {
        let p: Payload = serde_json::from_slice(payload).map_err(codec_error)?;
        let columns = schema_from_ipc(&p.columns)?;
        Ok(Arc::new(MemoryScanExec::new(
            p.catalog,
            p.schema,
            p.table,
            p.table_id,
            columns,
            Some(p.projection),
            p.batch_count,
            p.parts,
            p.endpoint,
        )?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    #[test]
    fn scan_round_trips() {
        let columns = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Decimal128(15, 2), true),
        ]));
        let scan = MemoryScanExec::new(
            "memory".into(),
            "default".into(),
            "t".into(),
            "id-1".into(),
            columns,
            Some(vec![2, 0]),
            9,
            4,
            "http://127.0.0.1:1".into(),
        )
        .expect("scan");
        let bytes = MemoryScanCodec
            .try_encode(&scan)
            .expect("encode")
            .expect("mine");
        let ctx = SessionContext::new().task_ctx();
        let back = MemoryScanCodec.try_decode(&bytes, &ctx).expect("decode");
        assert_eq!(
            displayable(&scan).one_line().to_string(),
            displayable(back.as_ref()).one_line().to_string()
        );
        assert_eq!(back.schema(), scan.schema());
    }
}
