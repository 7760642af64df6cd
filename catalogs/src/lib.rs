//! # braid-catalogs
//!
//! Everything the coordinator and the workers need to agree on about catalogs:
//!
//! - [`CatalogSpec`] (`spec.rs`): one catalog file `etc/catalog/<name>.toml` parsed into a typed
//!   spec (figment + serde, unknown keys rejected, `${ENV:VAR}` substituted), named by its stem.
//! - [`Factories`] (`registry.rs`): the connector kinds of this build, one line each.
//! - [`ConnectorRegistry`] (`registry.rs`): the catalogs of one process, made by the factories
//!   from the catalog directory plus the built-in `tpch` and `memory` catalogs; it also gathers
//!   the connectors' optimizer rules and internal services. It is a value, not a static: each
//!   process (and each test) owns its own.
//! - [`BraidPhysicalCodec`] (`codec.rs`): the physical extension codec of the cluster. It wraps
//!   every scan payload in an envelope tagged with the connector kind and catalog, decodes it
//!   with that catalog's codec, and hands everything else (Ballista's shuffle nodes) to
//!   Ballista's codec.
//! - [`bootstrap`]: the session config and function registry every process shares.
//! - [`CatalogError`]: what went wrong, naming the file and key to fix.

pub mod bootstrap;
mod codec;
mod error;
mod registry;
mod spec;

pub use braid_connector_spi::Role;
pub use codec::BraidPhysicalCodec;
pub use error::CatalogError;
pub use registry::{ConnectorRegistry, Factories};
pub use spec::{CatalogSpec, load_catalog_dir, load_catalog_file};
