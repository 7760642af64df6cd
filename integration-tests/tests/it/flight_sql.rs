//! The Flight SQL calls a driver makes, with an independent client (arrow-flight's
//! `FlightSqlServiceClient`): metadata (catalogs, schemas of all catalogs, tables with patterns
//! and schemas, table types, SqlInfo, XdbcTypeInfo, keys), updates, prepared statements with
//! bound parameters, and per-connection sessions.

use std::sync::Arc;

use arrow::array::{Int64Array, StringArray};
use arrow::datatypes::{DataType, Field, Schema};
use arrow::record_batch::RecordBatch;
use arrow_flight::sql::client::FlightSqlServiceClient;
use arrow_flight::sql::{
    CommandGetCrossReference, CommandGetDbSchemas, CommandGetExportedKeys, CommandGetImportedKeys,
    CommandGetPrimaryKeys, CommandGetTables, SqlInfo,
};
use braid_integration_tests::{Cluster, flight_sql_client, rows};
use futures::TryStreamExt;
use tonic::transport::Channel;

async fn connect(cluster: &Cluster) -> FlightSqlServiceClient<Channel> {
    flight_sql_client(&cluster.flight_sql_addr).await
}

async fn query(client: &mut FlightSqlServiceClient<Channel>, sql: &str) -> Vec<String> {
    let info = client
        .execute(sql.into(), None)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows(&fetch(client, info).await)
}

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
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 1, None).await;
    let mut client = connect(&cluster).await;

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

    // Tables with their Arrow schema (include_schema), of every catalog.
    let info = client
        .get_tables(CommandGetTables {
            catalog: None,
            db_schema_filter_pattern: Some("tiny".into()),
            table_name_filter_pattern: Some("nation".into()),
            table_types: vec!["TABLE".into()],
            include_schema: true,
        })
        .await
        .expect("GetTables with schemas");
    let batches = fetch(&mut client, info).await;
    let batch = &batches[0];
    assert_eq!(batch.num_rows(), 1);
    let ipc = batch
        .column_by_name("table_schema")
        .expect("table_schema column")
        .as_any()
        .downcast_ref::<arrow::array::BinaryArray>()
        .expect("binary")
        .value(0)
        .to_vec();
    let schema = arrow::ipc::convert::try_schema_from_ipc_buffer(&ipc).expect("schema");
    assert_eq!(schema.field(0).name(), "n_nationkey");

    let info = client.get_table_types().await.expect("GetTableTypes");
    assert_eq!(rows(&fetch(&mut client, info).await), vec!["TABLE", "VIEW"]);

    let info = client
        .get_sql_info(vec![
            SqlInfo::FlightSqlServerName,
            SqlInfo::SqlIdentifierQuoteChar,
            SqlInfo::FlightSqlServerTransaction,
            SqlInfo::FlightSqlServerCancel,
        ])
        .await
        .expect("GetSqlInfo");
    let info_rows = rows(&fetch(&mut client, info).await);
    assert_eq!(
        info_rows,
        vec![
            "0|{string_value=Braid}",
            "8|{int32_bitmask=0}",
            "9|{bool_value=true}",
            "504|{string_value=\"}"
        ],
        "{info_rows:?}"
    );

    let info = client
        .get_xdbc_type_info(Default::default())
        .await
        .expect("GetXdbcTypeInfo");
    let types = rows(&fetch(&mut client, info).await);
    assert!(
        types.iter().any(|t| t.starts_with("bigint|-5|")),
        "{types:?}"
    );
    assert!(
        types.iter().any(|t| t.starts_with("varchar|12|")),
        "{types:?}"
    );

    // No connector declares keys: empty results with the right schema, not errors.
    let table = |name: &str| {
        (
            Some("tpch".to_string()),
            Some("tiny".to_string()),
            name.to_string(),
        )
    };
    let (catalog, db_schema, name) = table("orders");
    let info = client
        .get_primary_keys(CommandGetPrimaryKeys {
            catalog: catalog.clone(),
            db_schema: db_schema.clone(),
            table: name.clone(),
        })
        .await
        .expect("GetPrimaryKeys");
    let schema = info.clone().try_decode_schema().expect("schema");
    assert_eq!(schema.field(3).name(), "column_name");
    assert!(rows(&fetch(&mut client, info).await).is_empty());
    let info = client
        .get_exported_keys(CommandGetExportedKeys {
            catalog: catalog.clone(),
            db_schema: db_schema.clone(),
            table: name.clone(),
        })
        .await
        .expect("GetExportedKeys");
    assert!(rows(&fetch(&mut client, info).await).is_empty());
    let info = client
        .get_imported_keys(CommandGetImportedKeys {
            catalog: catalog.clone(),
            db_schema: db_schema.clone(),
            table: name.clone(),
        })
        .await
        .expect("GetImportedKeys");
    assert!(rows(&fetch(&mut client, info).await).is_empty());
    let info = client
        .get_cross_reference(CommandGetCrossReference {
            pk_catalog: catalog.clone(),
            pk_db_schema: db_schema.clone(),
            pk_table: "customer".into(),
            fk_catalog: catalog,
            fk_db_schema: db_schema,
            fk_table: name,
        })
        .await
        .expect("GetCrossReference");
    assert!(rows(&fetch(&mut client, info).await).is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn updates_and_prepared_statements_with_parameters() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 1, None).await;
    let mut client = connect(&cluster).await;

    // Updates return row counts; DDL returns 0.
    let created = client
        .execute_update(
            "CREATE TABLE memory.default.people (id BIGINT, name VARCHAR)".into(),
            None,
        )
        .await
        .expect("CREATE TABLE");
    assert_eq!(created, 0);
    let inserted = client
        .execute_update(
            "INSERT INTO memory.default.people VALUES (1, 'ann'), (2, 'bob')".into(),
            None,
        )
        .await
        .expect("INSERT");
    assert_eq!(inserted, 2);
    let copied = client
        .execute_update(
            "CREATE TABLE memory.default.nations AS SELECT * FROM tpch.tiny.nation".into(),
            None,
        )
        .await
        .expect("CTAS");
    assert_eq!(copied, 25);
    let refused = client
        .execute_update("SELECT 1".into(), None)
        .await
        .expect_err("a query is not an update");
    assert!(
        refused.to_string().contains("run it as a query"),
        "{refused}"
    );

    // A prepared query with a `?` parameter, executed with two different bindings.
    let mut statement = client
        .prepare(
            "SELECT name FROM memory.default.people WHERE id = ? OR name = ?".into(),
            None,
        )
        .await
        .expect("prepare");
    let parameters = statement
        .parameter_schema()
        .expect("parameter schema")
        .clone();
    assert_eq!(parameters.fields().len(), 2);
    assert_eq!(parameters.field(0).data_type(), &DataType::Int64);
    assert_eq!(parameters.field(1).data_type(), &DataType::Utf8);
    assert_eq!(
        statement.dataset_schema().expect("schema").field(0).name(),
        "name"
    );
    let bind = |id: i64, name: &str| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![
                Field::new("$1", DataType::Int64, true),
                Field::new("$2", DataType::Utf8, true),
            ])),
            vec![
                Arc::new(Int64Array::from(vec![id])),
                Arc::new(StringArray::from(vec![name])),
            ],
        )
        .expect("parameter batch")
    };
    statement.set_parameters(bind(2, "nobody")).expect("bind");
    let info = statement.execute().await.expect("execute prepared");
    assert_eq!(rows(&fetch(&mut client, info).await), vec!["bob"]);
    // Quotes in a bound value are data, not SQL.
    statement
        .set_parameters(bind(0, "ann' OR '1'='1"))
        .expect("bind");
    let info = statement.execute().await.expect("execute prepared");
    assert!(rows(&fetch(&mut client, info).await).is_empty());
    statement.close().await.expect("close");

    // A prepared INSERT with several parameter rows: one update count for all.
    let mut insert = client
        .prepare(
            "INSERT INTO memory.default.people VALUES (?, ?)".into(),
            None,
        )
        .await
        .expect("prepare insert");
    let rows_to_insert = RecordBatch::try_new(
        Arc::new(Schema::new(vec![
            Field::new("$1", DataType::Int64, true),
            Field::new("$2", DataType::Utf8, true),
        ])),
        vec![
            Arc::new(Int64Array::from(vec![3, 4])),
            Arc::new(StringArray::from(vec!["o'brien", "back\\slash"])),
        ],
    )
    .expect("batch");
    insert.set_parameters(rows_to_insert).expect("bind");
    assert_eq!(insert.execute_update().await.expect("execute update"), 2);
    insert.close().await.expect("close");

    // Parameter rows are bounded: 100,001 rows in one DoPut are refused, not collected.
    let mut statement = client
        .prepare(
            "SELECT name FROM memory.default.people WHERE id = ?".into(),
            None,
        )
        .await
        .expect("prepare");
    let too_many = RecordBatch::try_new(
        Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)])),
        vec![Arc::new(Int64Array::from_iter_values(0..100_001))],
    )
    .expect("batch");
    statement.set_parameters(too_many).expect("bind");
    let error = statement.execute().await.expect_err("too many rows");
    assert!(
        error
            .to_string()
            .contains("more than 100000 parameter rows in one call"),
        "{error}"
    );
    statement.close().await.expect("close");
    assert_eq!(
        query(
            &mut client,
            "SELECT id, name FROM memory.default.people ORDER BY id"
        )
        .await,
        vec!["1|ann", "2|bob", "3|o'brien", "4|back\\slash"]
    );

    // Executing without binding the parameters is a clear error.
    let mut unbound = client
        .prepare(
            "SELECT * FROM tpch.tiny.nation WHERE n_nationkey = $1".into(),
            None,
        )
        .await
        .expect("prepare");
    let error = unbound.execute().await.expect_err("unbound parameters");
    assert!(error.to_string().contains("bind them"), "{error}");

    // EXPLAIN and EXPLAIN ANALYZE come back as text rows.
    let plan = query(&mut client, "EXPLAIN SELECT count(*) FROM tpch.tiny.orders").await;
    assert!(plan[0].contains("Distributed plan"), "{plan:?}");
    let analyzed = query(
        &mut client,
        "EXPLAIN ANALYZE SELECT count(*) FROM tpch.tiny.orders WHERE o_totalprice > 0",
    )
    .await;
    assert!(analyzed[0].contains("output_rows=15000"), "{analyzed:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn each_login_is_its_own_session() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 1, None).await;
    let mut ann = connect(&cluster).await;
    let mut bob = connect(&cluster).await;
    ann.handshake("ann", "").await.expect("handshake");
    bob.handshake("bob", "").await.expect("handshake");

    query(&mut ann, "USE memory.default").await;
    query(
        &mut ann,
        "SET SESSION datafusion.execution.batch_size = 1234",
    )
    .await;
    let setting = |rows: Vec<String>| rows[0].split('|').nth(1).map(str::to_string);
    let show = "SHOW SESSION LIKE 'datafusion.execution.batch_size'";
    assert_eq!(
        setting(query(&mut ann, show).await).as_deref(),
        Some("1234")
    );
    assert_eq!(
        setting(query(&mut bob, show).await).as_deref(),
        Some("8192")
    );
    // ann's USE: unqualified names resolve in memory.default for ann only.
    assert_eq!(
        query(&mut bob, "SELECT count(*) FROM nation").await,
        vec!["25"]
    );
    let error = ann
        .execute("SELECT count(*) FROM nation".into(), None)
        .await
        .expect_err("memory.default has no nation table");
    assert!(
        error.to_string().contains("memory.default.nation"),
        "{error}"
    );

    query(&mut ann, "RESET SESSION datafusion.execution.batch_size").await;
    assert_eq!(
        setting(query(&mut ann, show).await).as_deref(),
        Some("8192")
    );
    // The session outlives one statement: still in memory.default.
    assert!(query(&mut ann, "SHOW TABLES").await.is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn prepared_queries_reuse_their_plan_and_still_see_what_changed() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(2, 1, None).await;
    let mut client = connect(&cluster).await;
    client.handshake("ann", "").await.expect("handshake");
    let key = |id: i64| {
        RecordBatch::try_new(
            Arc::new(Schema::new(vec![Field::new("$1", DataType::Int64, true)])),
            vec![Arc::new(Int64Array::from(vec![id]))],
        )
        .expect("parameter batch")
    };

    // A point query on the workers, executed with several keys: what the SQL returns.
    let mut point = client
        .prepare(
            "SELECT o_orderkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey = ?".into(),
            None,
        )
        .await
        .expect("prepare");
    for id in [1, 33, 59_975, 2] {
        point.set_parameters(key(id)).expect("bind");
        let info = point.execute().await.expect("execute prepared");
        let sql = format!(
            "SELECT o_orderkey, o_totalprice FROM tpch.tiny.orders WHERE o_orderkey = {id}"
        );
        let expected = query(&mut client, &sql).await;
        assert_eq!(rows(&fetch(&mut client, info).await), expected, "key {id}");
    }

    // New rows, and a table dropped and made again with the same columns: each execution
    // reads the table as it is then.
    let table = r#"memory.default."O'Brien people""#;
    let updater = client.clone();
    let update = |sql: String| {
        let mut client = updater.clone();
        async move {
            client
                .execute_update(sql.clone(), None)
                .await
                .unwrap_or_else(|e| panic!("{sql}: {e}"))
        }
    };
    update(format!(
        "CREATE TABLE {table} (id BIGINT, \"Full Name\" VARCHAR)"
    ))
    .await;
    update(format!("INSERT INTO {table} VALUES (1, 'O''Brien')")).await;
    let mut by_id = client
        .prepare(
            format!("SELECT \"Full Name\" FROM {table} WHERE id = ?"),
            None,
        )
        .await
        .expect("prepare");
    let mut names = async |id: i64| {
        by_id.set_parameters(key(id)).expect("bind");
        let info = by_id.execute().await.map_err(|e| e.to_string())?;
        Ok::<_, String>(rows(&fetch(&mut client.clone(), info).await))
    };
    assert_eq!(names(1).await, Ok(vec!["O'Brien".to_string()]));
    assert_eq!(names(2).await, Ok(vec![]));
    update(format!("INSERT INTO {table} VALUES (2, 'Zoë')")).await;
    assert_eq!(names(2).await, Ok(vec!["Zoë".to_string()]));
    update(format!("DROP TABLE {table}")).await;
    update(format!(
        "CREATE TABLE {table} (id BIGINT, \"Full Name\" VARCHAR)"
    ))
    .await;
    update(format!("INSERT INTO {table} VALUES (2, 'Dee')")).await;
    assert_eq!(names(2).await, Ok(vec!["Dee".to_string()]));
    // Other columns: the statement is planned again.
    update(format!("DROP TABLE {table}")).await;
    update(format!(
        "CREATE TABLE {table} (\"Full Name\" VARCHAR, id BIGINT, since DATE)"
    ))
    .await;
    update(format!(
        "INSERT INTO {table} VALUES ('Eve', 2, DATE '2026-11-24')"
    ))
    .await;
    assert_eq!(names(2).await, Ok(vec!["Eve".to_string()]));
    // No table: the planning error names it.
    update(format!("DROP TABLE {table}")).await;
    let error = names(2).await.expect_err("the table is gone");
    assert!(error.contains("O'Brien people"), "{error}");

    // An unqualified name means what the session's USE says at each execution.
    query(&mut client, "USE tpch.tiny").await;
    let mut count = client
        .prepare(
            "SELECT count(*) FROM nation WHERE n_regionkey = ?".into(),
            None,
        )
        .await
        .expect("prepare");
    count.set_parameters(key(1)).expect("bind");
    let info = count.execute().await.expect("execute prepared");
    assert_eq!(rows(&fetch(&mut client, info).await), vec!["5"]);
    update("CREATE TABLE memory.default.nation AS SELECT * FROM tpch.tiny.nation WHERE n_nationkey < 3".into()).await;
    query(&mut client, "USE memory.default").await;
    // ALGERIA, ARGENTINA and BRAZIL: two in region 1.
    let info = count.execute().await.expect("execute prepared");
    assert_eq!(rows(&fetch(&mut client, info).await), vec!["2"]);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_client_without_a_session_is_told_its_session_changes_would_be_lost() {
    let _serial = braid_integration_tests::serial().await;
    let cluster = Cluster::start(1, 1, None).await;
    // No login and no x-braid-session header: each statement runs in a new session.
    let mut anonymous = connect(&cluster).await;
    for sql in [
        "SET SESSION spill_enabled = false",
        "RESET SESSION spill_enabled",
        "SET datafusion.execution.batch_size = 1234",
        "USE memory.default",
    ] {
        let error = anonymous
            .execute(sql.into(), None)
            .await
            .expect_err("refused");
        assert!(
            error.to_string().contains("this client has no session"),
            "{sql}: {error}"
        );
        let error = anonymous
            .execute_update(sql.into(), None)
            .await
            .expect_err("refused");
        assert!(error.to_string().contains("Log in"), "{sql}: {error}");
    }
    let failed = query(
        &mut anonymous,
        "SELECT count(*) FROM system.runtime.queries \
         WHERE query = 'USE memory.default' AND state = 'FAILED'",
    )
    .await;
    assert_eq!(failed, vec!["2"]);
    // Queries still run; a named session keeps its settings.
    assert_eq!(
        query(&mut anonymous, "SELECT 'O''Brien'").await,
        vec!["O'Brien"]
    );
    anonymous.set_header("x-braid-session", "mine");
    query(&mut anonymous, "SET SESSION spill_enabled = false").await;
    let shown = query(&mut anonymous, "SHOW SESSION LIKE '%spill_enabled'").await;
    assert!(
        shown.len() == 1 && shown[0].starts_with("braid.spill_enabled|false|true|boolean|"),
        "{shown:?}"
    );
}
