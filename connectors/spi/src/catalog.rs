//! [`ListedCatalog`]: the catalog level of a connector that lists its schemas from memory
//! (refreshed by `Connector::refresh_listings`), so each connector writes only its schemas.

use std::any::Any;
use std::fmt::Debug;
use std::sync::Arc;

use datafusion::catalog::{CatalogProvider, SchemaProvider};

/// What a connector knows of its schemas, answered from memory.
pub trait SchemaListing: Debug + Send + Sync + 'static {
    /// The schema names, as last listed.
    fn schema_names(&self) -> Vec<String>;

    /// The schema `name` (one of [`SchemaListing::schema_names`]).
    fn schema_provider(self: Arc<Self>, name: &str) -> Arc<dyn SchemaProvider>;
}

/// A DataFusion catalog over a [`SchemaListing`].
#[derive(Debug)]
pub struct ListedCatalog<L: SchemaListing> {
    listing: Arc<L>,
}

impl<L: SchemaListing> ListedCatalog<L> {
    pub fn new(listing: Arc<L>) -> Self {
        Self { listing }
    }
}

impl<L: SchemaListing> CatalogProvider for ListedCatalog<L> {
    fn as_any(&self) -> &dyn Any {
        self
    }

    fn schema_names(&self) -> Vec<String> {
        self.listing.schema_names()
    }

    fn schema(&self, name: &str) -> Option<Arc<dyn SchemaProvider>> {
        if !self.listing.schema_names().iter().any(|s| s == name) {
            return None;
        }
        Some(self.listing.clone().schema_provider(name))
    }
}
