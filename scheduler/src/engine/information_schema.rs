//! Trino's `information_schema`: each catalog has its own, which lists only that catalog.
//!
//! [`WithInformationSchema`] wraps the coordinator's catalog list; every catalog it hands out
//! answers `information_schema` with an [`InformationSchema`]. Its `schemata`, `tables`,
//! `views` and `columns` have Trino's columns (`columns.data_type` in Trino's type names,
//! `comment`; hidden columns left out), as Trino's clients expect: the SQLAlchemy dialect's
//! `get_columns`, dbt's catalog query. They are computed when scanned ([`MetadataTable`]), and
//! an equality on `table_schema` or `table_name` in the query limits the tables read, so
//! describing one table of a large PostgreSQL catalog loads that table alone. DataFusion's
//! `df_settings`, `routines` and `parameters` (`SHOW ALL`, `SHOW FUNCTIONS`) are DataFusion's
//! own.
//!
//! DataFusion's own `information_schema` (`datafusion.catalog.information_schema`) lists every
//! catalog at once with Arrow's type names; the planner turns it off.

use std::any::Any;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::is_hidden;
use datafusion::arrow::array::{ArrayRef, Int64Builder, RecordBatch, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::catalog::information_schema::InformationSchemaProvider;
use datafusion::catalog::memory::MemorySourceConfig;
use datafusion::catalog::{
    CatalogProvider, CatalogProviderList, SchemaProvider, Session, TableProvider,
};
use datafusion::common::{ScalarValue, plan_err};
use datafusion::error::Result;
use datafusion::logical_expr::{
    BinaryExpr, Expr, Operator, TableProviderFilterPushDown, TableType,
};
use datafusion::physical_plan::ExecutionPlan;

use crate::trino::trino_field_type;

/// The schema's name.
pub const INFORMATION_SCHEMA: &str = "information_schema";

/// The tables Braid computes, in Trino's shape.
const TRINO_TABLES: [&str; 4] = ["columns", "schemata", "tables", "views"];

/// DataFusion's tables kept as they are.
const DATAFUSION_TABLES: [&str; 3] = ["df_settings", "parameters", "routines"];

/// A catalog list whose catalogs each have their own `information_schema`.
#[derive(Debug)]
pub struct WithInformationSchema {
    catalogs: Arc<dyn CatalogProviderList>,
}

impl WithInformationSchema {
    pub fn new(catalogs: Arc<dyn CatalogProviderList>) -> Self {
        Self { catalogs }
    }
}

impl CatalogProviderList for WithInformationSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn register_catalog(
        &self,
        name: String,
        catalog: Arc<dyn CatalogProvider>,
    ) -> Option<Arc<dyn CatalogProvider>> {
        self.catalogs.register_catalog(name, catalog)
    }

    fn catalog_names(&self) -> Vec<String> {
        self.catalogs.catalog_names()
    }

    fn catalog(&self, name: &str) -> Option<Arc<dyn CatalogProvider>> {
        let catalog = self.catalogs.catalog(name)?;
        Some(Arc::new(CatalogWithInformationSchema {
            schema: Arc::new(InformationSchema(Arc::new(Parts {
                catalog_name: name.to_string(),
                catalog: catalog.clone(),
                datafusion: InformationSchemaProvider::new(self.catalogs.clone()),
            }))),
            catalog,
        }))
    }
}

/// A catalog and its `information_schema`. Its schema names are the catalog's own: listings
/// add `information_schema` where Trino shows it.
#[derive(Debug)]
struct CatalogWithInformationSchema {
    catalog: Arc<dyn CatalogProvider>,
    schema: Arc<InformationSchema>,
}

