//! Trino's metadata statements, which DataFusion does not have or answers differently:
//! `SHOW CATALOGS`, `SHOW SCHEMAS`, `SHOW TABLES`, `SHOW COLUMNS` / `DESCRIBE`, `USE`,
//! `SHOW SESSION`, `SET SESSION` / `RESET SESSION`, with Trino's column names and type names.

use std::sync::Arc;

use braid_connector_spi::{char_length, is_hidden};
use braid_optimizer_rules::properties::SESSION_PROPERTIES;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, TimeUnit};
use datafusion::common::{ResolvedTableReference, TableReference, plan_err};
use datafusion::error::Result;
use datafusion::execution::SessionState;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast;

use crate::sql_text::{self, Run};

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
/// `RESET`, or `None` for any other statement. Trino's names of Braid's properties
/// (`query_max_run_time`, ...) gain their `braid.` prefix; the rest of the text is kept byte for
/// byte.
pub fn session_alias(sql: &str) -> Option<String> {
    let words = sql_text::leading_words(sql, 4);
    let [(first, _), (second, keyword), rest @ ..] = words.as_slice() else {
        return None;
    };
    if !second.eq_ignore_ascii_case("SESSION") {
        return None;
    }
    let tail = sql[keyword.end..].trim().trim_end_matches(';').trim_end();
    let name_end = tail
        .find(|c: char| c.is_whitespace() || c == '=')
        .unwrap_or(tail.len());
    let (name, value) = tail.split_at(name_end);
    let name = match SESSION_PROPERTIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
    {
        Some(property) => format!("braid.{property}"),
        None => name.to_string(),
    };
    match (first.to_ascii_uppercase().as_str(), rest.len()) {
        ("SET", 1..) => Some(format!("SET {name}{value}")),
        ("RESET", 1) => Some(format!("RESET {name}{value}")),
        _ => None,
    }
}

/// A statement about views in Trino's syntax, edited by byte spans into one DataFusion's
/// parser reads (see [`view_statement`]).
#[derive(Debug, PartialEq)]
pub struct ViewEdit {
    pub sql: String,
    /// `ALTER VIEW ... RENAME TO ...`, now spelled `ALTER TABLE`.
    pub renames_view: bool,
}

/// Trino's view statements that DataFusion's parser does not read: `CREATE [OR REPLACE] VIEW
/// name SECURITY DEFINER|INVOKER AS ...` loses its `SECURITY` clause (Braid checks no access
/// per table, so both mean the same; dbt-trino writes one), and `ALTER VIEW name RENAME TO
/// new` becomes `ALTER TABLE`, with [`ViewEdit::renames_view`] set. `None` for any other
/// statement.
pub fn view_statement(sql: &str) -> Option<ViewEdit> {
    let words = sql_text::code_words(sql);
    let is = |i: usize, keyword: &str| {
        words
            .get(i)
            .is_some_and(|(word, _)| word.eq_ignore_ascii_case(keyword))
    };
    if is(0, "CREATE") {
        let view_at = if is(1, "OR") && is(2, "REPLACE") {
            3
        } else {
            1
        };
        if !is(view_at, "VIEW") {
            return None;
        }
        let as_at = (view_at + 1..words.len()).find(|&i| is(i, "AS"))?;
        let security = as_at.checked_sub(2)?;
        if security > view_at
            && is(security, "SECURITY")
            && (is(security + 1, "DEFINER") || is(security + 1, "INVOKER"))
        {
            let cut = words[security].1.start..words[security + 1].1.end;
            return Some(ViewEdit {
                sql: format!("{}{}", &sql[..cut.start], &sql[cut.end..]),
                renames_view: false,
            });
        }
        return None;
    }
    if is(0, "ALTER") && is(1, "VIEW") && (2..words.len()).any(|i| is(i, "RENAME")) {
        let keyword = words[1].1.clone();
        return Some(ViewEdit {
            sql: format!("{}TABLE{}", &sql[..keyword.start], &sql[keyword.end..]),
            renames_view: true,
        });
    }
    None
}

