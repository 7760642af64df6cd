//! Arrow over Flight: result streams and schemas encoded for the client, parameter rows
//! decoded from `DoPut`, and DataFusion errors as gRPC statuses.

use std::pin::Pin;

use arrow_flight::encode::FlightDataEncoderBuilder;
use arrow_flight::error::FlightError;
use arrow_flight::sql::server::PeekableFlightDataStream;
use arrow_flight::{FlightData, IpcMessage, SchemaAsIpc};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::ipc::writer::IpcWriteOptions;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::ScalarValue;
use datafusion::error::DataFusionError;
use datafusion::execution::SendableRecordBatchStream;
use futures::{Stream, TryStreamExt};
use tonic::{Code, Request, Status};

use crate::queries::{ErrorCode, QueryFailure};

pub type FlightDataStream =
    Pin<Box<dyn Stream<Item = Result<FlightData, Status>> + Send + 'static>>;

pub(super) fn empty_batch_stream(schema: SchemaRef) -> FlightDataStream {
    encode_batch(RecordBatch::new_empty(schema))
}

/// A DataFusion error as a gRPC status the client can act on. Braid's own failures (limits,
/// queues, kills) read `NAME: message` with Trino's error name.
pub fn status(error: DataFusionError) -> Status {
    if let Some(failure) = QueryFailure::find(&error) {
        let code = match failure.code {
            ErrorCode::ExceededTimeLimit
            | ErrorCode::ExceededLocalMemoryLimit
            | ErrorCode::ExceededGlobalMemoryLimit
            | ErrorCode::QueryQueueFull
            | ErrorCode::QueryRejected => Code::ResourceExhausted,
            ErrorCode::UserCanceled
            | ErrorCode::AdministrativelyKilled
            | ErrorCode::AbandonedQuery => Code::Cancelled,
            ErrorCode::PermissionDenied => Code::PermissionDenied,
            ErrorCode::NotFound => Code::NotFound,
            ErrorCode::NotSupported => Code::Unimplemented,
            ErrorCode::GenericInternalError => Code::Internal,
            _ => Code::InvalidArgument,
        };
        return Status::new(code, failure.to_string());
    }
    let message = error.to_string();
    match error.find_root() {
        DataFusionError::Plan(_) | DataFusionError::SQL(..) | DataFusionError::SchemaError(..) => {
            Status::invalid_argument(message)
        }
        DataFusionError::NotImplemented(_) => Status::unimplemented(message),
        DataFusionError::ResourcesExhausted(_) => Status::resource_exhausted(message),
        _ => Status::internal(message),
    }
}

/// A result stream as Flight data.
pub fn encode(stream: SendableRecordBatchStream) -> FlightDataStream {
    let schema = stream.schema();
    let batches = stream.map_err(|e| FlightError::ExternalError(Box::new(e)));
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(schema)
        .build(batches)
        .map_err(Status::from);
    Box::pin(flight)
}

pub(super) fn encode_batch(batch: RecordBatch) -> FlightDataStream {
    let flight = FlightDataEncoderBuilder::new()
        .with_schema(batch.schema())
        .build(futures::stream::iter([Ok(batch)]))
        .map_err(Status::from);
    Box::pin(flight)
}

/// An IPC-encoded schema, as prepared-statement results carry them.
pub(super) fn ipc_schema(schema: &Schema) -> Result<bytes::Bytes, Status> {
    let message: IpcMessage = SchemaAsIpc::new(schema, &IpcWriteOptions::default())
        .try_into()
        .map_err(|e: datafusion::arrow::error::ArrowError| Status::internal(e.to_string()))?;
    Ok(message.0)
}

/// The most parameter rows one `DoPut` may bind.
const MAX_PARAMETER_ROWS: usize = 100_000;

/// The rows of parameter values a client sent with `DoPut`, at most [`MAX_PARAMETER_ROWS`].
pub(super) async fn parameter_rows(
    request: Request<PeekableFlightDataStream>,
) -> Result<Vec<Vec<ScalarValue>>, Status> {
    // The first message may carry only the command's descriptor.
    let flight = request
        .into_inner()
        .try_filter(|data| futures::future::ready(!data.data_header.is_empty()))
        .map_err(FlightError::from);
    let mut batches = arrow_flight::decode::FlightRecordBatchStream::new_from_flight_data(flight);
    let mut rows = Vec::new();
    while let Some(batch) = batches
        .try_next()
        .await
        .map_err(|e| Status::invalid_argument(format!("bad parameter batch: {e}")))?
    {
        if rows.len() + batch.num_rows() > MAX_PARAMETER_ROWS {
            return Err(Status::invalid_argument(format!(
                "more than {MAX_PARAMETER_ROWS} parameter rows in one call: bind them in smaller batches"
            )));
        }
        for row in 0..batch.num_rows() {
            let values = batch
                .columns()
                .iter()
                .map(|column| ScalarValue::try_from_array(column, row))
                .collect::<Result<Vec<_>, _>>()
                .map_err(status)?;
            rows.push(values);
        }
    }
    Ok(rows)
}