impl CatalogProvider for CatalogWithInformationSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema_names(&self) -> Vec<String> {
        self.catalog.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if name.eq_ignore_ascii_case(INFORMATION_SCHEMA) {
            return Some(self.schema.clone());
        }
        self.catalog.schema(name)
    }

    fn register_schema(
        &self,
        name: &str,
        schema: Arc<dyn SchemaProvider>,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        if name.eq_ignore_ascii_case(INFORMATION_SCHEMA) {
            return plan_err!("Schema '{name}' is the catalog's own and cannot be replaced");
        }
        self.catalog.register_schema(name, schema)
    }

    fn deregister_schema(
        &self,
        name: &str,
        cascade: bool,
    ) -> Result<Option<Arc<dyn SchemaProvider>>> {
        if name.eq_ignore_ascii_case(INFORMATION_SCHEMA) {
            return plan_err!("Schema '{name}' is the catalog's own and cannot be dropped");
        }
        self.catalog.deregister_schema(name, cascade)
    }
}

/// One catalog's `information_schema`.
#[derive(Debug, Clone)]
pub struct InformationSchema(Arc<Parts>);

#[derive(Debug)]
struct Parts {
    catalog_name: String,
    catalog: Arc<dyn CatalogProvider>,
    /// DataFusion's `information_schema`, for the tables Braid keeps from it.
    datafusion: InformationSchemaProvider,
}

#[async_trait]
impl SchemaProvider for InformationSchema {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn table_names(&self) -> Vec<String> {
        TRINO_TABLES
            .iter()
            .chain(&DATAFUSION_TABLES)
            .map(|t| t.to_string())
            .collect()
    }

    async fn table(&self, name: &str) -> Result<Option<Arc<dyn TableProvider>>> {
        let name = name.to_ascii_lowercase();
        let kind = match name.as_str() {
            "columns" => Kind::Columns,
            "schemata" => Kind::Schemata,
            "tables" => Kind::Tables,
            "views" => Kind::Views,
            _ if DATAFUSION_TABLES.contains(&name.as_str()) => {
                return self.0.datafusion.table(&name).await;
            }
            _ => return Ok(None),
        };
        Ok(Some(Arc::new(MetadataTable {
            kind,
            owner: self.clone(),
            schema: kind.schema(),
        })))
    }

    fn table_exist(&self, name: &str) -> bool {
        self.table_names()
            .iter()
            .any(|t| t.eq_ignore_ascii_case(name))
    }
}

/// Which of Trino's tables.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Schemata,
    Tables,
    Views,
    Columns,
}

impl Kind {
    /// Trino's columns of the table.
    fn schema(self) -> SchemaRef {
        let text = |name: &str| Field::new(name, DataType::Utf8, false);
        let maybe = |name: &str| Field::new(name, DataType::Utf8, true);
        let table = || {
            vec![
                text("table_catalog"),
                text("table_schema"),
                text("table_name"),
            ]
        };
        let fields = match self {
            Kind::Schemata => vec![text("catalog_name"), text("schema_name")],
            Kind::Tables => [table(), vec![text("table_type")]].concat(),
            // `definition` is DataFusion's name for it, which its `SHOW CREATE TABLE` reads.
            Kind::Views => [table(), vec![maybe("view_definition"), maybe("definition")]].concat(),
            Kind::Columns => [
                table(),
                vec![
                    text("column_name"),
                    Field::new("ordinal_position", DataType::Int64, false),
                    maybe("column_default"),
                    text("is_nullable"),
                    text("data_type"),
                    maybe("comment"),
                ],
            ]
            .concat(),
        };
        Arc::new(Schema::new(fields))
    }
}

/// One of Trino's `information_schema` tables of a catalog, computed when scanned.
#[derive(Debug)]
struct MetadataTable {
    kind: Kind,
    owner: InformationSchema,
    schema: SchemaRef,
}

#[async_trait]
impl TableProvider for MetadataTable {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    fn table_type(&self) -> TableType {
        TableType::Base
    }

    /// Every filter is checked again above the scan; the scan only uses equalities on
    /// `table_schema` / `schema_name` and `table_name` to skip what cannot match.
    fn supports_filters_pushdown(
        &self,
        filters: &[&Expr],
    ) -> Result<Vec<TableProviderFilterPushDown>> {
        Ok(vec![TableProviderFilterPushDown::Inexact; filters.len()])
    }