/// `ALTER TABLE [IF EXISTS] name RENAME TO new`: the two names (the new one completed from the
/// old one's catalog and schema when it names none) and `IF EXISTS`; `None` for any other
/// statement. Another change in the same `ALTER TABLE` is refused.
pub fn rename_of(
    statement: &DFStatement,
    normalize: bool,
) -> Result<Option<(TableReference, TableReference, bool)>> {
    let DFStatement::Statement(statement) = statement else {
        return Ok(None);
    };
    let ast::Statement::AlterTable(alter) = statement.as_ref() else {
        return Ok(None);
    };
    let renames = alter.operations.iter().filter_map(|op| match op {
        ast::AlterTableOperation::RenameTable { table_name } => Some(match table_name {
            ast::RenameTableNameKind::To(name) | ast::RenameTableNameKind::As(name) => name,
        }),
        _ => None,
    });
    let new_names: Vec<_> = renames.collect();
    let [new_name] = new_names.as_slice() else {
        return Ok(None);
    };
    if alter.operations.len() > 1 {
        return plan_err!("ALTER TABLE ... RENAME TO takes no other change in the same statement");
    }
    let from = object_name_to_table_reference(alter.name.clone(), normalize)?;
    let to = object_name_to_table_reference((*new_name).clone(), normalize)?;
    // Trino: a new name without a schema (or catalog) stays in the old one's.
    let to = match (&from, to) {
        (TableReference::Full { catalog, .. }, TableReference::Partial { schema, table }) => {
            TableReference::full(catalog.clone(), schema, table)
        }
        (
            TableReference::Full {
                catalog, schema, ..
            },
            TableReference::Bare { table },
        ) => TableReference::full(catalog.clone(), schema.clone(), table),
        (TableReference::Partial { schema, .. }, TableReference::Bare { table }) => {
            TableReference::partial(schema.clone(), table)
        }
        (_, to) => to,
    };
    Ok(Some((from, to, alter.if_exists)))
}

/// The procedure Trino users call to end a query.
const KILL_QUERY: [&str; 3] = ["system", "runtime", "kill_query"];

/// `CALL system.runtime.kill_query(query_id => '...', message => '...')` (or its arguments by
/// position): the query id and message; `None` for any other statement. Any other `CALL` is
/// refused with the procedures Braid has.
pub fn kill_query_call(statement: &DFStatement) -> Result<Option<(String, Option<String>)>> {
    let DFStatement::Statement(statement) = statement else {
        return Ok(None);
    };
    let ast::Statement::Call(call) = statement.as_ref() else {
        return Ok(None);
    };
    let name: Vec<String> = call
        .name
        .0
        .iter()
        .map(|part| match part {
            ast::ObjectNamePart::Identifier(ident) => ident.value.to_ascii_lowercase(),
            other => other.to_string(),
        })
        .collect();
    if name != KILL_QUERY {
        return plan_err!(
            "Procedure '{}' is not registered; Braid has {}",
            call.name,
            KILL_QUERY.join(".")
        );
    }
    let ast::FunctionArguments::List(list) = &call.args else {
        return plan_err!("kill_query takes query_id and an optional message");
    };
    let (mut query_id, mut message) = (None, None);
    for (position, arg) in list.args.iter().enumerate() {
        let (name, value) = match arg {
            ast::FunctionArg::Named { name, arg, .. } => (name.value.to_ascii_lowercase(), arg),
            ast::FunctionArg::Unnamed(arg) => match position {
                0 => ("query_id".to_string(), arg),
                1 => ("message".to_string(), arg),
                _ => return plan_err!("kill_query takes at most 2 arguments"),
            },
            ast::FunctionArg::ExprNamed { name, .. } => {
                return plan_err!("kill_query: unknown argument '{name}'");
            }
        };
        let text = match value {
            ast::FunctionArgExpr::Expr(ast::Expr::Value(v)) => match &v.value {
                ast::Value::SingleQuotedString(text) => Some(text.clone()),
                ast::Value::Null => None,
                other => return plan_err!("kill_query: {name} must be a string, not {other}"),
            },
            other => return plan_err!("kill_query: {name} must be a string literal, not {other}"),
        };
        match name.as_str() {
            "query_id" => query_id = text,
            "message" => message = text,
            other => return plan_err!("kill_query has no argument '{other}' (query_id, message)"),
        }
    }
    match query_id {
        Some(id) => Ok(Some((id, message))),
        None => plan_err!("kill_query needs query_id"),
    }
}

