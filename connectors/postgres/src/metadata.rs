//! [`Metadata`]: schemas, tables and column types read from PostgreSQL's catalog, cached for
//! `metadata_cache_ttl_seconds`.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use braid_connector_spi::{ConnectorError, Listing};
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, Statistics};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use crate::config::UnsupportedTypes;
use crate::pool::{Pool, describe};
use crate::types::PgKind;

/// The tables and views of PostgreSQL, as `(schema, name)` rows; partitions are read through
/// their parent.
const TABLES: &str = "SELECT n.nspname::text, c.relname::text FROM pg_class c \
     JOIN pg_namespace n ON n.oid = c.relnamespace \
     WHERE c.relkind IN ('r', 'v', 'm', 'p', 'f') AND NOT c.relispartition";

/// One column as Braid reads it.
#[derive(Debug, Clone, PartialEq)]
pub struct Column {
    pub name: String,
    pub kind: PgKind,
    /// An unsupported type read as text (`unsupported_types = "text"`).
    pub as_text: bool,
    pub nullable: bool,
    /// How PostgreSQL compares the column's text (`C` for columns that are no text).
    pub collation: Collation,
    /// PostgreSQL's statistics of the column (`pg_stats`), when the table was analyzed.
    pub estimate: Option<ColumnEstimate>,
}

/// What `pg_stats` says of a column, for the planner's join estimates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ColumnEstimate {
    /// The fraction of rows whose value is NULL (`null_frac`).
    pub null_fraction: f64,
    /// Distinct values in the whole table (`n_distinct`, resolved against `reltuples` when
    /// PostgreSQL gives it as a fraction of the rows).
    pub distinct: f64,
}

impl ColumnEstimate {
    /// From `pg_stats`' `null_frac` and `n_distinct` of a table of `rows` rows; `None` when
    /// PostgreSQL does not know the distinct count (`n_distinct = 0`).
    fn from_pg_stats(null_fraction: f64, n_distinct: f64, rows: f64) -> Option<Self> {
        let distinct = match n_distinct {
            n if n > 0.0 => n,
            n if n < 0.0 => -n * rows,
            _ => return None,
        };
        Some(Self {
            null_fraction: null_fraction.clamp(0.0, 1.0),
            distinct,
        })
    }

    /// The column's statistics in a scan returning about `rows` rows: its share of NULLs, and
    /// no more distinct values than rows.
    pub fn statistics(&self, rows: usize) -> ColumnStatistics {
        let nulls = (self.null_fraction * rows as f64).round() as usize;
        let distinct = (self.distinct.round() as usize).min(rows - nulls.min(rows));
        ColumnStatistics::new_unknown()
            .with_null_count(Precision::Inexact(nulls))
            .with_distinct_count(Precision::Inexact(distinct))
    }
}

/// `stats` with each column's `pg_stats` estimate (where known), scaled to the rows `stats`
/// counts.
pub fn with_column_estimates(
    mut stats: Statistics,
    estimates: impl IntoIterator<Item = Option<ColumnEstimate>>,
) -> Statistics {
    if let Some(&rows) = stats.num_rows.get_value() {
        for (column, estimate) in stats.column_statistics.iter_mut().zip(estimates) {
            if let Some(estimate) = estimate {
                *column = estimate.statistics(rows);
            }
        }
    }
    stats
}

/// How PostgreSQL compares a text column, as far as pushdown cares.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Collation {
    /// Byte order (`C`, `POSIX`): PostgreSQL sorts and compares text as Braid does.
    C,
    /// A deterministic collation such as `en_US.UTF-8`: equal strings are equal bytes, but the
    /// order differs from Braid's.
    Deterministic,
    /// A nondeterministic ICU collation (case- or accent-insensitive): neither agrees.
    NonDeterministic,
}

impl Collation {
    /// The collation of a column from `pg_collation` (`collname`, `collisdeterministic`);
    /// `default` is the database's, which `database_is_c` tells.
    fn of(collname: &str, deterministic: bool, database_is_c: bool) -> Self {
        match collname {
            "" | "C" | "POSIX" | "ucs_basic" => Collation::C,
            "default" if database_is_c => Collation::C,
            _ if deterministic => Collation::Deterministic,
            _ => Collation::NonDeterministic,
        }
    }
}

/// A table or view.
#[derive(Debug, Clone)]
pub struct TableMeta {
    pub schema: String,
    pub name: String,
    pub columns: Vec<Column>,
    pub arrow_schema: SchemaRef,
    pub is_view: bool,
    /// PostgreSQL's row estimate (`pg_class.reltuples`), 0 when never analyzed.
    pub row_estimate: u64,
    /// A single-column integer primary key, for range splits.
    pub integer_key: Option<String>,
}

