use serde::Deserialize;

/// Options of a `memory` catalog file.
///
/// ```toml
/// connector = "memory"
/// max_table_bytes = 1073741824   # per-table limit (default 1 GiB)
/// ```
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MemoryConfig {
    /// The most bytes of Arrow data one table may hold; an insert that would exceed it fails
    /// and appends nothing.
    #[serde(default = "default_max_table_bytes")]
    pub max_table_bytes: usize,
}

fn default_max_table_bytes() -> usize {
    1 << 30
}

impl Default for MemoryConfig {
    fn default() -> Self {
        Self {
            max_table_bytes: default_max_table_bytes(),
        }
    }
}
