//! Table names beyond a plain table, one spelling for every connector with versions and
//! metadata tables (Iceberg, Delta Lake): a metadata table as Trino names it, `"t$history"`,
//! and a table at a version, `t@<version>` or `t@ts=<epoch ms>` — the names the coordinator's
//! rewrite of `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` gives a table.

/// A table name as a connector's schema receives it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TableName<'a, K> {
    /// The table itself.
    pub table: &'a str,
    pub version: Option<TableVersion>,
    /// The metadata table asked for, of the connector's kinds `K`.
    pub metadata_table: Option<K>,
}

/// A version of a table, as `FOR VERSION AS OF` / `FOR TIMESTAMP AS OF` name it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TableVersion {
    /// A version (a snapshot id in Iceberg, a commit version in Delta Lake).
    Version(i64),
    /// The version current at this time (milliseconds since the epoch).
    Timestamp(i64),
}

impl TableVersion {
    /// The version as an error message names it.
    pub fn describe(self) -> String {
        match self {
            TableVersion::Version(version) => version.to_string(),
            TableVersion::Timestamp(ms) => format!(
                "at or before {}",
                utc_rfc3339(ms).unwrap_or_else(|| ms.to_string())
            ),
        }
    }
}

/// `ms` as an RFC 3339 UTC time.
fn utc_rfc3339(ms: i64) -> Option<String> {
    use datafusion::arrow::temporal_conversions::timestamp_ms_to_datetime;
    timestamp_ms_to_datetime(ms).map(|t| format!("{}+00:00", t.format("%Y-%m-%dT%H:%M:%S%.f")))
}

impl<'a, K: Copy> TableName<'a, K> {
    /// `t`, `t$kind`, `t@<version>`, `t@ts=<ms>`, where `kinds` are the metadata tables of the
    /// connector's `format` (named in the error for a `$` suffix that is none of them).
    pub fn parse(name: &'a str, kinds: &[(&str, K)], format: &str) -> Result<Self, String> {
        let mut parsed = TableName {
            table: name,
            version: None,
            metadata_table: None,
        };
        if let Some((table, kind)) = name.rsplit_once('$') {
            let (_, kind) = kinds
                .iter()
                .find(|(text, _)| *text == kind)
                .ok_or_else(|| {
                    let names: Vec<String> = kinds.iter().map(|(t, _)| format!("${t}")).collect();
                    format!(
                        "no metadata table '${kind}' ({format} tables have {})",
                        names.join(", ")
                    )
                })?;
            parsed.table = table;
            parsed.metadata_table = Some(*kind);
        }
        if let Some((table, version)) = parsed.table.rsplit_once('@') {
            let invalid = || format!("'{version}' is not a version or ts=<epoch ms>");
            parsed.version = Some(match version.strip_prefix("ts=") {
                Some(ms) => TableVersion::Timestamp(ms.parse().map_err(|_| invalid())?),
                None => TableVersion::Version(version.parse().map_err(|_| invalid())?),
            });
            parsed.table = table;
        }
        Ok(parsed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const KINDS: [(&str, u8); 2] = [("snapshots", 1), ("history", 2)];

    #[test]
    fn names_with_versions_and_metadata_tables_parse() {
        let parse = |name| TableName::parse(name, &KINDS, "Iceberg");
        let plain = parse("orders").expect("plain");
        assert_eq!(
            (plain.table, plain.version, plain.metadata_table),
            ("orders", None, None)
        );
        let meta = parse("orders$history").expect("meta");
        assert_eq!((meta.table, meta.metadata_table), ("orders", Some(2)));
        let at = parse("orders@42").expect("version");
        assert_eq!(
            (at.table, at.version),
            ("orders", Some(TableVersion::Version(42)))
        );
        let at = parse("orders@ts=1700000000000$snapshots").expect("time");
        assert_eq!(at.version, Some(TableVersion::Timestamp(1_700_000_000_000)));
        assert_eq!(at.metadata_table, Some(1));
        let err = parse("orders$nope").expect_err("unknown");
        assert_eq!(
            err,
            "no metadata table '$nope' (Iceberg tables have $snapshots, $history)"
        );
        assert!(parse("orders@x").is_err());
        assert_eq!(
            TableVersion::Timestamp(1_577_836_800_000).describe(),
            "at or before 2020-01-01T00:00:00+00:00"
        );
    }
}