    async fn scan(
        &self,
        _state: &dyn Session,
        projection: Option<&Vec<usize>>,
        filters: &[Expr],
        _limit: Option<usize>,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let schema_column = match self.kind {
            Kind::Schemata => "schema_name",
            _ => "table_schema",
        };
        let wanted = Wanted {
            schema: equality(filters, schema_column),
            table: equality(filters, "table_name"),
        };
        let batch = self.rows(&wanted).await?;
        Ok(MemorySourceConfig::try_new_exec(
            &[vec![batch]],
            self.schema.clone(),
            projection.cloned(),
        )?)
    }
}

/// What the query's equalities limit a listing to.
struct Wanted {
    schema: Option<String>,
    table: Option<String>,
}

impl MetadataTable {
    /// The catalog's schemas the listing covers, `information_schema` included, in order.
    fn schemas(&self, wanted: &Wanted) -> Vec<(String, Arc<dyn SchemaProvider>)> {
        let catalog = &self.owner.0.catalog;
        let mut names = catalog.schema_names();
        names.push(INFORMATION_SCHEMA.to_string());
        names.sort();
        names.dedup();
        names
            .into_iter()
            .filter(|name| wanted.schema.as_ref().is_none_or(|w| w == name))
            .filter_map(|name| {
                let provider = if name == INFORMATION_SCHEMA {
                    Arc::new(self.owner.clone()) as Arc<dyn SchemaProvider>
                } else {
                    catalog.schema(&name)?
                };
                Some((name, provider))
            })
            .collect()
    }

    async fn rows(&self, wanted: &Wanted) -> Result<RecordBatch> {
        let catalog_name = self.owner.0.catalog_name.as_str();
        let mut columns = Columns::new(&self.schema);
        for (schema_name, schema) in self.schemas(wanted) {
            if self.kind == Kind::Schemata {
                columns.text([Some(catalog_name), Some(schema_name.as_str())]);
                continue;
            }
            let mut tables = schema.table_names();
            tables.sort();
            tables.retain(|name| wanted.table.as_ref().is_none_or(|w| w == name));
            for table_name in tables {
                let location = [catalog_name, schema_name.as_str(), table_name.as_str()].map(Some);
                // A table that cannot be loaded is left out of the listing, not the listing's
                // end: one broken table must not hide a catalog from a BI tool.
                let provider = match schema.table(&table_name).await {
                    Ok(Some(provider)) => provider,
                    Ok(None) => continue,
                    Err(e) => {
                        tracing::warn!(
                            table = %format!("{catalog_name}.{schema_name}.{table_name}"),
                            "information_schema leaves out a table that failed to load: {e}"
                        );
                        continue;
                    }
                };
                match self.kind {
                    Kind::Tables => {
                        columns.text(location);
                        columns.text([Some(table_type(provider.table_type()))]);
                    }
                    Kind::Views => {
                        if let Some(definition) = provider.get_table_definition() {
                            columns.text(location);
                            columns.text([Some(definition), Some(definition)]);
                        }
                    }
                    Kind::Columns => {
                        let table = provider.schema();
                        let visible = table.fields().iter().filter(|f| !is_hidden(f));
                        for (position, field) in (1..).zip(visible) {
                            columns.text(location);
                            columns.text([Some(field.name().as_str())]);
                            columns.number(position);
                            columns.text([None]);
                            columns.text([Some(if field.is_nullable() { "YES" } else { "NO" })]);
                            columns.text([Some(trino_field_type(field).as_str())]);
                            let comment = field.metadata().get("comment");
                            columns.text([comment.map(String::as_str)]);
                        }
                    }
                    Kind::Schemata => {}
                }
            }
        }
        columns.finish(&self.schema)
    }
}

/// Trino's `table_type`.
fn table_type(kind: TableType) -> &'static str {
    match kind {
        TableType::Base => "BASE TABLE",
        TableType::View => "VIEW",
        TableType::Temporary => "LOCAL TEMPORARY",
    }
}

