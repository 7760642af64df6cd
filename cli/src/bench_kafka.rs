//! `braid bench kafka`: reads one topic whole through Braid (splits on the workers, every
//! record's message built into an Arrow column, an aggregate over them) and with one plain
//! rdkafka consumer that reads the same offsets and only counts bytes, in the same run; prints
//! messages/s for both and their ratio.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use braid_catalogs::load_catalog_file;
use braid_connector_kafka::{Broker, KafkaConfig, OffsetRange};
use braid_connector_postgres::quote_ident;
use futures::StreamExt;
use futures::stream::FuturesUnordered;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::error::KafkaError;
use rdkafka::message::Message;
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::{Offset, TopicPartitionList};

use crate::client::BraidClient;

/// Options of `braid bench kafka`.
#[derive(Debug, Clone, clap::Args)]
pub struct KafkaBenchArgs {
    /// The kafka catalog; its file in the catalog directory says where the brokers are.
    #[arg(long, default_value = "kafka")]
    pub catalog: String,
    /// The topic to read, as a table of the catalog's default schema.
    #[arg(long, default_value = "braid_bench")]
    pub topic: String,
    /// First create the topic with this many small JSON messages. An existing topic is never
    /// written to.
    #[arg(long)]
    pub create_messages: Option<u64>,
    /// Partitions of a created topic.
    #[arg(long, default_value_t = 4)]
    pub partitions: i32,
    /// Runs per reader; the fastest counts.
    #[arg(long, default_value_t = 3)]
    pub iterations: usize,
}

/// Runs the benchmark against the catalog files in `catalog_dir`.
pub async fn run(
    client: &mut BraidClient,
    catalog_dir: &Path,
    args: &KafkaBenchArgs,
) -> Result<(), String> {
    let file = catalog_dir.join(format!("{}.toml", args.catalog));
    let (_, spec) = load_catalog_file(&file).map_err(|e| e.to_string())?;
    if spec.kind != braid_connector_kafka::KIND {
        return Err(format!("{} is not a kafka catalog", file.display()));
    }
    let config: KafkaConfig = spec
        .options
        .parse()
        .map_err(|e| format!("{}: {e}", file.display()))?;
    let config = Arc::new(config);
    let broker = Broker::new(args.catalog.clone(), config.clone());
    if let Some(messages) = args.create_messages {
        if broker
            .partitions(&args.topic)
            .await
            .map_err(|e| e.to_string())?
            .is_some()
        {
            return Err(format!(
                "topic '{}' exists: choose another --topic (an existing topic is never written to)",
                args.topic
            ));
        }
        println!(
            "creating topic '{}' with {messages} messages in {} partitions",
            args.topic, args.partitions
        );
        create_topic(&config, &args.topic, args.partitions, messages).await?;
    }
    let partitions = broker
        .partitions(&args.topic)
        .await
        .map_err(|e| e.to_string())?
        .ok_or_else(|| format!("topic '{}' does not exist", args.topic))?;
    let watermarks = broker
        .watermarks(&args.topic, &partitions)
        .await
        .map_err(|e| e.to_string())?;
    let relation = format!(
        "{}.{}.{}",
        quote_ident(&args.catalog),
        quote_ident(&config.default_schema),
        quote_ident(&args.topic)
    );
    let sql = format!("SELECT count(*), sum(length(_message)) FROM {relation}");
    let workers = client
        .action(braid_scheduler::flight_sql::WORKERS_ACTION, "")
        .await
        .map_err(|e| e.to_string())?;

    let (mut braid_best, mut braid_counts) = (Duration::MAX, (0, 0));
    for _ in 0..args.iterations.max(1) {
        let started = Instant::now();
        let (_, batches) = client.query_all(&sql).await.map_err(|e| e.to_string())?;
        braid_best = braid_best.min(started.elapsed());
        let column = |i: usize| -> u64 {
            batches
                .iter()
                .find(|b| b.num_rows() > 0)
                .and_then(|b| {
                    let array =
                        arrow::compute::cast(b.column(i), &arrow::datatypes::DataType::UInt64)
                            .ok()?;
                    let values = array.as_any().downcast_ref::<arrow::array::UInt64Array>()?;
                    (!arrow::array::Array::is_null(values, 0)).then(|| values.value(0))
                })
                .unwrap_or(0)
        };
        braid_counts = (column(0), column(1));
    }
    let mut plain_best = Duration::MAX;
    let mut plain_counts = (0, 0);
    for _ in 0..args.iterations.max(1) {
        let (elapsed, counts) = plain_read(&config, &args.topic, &watermarks).await?;
        plain_best = plain_best.min(elapsed);
        plain_counts = counts;
    }
    if braid_counts != plain_counts {
        return Err(format!(
            "the readers disagree: Braid read {} messages of {} bytes, the plain consumer {} of {}",
            braid_counts.0, braid_counts.1, plain_counts.0, plain_counts.1
        ));
    }
    let messages = plain_counts.0 as f64;
    let rate = |d: Duration| messages / d.as_secs_f64();
    println!(
        "{} messages ({} bytes) of topic '{}' in {} partitions; Braid on {} workers",
        plain_counts.0,
        plain_counts.1,
        args.topic,
        partitions.len(),
        workers["workers"]
    );
    println!(
        "Braid ({sql}): {:>8.0} ms, {:>12.0} messages/s",
        braid_best.as_secs_f64() * 1e3,
        rate(braid_best)
    );
    println!(
        "plain rdkafka consumer (counts bytes): {:>8.0} ms, {:>12.0} messages/s",
        plain_best.as_secs_f64() * 1e3,
        rate(plain_best)
    );
    println!(
        "Braid / plain consumer throughput: {:.2}x",
        rate(braid_best) / rate(plain_best)
    );
    Ok(())
}

