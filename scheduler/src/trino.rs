//! Trino's metadata statements, which DataFusion does not have or answers differently:
//! `SHOW CATALOGS`, `SHOW SCHEMAS`, `SHOW TABLES`, `SHOW COLUMNS` / `DESCRIBE`, `USE`,
//! `SHOW SESSION`, `SET SESSION` / `RESET SESSION`, with Trino's column names and type names.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::{ResolvedTableReference, TableReference, plan_err};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;

/// A metadata statement recognised before SQL planning.
#[derive(Debug, Clone, PartialEq)]
pub enum MetadataStatement {
    ShowCatalogs {
        like: Option<String>,
    },
    ShowSchemas {
        catalog: Option<String>,
        like: Option<String>,
    },
    ShowTables {
        schema: Option<String>,
        like: Option<String>,
    },
    ShowColumns {
        table: String,
    },
    Use {
        target: String,
    },
    /// `SHOW SESSION [LIKE 'pattern']`: the session's settings.
    ShowSession {
        like: Option<String>,
    },
}

/// Trino's `SET SESSION name = value` and `RESET SESSION name` as DataFusion's `SET` and
/// `RESET`, or `None` for any other statement.
pub fn session_alias(sql: &str) -> Option<String> {
    let tokens = tokenize(sql);
    let upper = |i: usize| tokens.get(i).map(|t| t.to_ascii_uppercase());
    match (upper(0)?.as_str(), upper(1)?.as_str()) {
        ("SET", "SESSION") if tokens.len() > 2 => Some(format!("SET {}", tokens[2..].join(" "))),
        ("RESET", "SESSION") if tokens.len() == 3 => Some(format!("RESET {}", tokens[2])),
        _ => None,
    }
}

/// `SHOW SESSION`'s rows: Trino's columns `Name`, `Value`, `Default`, `Type`, `Description`.
pub fn show_session(ctx: &SessionContext, like: Option<&str>) -> Result<RecordBatch> {
    let defaults: std::collections::HashMap<String, Option<String>> =
        datafusion::config::ConfigOptions::default()
            .entries()
            .into_iter()
            .map(|e| (e.key, e.value))
            .collect();
    let mut columns: [Vec<String>; 5] = Default::default();
    for entry in ctx.state().config().options().entries() {
        if like.is_some_and(|pattern| !self::like(&entry.key, pattern)) {
            continue;
        }
        let value = entry.value.unwrap_or_default();
        let default = defaults
            .get(&entry.key)
            .cloned()
            .flatten()
            .unwrap_or_default();
        let kind = if default.parse::<bool>().is_ok() {
            "boolean"
        } else if default.parse::<i64>().is_ok() {
            "bigint"
        } else {
            "varchar"
        };
        for (column, text) in columns.iter_mut().zip([
            entry.key,
            value,
            default,
            kind.to_string(),
            entry.description.to_string(),
        ]) {
            column.push(text);
        }
    }
    let names = ["Name", "Value", "Default", "Type", "Description"];
    let schema = Arc::new(Schema::new(
        names
            .iter()
            .map(|n| Field::new(*n, DataType::Utf8, false))
            .collect::<Vec<_>>(),
    ));
    let arrays: Vec<ArrayRef> = columns
        .into_iter()
        .map(|c| Arc::new(StringArray::from(c)) as ArrayRef)
        .collect();
    Ok(RecordBatch::try_new(schema, arrays)?)
}

/// Recognises a metadata statement, or `None` for anything else.
pub fn parse(sql: &str) -> Result<Option<MetadataStatement>> {
    let tokens = tokenize(sql);
    let upper: Vec<String> = tokens.iter().map(|t| t.to_ascii_uppercase()).collect();
    let words: Vec<&str> = upper.iter().map(String::as_str).collect();
    let statement = match words.as_slice() {
        ["SHOW", "CATALOGS", rest @ ..] => MetadataStatement::ShowCatalogs {
            like: like_pattern(rest, &tokens[2..])?,
        },
        ["SHOW", "SCHEMAS", "FROM" | "IN", _, rest @ ..] => MetadataStatement::ShowSchemas {
            catalog: Some(tokens[3].clone()),
            like: like_pattern(rest, &tokens[4..])?,
        },
        ["SHOW", "SCHEMAS", rest @ ..] => MetadataStatement::ShowSchemas {
            catalog: None,
            like: like_pattern(rest, &tokens[2..])?,
        },
        ["SHOW", "TABLES", "FROM" | "IN", _, rest @ ..] => MetadataStatement::ShowTables {
            schema: Some(tokens[3].clone()),
            like: like_pattern(rest, &tokens[4..])?,
        },
        ["SHOW", "TABLES", rest @ ..] => MetadataStatement::ShowTables {
            schema: None,
            like: like_pattern(rest, &tokens[2..])?,
        },
        ["SHOW", "COLUMNS", "FROM" | "IN", _] | ["DESCRIBE" | "DESC", _, ..] => {
            MetadataStatement::ShowColumns {
                table: tokens[tokens.len() - 1].clone(),
            }
        }
        ["USE", _] => MetadataStatement::Use {
            target: tokens[1].clone(),
        },
        ["USE", ..] => return plan_err!("USE takes one name: USE catalog.schema or USE schema"),
        ["SHOW", "SESSION", rest @ ..] => MetadataStatement::ShowSession {
            like: like_pattern(rest, &tokens[2..])?,
        },
        _ => return Ok(None),
    };
    Ok(Some(statement))
}