/// Values by key, each with the time it was read.
type Cached<T> = Mutex<HashMap<String, (Instant, T)>>;

/// The most entries one cache of a catalog keeps (tables of a schema, columns of a table).
const CACHED_MAX: usize = 4096;

/// The catalog's metadata, fetched on demand. The name listings are also readable without
/// waiting ([`Metadata::listed_schemas`], [`Metadata::listed_tables`]), for DataFusion's
/// synchronous catalog calls; [`Metadata::refresh`] brings them up to date first.
#[derive(Debug)]
pub struct Metadata {
    pool: Arc<Pool>,
    ttl: Duration,
    schemas: Cached<Vec<String>>,
    tables: Cached<Vec<String>>,
    columns: Cached<Option<Arc<TableMeta>>>,
}

/// The value of `key` if it was read within `ttl`.
fn fresh<T: Clone>(cache: &Cached<T>, key: &str, ttl: Duration) -> Option<T> {
    cache
        .lock()
        .get(key)
        .filter(|(at, _)| at.elapsed() < ttl)
        .map(|(_, v)| v.clone())
}

/// The last value read of `key`, however old.
fn last<T: Clone>(cache: &Cached<T>, key: &str) -> Option<T> {
    cache.lock().get(key).map(|(_, v)| v.clone())
}

/// Keeps `value` for `key`, dropping expired entries, and everything once [`CACHED_MAX`] are
/// kept.
fn store<T>(cache: &Cached<T>, key: String, value: T, ttl: Duration) {
    let mut cache = cache.lock();
    if cache.len() >= CACHED_MAX {
        cache.retain(|_, (at, _)| at.elapsed() < ttl);
        if cache.len() >= CACHED_MAX {
            cache.clear();
        }
    }
    cache.insert(key, (Instant::now(), value));
}

const SCHEMAS_KEY: &str = "";

impl Metadata {
    pub fn new(pool: Arc<Pool>) -> Self {
        let ttl = Duration::from_secs(pool.config().metadata_cache_ttl_seconds);
        Self {
            pool,
            ttl,
            schemas: Mutex::default(),
            tables: Mutex::default(),
            columns: Mutex::default(),
        }
    }

    fn query_error(&self, what: &str, e: tokio_postgres::Error) -> ConnectorError {
        self.pool.error(format!(
            "reading {what} from PostgreSQL at {} failed: {}",
            self.pool.config().address(),
            describe(&e)
        ))
    }

    /// Reads what `listing` needs from PostgreSQL, unless it was read within the TTL.
    pub async fn refresh(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        let schemas = self.schema_names().await?;
        match listing {
            Listing::Schemas => {}
            Listing::Tables { schema } => {
                if schemas.iter().any(|s| s == schema) {
                    self.table_names(schema).await?;
                }
            }
            Listing::All => {
                if schemas
                    .iter()
                    .any(|s| fresh(&self.tables, s, self.ttl).is_none())
                {
                    self.load_all_table_names(&schemas).await?;
                }
            }
        }
        Ok(())
    }

    /// The exposed schemas as last read, without waiting; `None` if never read.
    pub fn listed_schemas(&self) -> Option<Vec<String>> {
        last(&self.schemas, SCHEMAS_KEY)
    }

    /// The exposed schemas if read within the TTL, without waiting.
    pub fn fresh_schemas(&self) -> Option<Vec<String>> {
        fresh(&self.schemas, SCHEMAS_KEY, self.ttl)
    }

    /// The tables of `schema` as last read, without waiting; `None` if never read.
    pub fn listed_tables(&self, schema: &str) -> Option<Vec<String>> {
        last(&self.tables, schema)
    }

    /// The exposed schemas.
    pub async fn schema_names(&self) -> Result<Vec<String>, ConnectorError> {
        if let Some(names) = self.fresh_schemas() {
            return Ok(names);
        }
        let client = self.pool.get().await?;
        let rows = client
            .query("SELECT nspname::text FROM pg_namespace ORDER BY 1", &[])
            .await
            .map_err(|e| self.query_error("schemas", e))?;
        let names: Vec<String> = rows
            .iter()
            .map(|r| r.get::<_, String>(0))
            .filter(|s| self.pool.config().shows_schema(s))
            .collect();
        store(&self.schemas, SCHEMAS_KEY.into(), names.clone(), self.ttl);
        Ok(names)
    }

