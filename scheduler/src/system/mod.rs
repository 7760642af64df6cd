//! The `system` catalog, as in Trino: `system.metadata.catalogs` lists every catalog with its
//! connector and what that connector can do, `system.metadata.materialized_views` is there
//! (empty) for the tools that read it; `system.runtime` (`runtime.rs`) has the cluster's
//! `nodes`, `queries` and `tasks`. Its tables live on the coordinator, so queries that read
//! only them (and `information_schema`) run there.

mod runtime;

pub use runtime::Runtime;

use std::sync::Arc;

use braid_catalogs::ConnectorRegistry;
use datafusion::arrow::array::{ArrayRef, BooleanArray, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::catalog::{
    CatalogProvider, MemTable, MemoryCatalogProvider, MemorySchemaProvider, SchemaProvider,
};

/// The catalog's name.
pub const CATALOG: &str = "system";

/// The catalog: `system.metadata.catalogs` (`catalog_name`, `connector_name` as in Trino, and
/// one boolean column per capability) and the `system.runtime` tables over `runtime`.
pub fn catalog(registry: &ConnectorRegistry, runtime: Arc<Runtime>) -> Arc<dyn CatalogProvider> {
    let rows = registry.describe();
    let text =
        |f: &dyn Fn(&(String, &'static str, braid_connector_spi::Capabilities)) -> String| {
            Arc::new(StringArray::from(rows.iter().map(f).collect::<Vec<_>>())) as ArrayRef
        };
    let flag = |f: &dyn Fn(&braid_connector_spi::Capabilities) -> bool| {
        Arc::new(BooleanArray::from(
            rows.iter().map(|r| f(&r.2)).collect::<Vec<_>>(),
        )) as ArrayRef
    };
    let columns: Vec<(&str, ArrayRef)> = vec![
        ("catalog_name", text(&|r| r.0.clone())),
        ("connector_name", text(&|r| r.1.to_string())),
        ("projection_pushdown", flag(&|c| c.projection_pushdown)),
        ("filter_pushdown", flag(&|c| c.filter_pushdown)),
        ("limit_pushdown", flag(&|c| c.limit_pushdown)),
        ("parallel_splits", flag(&|c| c.parallel_splits)),
        ("writes", flag(&|c| c.writes)),
        ("views", flag(&|c| c.views)),
    ];
    let schema = Arc::new(Schema::new(
        columns
            .iter()
            .map(|(name, array)| Field::new(*name, array.data_type().clone(), false))
            .collect::<Vec<_>>(),
    ));
    let metadata = MemorySchemaProvider::new();
    let batch = RecordBatch::try_new(
        schema.clone(),
        columns.into_iter().map(|(_, a)| a).collect(),
    );
    // Built from the registry's own values, the batch always fits its schema.
    if let Ok(batch) = batch
        && let Ok(table) = MemTable::try_new(schema, vec![vec![batch]])
    {
        let _ = metadata.register_table("catalogs".into(), Arc::new(table));
    }
    // Trino's columns; Braid has no materialized views, so the table is empty. Tools list
    // relations through it (dbt-trino joins it to `information_schema.tables`).
    let text_column = |name: &str| Field::new(name, DataType::Utf8, true);
    let materialized_views = Arc::new(Schema::new(vec![
        text_column("catalog_name"),
        text_column("schema_name"),
        text_column("name"),
        text_column("storage_catalog"),
        text_column("storage_schema"),
        text_column("storage_table"),
        text_column("freshness"),
        Field::new(
            "last_fresh_time",
            DataType::Timestamp(TimeUnit::Millisecond, Some("UTC".into())),
            true,
        ),
        text_column("owner"),
        text_column("comment"),
        text_column("definition"),
    ]));
    if let Ok(table) = MemTable::try_new(materialized_views, vec![vec![]]) {
        let _ = metadata.register_table("materialized_views".into(), Arc::new(table));
    }
    let catalog = MemoryCatalogProvider::new();
    let _ = catalog.register_schema("metadata", Arc::new(metadata));
    let _ = catalog.register_schema("runtime", runtime::schema(runtime));
    Arc::new(catalog)
}