fn like_pattern(rest: &[&str], tokens: &[String]) -> Result<Option<String>> {
    match rest {
        [] => Ok(None),
        ["LIKE", _] => {
            let raw = &tokens[1];
            match raw.strip_prefix('\'').and_then(|r| r.strip_suffix('\'')) {
                Some(pattern) => Ok(Some(pattern.replace("''", "'"))),
                None => plan_err!("LIKE needs a quoted pattern, e.g. LIKE 'line%'"),
            }
        }
        _ => plan_err!("unexpected '{}' in SHOW statement", tokens.join(" ")),
    }
}

/// Splits on white space, keeping quoted strings and quoted identifiers whole; drops a final `;`.
fn tokenize(sql: &str) -> Vec<String> {
    let sql = sql.trim().trim_end_matches(';').trim();
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut quote: Option<char> = None;
    for c in sql.chars() {
        match quote {
            Some(q) => {
                current.push(c);
                if c == q {
                    quote = None;
                }
            }
            None if c == '\'' || c == '"' => {
                current.push(c);
                quote = Some(c);
            }
            None if c.is_whitespace() => {
                if !current.is_empty() {
                    tokens.push(std::mem::take(&mut current));
                }
            }
            None => current.push(c),
        }
    }
    if !current.is_empty() {
        tokens.push(current);
    }
    tokens
}

/// SQL `LIKE` with `%` and `_`.
pub fn like(value: &str, pattern: &str) -> bool {
    fn go(v: &[char], p: &[char]) -> bool {
        match p.split_first() {
            None => v.is_empty(),
            Some(('%', rest)) => (0..=v.len()).any(|i| go(&v[i..], rest)),
            Some(('_', rest)) => !v.is_empty() && go(&v[1..], rest),
            Some((c, rest)) => v.first() == Some(c) && go(&v[1..], rest),
        }
    }
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    go(&v, &p)
}

/// A one-column result.
pub fn names_batch(
    column: &str,
    mut names: Vec<String>,
    like_pattern: Option<&str>,
) -> Result<RecordBatch> {
    names.retain(|n| like_pattern.is_none_or(|p| like(n, p)));
    names.sort();
    names.dedup();
    let schema = Arc::new(Schema::new(vec![Field::new(column, DataType::Utf8, false)]));
    Ok(RecordBatch::try_new(
        schema,
        vec![Arc::new(StringArray::from(names))],
    )?)
}

/// `SHOW COLUMNS` / `DESCRIBE`: Column, Type, Extra, Comment.
pub async fn describe(ctx: &SessionContext, table: &str) -> Result<RecordBatch> {
    let reference = TableReference::parse_str(table);
    let resolved = resolve(&ctx.state(), reference.clone());
    check_exists(ctx, &resolved.catalog, Some(&resolved.schema))?;
    let Some(provider) = ctx.table_provider(reference).await.ok() else {
        return plan_err!("Table '{resolved}' does not exist");
    };
    let schema = provider.schema();
    let column = |f: fn(&Field) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            schema.fields().iter().map(|x| f(x)).collect::<Vec<_>>(),
        ))
    };
    let columns = vec![
        column(|f| f.name().clone()),
        column(|f| trino_type(f.data_type())),
        column(|_| String::new()),
        column(|_| String::new()),
    ];
    let out = Arc::new(Schema::new(
        ["Column", "Type", "Extra", "Comment"]
            .map(|n| Field::new(n, DataType::Utf8, false))
            .to_vec(),
    ));
    Ok(RecordBatch::try_new(out, columns)?)
}

/// A table name completed with the session's current catalog and schema.
pub fn resolve(
    state: &SessionState,
    reference: impl Into<TableReference>,
) -> ResolvedTableReference {
    let defaults = &state.config().options().catalog;
    reference
        .into()
        .resolve(&defaults.default_catalog, &defaults.default_schema)
}

