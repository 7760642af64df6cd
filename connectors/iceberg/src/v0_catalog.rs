//! Workaround for apache/iceberg-rust#2068 (fixed upstream by #3032, after 0.10.1): iceberg-rust
//! 0.10's SQL catalog reads the `iceberg_type` column of `iceberg_tables` (the JDBC catalog's
//! "V1" schema), but pyiceberg up to 0.10 and Java's default ("V0") create the table without it,
//! so every listing of such a catalog fails with "no such column: iceberg_type". Before the
//! catalog is opened, [`add_iceberg_type`] adds the column when it is missing — the migration
//! Java's `JdbcCatalog` and pyiceberg (apache/iceberg-python#3263) do themselves. Existing rows
//! keep `NULL`, which every reader takes for a table. Remove with the upgrade past 0.10.1.

use std::time::Duration;

use sqlx::AnyConnection;
use sqlx::any::install_default_drivers;
use sqlx::{Connection, Executor};

/// Adds `iceberg_type` to the SQL catalog's `iceberg_tables` at `uri` when the table exists
/// without it. Returns whether it did.
pub async fn add_iceberg_type(uri: &str, timeout: Duration) -> Result<bool, String> {
    install_default_drivers();
    let bounded =
        |what: &'static str| move |_| format!("{what}: no answer within {}s", timeout.as_secs());
    let mut connection = tokio::time::timeout(timeout, AnyConnection::connect(uri))
        .await
        .map_err(bounded("connect"))?
        .map_err(|e| e.to_string())?;
    let mut probe = async |sql: &str| {
        tokio::time::timeout(timeout, connection.execute(sql))
            .await
            .map_err(bounded("query"))
            .map(|result| result.is_ok())
    };
    // No catalog table yet: the catalog creates it with the column.
    if !probe("SELECT 1 FROM iceberg_tables WHERE 1 = 0").await? {
        return Ok(false);
    }
    if probe("SELECT iceberg_type FROM iceberg_tables WHERE 1 = 0").await? {
        return Ok(false);
    }
    tokio::time::timeout(
        timeout,
        connection.execute("ALTER TABLE iceberg_tables ADD COLUMN iceberg_type VARCHAR(5)"),
    )
    .await
    .map_err(bounded("add column iceberg_type"))?
    .map_err(|e| format!("cannot add column iceberg_type to iceberg_tables: {e}"))?;
    Ok(true)
}
