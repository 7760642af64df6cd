//! Hidden columns, as in Trino: a column whose Arrow field is marked
//! [`braid_connector_spi::HIDDEN_COLUMN`] (Kafka's `_partition_id`, ...) is selectable by name
//! but left out of `SELECT *` and `t.*`, and an `INSERT` without a column list writes only the
//! visible columns.
//!
//! DataFusion has no hidden columns (apache/datafusion#20135), so [`hide_columns`] edits the
//! parsed statement before it is planned: a wildcard over such a table gets `EXCLUDE` of its
//! hidden columns, an `INSERT INTO` such a table without columns gets the visible ones. The
//! edit is on the syntax tree; no SQL text is rebuilt. An unqualified `*` over a join excludes
//! the hidden names from every table of the join.

use std::collections::{BTreeSet, HashMap};
use std::ops::ControlFlow;

use braid_connector_spi::is_hidden;
use datafusion::error::Result;
use datafusion::prelude::SessionContext;
use datafusion::sql::parser::Statement as DFStatement;
use datafusion::sql::planner::object_name_to_table_reference;
use datafusion::sql::sqlparser::ast::{
    ExcludeSelectItem, Ident, ObjectName, Query, Select, SelectItem,
    SelectItemQualifiedWildcardKind, SetExpr, Statement, TableFactor, TableObject, Visit, VisitMut,
    Visitor, VisitorMut, WildcardAdditionalOptions, visit_relations,
};

/// The hidden and visible columns of one table.
#[derive(Debug)]
struct Columns {
    hidden: Vec<String>,
    visible: Vec<String>,
}

/// Hides the hidden columns of the tables `statement` names from its wildcards and
/// column-less inserts.
pub async fn hide_columns(ctx: &SessionContext, statement: &mut DFStatement) -> Result<()> {
    let DFStatement::Statement(inner) = statement else {
        return Ok(());
    };
    // Most statements have no wildcard and no column-less INSERT: no table to look up.
    if Visit::visit(inner.as_ref(), &mut Wildcards).is_continue() {
        return Ok(());
    }
    let mut names = BTreeSet::new();
    let _ = visit_relations(inner.as_ref(), |name: &ObjectName| {
        names.insert(name.clone());
        ControlFlow::<()>::Continue(())
    });
    let normalize = ctx
        .state()
        .config()
        .options()
        .sql_parser
        .enable_ident_normalization;
    let mut tables = HashMap::new();
    for name in names {
        let Ok(reference) = object_name_to_table_reference(name.clone(), normalize) else {
            continue;
        };
        // A CTE, or a table that does not exist: the planner says so in its own words.
        let Ok(provider) = ctx.table_provider(reference).await else {
            continue;
        };
        let schema = provider.schema();
        let (hidden, visible): (Vec<_>, Vec<_>) =
            schema.fields().iter().partition(|f| is_hidden(f));
        if hidden.is_empty() {
            continue;
        }
        let names = |fields: Vec<&std::sync::Arc<datafusion::arrow::datatypes::Field>>| {
            fields.iter().map(|f| f.name().clone()).collect()
        };
        tables.insert(
            name.to_string(),
            Columns {
                hidden: names(hidden),
                visible: names(visible),
            },
        );
    }
    if tables.is_empty() {
        return Ok(());
    }
    let _ = VisitMut::visit(inner.as_mut(), &mut Hider { tables: &tables });
    Ok(())
}

/// Finds a wildcard or a column-less INSERT (it breaks at the first).
struct Wildcards;

impl Visitor for Wildcards {
    type Break = ();

