//! Splits, the one shape of split planning: a [`Split`] is plain bytes a connector's planning
//! wrote for one partition (a part number, a key range, a file, a topic partition's offsets),
//! never a connection or a secret. A scan's [`Splits`] travel in its plan while they are small;
//! past [`INLINE_SPLITS_MAX_BYTES`] they stay in the coordinator's [`SplitStore`] and each task
//! fetches its own split from the coordinator's internal port, as Trino's coordinator hands
//! splits to tasks, so no task message nears gRPC's 16 MiB limit however many splits there are.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{Array, BinaryArray, RecordBatch};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::error::DataFusionError;
use futures::TryStreamExt;
use parking_lot::Mutex;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use crate::ConnectorError;
use crate::connector::InternalTicket;

/// The most bytes of splits one scan carries in its plan.
pub const INLINE_SPLITS_MAX_BYTES: usize = 1 << 20;
/// The most bytes of splits the coordinator keeps for running scans.
const STORE_MAX_BYTES: usize = 1 << 30;
/// Splits not fetched for this long are forgotten (their query is long over).
const STORE_TTL: Duration = Duration::from_secs(3600);
/// How long a task waits to connect to the coordinator's internal port, and for its answer.
pub const INTERNAL_TIMEOUT: Duration = Duration::from_secs(30);

/// One unit of parallel reading, as its connector encoded it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Split(pub Vec<u8>);

impl Split {
    /// A split of a connector's own split type.
    pub fn encode<T: Serialize>(value: &T) -> Result<Self, ConnectorError> {
        serde_json::to_vec(value)
            .map(Split)
            .map_err(|e| ConnectorError::Codec {
                kind: "split",
                reason: e.to_string(),
            })
    }

    /// The connector's own split type back.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T, ConnectorError> {
        serde_json::from_slice(&self.0).map_err(|e| ConnectorError::Codec {
            kind: "split",
            reason: e.to_string(),
        })
    }
}

/// The splits of one scan, one per partition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Splits {
    /// In the plan itself.
    Inline(Vec<Split>),
    /// Kept on the coordinator, which serves split *i* at `endpoint` to partition *i*.
    Remote {
        endpoint: String,
        handle: String,
        count: usize,
    },
}

