//! The TPC-H tables: names, columns, types, row counts, and the `sfN` schema names.

use std::sync::Arc;

use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::common::stats::Precision;
use datafusion::common::{ColumnStatistics, ScalarValue, Statistics};

use crate::config::ColumnNaming;

/// The eight TPC-H tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum TpchTableKind {
    Nation,
    Region,
    Part,
    Supplier,
    PartSupp,
    Customer,
    Orders,
    LineItem,
}

/// Column types of the TPC-H schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ColumnType {
    /// Keys: `BIGINT`.
    Key,
    /// Small counts (`p_size`, `l_linenumber`, ...): `INTEGER`.
    Int,
    /// Money and quantities: `DECIMAL(15, 2)`.
    Decimal,
    Date,
    Varchar,
}

impl ColumnType {
    pub(crate) fn data_type(self) -> DataType {
        match self {
            ColumnType::Key => DataType::Int64,
            ColumnType::Int => DataType::Int32,
            ColumnType::Decimal => DataType::Decimal128(15, 2),
            ColumnType::Date => DataType::Date32,
            ColumnType::Varchar => DataType::Utf8,
        }
    }
}

use ColumnType::{Date, Decimal, Int, Key, Varchar};

const NATION: &[(&str, ColumnType)] = &[
    ("n_nationkey", Key),
    ("n_name", Varchar),
    ("n_regionkey", Key),
    ("n_comment", Varchar),
];
const REGION: &[(&str, ColumnType)] = &[
    ("r_regionkey", Key),
    ("r_name", Varchar),
    ("r_comment", Varchar),
];
const PART: &[(&str, ColumnType)] = &[
    ("p_partkey", Key),
    ("p_name", Varchar),
    ("p_mfgr", Varchar),
    ("p_brand", Varchar),
    ("p_type", Varchar),
    ("p_size", Int),
    ("p_container", Varchar),
    ("p_retailprice", Decimal),
    ("p_comment", Varchar),
];
const SUPPLIER: &[(&str, ColumnType)] = &[
    ("s_suppkey", Key),
    ("s_name", Varchar),
    ("s_address", Varchar),
    ("s_nationkey", Key),
    ("s_phone", Varchar),
    ("s_acctbal", Decimal),
    ("s_comment", Varchar),
];
const PARTSUPP: &[(&str, ColumnType)] = &[
    ("ps_partkey", Key),
    ("ps_suppkey", Key),
    ("ps_availqty", Int),
    ("ps_supplycost", Decimal),
    ("ps_comment", Varchar),
];
const CUSTOMER: &[(&str, ColumnType)] = &[
    ("c_custkey", Key),
    ("c_name", Varchar),
    ("c_address", Varchar),
    ("c_nationkey", Key),
    ("c_phone", Varchar),
    ("c_acctbal", Decimal),
    ("c_mktsegment", Varchar),
    ("c_comment", Varchar),
];
const ORDERS: &[(&str, ColumnType)] = &[
    ("o_orderkey", Key),
    ("o_custkey", Key),
    ("o_orderstatus", Varchar),
    ("o_totalprice", Decimal),
    ("o_orderdate", Date),
    ("o_orderpriority", Varchar),
    ("o_clerk", Varchar),
    ("o_shippriority", Int),
    ("o_comment", Varchar),
];
const LINEITEM: &[(&str, ColumnType)] = &[
    ("l_orderkey", Key),
    ("l_partkey", Key),
    ("l_suppkey", Key),
    ("l_linenumber", Int),
    ("l_quantity", Decimal),
    ("l_extendedprice", Decimal),
    ("l_discount", Decimal),
    ("l_tax", Decimal),
    ("l_returnflag", Varchar),
    ("l_linestatus", Varchar),
    ("l_shipdate", Date),
    ("l_commitdate", Date),
    ("l_receiptdate", Date),
    ("l_shipinstruct", Varchar),
    ("l_shipmode", Varchar),
    ("l_comment", Varchar),
];

