//! [`BraidPhysicalCodec`]: one envelope `{kind, catalog, payload}` per extension node. A scan
//! node carries its connector kind and catalog, and is decoded by that catalog's own codec
//! (with the worker's settings for that catalog); [`BALLISTA`] tags what Ballista's own codec
//! encodes (the shuffle nodes), [`RESULT_SINK`] the root that streams results to the
//! coordinator ([`ResultSinkExec`]), [`LOCAL_BUILD_JOIN`] a join that builds its
//! small build side in each task ([`LocalBuildJoinExec`], encoded with this codec). Dispatch is on the tags, never on position, so processes may
//! register catalogs in any order.

use std::collections::BTreeMap;
use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{exec_err, internal_datafusion_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::{AsExecutionPlan, PhysicalExtensionCodec};
use datafusion_proto::protobuf::PhysicalPlanNode;
use prost::Message;

use braid_connector_spi::{ResultSinkExec, ResultTarget, ScanCodec};
use braid_optimizer_rules::local_build::LocalBuildJoinExec;

/// The envelope tag of nodes encoded by Ballista's codec.
pub const BALLISTA: &str = "ballista";
/// The envelope tag of a [`ResultSinkExec`] (its payload: the JSON of its [`ResultTarget`]).
pub const RESULT_SINK: &str = "braid.result_sink";
/// The envelope tag of a [`LocalBuildJoinExec`] (its payload: a [`LocalBuildJoinNode`]).
pub const LOCAL_BUILD_JOIN: &str = "braid.local_build_join";

/// A [`LocalBuildJoinExec`]: its join with the build side and a stand-in for the probe side
/// (which travels as the node's input), encoded with this same codec.
#[derive(Clone, PartialEq, prost::Message)]
struct LocalBuildJoinNode {
    #[prost(bytes = "vec", tag = "1")]
    join: Vec<u8>,
    #[prost(uint64, tag = "2")]
    build_rows: u64,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Envelope {
    #[prost(string, tag = "1")]
    kind: String,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
    /// The catalog of a scan node; empty for Ballista's nodes.
    #[prost(string, tag = "3")]
    catalog: String,
}

/// The physical extension codec of a Braid cluster (coordinator and workers alike).
#[derive(Debug)]
pub struct BraidPhysicalCodec {
    /// Each catalog's kind and scan codec, by catalog name.
    catalogs: BTreeMap<String, (&'static str, Arc<dyn ScanCodec>)>,
    ballista: BallistaPhysicalExtensionCodec,
}

impl BraidPhysicalCodec {
    /// A codec for these catalogs' scan codecs, by catalog name.
    pub fn new(catalogs: BTreeMap<String, (&'static str, Arc<dyn ScanCodec>)>) -> Self {
        Self {
            catalogs,
            ballista: BallistaPhysicalExtensionCodec::default(),
        }
    }
}

impl PhysicalExtensionCodec for BraidPhysicalCodec {
    fn try_decode(
        &self,
        buf: &[u8],
        inputs: &[Arc<dyn ExecutionPlan>],
        ctx: &TaskContext,
    ) -> Result<Arc<dyn ExecutionPlan>> {
        let envelope = Envelope::decode(buf)
            .map_err(|e| internal_datafusion_err!("cannot decode a Braid plan node: {e}"))?;
        if envelope.kind == BALLISTA {
            return self.ballista.try_decode(&envelope.payload, inputs, ctx);
        }
        if envelope.kind == RESULT_SINK {
            let target: ResultTarget = serde_json::from_slice(&envelope.payload)
                .map_err(|e| internal_datafusion_err!("cannot decode a result sink: {e}"))?;
            let [input] = inputs else {
                return exec_err!("a result sink has one input, not {}", inputs.len());
            };
            return Ok(Arc::new(ResultSinkExec::new(input.clone(), target)));
        }
        if envelope.kind == LOCAL_BUILD_JOIN {
            let failed = |e: prost::DecodeError| {
                internal_datafusion_err!("cannot decode a join with a local build side: {e}")
            };
            let node = LocalBuildJoinNode::decode(envelope.payload.as_slice()).map_err(failed)?;
            let join = PhysicalPlanNode::decode(node.join.as_slice())
                .map_err(failed)?
                .try_into_physical_plan(ctx, self)?;
            let [probe] = inputs else {
                return exec_err!(
                    "a join with a local build side has one input, not {}",
                    inputs.len()
                );
            };
            let build_rows = node.build_rows as usize;
            let node = LocalBuildJoinExec::with_probe(join, probe.clone(), build_rows)?;
            return Ok(Arc::new(node));
        }
        match self.catalogs.get(envelope.catalog.as_str()) {
            Some((kind, codec)) if *kind == envelope.kind => {
                codec.try_decode(&envelope.payload, ctx)
            }
            Some((kind, _)) => exec_err!(
                "catalog '{}' is a {kind} catalog here but a {} catalog on the coordinator: give every process the same catalog files",
                envelope.catalog,
                envelope.kind
            ),
            None => exec_err!(
                "this process has no catalog '{}' ({} connector): add etc/catalog/{}.toml on every worker, as on the coordinator",
                envelope.catalog,
                envelope.kind,
                envelope.catalog
            ),
        }
    }

    fn try_encode(&self, node: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> Result<()> {
        if let Some(sink) = node.as_any().downcast_ref::<ResultSinkExec>() {
            let payload = serde_json::to_vec(sink.target())
                .map_err(|e| internal_datafusion_err!("cannot encode a result sink: {e}"))?;
            return encode(RESULT_SINK, "", payload, buf);
        }
        if let Some(local) = node.as_any().downcast_ref::<LocalBuildJoinExec>() {
            let join = PhysicalPlanNode::try_from_physical_plan(local.join_without_probe()?, self)?;
            let payload = LocalBuildJoinNode {
                join: join.encode_to_vec(),
                build_rows: local.build_rows() as u64,
            };
            return encode(LOCAL_BUILD_JOIN, "", payload.encode_to_vec(), buf);
        }
        for (catalog, (kind, codec)) in &self.catalogs {
            if let Some(payload) = codec.try_encode(node.as_ref())? {
                return encode(kind, catalog, payload, buf);
            }
        }
        let mut payload = Vec::new();
        self.ballista.try_encode(node, &mut payload)?;
        encode(BALLISTA, "", payload, buf)
    }
}

fn encode(kind: &str, catalog: &str, payload: Vec<u8>, buf: &mut Vec<u8>) -> Result<()> {
    Envelope {
        kind: kind.to_string(),
        payload,
        catalog: catalog.to_string(),
    }
    .encode(buf)
    .map_err(|e| internal_datafusion_err!("cannot encode a {kind} plan node: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectorRegistry, Role};
    use braid_connector_memory::MemoryScan;
    use braid_connector_tpch::{ColumnNaming, TpchScan, TpchTableKind};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::physical_plan::Partitioning;
    use datafusion::physical_plan::displayable;
    use datafusion::physical_plan::repartition::RepartitionExec;
    use datafusion::prelude::SessionContext;
    use datafusion_proto::bytes::{
        physical_plan_from_bytes_with_extension_codec, physical_plan_to_bytes_with_extension_codec,
    };

    fn round_trip(plan: Arc<dyn ExecutionPlan>) {
        let codec = ConnectorRegistry::load(None, &Role::Worker)
            .expect("built-ins")
            .codec();
        let bytes =
            physical_plan_to_bytes_with_extension_codec(plan.clone(), &codec).expect("encode");
        let ctx = SessionContext::new().task_ctx();
        let back =
            physical_plan_from_bytes_with_extension_codec(&bytes, &ctx, &codec).expect("decode");
        assert_eq!(
            displayable(plan.as_ref()).indent(true).to_string(),
            displayable(back.as_ref()).indent(true).to_string()
        );
    }

    #[test]
    fn a_result_sink_round_trips_with_its_target() {
        let scan = TpchScan::exec(
            "tpch".into(),
            TpchTableKind::Nation,
            0.01,
            ColumnNaming::Standard,
            1,
            None,
            None,
        )
        .expect("scan");
        let target = ResultTarget {
            query_id: "20261123_000001_00001_braid".into(),
            endpoint: "http://coordinator:50052".into(),
        };
        let sink = Arc::new(ResultSinkExec::new(Arc::new(scan), target.clone()));
        round_trip(sink.clone());
        let codec = ConnectorRegistry::load(None, &Role::Worker)
            .expect("built-ins")
            .codec();
        let bytes = physical_plan_to_bytes_with_extension_codec(sink, &codec).expect("encode");
        let back = physical_plan_from_bytes_with_extension_codec(
            &bytes,
            &SessionContext::new().task_ctx(),
            &codec,
        )
        .expect("decode");
        let back = back
            .as_any()
            .downcast_ref::<ResultSinkExec>()
            .expect("a result sink");
        assert_eq!(back.target(), &target);
    }

    #[test]
    fn tpch_scan_round_trips_under_a_repartition() {
        let scan = TpchScan::exec(
            "tpch".into(),
            TpchTableKind::LineItem,
            0.01,
            ColumnNaming::Standard,
            4,
            Some(vec![0, 4]),
            None,
        )
        .expect("scan");
        let plan = RepartitionExec::try_new(Arc::new(scan), Partitioning::RoundRobinBatch(3))
            .expect("repartition");
        round_trip(Arc::new(plan));
    }

    #[test]
    fn memory_scan_round_trips() {
        let schema = Arc::new(Schema::new(vec![Field::new("a", DataType::Int32, true)]));
        let scan = MemoryScan::exec(
            "memory".into(),
            "default".into(),
            "t".into(),
            "x".into(),
            &schema,
            None,
            (3, 30),
            2,
            "http://127.0.0.1:9".into(),
        )
        .expect("scan");
        round_trip(Arc::new(scan));
    }

    #[test]
    fn shuffle_nodes_go_to_ballista() {
        use ballista_core::execution_plans::ShuffleWriterExec;
        let scan = TpchScan::exec(
            "tpch".into(),
            TpchTableKind::Orders,
            0.01,
            ColumnNaming::Standard,
            2,
            None,
            None,
        )
        .expect("scan");
        let writer = ShuffleWriterExec::try_new("job".into(), 1, Arc::new(scan), "".into(), None)
            .expect("writer");
        round_trip(Arc::new(writer));
    }

    #[test]
    fn an_unknown_catalog_is_a_clear_error() {
        let codec = ConnectorRegistry::load(None, &Role::Worker)
            .expect("built-ins")
            .codec();
        let mut buf = Vec::new();
        encode("kafka", "events", vec![], &mut buf).expect("encode");
        let ctx = SessionContext::new().task_ctx();
        let err = codec
            .try_decode(&buf, &[], &ctx)
            .expect_err("unknown catalog")
            .to_string();
        assert!(
            err.contains("no catalog 'events' (kafka connector)")
                && err.contains("etc/catalog/events.toml"),
            "{err}"
        );
    }

    #[test]
    fn each_catalog_decodes_its_own_scans() {
        // Two tpch catalogs with different column names: each scan comes back as its own.
        let dir = tempfile::tempdir().expect("dir");
        std::fs::write(
            dir.path().join("simple.toml"),
            "connector = \"tpch\"\ncolumn_naming = \"simplified\"\n",
        )
        .expect("catalog file");
        let codec = ConnectorRegistry::load(Some(dir.path()), &Role::Worker)
            .expect("catalogs")
            .codec();
        for (catalog, naming, first) in [
            ("tpch", ColumnNaming::Standard, "n_nationkey"),
            ("simple", ColumnNaming::Simplified, "nationkey"),
        ] {
            let scan = TpchScan::exec(
                catalog.into(),
                TpchTableKind::Nation,
                0.01,
                naming,
                1,
                None,
                None,
            )
            .expect("scan");
            let bytes = physical_plan_to_bytes_with_extension_codec(Arc::new(scan), &codec)
                .expect("encode");
            let ctx = SessionContext::new().task_ctx();
            let back = physical_plan_from_bytes_with_extension_codec(&bytes, &ctx, &codec)
                .expect("decode");
            let text = displayable(back.as_ref()).one_line().to_string();
            assert!(text.contains(&format!("table={catalog}.nation")), "{text}");
            assert_eq!(back.schema().field(0).name(), first);
        }
    }
}