    fn pre_visit_query(&mut self, query: &Query) -> ControlFlow<()> {
        fn has_wildcard(body: &SetExpr) -> bool {
            match body {
                SetExpr::Select(select) => select.projection.iter().any(|item| {
                    matches!(
                        item,
                        SelectItem::Wildcard(_) | SelectItem::QualifiedWildcard(..)
                    )
                }),
                SetExpr::SetOperation { left, right, .. } => {
                    has_wildcard(left) || has_wildcard(right)
                }
                _ => false,
            }
        }
        if has_wildcard(&query.body) {
            return ControlFlow::Break(());
        }
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &Statement) -> ControlFlow<()> {
        match statement {
            Statement::Insert(insert) if insert.columns.is_empty() => ControlFlow::Break(()),
            _ => ControlFlow::Continue(()),
        }
    }
}

struct Hider<'a> {
    /// By the table's name as written.
    tables: &'a HashMap<String, Columns>,
}

impl VisitorMut for Hider<'_> {
    type Break = ();

    fn pre_visit_query(&mut self, query: &mut Query) -> ControlFlow<()> {
        self.hide_in(query.body.as_mut());
        ControlFlow::Continue(())
    }

    fn pre_visit_statement(&mut self, statement: &mut Statement) -> ControlFlow<()> {
        if let Statement::Insert(insert) = statement
            && insert.columns.is_empty()
            && let TableObject::TableName(name) = &insert.table
            && let Some(columns) = self.tables.get(&name.to_string())
        {
            insert.columns = columns.visible.iter().map(|c| quoted(c)).collect();
        }
        ControlFlow::Continue(())
    }
}

impl Hider<'_> {
    fn hide_in(&self, body: &mut SetExpr) {
        match body {
            SetExpr::Select(select) => self.hide_in_select(select),
            SetExpr::SetOperation { left, right, .. } => {
                self.hide_in(left);
                self.hide_in(right);
            }
            _ => {}
        }
    }

    fn hide_in_select(&self, select: &mut Select) {
        // The tables of the FROM clause with hidden columns: (qualifier, hidden columns).
        let mut from: Vec<(Vec<String>, &Columns)> = Vec::new();
        for table in &select.from {
            for factor in
                std::iter::once(&table.relation).chain(table.joins.iter().map(|j| &j.relation))
            {
                let TableFactor::Table { name, alias, .. } = factor else {
                    continue;
                };
                let Some(columns) = self.tables.get(&name.to_string()) else {
                    continue;
                };
                let qualifier = match alias {
                    Some(alias) => vec![alias.name.value.clone()],
                    None => name.0.iter().map(|p| p.to_string()).collect(),
                };
                from.push((qualifier, columns));
            }
        }
        if from.is_empty() {
            return;
        }
        for item in &mut select.projection {
            match item {
                SelectItem::Wildcard(options) => {
                    exclude(options, from.iter().flat_map(|(_, c)| &c.hidden));
                }
                SelectItem::QualifiedWildcard(
                    SelectItemQualifiedWildcardKind::ObjectName(qualifier),
                    options,
                ) => {
                    let written: Vec<String> = qualifier.0.iter().map(|p| p.to_string()).collect();
                    // `t.*` names the table by its alias, or by the end of its name.
                    if let Some((_, columns)) =
                        from.iter().find(|(name, _)| name.ends_with(&written))
                    {
                        exclude(options, &columns.hidden);
                    }
                }
                _ => {}
            }
        }
    }
}

/// Adds `columns` to the wildcard's `EXCLUDE`.
fn exclude<'a>(
    options: &mut WildcardAdditionalOptions,
    columns: impl IntoIterator<Item = &'a String>,
) {
    let mut names: Vec<Ident> = match options.opt_exclude.take() {
        Some(ExcludeSelectItem::Single(one)) => vec![one],
        Some(ExcludeSelectItem::Multiple(many)) => many,
        None => Vec::new(),
    };
    for column in columns {
        if !names.iter().any(|n| n.value == *column) {
            names.push(quoted(column));
        }
    }
    options.opt_exclude = Some(ExcludeSelectItem::Multiple(names));
}

fn quoted(name: &str) -> Ident {
    Ident::with_quote('"', name)
}