/// The value `column` is compared to in one of `filters` (`column = 'value'`), if any.
fn equality(filters: &[Expr], column: &str) -> Option<String> {
    filters.iter().find_map(|filter| {
        let Expr::BinaryExpr(BinaryExpr {
            left,
            op: Operator::Eq,
            right,
        }) = filter
        else {
            return None;
        };
        match (left.as_ref(), right.as_ref()) {
            (Expr::Column(c), Expr::Literal(value, _))
            | (Expr::Literal(value, _), Expr::Column(c))
                if c.name == column =>
            {
                match value {
                    ScalarValue::Utf8(Some(v))
                    | ScalarValue::Utf8View(Some(v))
                    | ScalarValue::LargeUtf8(Some(v)) => Some(v.clone()),
                    _ => None,
                }
            }
            _ => None,
        }
    })
}

/// The columns of a listing, filled one row at a time, left to right.
struct Columns {
    builders: Vec<Builder>,
    next: usize,
}

enum Builder {
    Text(StringBuilder),
    Number(Int64Builder),
}

impl Columns {
    fn new(schema: &Schema) -> Self {
        let builders = schema
            .fields()
            .iter()
            .map(|f| match f.data_type() {
                DataType::Int64 => Builder::Number(Int64Builder::new()),
                _ => Builder::Text(StringBuilder::new()),
            })
            .collect();
        Self { builders, next: 0 }
    }

    /// The next text columns.
    fn text<const N: usize>(&mut self, values: [Option<&str>; N]) {
        for value in values {
            if let Some(Builder::Text(b)) = self.builders.get_mut(self.next) {
                b.append_option(value);
            }
            self.advance();
        }
    }

    /// The next column, a number.
    fn number(&mut self, value: i64) {
        if let Some(Builder::Number(b)) = self.builders.get_mut(self.next) {
            b.append_value(value);
        }
        self.advance();
    }

    fn advance(&mut self) {
        self.next = (self.next + 1) % self.builders.len();
    }