impl TpchTableKind {
    /// Every table, in the order `SHOW TABLES` lists them.
    pub const ALL: [TpchTableKind; 8] = [
        TpchTableKind::Customer,
        TpchTableKind::LineItem,
        TpchTableKind::Nation,
        TpchTableKind::Orders,
        TpchTableKind::Part,
        TpchTableKind::PartSupp,
        TpchTableKind::Region,
        TpchTableKind::Supplier,
    ];

    /// The SQL name of the table.
    pub fn name(self) -> &'static str {
        match self {
            TpchTableKind::Nation => "nation",
            TpchTableKind::Region => "region",
            TpchTableKind::Part => "part",
            TpchTableKind::Supplier => "supplier",
            TpchTableKind::PartSupp => "partsupp",
            TpchTableKind::Customer => "customer",
            TpchTableKind::Orders => "orders",
            TpchTableKind::LineItem => "lineitem",
        }
    }

    /// The table called `name`, if any.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.name() == name)
    }

    pub(crate) fn columns(self) -> &'static [(&'static str, ColumnType)] {
        match self {
            TpchTableKind::Nation => NATION,
            TpchTableKind::Region => REGION,
            TpchTableKind::Part => PART,
            TpchTableKind::Supplier => SUPPLIER,
            TpchTableKind::PartSupp => PARTSUPP,
            TpchTableKind::Customer => CUSTOMER,
            TpchTableKind::Orders => ORDERS,
            TpchTableKind::LineItem => LINEITEM,
        }
    }

    /// The table's Arrow schema under the given naming.
    pub fn schema(self, naming: ColumnNaming) -> SchemaRef {
        let fields = self.columns().iter().map(|(name, ty)| {
            let name = match naming {
                ColumnNaming::Standard => name,
                ColumnNaming::Simplified => name.split_once('_').map_or(*name, |(_, rest)| rest),
            };
            Field::new(name, ty.data_type(), false)
        });
        Arc::new(Schema::new(fields.collect::<Vec<_>>()))
    }

    /// Whether the generator ignores its part arguments (nation and region always emit the
    /// whole table, so they are read as one split).
    pub fn is_fixed_size(self) -> bool {
        matches!(self, TpchTableKind::Nation | TpchTableKind::Region)
    }

    /// Rows of the whole table at `scale_factor`.
    pub fn row_count(self, scale_factor: f64) -> usize {
        use tpchgen::generators::*;
        let rows = match self {
            TpchTableKind::Nation => 25,
            TpchTableKind::Region => 5,
            TpchTableKind::Part => PartGenerator::calculate_row_count(scale_factor, 1, 1),
            TpchTableKind::Supplier => SupplierGenerator::calculate_row_count(scale_factor, 1, 1),
            // The generator counts parts; each part has four suppliers.
            TpchTableKind::PartSupp => {
                PartSuppGenerator::calculate_row_count(scale_factor, 1, 1).saturating_mul(4)
            }
            TpchTableKind::Customer => CustomerGenerator::calculate_row_count(scale_factor, 1, 1),
            TpchTableKind::Orders => OrderGenerator::calculate_row_count(scale_factor, 1, 1),
            // About four line items per order; the exact count is only known by generating.
            TpchTableKind::LineItem => {
                OrderGenerator::calculate_row_count(scale_factor, 1, 1).saturating_mul(4)
            }
        };
        usize::try_from(rows).unwrap_or(0)
    }

    /// Whether [`TpchTableKind::row_count`] is exact.
    pub fn row_count_is_exact(self) -> bool {
        self != TpchTableKind::LineItem
    }

    /// The whole table's statistics at `scale_factor`, in the order of its columns: its rows and,
    /// for every key column, the range and number of distinct values the generator gives it.
    /// Without them DataFusion takes every key as distinct and estimates `supplier JOIN lineitem`
    /// at supplier's 10 000 rows instead of lineitem's millions.
    pub fn statistics(self, scale_factor: f64) -> Statistics {
        let rows = self.row_count(scale_factor);
        let columns = self.columns().iter().map(|(name, _)| {
            let Some(domain) = key_domain(name, |table| table.row_count(scale_factor)) else {
                return ColumnStatistics::new_unknown();
            };
            let mut column = ColumnStatistics::new_unknown()
                .with_null_count(Precision::Exact(0))
                .with_distinct_count(Precision::Exact(domain.distinct));
            if let Some((min, max)) = domain.range {
                column = column
                    .with_min_value(Precision::Exact(ScalarValue::Int64(Some(min))))
                    .with_max_value(Precision::Exact(ScalarValue::Int64(Some(max))));
            }
            match domain.exact {
                true => column,
                false => column.to_inexact(),
            }
        });
        Statistics {
            num_rows: match self.row_count_is_exact() {
                true => Precision::Exact(rows),
                false => Precision::Inexact(rows),
            },
            total_byte_size: Precision::Absent,
            column_statistics: columns.collect(),
        }
    }
}