    /// The tables and views of `schema`.
    pub async fn table_names(&self, schema: &str) -> Result<Vec<String>, ConnectorError> {
        if let Some(names) = fresh(&self.tables, schema, self.ttl) {
            return Ok(names);
        }
        let client = self.pool.get().await?;
        let rows = client
            .query(
                &format!("{TABLES} AND n.nspname = $1 ORDER BY 1, 2"),
                &[&schema],
            )
            .await
            .map_err(|e| self.query_error("tables", e))?;
        let names: Vec<String> = rows.iter().map(|r| r.get(1)).collect();
        store(&self.tables, schema.to_string(), names.clone(), self.ttl);
        Ok(names)
    }

    /// The tables and views of every schema in `schemas`, in one query.
    async fn load_all_table_names(&self, schemas: &[String]) -> Result<(), ConnectorError> {
        let client = self.pool.get().await?;
        let rows = client
            .query(&format!("{TABLES} ORDER BY 1, 2"), &[])
            .await
            .map_err(|e| self.query_error("tables", e))?;
        let mut by_schema: HashMap<&str, Vec<String>> =
            schemas.iter().map(|s| (s.as_str(), Vec::new())).collect();
        for row in &rows {
            if let Some(names) = by_schema.get_mut(row.get::<_, &str>(0)) {
                names.push(row.get(1));
            }
        }
        for (schema, names) in by_schema {
            store(&self.tables, schema.to_string(), names, self.ttl);
        }
        Ok(())
    }

    /// A table's columns and statistics, or `None` if it does not exist.
    pub async fn table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<Arc<TableMeta>>, ConnectorError> {
        let key = format!("{schema}\u{0}{table}");
        if let Some(meta) = fresh(&self.columns, &key, self.ttl) {
            return Ok(meta);
        }
        let meta = self.load_table(schema, table).await?.map(Arc::new);
        store(&self.columns, key, meta.clone(), self.ttl);
        Ok(meta)
    }

