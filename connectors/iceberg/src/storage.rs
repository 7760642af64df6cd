//! [`StoresStorage`]: iceberg's `Storage` over the catalog's object stores (the SPI's
//! [`CatalogStores`]), so Iceberg metadata, data and delete files are read with the same
//! endpoint, keys, timeouts and retries as every other connector's files, and a local file is
//! read without blocking a runtime thread (iceberg's own local storage uses `std::fs`).

use std::ops::Range;
use std::sync::Arc;

use async_trait::async_trait;
use braid_connector_spi::CatalogStores;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use iceberg::io::{
    FileIO, FileIOBuilder, FileMetadata, FileRead, FileWrite, InputFile, OutputFile, Storage,
    StorageConfig, StorageFactory,
};
use iceberg::{Error, ErrorKind, Result};
use object_store::buffered::BufWriter;
use object_store::path::Path;
use object_store::{ObjectStore, ObjectStoreExt};
use serde::{Deserialize, Serialize};
use tokio::io::AsyncWriteExt;
use url::Url;

/// The `FileIO` of a catalog: every path through `stores`.
pub fn file_io(stores: Arc<CatalogStores>) -> FileIO {
    FileIOBuilder::new(Arc::new(StoresFactory::new(stores))).build()
}

/// Makes [`StoresStorage`]. Iceberg asks storage factories to be serializable; this one never
/// travels (each process builds its own from its catalog file), so its stores are skipped and a
/// deserialized one refuses to build.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoresFactory {
    #[serde(skip)]
    stores: Option<Arc<CatalogStores>>,
}

impl StoresFactory {
    pub fn new(stores: Arc<CatalogStores>) -> Self {
        Self {
            stores: Some(stores),
        }
    }
}

#[typetag::serde(name = "braid_catalog_stores")]
impl StorageFactory for StoresFactory {
    fn build(&self, _config: &StorageConfig) -> Result<Arc<dyn Storage>> {
        Ok(Arc::new(StoresStorage {
            stores: Some(self.stores.clone().ok_or_else(detached)?),
        }))
    }
}

fn detached() -> Error {
    Error::new(
        ErrorKind::Unexpected,
        "a catalog's storage does not travel between processes",
    )
}

/// Iceberg's file operations on a catalog's object stores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoresStorage {
    #[serde(skip)]
    stores: Option<Arc<CatalogStores>>,
}

impl StoresStorage {
    /// The store and object path of `location` (`s3://bucket/key`, `file:///path` or `/path`).
    fn locate(&self, location: &str) -> Result<(Arc<dyn ObjectStore>, Path)> {
        let stores = self.stores.as_ref().ok_or_else(detached)?;
        let invalid = |reason: String| {
            Error::new(
                ErrorKind::DataInvalid,
                format!("invalid file location '{location}': {reason}"),
            )
        };
        let url = if location.starts_with('/') {
            Url::from_file_path(location).map_err(|()| invalid("not an absolute path".into()))?
        } else {
            Url::parse(location).map_err(|e| invalid(e.to_string()))?
        };
        let store = stores
            .store(&url)
            .map_err(|e| Error::new(ErrorKind::Unexpected, e.to_string()))?;
        let path = Path::from_url_path(url.path()).map_err(|e| invalid(e.to_string()))?;
        Ok((store, path))
    }
}

/// An object store error as iceberg's, naming the file.
fn failed(operation: &str, location: &str, e: object_store::Error) -> Error {
    Error::new(
        ErrorKind::Unexpected,
        format!("cannot {operation} '{location}': {e}"),
    )
}

#[async_trait]
#[typetag::serde(name = "braid_catalog_storage")]
impl Storage for StoresStorage {
    async fn exists(&self, path: &str) -> Result<bool> {
        let (store, object) = self.locate(path)?;
        match store.head(&object).await {
            Ok(_) => Ok(true),
            Err(object_store::Error::NotFound { .. }) => Ok(false),
            Err(e) => Err(failed("look up", path, e)),
        }
    }

    async fn metadata(&self, path: &str) -> Result<FileMetadata> {
        let (store, object) = self.locate(path)?;
        let meta = store
            .head(&object)
            .await
            .map_err(|e| failed("look up", path, e))?;
        Ok(FileMetadata { size: meta.size })
    }

    async fn read(&self, path: &str) -> Result<Bytes> {
        let (store, object) = self.locate(path)?;
        let read = async { store.get(&object).await?.bytes().await };
        read.await.map_err(|e| failed("read", path, e))
    }

    async fn reader(&self, path: &str) -> Result<Box<dyn FileRead>> {
        let (store, object) = self.locate(path)?;
        Ok(Box::new(RangeReader {
            store,
            object,
            location: path.to_string(),
        }))
    }

    async fn write(&self, path: &str, bs: Bytes) -> Result<()> {
        let (store, object) = self.locate(path)?;
        store
            .put(&object, bs.into())
            .await
            .map(|_| ())
            .map_err(|e| failed("write", path, e))
    }

    async fn writer(&self, path: &str) -> Result<Box<dyn FileWrite>> {
        let (store, object) = self.locate(path)?;
        Ok(Box::new(Writer {
            writer: BufWriter::new(store, object),
            location: path.to_string(),
        }))
    }

    async fn delete(&self, path: &str) -> Result<()> {
        let (store, object) = self.locate(path)?;
        match store.delete(&object).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(failed("delete", path, e)),
        }
    }

    async fn delete_prefix(&self, path: &str) -> Result<()> {
        let (store, prefix) = self.locate(path)?;
        let objects = store
            .list(Some(&prefix))
            .map_ok(|meta| meta.location)
            .boxed();
        store
            .delete_stream(objects)
            .try_collect::<Vec<_>>()
            .await
            .map(|_| ())
            .map_err(|e| failed("delete under", path, e))
    }

    async fn delete_stream(&self, paths: BoxStream<'static, String>) -> Result<()> {
        let mut paths = paths;
        while let Some(path) = paths.next().await {
            self.delete(&path).await?;
        }
        Ok(())
    }

    fn new_input(&self, path: &str) -> Result<InputFile> {
        Ok(InputFile::new(Arc::new(self.clone()), path.to_string()))
    }

    fn new_output(&self, path: &str) -> Result<OutputFile> {
        Ok(OutputFile::new(Arc::new(self.clone()), path.to_string()))
    }
}

/// Reads byte ranges of one object.
struct RangeReader {
    store: Arc<dyn ObjectStore>,
    object: Path,
    location: String,
}

#[async_trait]
impl FileRead for RangeReader {
    async fn read(&self, range: Range<u64>) -> Result<Bytes> {
        self.store
            .get_range(&self.object, range)
            .await
            .map_err(|e| failed("read", &self.location, e))
    }
}

/// Writes one object in parts.
struct Writer {
    writer: BufWriter,
    location: String,
}

#[async_trait]
impl FileWrite for Writer {
    async fn write(&mut self, bs: Bytes) -> Result<()> {
        self.writer
            .put(bs)
            .await
            .map_err(|e| failed("write", &self.location, e))
    }

    async fn close(&mut self) -> Result<()> {
        self.writer.shutdown().await.map_err(|e| {
            Error::new(
                ErrorKind::Unexpected,
                format!("cannot write '{}': {e}", self.location),
            )
        })
    }
}