/// What the generator fixes about a key column: its smallest and largest value (when the keys
/// are dense) and how many distinct values it holds; `exact` when both are exact.
struct KeyDomain {
    range: Option<(i64, i64)>,
    distinct: usize,
    exact: bool,
}

/// The domain of the key column `column` (standard name), given each table's row count.
fn key_domain(column: &str, rows: impl Fn(TpchTableKind) -> usize) -> Option<KeyDomain> {
    use TpchTableKind::{Customer, Orders, Part, Supplier};
    // Keys 1..=n of a table of n rows; foreign keys hold (about) all of them.
    let keys_of = |table, exact| {
        let n = rows(table);
        KeyDomain {
            range: Some((1, i64::try_from(n).unwrap_or(i64::MAX))),
            distinct: n,
            exact,
        }
    };
    // Keys 0..n of nation and region.
    let small = |n: usize, exact| KeyDomain {
        range: Some((0, n as i64 - 1)),
        distinct: n,
        exact,
    };
    Some(match column {
        "n_nationkey" => small(25, true),
        "n_regionkey" | "r_regionkey" => small(5, true),
        "s_nationkey" | "c_nationkey" => small(25, false),
        // Every part has four suppliers, so every part key is in partsupp.
        "p_partkey" | "ps_partkey" => keys_of(Part, true),
        "l_partkey" => keys_of(Part, false),
        "s_suppkey" => keys_of(Supplier, true),
        "ps_suppkey" | "l_suppkey" => keys_of(Supplier, false),
        "c_custkey" => keys_of(Customer, true),
        // Customers whose key is a multiple of three place no orders.
        "o_custkey" => {
            let customers = keys_of(Customer, false);
            KeyDomain {
                distinct: customers.distinct - customers.distinct / 3,
                ..customers
            }
        }
        // Order keys are sparse (8 of every 32 values): their count, no range.
        "o_orderkey" | "l_orderkey" => KeyDomain {
            range: None,
            distinct: rows(Orders),
            exact: column == "o_orderkey",
        },
        _ => return None,
    })
}

/// The scale factor of a schema name: `tiny` is 0.01, `sfN` is N (`sf1`, `sf0.1`, `sf100`).
pub fn scale_factor_of_schema(schema: &str) -> Option<f64> {
    if schema == "tiny" {
        return Some(0.01);
    }
    let factor: f64 = schema.strip_prefix("sf")?.parse().ok()?;
    (factor.is_finite() && factor > 0.0).then_some(factor)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn schema_names_map_to_scale_factors() {
        assert_eq!(scale_factor_of_schema("tiny"), Some(0.01));
        assert_eq!(scale_factor_of_schema("sf1"), Some(1.0));
        assert_eq!(scale_factor_of_schema("sf0.1"), Some(0.1));
        assert_eq!(scale_factor_of_schema("sf100"), Some(100.0));
        assert_eq!(scale_factor_of_schema("sf0"), None);
        assert_eq!(scale_factor_of_schema("sf-1"), None);
        assert_eq!(scale_factor_of_schema("sfx"), None);
        assert_eq!(scale_factor_of_schema("default"), None);
    }

    #[test]
    fn simplified_naming_drops_the_prefix() {
        let schema = TpchTableKind::LineItem.schema(ColumnNaming::Simplified);
        assert_eq!(schema.field(0).name(), "orderkey");
        assert_eq!(schema.field(15).name(), "comment");
        let schema = TpchTableKind::PartSupp.schema(ColumnNaming::Standard);
        assert_eq!(schema.field(3).name(), "ps_supplycost");
    }
}
