//! [`MemoryScanCodec`]: a memory scan travels as its [`MemoryScanHandle`] (table, snapshot,
//! projection, where to fetch) and its splits; the rows stay on the coordinator until a worker
//! fetches them.

use braid_connector_spi::{ConnectorError, ScanExecCodec};
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::ipc::reader::StreamReader;
use datafusion::arrow::ipc::writer::StreamWriter;

use crate::exec::{MemoryScan, MemoryScanHandle};

/// Encodes and decodes the `MemoryScanExec`s of one catalog.
pub type MemoryScanCodec = ScanExecCodec<MemoryScan>;

/// The codec of the memory catalog `catalog`.
pub fn codec(catalog: &str) -> MemoryScanCodec {
    ScanExecCodec::new(catalog, |handle: MemoryScanHandle| MemoryScan::new(handle))
}

fn codec_error(reason: impl ToString) -> ConnectorError {
    ConnectorError::Codec {
        kind: crate::KIND,
        reason: reason.to_string(),
    }
}

/// A schema as an Arrow IPC stream with no batches.
pub(crate) fn schema_to_ipc(schema: &SchemaRef) -> Result<Vec<u8>, ConnectorError> {
    let mut buf = Vec::new();
    let mut writer = StreamWriter::try_new(&mut buf, schema).map_err(codec_error)?;
    writer.finish().map_err(codec_error)?;
    drop(writer);
    Ok(buf)
}

pub(crate) fn schema_from_ipc(bytes: &[u8]) -> Result<SchemaRef, ConnectorError> {
    Ok(StreamReader::try_new(bytes, None)
        .map_err(codec_error)?
        .schema())
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_connector_spi::ScanCodec;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;
    use std::sync::Arc;

    #[test]
    fn scan_round_trips() {
        let columns = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("name", DataType::Utf8, true),
            Field::new("price", DataType::Decimal128(15, 2), true),
        ]));
        let scan = MemoryScan::exec(
            "memory".into(),
            "default".into(),
            "t".into(),
            "id-1".into(),
            &columns,
            Some(vec![2, 0]),
            (9, 90),
            4,
            "http://127.0.0.1:1".into(),
        )
        .expect("scan");
        let codec = codec("memory");
        let bytes = codec.try_encode(&scan).expect("encode").expect("mine");
        let ctx = SessionContext::new().task_ctx();
        let back = codec.try_decode(&bytes, &ctx).expect("decode");
        assert_eq!(
            displayable(&scan).one_line().to_string(),
            displayable(back.as_ref()).one_line().to_string()
        );
        assert_eq!(back.schema(), scan.schema());
    }
}