/// `SHOW SESSION`'s rows: Trino's columns `Name`, `Value`, `Default`, `Type`, `Description`.
/// The default is what a new session starts with (Braid's own properties included).
pub fn show_session(ctx: &SessionContext, like: Option<&str>) -> Result<RecordBatch> {
    let defaults: std::collections::HashMap<String, Option<String>> =
        braid_catalogs::bootstrap::session_config()
            .options()
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

/// Splits on white space, keeping quoted strings and quoted identifiers whole (with what they
/// touch: `c."Mixed Case"` is one token); drops comments and a final `;`.
fn tokenize(sql: &str) -> Vec<String> {
    let mut tokens = Vec::new();
    let mut current = String::new();
    let mut flush = |current: &mut String| {
        if !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
    };
    for (kind, range) in sql_text::runs(sql) {
        let text = &sql[range];
        match kind {
            Run::Quoted => current.push_str(text),
            Run::Comment => flush(&mut current),
            Run::Code => {
                for (i, piece) in text.split(char::is_whitespace).enumerate() {
                    if i > 0 {
                        flush(&mut current);
                    }
                    current.push_str(piece);
                }
            }
        }
    }
    flush(&mut current);
    if let Some(last) = tokens.last_mut() {
        let trimmed = last.trim_end_matches(';').len();
        last.truncate(trimmed);
        if last.is_empty() {
            tokens.pop();
        }
    }
    tokens
}

/// SQL `LIKE` with `%` and `_`, in time proportional to `value × pattern` at worst: on a
/// mismatch only the last `%` is retried, one character further on (a recursive matcher takes
/// exponential time on patterns like `%a%a%a…%b`).
pub fn like(value: &str, pattern: &str) -> bool {
    let v: Vec<char> = value.chars().collect();
    let p: Vec<char> = pattern.chars().collect();
    let (mut vi, mut pi) = (0, 0);
    // The position after the last `%` seen, and the value position it currently absorbs to.
    let mut retry: Option<(usize, usize)> = None;
    while vi < v.len() {
        match p.get(pi) {
            Some('%') => {
                pi += 1;
                retry = Some((pi, vi));
            }
            Some(&c) if c == '_' || c == v[vi] => {
                pi += 1;
                vi += 1;
            }
            _ => match retry {
                Some((after, absorbed)) => {
                    pi = after;
                    vi = absorbed + 1;
                    retry = Some((after, absorbed + 1));
                }
                None => return false,
            },
        }
    }
    p[pi..].iter().all(|&c| c == '%')
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
    // Hidden columns are not described, as in Trino.
    let fields: Vec<_> = schema.fields().iter().filter(|f| !is_hidden(f)).collect();
    let column = |f: fn(&Field) -> String| -> ArrayRef {
        Arc::new(StringArray::from(
            fields.iter().map(|x| f(x)).collect::<Vec<_>>(),
        ))
    };
    let columns = vec![
        column(|f| f.name().clone()),
        column(trino_field_type),
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

/// Trino's name for a column's type: [`trino_type`], or `char(n)` for a text column its
/// connector marked as one.
pub fn trino_field_type(field: &Field) -> String {
    match char_length(field) {
        Some(length) => format!("char({length})"),
        None => trino_type(field.data_type()),
    }
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
    fn view_statements_are_edited_by_byte_spans() {
        let edit = |sql: &str| view_statement(sql).map(|e| (e.sql, e.renames_view));
        assert_eq!(
            edit("create or replace view\n  \"m\".\"a b\".\"V\"\n  security definer\n  as select 'O''Brien' AS \"x y\""),
            Some((
                "create or replace view\n  \"m\".\"a b\".\"V\"\n  \n  as select 'O''Brien' AS \"x y\"".to_string(),
                false
            ))
        );
        assert_eq!(
            edit("CREATE VIEW \"v\" SECURITY INVOKER AS SELECT 1"),
            Some(("CREATE VIEW \"v\"  AS SELECT 1".to_string(), false))
        );
        // No SECURITY clause, or one inside a literal or a quoted name: nothing to edit.
        assert_eq!(
            edit("CREATE VIEW v AS SELECT 'security definer' AS s"),
            None
        );
        assert_eq!(edit("CREATE VIEW \"security definer\" AS SELECT 1"), None);
        assert_eq!(
            edit("ALTER VIEW \"a.b\".\"My View\" RENAME TO \"View 2\""),
            Some((
                "ALTER TABLE \"a.b\".\"My View\" RENAME TO \"View 2\"".to_string(),
                true
            ))
        );
        assert_eq!(edit("ALTER VIEW v AS SELECT 1"), None);
        assert_eq!(edit("SELECT 1"), None);
    }

    #[test]
    fn renames_take_the_old_names_catalog_and_schema() {
        let rename = |sql: &str| {
            let statement = datafusion::sql::parser::DFParser::parse_sql(sql)
                .expect("parses")
                .pop_front()
                .expect("a statement");
            rename_of(&statement, true)
        };
        let (from, to, if_exists) = rename("ALTER TABLE m.\"Sales Dept\".t RENAME TO \"New T\"")
            .expect("plans")
            .expect("a rename");
        assert_eq!(from, TableReference::full("m", "Sales Dept", "t"));
        assert_eq!(to, TableReference::full("m", "Sales Dept", "New T"));
        assert!(!if_exists);
        let (_, to, if_exists) = rename("ALTER TABLE IF EXISTS m.s.t RENAME TO s2.t2")
            .expect("plans")
            .expect("a rename");
        assert_eq!(to, TableReference::full("m", "s2", "t2"));
        assert!(if_exists);
        assert!(
            rename("ALTER TABLE t ADD COLUMN c INT")
                .expect("plans")
                .is_none()
        );
        assert!(rename("SELECT 1").expect("plans").is_none());
    }

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
        assert_eq!(
            parse("-- list them\nSHOW /* all */ TABLES FROM memory.\"Mixed Case\" LIKE 'O''B%' ;")
                .unwrap(),
            Some(MetadataStatement::ShowTables {
                schema: Some("memory.\"Mixed Case\"".into()),
                like: Some("O'B%".into())
            })
        );
    }

    #[test]
    fn set_session_aliases_keep_the_text_and_prefix_braid_properties() {
        assert_eq!(
            session_alias("set session Query_Max_Run_Time = '10s';").as_deref(),
            Some("SET braid.query_max_run_time = '10s'")
        );
        assert_eq!(
            session_alias("SET SESSION datafusion.execution.batch_size=7").as_deref(),
            Some("SET datafusion.execution.batch_size=7")
        );
        assert_eq!(
            session_alias("RESET SESSION query_max_execution_time").as_deref(),
            Some("RESET braid.query_max_execution_time")
        );
        assert_eq!(session_alias("SET TIME ZONE 'UTC'"), None);
    }

    #[test]
    fn kill_query_calls_are_read_by_name_or_position() {
        let call = |sql: &str| {
            let statement = datafusion::sql::parser::DFParser::parse_sql(sql)
                .expect("parses")
                .pop_front()
                .expect("one statement");
            kill_query_call(&statement)
        };
        assert_eq!(
            call("CALL system.runtime.kill_query(query_id => 'q1', message => 'O''Brien said so')")
                .expect("valid"),
            Some(("q1".into(), Some("O'Brien said so".into())))
        );
        assert_eq!(
            call("call SYSTEM.runtime.KILL_QUERY('q2')").expect("valid"),
            Some(("q2".into(), None))
        );
        assert_eq!(call("SELECT 1").expect("not a call"), None);
        let err = call("CALL system.runtime.drop_everything()").expect_err("unknown");
        assert!(err.to_string().contains("kill_query"), "{err}");
        let err = call("CALL system.runtime.kill_query(id => 'x')").expect_err("bad name");
        assert!(err.to_string().contains("'id'"), "{err}");
    }

    #[test]
    fn like_matches_sql_patterns() {
        assert!(like("lineitem", "line%"));
        assert!(like("sf1", "sf_"));
        assert!(!like("sf10", "sf_"));
        assert!(like("anything", "%"));
        assert!(like("", "%%"));
        assert!(!like("", "_"));
        assert!(like("abcbd", "%b_"));
        assert!(like("mississippi", "m%ss%pi"));
        assert!(!like("mississippi", "m%ss%pa"));
        assert!(like("ab", "a%b%"));
    }

    #[test]
    fn like_does_not_backtrack_exponentially() {
        let value = "a".repeat(60);
        let pattern = format!("{}b", "%a".repeat(20));
        let started = std::time::Instant::now();
        assert!(!like(&value, &pattern));
        assert!(like(&format!("{value}b"), &pattern));
        // The recursive matcher took minutes here; this one takes microseconds.
        assert!(started.elapsed() < std::time::Duration::from_secs(1));
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
