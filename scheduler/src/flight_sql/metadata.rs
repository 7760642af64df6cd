//! The catalog browsing calls of Flight SQL (`GetCatalogs`, `GetDbSchemas`, `GetTables`,
//! `GetTableTypes`) over every catalog of the coordinator. The connectors' listings are
//! refreshed first, so that the synchronous catalog calls answer from memory.

use std::sync::Arc;

use arrow_flight::sql::{
    CommandGetCatalogs, CommandGetDbSchemas, CommandGetTableTypes, CommandGetTables,
};
use braid_connector_spi::Listing;
use datafusion::arrow::datatypes::Schema;
use datafusion::arrow::record_batch::RecordBatch;
use tonic::Status;

use super::BraidFlightSql;

/// The table types `GetTables` reports.
const TABLE_TYPES: [&str; 2] = ["TABLE", "VIEW"];

fn built<E: std::fmt::Display>(batch: Result<RecordBatch, E>) -> Result<RecordBatch, Status> {
    batch.map_err(|e| Status::internal(e.to_string()))
}

impl BraidFlightSql {
    pub(super) fn catalogs(&self, query: CommandGetCatalogs) -> Result<RecordBatch, Status> {
        let mut builder = query.into_builder();
        for (name, _) in self.engine.registry().iter() {
            builder.append(name);
        }
        built(builder.build())
    }

    /// Every catalog's schemas, `information_schema` included.
    pub(super) async fn schemas(&self, query: CommandGetDbSchemas) -> Result<RecordBatch, Status> {
        self.engine
            .refresh_all_listings(query.catalog.as_deref(), Listing::Schemas)
            .await;
        let mut builder = query.into_builder();
        for (name, connector) in self.engine.registry().iter() {
            for schema in connector.catalog_provider().schema_names() {
                builder.append(name, schema);
            }
            builder.append(name, "information_schema");
        }
        built(builder.build())
    }

    /// Every catalog's tables (of `query.catalog` if given), with their columns if asked for.
    pub(super) async fn tables(&self, query: CommandGetTables) -> Result<RecordBatch, Status> {
        let include_schema = query.include_schema;
        let catalog_filter = query.catalog.clone();
        self.engine
            .refresh_all_listings(catalog_filter.as_deref(), Listing::All)
            .await;
        let mut builder = query.into_builder();
        for (name, connector) in self.engine.registry().iter() {
            if catalog_filter.as_ref().is_some_and(|c| c != name) {
                continue;
            }
            let catalog = connector.catalog_provider();
            for schema_name in catalog.schema_names() {
                let Some(schema) = catalog.schema(&schema_name) else {
                    continue;
                };
                for table in schema.table_names() {
                    let columns = if include_schema {
                        match schema.table(&table).await {
                            Ok(Some(provider)) => provider.schema(),
                            _ => continue,
                        }
                    } else {
                        Arc::new(Schema::empty())
                    };
                    builder
                        .append(name, &schema_name, &table, "TABLE", &columns)
                        .map_err(|e| Status::internal(e.to_string()))?;
                }
            }
        }
        built(builder.build())
    }

    pub(super) fn table_types(&self, query: CommandGetTableTypes) -> Result<RecordBatch, Status> {
        let mut builder = query.into_builder();
        for table_type in TABLE_TYPES {
            builder.append(table_type);
        }
        built(builder.build())
    }
}