    fn finish(self, schema: &SchemaRef) -> Result<RecordBatch> {
        let arrays: Vec<ArrayRef> = self
            .builders
            .into_iter()
            .map(|b| match b {
                Builder::Text(mut b) => Arc::new(b.finish()) as ArrayRef,
                Builder::Number(mut b) => Arc::new(b.finish()) as ArrayRef,
            })
            .collect();
        Ok(RecordBatch::try_new(schema.clone(), arrays)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_connector_spi::hidden_field;
    use datafusion::arrow::util::pretty::pretty_format_batches;
    use datafusion::catalog::{
        MemTable, MemoryCatalogProvider, MemoryCatalogProviderList, MemorySchemaProvider,
    };
    use datafusion::execution::SessionStateBuilder;
    use datafusion::prelude::{SessionConfig, SessionContext};

    /// Catalogs `c` (schema `s`: table `t` with a hidden column, a comment and a name that
    /// needs quoting; table `v`) and `d` (schema `s`: table `u`).
    fn context() -> SessionContext {
        let comment = [("comment".to_string(), "O'Brien's".to_string())].into();
        let c = vec![
            (
                "t",
                vec![
                    Field::new("id", DataType::Int64, false),
                    Field::new("Mixed Name", DataType::Decimal128(12, 2), true)
                        .with_metadata(comment),
                    hidden_field(Field::new("_offset", DataType::Int64, false)),
                    Field::new(
                        "tags",
                        DataType::List(Arc::new(Field::new("item", DataType::Utf8, true))),
                        true,
                    ),
                ],
            ),
            ("v", vec![Field::new("y", DataType::Date32, true)]),
        ];
        let d = vec![("u", vec![Field::new("x", DataType::Utf8, true)])];
        let catalogs = MemoryCatalogProviderList::new();
        for (catalog, tables) in [("c", c), ("d", d)] {
            let schema = MemorySchemaProvider::new();
            for (name, fields) in tables {
                let table =
                    MemTable::try_new(Arc::new(Schema::new(fields)), vec![vec![]]).expect("table");
                schema
                    .register_table(name.to_string(), Arc::new(table))
                    .expect("register");
            }
            let provider = MemoryCatalogProvider::new();
            provider
                .register_schema("s", Arc::new(schema))
                .expect("schema");
            catalogs.register_catalog(catalog.to_string(), Arc::new(provider));
        }
        let state = SessionStateBuilder::new()
            .with_config(
                SessionConfig::new()
                    .with_information_schema(false)
                    .with_create_default_catalog_and_schema(false)
                    .with_default_catalog_and_schema("c", "s"),
            )
            .with_default_features()
            .with_catalog_list(Arc::new(WithInformationSchema::new(Arc::new(catalogs))))
            .build();
        SessionContext::new_with_state(state)
    }

    async fn run(ctx: &SessionContext, sql: &str) -> String {
        let batches = match ctx.sql(sql).await {
            Ok(frame) => frame.collect().await,
            Err(e) => Err(e),
        }
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
        pretty_format_batches(&batches).expect("format").to_string()
    }

    #[tokio::test]
    async fn columns_have_trinos_shape_and_list_only_their_catalog() {
        let ctx = context();
        let columns = run(
            &ctx,
            "SELECT table_catalog, table_name, column_name, ordinal_position, is_nullable, \
             data_type, comment FROM information_schema.columns \
             WHERE table_schema = 's' ORDER BY table_name, ordinal_position",
        )
        .await;
        let expected = "\
+---------------+------------+-------------+------------------+-------------+----------------+-----------+
| table_catalog | table_name | column_name | ordinal_position | is_nullable | data_type      | comment   |
+---------------+------------+-------------+------------------+-------------+----------------+-----------+
| c             | t          | id          | 1                | NO          | bigint         |           |
| c             | t          | Mixed Name  | 2                | YES         | decimal(12,2)  | O'Brien's |
| c             | t          | tags        | 3                | YES         | array(varchar) |           |
| c             | v          | y           | 1                | YES         | date           |           |
+---------------+------------+-------------+------------------+-------------+----------------+-----------+";
        assert_eq!(columns, expected);
        // Another catalog's listing is its own.
        let tables = run(
            &ctx,
            "SELECT table_catalog, table_schema, table_name, table_type \
             FROM d.information_schema.tables WHERE table_schema <> 'information_schema'",
        )
        .await;
        assert!(tables.contains("| d             | s            | u          | BASE TABLE |"));
        assert_eq!(tables.lines().count(), 5, "{tables}");
        let schemata = run(&ctx, "SELECT * FROM information_schema.schemata ORDER BY 2").await;
        assert!(
            schemata.contains("| c            | information_schema |"),
            "{schemata}"
        );
        assert!(
            schemata.contains("| c            | s                  |"),
            "{schemata}"
        );
        assert_eq!(schemata.lines().count(), 6, "{schemata}");
    }

    #[tokio::test]
    async fn equalities_limit_what_is_listed_and_the_rest_is_still_filtered() {
        let ctx = context();
        let wanted = run(
            &ctx,
            "SELECT column_name FROM information_schema.columns \
             WHERE table_schema = 's' AND table_name = 'v'",
        )
        .await;
        assert!(wanted.contains("| y           |"), "{wanted}");
        assert_eq!(wanted.lines().count(), 5, "{wanted}");
        let none = run(
            &ctx,
            "SELECT count(*) AS n FROM information_schema.columns \
             WHERE table_name = 'v' AND column_name = 'nope'",
        )
        .await;
        assert!(none.contains("| 0 |"), "{none}");
        // The scan sees the equalities.
        let filters = [
            Expr::Column("table_schema".into())
                .eq(Expr::Literal(ScalarValue::Utf8(Some("s".into())), None)),
            Expr::Literal(ScalarValue::Utf8(Some("t".into())), None)
                .eq(Expr::Column("table_name".into())),
        ];
        assert_eq!(equality(&filters, "table_schema").as_deref(), Some("s"));
        assert_eq!(equality(&filters, "table_name").as_deref(), Some("t"));
        assert_eq!(equality(&filters, "column_name"), None);
    }

    #[tokio::test]
    async fn datafusions_settings_and_functions_stay() {
        let ctx = context();
        let settings = run(
            &ctx,
            "SELECT value FROM information_schema.df_settings \
             WHERE name = 'datafusion.catalog.default_catalog'",
        )
        .await;
        assert!(settings.contains("| c     |"), "{settings}");
        let shown = run(&ctx, "SHOW datafusion.catalog.default_schema").await;
        assert!(shown.contains("| s     |"), "{shown}");
    }
}
