//! # braid-catalogs
//!
//! Everything the coordinator and the workers need to agree on about catalogs:
//!
//! - [`CatalogSpec`] (`spec.rs`): one catalog file `etc/catalog/<name>.toml` parsed into a typed
//!   spec (figment + serde, unknown keys rejected, `${ENV:VAR}` substituted), named by its stem.
//! - [`ConnectorRegistry`] (`registry.rs`): the catalogs of one process, built from the catalog
//!   directory plus the built-in `tpch` and `memory` catalogs. It is a value, not a static: each
//!   process (and each test) owns its own.
//! - [`BraidPhysicalCodec`] (`codec.rs`): the physical extension codec of the cluster. It wraps
//!   every connector's scan payload in an envelope tagged with the connector kind and hands
//!   everything else (Ballista's shuffle nodes) to Ballista's codec.
//! - [`bootstrap`]: the session config and function registry every process shares.
//! - [`CatalogError`]: what went wrong, naming the file and key to fix.

pub mod bootstrap;
mod codec;
mod error;
mod registry;
mod spec;

pub use codec::BraidPhysicalCodec;
pub use error::CatalogError;
pub use registry::{ConnectorRegistry, Role};
pub use spec::{CatalogSpec, load_catalog_dir, load_catalog_file};
