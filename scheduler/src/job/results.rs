//! The coordinator's end of streamed results ([`braid_connector_spi::ResultSinkExec`]):
//! [`ResultsToCoordinator`] puts the sink at the root of a job's plan, and the [`ResultInbox`]
//! takes each final task's `do_put` on the internal port and hands its batches to the query's
//! [`ResultReceiver`], in the order they come.
//!
//! Per partition: the first put claims it; one that ends with the end marker completes it; one
//! that breaks off releases it for a retried task if none of its rows was handed on, and fails
//! the query otherwise (the client has seen part of it). A put for a completed partition (a
//! task rerun after its worker was lost) is read and dropped.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arrow_flight::FlightData;
use arrow_flight::decode::FlightRecordBatchStream;
use arrow_flight::error::FlightError;
use braid_connector_spi::{END_MARKER, ResultSinkExec, ResultTarget, result_partition};
use braid_optimizer_rules::properties::QueryProperties;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::common::exec_datafusion_err;
use datafusion::config::ConfigOptions;
use datafusion::error::{DataFusionError, Result};
use datafusion::physical_optimizer::PhysicalOptimizerRule;
use datafusion::physical_plan::ExecutionPlan;
use futures::{StreamExt, TryStreamExt};
use parking_lot::Mutex;
use tokio::sync::mpsc;
use tonic::{Status, Streaming};

/// The most queries whose results may stream at once (each holds a few batches at most).
const MAX_OPEN: usize = 10_000;
/// Batches buffered per query between the final tasks and the client.
const BUFFERED_BATCHES: usize = 8;

/// Wraps the root of a job's plan in a [`ResultSinkExec`] when the coordinator asked for
/// streamed results (`braid.result_endpoint` and `braid.query_id` set): the last physical rule.
#[derive(Debug, Default)]
pub struct ResultsToCoordinator;

impl PhysicalOptimizerRule for ResultsToCoordinator {
    fn optimize(
        &self,
        plan: Arc<dyn ExecutionPlan>,
        config: &ConfigOptions,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let properties = QueryProperties::of(config);
        if properties.result_endpoint.is_empty()
            || properties.query_id.is_empty()
            || plan.as_any().is::<ResultSinkExec>()
        {
            return Ok(plan);
        }
        let target = ResultTarget {
            query_id: properties.query_id.clone(),
            endpoint: properties.result_endpoint.clone(),
        };
        Ok(Arc::new(ResultSinkExec::new(plan, target)))
    }

    fn name(&self) -> &str {
        "braid_results_to_coordinator"
    }

    fn schema_check(&self) -> bool {
        true
    }
}

/// What a query's result stream receives.
pub enum Delivery {
    Batch(RecordBatch),
    /// The job succeeded and every partition has been handed on.
    End,
    Failed(DataFusionError),
}

enum Part {
    /// A put is sending it; `handed_on` once a batch went to the client.
    Receiving {
        handed_on: bool,
    },
    Complete,
}

struct Open {
    sender: mpsc::Sender<Delivery>,
    parts: Mutex<HashMap<usize, Part>>,
}

/// The queries waiting for streamed results, by query id (owner: the query's
/// [`ResultReceiver`], which removes its entry when dropped).
#[derive(Default)]
pub struct ResultInbox {
    open: Mutex<HashMap<String, Arc<Open>>>,
}

/// A query's entry in the inbox, removed on drop; its deliveries go to the receiver
/// [`ResultInbox::open`] returns with it.
pub struct ResultReceiver {
    sender: mpsc::Sender<Delivery>,
    open: Arc<Open>,
    inbox: Arc<ResultInbox>,
    query_id: String,
}

impl ResultInbox {
    /// Opens the inbox of `query_id` for its final tasks' puts.
    pub fn open(
        self: &Arc<Self>,
        query_id: &str,
    ) -> Result<(ResultReceiver, mpsc::Receiver<Delivery>)> {
        let (sender, deliveries) = mpsc::channel(BUFFERED_BATCHES);
        let open = Arc::new(Open {
            sender: sender.clone(),
            parts: Mutex::default(),
        });
        let mut queries = self.open.lock();
        if queries.len() >= MAX_OPEN {
            return Err(exec_datafusion_err!(
                "{MAX_OPEN} queries are already streaming results: try again later"
            ));
        }
        if queries.contains_key(query_id) {
            return Err(exec_datafusion_err!(
                "query {query_id} is already receiving results"
            ));
        }
        queries.insert(query_id.to_string(), open.clone());
        let receiver = ResultReceiver {
            sender,
            open,
            inbox: self.clone(),
            query_id: query_id.to_string(),
        };
        Ok((receiver, deliveries))
    }

