//! The Flight SQL metadata calls a driver makes, with an independent client (arrow-flight's
//! `FlightSqlServiceClient`): catalogs, schemas of all catalogs, tables with patterns.

use arrow::record_batch::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{CommandGetDbSchemas, CommandGetTables};
use braid_integration_tests::{Cluster, rows};
use futures::TryStreamExt;
use tonic::transport::Endpoint;

async fn fetch(
    client: &mut FlightSqlServiceClient<tonic::transport::Channel>,
    info: arrow_flight::FlightInfo,
) -> Vec<RecordBatch> {
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.expect("ticket");
        let stream = client.do_get(ticket).await.expect("do_get");
        batches.extend(stream.try_collect::<Vec<_>>().await.expect("batches"));
    }
    batches
}

#[tokio::test(flavor = "multi_thread")]
async fn metadata_calls_list_every_catalog() {
    let cluster = Cluster::start(1, 1, None).await;
    let channel = Endpoint::from_shared(format!("http://{}", cluster.flight_sql_addr))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    let mut client = FlightSqlServiceClient::new(channel);

    let info = client.get_catalogs().await.expect("GetCatalogs");
    assert_eq!(
        rows(&fetch(&mut client, info).await),
        vec!["memory", "tpch"]
    );

    let info = client
        .get_db_schemas(CommandGetDbSchemas {
            catalog: None,
            db_schema_filter_pattern: Some("sf1%".into()),
        })
        .await
        .expect("GetDbSchemas");
    let schemas = rows(&fetch(&mut client, info).await);
    assert_eq!(
        schemas,
        vec!["tpch|sf1", "tpch|sf10", "tpch|sf100", "tpch|sf1000"]
    );

    let info = client
        .get_tables(CommandGetTables {
            catalog: Some("tpch".into()),
            db_schema_filter_pattern: Some("tiny".into()),
            table_name_filter_pattern: Some("line%".into()),
            table_types: vec![],
            include_schema: false,
        })
        .await
        .expect("GetTables");
    assert_eq!(
        rows(&fetch(&mut client, info).await),
        vec!["tpch|tiny|lineitem|TABLE"]
    );

    // A statement through the same client; the result streams back from the workers.
    let info = client
        .execute("SELECT count(*) FROM tpch.tiny.partsupp".into(), None)
        .await
        .expect("execute");
    assert_eq!(rows(&fetch(&mut client, info).await), vec!["8000"]);
}
