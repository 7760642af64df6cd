//! [`TpchScanCodec`]: a TPC-H scan travels as its [`TpchScanHandle`] and its splits (part
//! numbers); the worker generates the rows itself.

use braid_connector_spi::ScanExecCodec;

use crate::exec::{TpchScan, TpchScanHandle};

/// Encodes and decodes the `TpchScanExec`s of one catalog.
pub type TpchScanCodec = ScanExecCodec<TpchScan>;

/// The codec of the tpch catalog `catalog`.
pub fn codec(catalog: &str) -> TpchScanCodec {
    ScanExecCodec::new(catalog, |handle: TpchScanHandle| TpchScan::new(handle))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ColumnNaming;
    use crate::metadata::TpchTableKind;
    use braid_connector_spi::ScanCodec;
    use datafusion::physical_plan::ExecutionPlan;
    use datafusion::physical_plan::displayable;
    use datafusion::prelude::SessionContext;

    #[test]
    fn scan_round_trips() {
        let scan = TpchScan::exec(
            "tpch".into(),
            TpchTableKind::Orders,
            0.1,
            ColumnNaming::Simplified,
            7,
            Some(vec![3, 0]),
            Some(10),
        )
        .expect("scan");
        let codec = codec("tpch");
        assert!(
            super::codec("other")
                .try_encode(&scan)
                .expect("encode")
                .is_none(),
            "another catalog's codec leaves the scan alone"
        );
        let bytes = codec.try_encode(&scan).expect("encode").expect("mine");
        let ctx = SessionContext::new().task_ctx();
        let back = codec.try_decode(&bytes, &ctx).expect("decode");
        assert_eq!(
            displayable(&scan).one_line().to_string(),
            displayable(back.as_ref()).one_line().to_string()
        );
        assert_eq!(back.schema(), scan.schema());
    }
}
