//! [`BraidPhysicalCodec`]: one envelope `{kind, payload}` per extension node. `kind` is a
//! connector kind for scan nodes, or [`BALLISTA`] for what Ballista's own codec encodes (the
//! shuffle nodes). Dispatch is on the tag, never on position, so processes may register
//! connectors in any order.

use std::collections::BTreeMap;
use std::sync::Arc;

use ballista_core::serde::BallistaPhysicalExtensionCodec;
use datafusion::common::{exec_err, internal_datafusion_err};
use datafusion::error::Result;
use datafusion::execution::TaskContext;
use datafusion::physical_plan::ExecutionPlan;
use datafusion_proto::physical_plan::PhysicalExtensionCodec;
use prost::Message;

use braid_connector_spi::ScanCodec;

/// The envelope tag of nodes encoded by Ballista's codec.
pub const BALLISTA: &str = "ballista";

#[derive(Clone, PartialEq, prost::Message)]
struct Envelope {
    #[prost(string, tag = "1")]
    kind: String,
    #[prost(bytes = "vec", tag = "2")]
    payload: Vec<u8>,
}

/// The physical extension codec of a Braid cluster (coordinator and workers alike).
#[derive(Debug)]
pub struct BraidPhysicalCodec {
    scans: BTreeMap<&'static str, Arc<dyn ScanCodec>>,
    ballista: BallistaPhysicalExtensionCodec,
}

impl BraidPhysicalCodec {
    /// A codec for the given scan codecs, by connector kind.
    pub fn new(scans: BTreeMap<&'static str, Arc<dyn ScanCodec>>) -> Self {
        Self {
            scans,
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
        match self.scans.get(envelope.kind.as_str()) {
            Some(codec) => codec.try_decode(&envelope.payload, ctx),
            None => exec_err!(
                "this process has no '{}' connector; are coordinator and workers the same Braid version?",
                envelope.kind
            ),
        }
    }

    fn try_encode(&self, node: Arc<dyn ExecutionPlan>, buf: &mut Vec<u8>) -> Result<()> {
        for (kind, codec) in &self.scans {
            if let Some(payload) = codec.try_encode(node.as_ref())? {
                return encode(kind, payload, buf);
            }
        }
        let mut payload = Vec::new();
        self.ballista.try_encode(node, &mut payload)?;
        encode(BALLISTA, payload, buf)
    }
}

fn encode(kind: &str, payload: Vec<u8>, buf: &mut Vec<u8>) -> Result<()> {
    Envelope {
        kind: kind.to_string(),
        payload,
    }
    .encode(buf)
    .map_err(|e| internal_datafusion_err!("cannot encode a {kind} plan node: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ConnectorRegistry, Role};
    use braid_connector_memory::MemoryScanExec;
    use braid_connector_tpch::{ColumnNaming, TpchScanExec, TpchTableKind};
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
    fn tpch_scan_round_trips_under_a_repartition() {
        let scan = TpchScanExec::new(
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
        let scan = MemoryScanExec::new(
            "memory".into(),
            "default".into(),
            "t".into(),
            "x".into(),
            schema,
            None,
            3,
            2,
            "http://127.0.0.1:9".into(),
        )
        .expect("scan");
        round_trip(Arc::new(scan));
    }

    #[test]
    fn shuffle_nodes_go_to_ballista() {
        use ballista_core::execution_plans::ShuffleWriterExec;
        let scan = TpchScanExec::new(
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
    fn unknown_kind_is_a_clear_error() {
        let codec = ConnectorRegistry::load(None, &Role::Worker)
            .expect("built-ins")
            .codec();
        let mut buf = Vec::new();
        encode("kafka", vec![], &mut buf).expect("encode");
        let ctx = SessionContext::new().task_ctx();
        let err = codec
            .try_decode(&buf, &[], &ctx)
            .expect_err("unknown kind")
            .to_string();
        assert!(err.contains("no 'kafka' connector"), "{err}");
    }
}