impl Splits {
    /// How many splits (= partitions) the scan has.
    pub fn len(&self) -> usize {
        match self {
            Splits::Inline(splits) => splits.len(),
            Splits::Remote { count, .. } => *count,
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Split `partition`, fetched from the coordinator if it is kept there.
    pub async fn get(&self, partition: usize) -> Result<Split, DataFusionError> {
        match self {
            Splits::Inline(splits) => splits.get(partition).cloned().ok_or_else(|| {
                DataFusionError::Internal(format!(
                    "partition {partition} of a scan with {} splits",
                    splits.len()
                ))
            }),
            Splits::Remote {
                endpoint, handle, ..
            } => {
                let ticket = InternalTicket::Split {
                    handle: handle.clone(),
                    partition,
                };
                let batches: Vec<RecordBatch> = internal_do_get(endpoint, &ticket)
                    .await?
                    .try_collect()
                    .await?;
                let split = batches.iter().find(|b| b.num_rows() > 0).and_then(|b| {
                    let bytes = b.column(0).as_any().downcast_ref::<BinaryArray>()?;
                    (!bytes.is_null(0)).then(|| Split(bytes.value(0).to_vec()))
                });
                split.ok_or_else(|| {
                    DataFusionError::External(Box::new(ConnectorError::Source {
                        catalog: String::new(),
                        message: format!(
                            "the coordinator at {endpoint} sent no split {partition} of scan {handle}"
                        ),
                    }))
                })
            }
        }
    }
}

/// The coordinator's splits of running scans whose split lists are too large for a plan.
#[derive(Debug, Default)]
pub struct SplitStore {
    scans: Mutex<HashMap<String, StoredScan>>,
}

#[derive(Debug)]
struct StoredScan {
    splits: Arc<Vec<Split>>,
    bytes: usize,
    last_used: Instant,
}

impl SplitStore {
    /// Keeps `splits` for their tasks; the handle they fetch them by.
    pub fn put(&self, splits: Vec<Split>) -> Result<String, ConnectorError> {
        let bytes: usize = splits.iter().map(|s| s.0.len()).sum();
        let mut scans = self.scans.lock();
        scans.retain(|_, scan| scan.last_used.elapsed() < STORE_TTL);
        let held: usize = scans.values().map(|scan| scan.bytes).sum();
        if held + bytes > STORE_MAX_BYTES {
            return Err(ConnectorError::LimitExceeded {
                catalog: "(coordinator)".into(),
                what: format!("splits of running scans ({} bytes)", held + bytes),
                limit: format!("{STORE_MAX_BYTES} bytes"),
                key: "the number of concurrent scans",
            });
        }
        let handle = uuid::Uuid::new_v4().to_string();
        scans.insert(
            handle.clone(),
            StoredScan {
                splits: Arc::new(splits),
                bytes,
                last_used: Instant::now(),
            },
        );
        Ok(handle)
    }

    /// Split `partition` of scan `handle`.
    pub fn get(&self, handle: &str, partition: usize) -> Option<Split> {
        let mut scans = self.scans.lock();
        let scan = scans.get_mut(handle)?;
        scan.last_used = Instant::now();
        scan.splits.get(partition).cloned()
    }

    /// Split `partition` of scan `handle` as the internal port sends it: one row, one binary
    /// column.
    pub fn batch(&self, handle: &str, partition: usize) -> Result<RecordBatch, ConnectorError> {
        let split = self.get(handle, partition).ok_or_else(|| ConnectorError::Source {
            catalog: "(coordinator)".into(),
            message: format!(
                "no split {partition} of scan {handle}: its query ended or the coordinator restarted"
            ),
        })?;
        let schema = Arc::new(Schema::new(vec![Field::new(
            "split",
            DataType::Binary,
            false,
        )]));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(BinaryArray::from_vec(vec![split.0.as_slice()]))],
        )
        .map_err(|e| ConnectorError::Codec {
            kind: "split",
            reason: e.to_string(),
        })
    }
}

/// Where a coordinator keeps large split lists, and the address its tasks fetch them from.
#[derive(Debug, Clone)]
pub struct SplitPlanner {
    store: Arc<SplitStore>,
    endpoint: String,
}

impl SplitPlanner {
    pub fn new(store: Arc<SplitStore>, endpoint: String) -> Self {
        Self { store, endpoint }
    }

    /// A scan's splits: in its plan, or kept here when they pass [`INLINE_SPLITS_MAX_BYTES`].
    pub fn plan(&self, splits: Vec<Split>) -> Result<Splits, ConnectorError> {
        let bytes: usize = splits.iter().map(|s| s.0.len()).sum();
        if bytes <= INLINE_SPLITS_MAX_BYTES {
            return Ok(Splits::Inline(splits));
        }
        let count = splits.len();
        let handle = self.store.put(splits)?;
        tracing::debug!(%handle, count, bytes, "splits kept on the coordinator");
        Ok(Splits::Remote {
            endpoint: self.endpoint.clone(),
            handle,
            count,
        })
    }
}

/// `do_get` of `ticket` on the coordinator's internal port at `endpoint` (`http://host:port`),
/// with [`INTERNAL_TIMEOUT`] for the connection and the answer; the rows then stream.
pub async fn internal_do_get(
    endpoint: &str,
    ticket: &InternalTicket,
) -> Result<
    futures::stream::BoxStream<'static, Result<RecordBatch, DataFusionError>>,
    DataFusionError,
> {
    internal_do_get_within(endpoint, ticket, INTERNAL_TIMEOUT).await
}

