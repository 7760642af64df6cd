use serde::Deserialize;

/// Options of a `tpch` catalog file.
///
/// ```toml
/// connector = "tpch"
/// column_naming = "simplified"   # or "standard" (default): l_orderkey vs orderkey
/// splits = 8                     # splits per scan; default: the cluster's task slots
/// ```
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TpchConfig {
    /// How columns are named.
    #[serde(default)]
    pub column_naming: ColumnNaming,
    /// Splits per table scan; `None` uses the session's target partitions, which the
    /// coordinator sets to the cluster's task slots.
    #[serde(default)]
    pub splits: Option<usize>,
}

/// Column naming of the TPC-H tables.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ColumnNaming {
    /// The TPC-H specification's names: `l_orderkey`, `o_custkey`, ...
    #[default]
    Standard,
    /// Trino's names, without the table prefix: `orderkey`, `custkey`, ...
    Simplified,
}