/// Creates `topic` with `messages` JSON messages spread over `partitions`, with the catalog's
/// client settings.
async fn create_topic(
    config: &KafkaConfig,
    topic: &str,
    partitions: i32,
    messages: u64,
) -> Result<(), String> {
    let timeout = config.timeout();
    let admin: AdminClient<DefaultClientContext> =
        config.client_config().create().map_err(|e| e.to_string())?;
    let created = admin
        .create_topics(
            &[NewTopic::new(topic, partitions, TopicReplication::Fixed(1))],
            &AdminOptions::new().operation_timeout(Some(timeout)),
        )
        .await
        .map_err(|e| format!("creating topic '{topic}': {e}"))?;
    for result in created {
        result.map_err(|(name, e)| format!("creating topic '{name}': {e}"))?;
    }
    let producer: FutureProducer = config.client_config().create().map_err(|e| e.to_string())?;
    let mut pending = FuturesUnordered::new();
    for i in 0..messages {
        if pending.len() >= 10_000
            && let Some(Err((e, _))) = pending.next().await
        {
            return Err(format!("producing to '{topic}': {e}"));
        }
        let producer = producer.clone();
        let topic = topic.to_string();
        pending.push(async move {
            let payload = format!("{{\"id\": {i}, \"amount\": {}}}", i % 1000);
            let partition = (i % partitions as u64) as i32;
            producer
                .send(
                    FutureRecord::<(), String>::to(&topic)
                        .payload(&payload)
                        .partition(partition),
                    timeout,
                )
                .await
        });
    }
    while let Some(result) = pending.next().await {
        result.map_err(|(e, _)| format!("producing to '{topic}': {e}"))?;
    }
    Ok(())
}

/// One plain consumer reads `watermarks`' offsets of every partition and counts messages and
/// bytes; how long it took.
async fn plain_read(
    config: &KafkaConfig,
    topic: &str,
    watermarks: &[OffsetRange],
) -> Result<(Duration, (u64, u64)), String> {
    let mut client = config.client_config();
    client
        .set("group.id", "braid-bench")
        .set("enable.auto.commit", "false");
    let (topic, watermarks, timeout) = (topic.to_string(), watermarks.to_vec(), config.timeout());
    tokio::task::spawn_blocking(move || -> Result<_, KafkaError> {
        let started = Instant::now();
        let consumer: BaseConsumer = client.create()?;
        let mut assignment = TopicPartitionList::new();
        let mut open = 0;
        for w in watermarks.iter().filter(|w| w.end > w.start) {
            assignment.add_partition_offset(&topic, w.partition, Offset::Offset(w.start))?;
            open += 1;
        }
        consumer.assign(&assignment)?;
        let end = |partition: i32| {
            watermarks
                .iter()
                .find(|w| w.partition == partition)
                .map_or(0, |w| w.end)
        };
        let (mut messages, mut bytes) = (0u64, 0u64);
        while open > 0 {
            match consumer.poll(timeout) {
                Some(Ok(message)) => {
                    if message.offset() >= end(message.partition()) {
                        continue;
                    }
                    messages += 1;
                    bytes += message.payload().map_or(0, |p| p.len() as u64);
                    if message.offset() + 1 == end(message.partition()) {
                        open -= 1;
                    }
                }
                Some(Err(e)) => return Err(e),
                None => {
                    return Err(KafkaError::MessageConsumption(
                        rdkafka::types::RDKafkaErrorCode::OperationTimedOut,
                    ));
                }
            }
        }
        Ok((started.elapsed(), (messages, bytes)))
    })
    .await
    .map_err(|e| e.to_string())?
    .map_err(|e| format!("the plain consumer of '{}': {e}", config.nodes.servers()))
}