async fn internal_do_get_within(
    endpoint: &str,
    ticket: &InternalTicket,
    timeout: Duration,
) -> Result<
    futures::stream::BoxStream<'static, Result<RecordBatch, DataFusionError>>,
    DataFusionError,
> {
    let catalog = ticket.catalog().to_string();
    let error = move |message: String| -> DataFusionError {
        DataFusionError::External(Box::new(ConnectorError::Source {
            catalog: catalog.clone(),
            message,
        }))
    };
    let request = arrow_flight::Ticket::new(ticket.encode()?);
    let answer = async {
        let channel = tonic::transport::Endpoint::from_shared(endpoint.to_string())
            .map_err(|e| format!("bad coordinator address '{endpoint}': {e}"))?
            .connect_timeout(timeout)
            .connect()
            .await
            .map_err(|e| format!("cannot reach the coordinator at {endpoint}: {e}"))?;
        arrow_flight::FlightClient::new(channel)
            .do_get(request)
            .await
            .map_err(|e| format!("fetching from {endpoint}: {e}"))
    };
    // The whole exchange is bounded: a peer that accepts the connection and stays silent
    // (in HTTP/2's handshake or in the answer) is an error, not a task that waits forever.
    let stream = tokio::time::timeout(timeout, answer)
        .await
        .map_err(|_| {
            error(format!(
                "the coordinator at {endpoint} did not answer within {}s",
                timeout.as_secs()
            ))
        })?
        .map_err(&error)?;
    let endpoint = endpoint.to_string();
    Ok(Box::pin(stream.map_err(move |e| {
        error(format!("reading from the coordinator at {endpoint}: {e}"))
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A coordinator that accepts the connection and never answers: the fetch fails within
    /// its timeout and names the peer.
    #[tokio::test]
    async fn a_silent_coordinator_is_an_error_naming_it() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let address = listener.local_addr().expect("address");
        let silent = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((socket, _)) = listener.accept().await {
                held.push(socket);
            }
        });
        let ticket = InternalTicket::Service {
            catalog: "events".into(),
            request: vec![],
        };
        let endpoint = format!("http://{address}");
        let fetch = internal_do_get_within(&endpoint, &ticket, Duration::from_secs(1));
        let result = tokio::time::timeout(Duration::from_secs(20), fetch)
            .await
            .expect("the fetch ends by itself");
        let message = result.err().expect("an error").to_string();
        assert!(
            message.contains(&endpoint) && message.contains("did not answer within 1s"),
            "{message}"
        );
        assert!(message.contains("events"), "{message}");
        silent.abort();
    }

    #[test]
    fn small_split_lists_stay_in_the_plan_and_large_ones_on_the_coordinator() {
        let planner = SplitPlanner::new(Arc::default(), "http://127.0.0.1:1".into());
        let small = planner
            .plan(vec![Split(vec![1; 10]), Split(vec![2; 10])])
            .expect("plan");
        assert!(matches!(&small, Splits::Inline(s) if s.len() == 2));
        let large = planner
            .plan(
                (0..3)
                    .map(|i| Split(vec![i; INLINE_SPLITS_MAX_BYTES]))
                    .collect(),
            )
            .expect("plan");
        let Splits::Remote { handle, count, .. } = &large else {
            panic!("a large list stays on the coordinator: {large:?}");
        };
        assert_eq!(*count, 3);
        assert_eq!(
            planner.store.get(handle, 2),
            Some(Split(vec![2; INLINE_SPLITS_MAX_BYTES]))
        );
        assert_eq!(planner.store.get(handle, 3), None);
        let batch = planner.store.batch(handle, 1).expect("batch");
        assert_eq!(batch.num_rows(), 1);
        assert!(planner.store.batch("nope", 0).is_err());
    }

    #[test]
    fn splits_round_trip_their_connector_type() {
        let split = Split::encode(&("a key range", 1u64, 99u64)).expect("encode");
        let back: (String, u64, u64) = split.decode().expect("decode");
        assert_eq!(back, ("a key range".to_string(), 1, 99));
    }
}