    async fn load_table(
        &self,
        schema: &str,
        table: &str,
    ) -> Result<Option<TableMeta>, ConnectorError> {
        let client = self.pool.get().await?;
        let relation = client
            .query_opt(
                "SELECT c.oid, c.relkind::text, greatest(c.reltuples, 0)::int8 \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE n.nspname = $1 AND c.relname = $2 AND c.relkind IN ('r', 'v', 'm', 'p', 'f')",
                &[&schema, &table],
            )
            .await
            .map_err(|e| self.query_error("a table", e))?;
        let Some(relation) = relation else {
            return Ok(None);
        };
        let oid: u32 = relation.get(0);
        let relkind: String = relation.get(1);
        let row_estimate: i64 = relation.get(2);
        let rows = client
            .query(
                "SELECT a.attname::text, t.typname::text, t.typtype::text, et.typname::text, \
                        a.atttypmod, a.attnotnull, coalesce(co.collname::text, ''), \
                        coalesce(co.collisdeterministic, true) \
                 FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid \
                 LEFT JOIN pg_type et ON et.oid = t.typelem AND t.typcategory = 'A' \
                 LEFT JOIN pg_collation co ON co.oid = a.attcollation \
                 WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                &[&oid],
            )
            .await
            .map_err(|e| self.query_error("columns", e))?;
        // The database's default collation: byte order only with libc's C or POSIX (an ICU
        // default, PostgreSQL 15's `datlocprovider = 'i'`, never is).
        let database_is_c: bool = client
            .query_one(
                "SELECT datcollate IN ('C', 'POSIX') AND \
                        coalesce(to_jsonb(d) ->> 'datlocprovider', 'c') = 'c' \
                 FROM pg_database d WHERE datname = current_database()",
                &[],
            )
            .await
            .map_err(|e| self.query_error("the database collation", e))?
            .get(0);
        // The statistics over the table and its children (`inherited`) where PostgreSQL has
        // them: a scan of a parent table reads its children too.
        let estimates: HashMap<String, ColumnEstimate> = client
            .query(
                "SELECT DISTINCT ON (attname) attname::text, null_frac::float8, \
                        n_distinct::float8 \
                 FROM pg_stats WHERE schemaname = $1 AND tablename = $2 \
                 ORDER BY attname, inherited DESC",
                &[&schema, &table],
            )
            .await
            .map_err(|e| self.query_error("column statistics", e))?
            .into_iter()
            .filter_map(|row| {
                let estimate =
                    ColumnEstimate::from_pg_stats(row.get(1), row.get(2), row_estimate as f64)?;
                Some((row.get(0), estimate))
            })
            .collect();
        let config = self.pool.config();
        let mut columns = Vec::new();
        for row in rows {
            let name: String = row.get(0);
            let type_name: String = row.get(1);
            let typtype: String = row.get(2);
            let element: Option<String> = row.get(3);
            let typmod: i32 = row.get(4);
            let not_null: bool = row.get(5);
            let collation = Collation::of(&row.get::<_, String>(6), row.get(7), database_is_c);
            let kind = PgKind::from_catalog(
                &type_name,
                &typtype,
                element.as_deref(),
                typmod,
                config.unconstrained_numeric_scale,
            );
            let (kind, as_text) = match (kind, config.unsupported_types) {
                (Some(kind), _) => (kind, false),
                (None, UnsupportedTypes::Text) => (PgKind::Text, true),
                (None, UnsupportedTypes::Ignore) => {
                    tracing::warn!(
                        catalog = %self.pool.catalog(),
                        "column {schema}.{table}.{name} of type {type_name} is left out \
                         (set unsupported_types = \"text\" to read it as text)"
                    );
                    continue;
                }
            };
            columns.push(Column {
                estimate: estimates.get(&name).copied(),
                name,
                kind,
                as_text,
                nullable: !not_null,
                collation,
            });
        }
        let keys = client
            .query(
                "SELECT a.attname::text, t.typname::text FROM pg_index i \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
                 JOIN pg_type t ON t.oid = a.atttypid \
                 WHERE i.indrelid = $1 AND i.indisprimary",
                &[&oid],
            )
            .await
            .map_err(|e| self.query_error("the primary key", e))?;
        let integer_key = match keys.as_slice() {
            [key] if matches!(key.get::<_, String>(1).as_str(), "int2" | "int4" | "int8") => {
                Some(key.get(0))
            }
            _ => None,
        };
        let arrow_schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|c| c.kind.field(&c.name, c.nullable))
                .collect::<Vec<_>>(),
        ));
        Ok(Some(TableMeta {
            schema: schema.to_string(),
            name: table.to_string(),
            columns,
            arrow_schema,
            is_view: relkind == "v",
            row_estimate: row_estimate.max(0) as u64,
            integer_key,
        }))
    }

    /// Pages of a table now (for ctid splits).
    pub async fn pages(&self, schema: &str, table: &str) -> Result<u64, ConnectorError> {
        let client = self.pool.get().await?;
        let relation = crate::pushdown::qualified(schema, table);
        let row = client
            .query_one(
                "SELECT (pg_relation_size($1::text::regclass) / current_setting('block_size')::int8)::int8",
                &[&relation],
            )
            .await
            .map_err(|e| self.query_error("the table size", e))?;
        Ok(row.get::<_, i64>(0).max(0) as u64)
    }

    /// The smallest and largest value of an integer column.
    pub async fn key_range(
        &self,
        schema: &str,
        table: &str,
        key: &str,
    ) -> Result<Option<(i64, i64)>, ConnectorError> {
        let client = self.pool.get().await?;
        let key = crate::pushdown::quote_ident(key);
        let sql = format!(
            "SELECT min({key})::int8, max({key})::int8 FROM {}",
            crate::pushdown::qualified(schema, table)
        );
        let row = client
            .query_one(&sql, &[])
            .await
            .map_err(|e| self.query_error("the key range", e))?;
        Ok(
            match (row.get::<_, Option<i64>>(0), row.get::<_, Option<i64>>(1)) {
                (Some(lo), Some(hi)) => Some((lo, hi)),
                _ => None,
            },
        )
    }

    /// Forgets everything cached (after DDL in PostgreSQL, say).
    pub fn invalidate(&self) {
        self.schemas.lock().clear();
        self.tables.lock().clear();
        self.columns.lock().clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pg_stats_become_column_statistics() {
        // A positive n_distinct is a count; a negative one a fraction of the rows; 0 unknown.
        let counted = ColumnEstimate::from_pg_stats(0.0, 100.0, 60_000.0).expect("known");
        assert_eq!(counted.distinct, 100.0);
        let fraction = ColumnEstimate::from_pg_stats(0.25, -0.5, 60_000.0).expect("known");
        assert_eq!(fraction.distinct, 30_000.0);
        assert_eq!(ColumnEstimate::from_pg_stats(0.0, 0.0, 60_000.0), None);

        // In a scan of fewer rows: its share of NULLs, no more distinct values than non-NULLs.
        let all = fraction.statistics(60_000);
        assert_eq!(all.null_count, Precision::Inexact(15_000));
        assert_eq!(all.distinct_count, Precision::Inexact(30_000));
        let few = fraction.statistics(1_000);
        assert_eq!(few.null_count, Precision::Inexact(250));
        assert_eq!(few.distinct_count, Precision::Inexact(750));
    }
}