    /// Takes one final task's put: its batches go to the query's receiver as they arrive.
    pub async fn receive(&self, mut data: Streaming<FlightData>) -> Result<(), Status> {
        let first = data
            .message()
            .await?
            .ok_or_else(|| Status::invalid_argument("an empty put"))?;
        let (query_id, partition) = first
            .flight_descriptor
            .as_ref()
            .and_then(result_partition)
            .ok_or_else(|| Status::invalid_argument("a put without a result partition"))?;
        let open = self.open.lock().get(&query_id).cloned().ok_or_else(|| {
            Status::not_found(format!(
                "query {query_id} takes no results (it is over or was cancelled)"
            ))
        })?;
        let claimed = {
            let mut parts = open.parts.lock();
            match parts.get(&partition) {
                None => {
                    parts.insert(partition, Part::Receiving { handed_on: false });
                    true
                }
                Some(Part::Complete) => false,
                Some(Part::Receiving { .. }) => {
                    return Err(Status::already_exists(format!(
                        "partition {partition} of query {query_id} is being received from another task"
                    )));
                }
            }
        };
        let ended = Arc::new(AtomicBool::new(false));
        let seen_end = ended.clone();
        let messages = futures::stream::once(futures::future::ready(Ok(first)))
            .chain(data)
            .map_err(|status| FlightError::Tonic(Box::new(status)))
            .try_take_while(move |message| {
                let last = message.app_metadata.as_ref() == END_MARKER;
                if last {
                    seen_end.store(true, Ordering::Release);
                }
                futures::future::ready(Ok(!last))
            });
        let mut batches = FlightRecordBatchStream::new_from_flight_data(messages);
        let mut broken = None;
        while let Some(batch) = batches.next().await {
            match batch {
                Ok(batch) if claimed => {
                    if let Some(Part::Receiving { handed_on }) =
                        open.parts.lock().get_mut(&partition)
                    {
                        *handed_on = true;
                    }
                    if open.sender.send(Delivery::Batch(batch)).await.is_err() {
                        return Err(Status::cancelled(format!(
                            "query {query_id} no longer reads its results"
                        )));
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    broken = Some(e.to_string());
                    break;
                }
            }
        }
        drop(batches);
        if !claimed {
            return Ok(());
        }
        if ended.load(Ordering::Acquire) && broken.is_none() {
            open.parts.lock().insert(partition, Part::Complete);
            return Ok(());
        }
        let reason = broken.unwrap_or_else(|| "its task stopped sending".to_string());
        let handed_on = matches!(
            open.parts.lock().remove(&partition),
            Some(Part::Receiving { handed_on: true })
        );
        if handed_on {
            let error = exec_datafusion_err!(
                "partition {partition} of the results broke off after some of its rows were returned: {reason}"
            );
            let _ = open.sender.send(Delivery::Failed(error)).await;
        }
        Err(Status::aborted(format!(
            "partition {partition} of query {query_id}: {reason}"
        )))
    }
}

impl ResultReceiver {
    /// Delivers the job's outcome after the batches already received.
    pub async fn deliver(&self, delivery: Delivery) {
        // A closed channel: the client has stopped reading, nothing is owed to it.
        let _ = self.sender.send(delivery).await;
    }

    /// Resolves once the query has stopped reading its deliveries.
    pub async fn closed(&self) {
        self.sender.closed().await;
    }

    /// The partitions of `expected` that no task has completed.
    pub fn missing(&self, expected: &BTreeSet<usize>) -> Vec<usize> {
        let parts = self.open.parts.lock();
        expected
            .iter()
            .filter(|p| !matches!(parts.get(p), Some(Part::Complete)))
            .copied()
            .collect()
    }
}

impl Drop for ResultReceiver {
    fn drop(&mut self) {
        self.inbox.open.lock().remove(&self.query_id);
    }
}