/// Errors naming the first missing part of `catalog.schema`, as Trino words them.
pub fn check_exists(ctx: &SessionContext, catalog: &str, schema: Option<&str>) -> Result<()> {
    let Some(provider) = ctx.catalog(catalog) else {
        return plan_err!("Catalog '{catalog}' does not exist");
    };
    if let Some(schema) = schema
        && schema != "information_schema"
        && provider.schema(schema).is_none()
    {
        return plan_err!("Schema '{catalog}.{schema}' does not exist");
    }
    Ok(())
}

/// Trino's name for an Arrow type.
pub fn trino_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Null => "unknown".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Int8 => "tinyint".into(),
        DataType::Int16 | DataType::UInt8 => "smallint".into(),
        DataType::Int32 | DataType::UInt16 => "integer".into(),
        DataType::Int64 | DataType::UInt32 => "bigint".into(),
        DataType::UInt64 => "decimal(20,0)".into(),
        DataType::Float16 | DataType::Float32 => "real".into(),
        DataType::Float64 => "double".into(),
        DataType::Decimal32(p, s)
        | DataType::Decimal64(p, s)
        | DataType::Decimal128(p, s)
        | DataType::Decimal256(p, s) => format!("decimal({p},{s})"),
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "varchar".into(),
        DataType::Binary
        | DataType::LargeBinary
        | DataType::BinaryView
        | DataType::FixedSizeBinary(_) => "varbinary".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Time32(unit) | DataType::Time64(unit) => format!("time({})", precision(unit)),
        DataType::Timestamp(unit, None) => format!("timestamp({})", precision(unit)),
        DataType::Timestamp(unit, Some(_)) => {
            format!("timestamp({}) with time zone", precision(unit))
        }
        DataType::Interval(_) | DataType::Duration(_) => "interval day to second".into(),
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f)
        | DataType::FixedSizeList(f, _) => format!("array({})", trino_type(f.data_type())),
        DataType::Struct(fields) => {
            let parts: Vec<_> = fields
                .iter()
                .map(|f| format!("{} {}", f.name(), trino_type(f.data_type())))
                .collect();
            format!("row({})", parts.join(", "))
        }
        DataType::Map(entries, _) => match entries.data_type() {
            DataType::Struct(kv) if kv.len() == 2 => format!(
                "map({}, {})",
                trino_type(kv[0].data_type()),
                trino_type(kv[1].data_type())
            ),
            other => format!("map({other})"),
        },
        DataType::Dictionary(_, value) => trino_type(value),
        other => other.to_string().to_lowercase(),
    }
}

fn precision(unit: &TimeUnit) -> u8 {
    match unit {
        TimeUnit::Second => 0,
        TimeUnit::Millisecond => 3,
        TimeUnit::Microsecond => 6,
        TimeUnit::Nanosecond => 9,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_metadata_statements() {
        assert_eq!(
            parse("show catalogs").unwrap(),
            Some(MetadataStatement::ShowCatalogs { like: None })
        );
        assert_eq!(
            parse("SHOW SCHEMAS FROM tpch LIKE 'sf%';").unwrap(),
            Some(MetadataStatement::ShowSchemas {
                catalog: Some("tpch".into()),
                like: Some("sf%".into())
            })
        );
        assert_eq!(
            parse("SHOW TABLES IN tpch.tiny").unwrap(),
            Some(MetadataStatement::ShowTables {
                schema: Some("tpch.tiny".into()),
                like: None
            })
        );
        assert_eq!(
            parse("DESCRIBE tpch.tiny.nation").unwrap(),
            Some(MetadataStatement::ShowColumns {
                table: "tpch.tiny.nation".into()
            })
        );
        assert_eq!(
            parse("use memory.default").unwrap(),
            Some(MetadataStatement::Use {
                target: "memory.default".into()
            })
        );
        assert_eq!(parse("SELECT 1").unwrap(), None);
        assert!(parse("SHOW TABLES LIKE sf").is_err());
    }

    #[test]
    fn like_matches_sql_patterns() {
        assert!(like("lineitem", "line%"));
        assert!(like("sf1", "sf_"));
        assert!(!like("sf10", "sf_"));
        assert!(like("anything", "%"));
    }

    #[test]
    fn trino_type_names() {
        assert_eq!(trino_type(&DataType::Decimal128(15, 2)), "decimal(15,2)");
        assert_eq!(trino_type(&DataType::Int64), "bigint");
        assert_eq!(trino_type(&DataType::Utf8), "varchar");
        assert_eq!(
            trino_type(&DataType::List(Arc::new(Field::new(
                "item",
                DataType::Int32,
                true
            )))),
            "array(integer)"
        );
    }
}
