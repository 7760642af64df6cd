//! Object storage, one shape for every connector that reads files (`files`, and the lake
//! connectors after it): a catalog file's [`StorageOptions`] (its `[s3]` table) become the
//! catalog's [`CatalogStores`], an `ObjectStoreRegistry` that resolves the catalog's
//! locations — `file:///...` or a plain path on local disk, `s3://bucket/...` on an
//! S3-compatible store — with that catalog's endpoint and keys.
//!
//! Each process builds the registry from its own catalog file, so no credential ever travels in
//! a plan, and two catalogs never share a store: a scan reads through
//! [`CatalogStores::runtime_env`], a copy of the task's runtime (memory pool, disk manager,
//! caches) whose only object stores are its catalog's.
//!
//! ```toml
//! [s3]
//! endpoint = "http://127.0.0.1:9000"      # omit for AWS
//! region = "us-east-1"
//! aws_access_key = "${ENV:S3_ACCESS_KEY}"
//! aws_secret_key = "${ENV:S3_SECRET_KEY}"
//! path_style_access = true                # most non-AWS servers want it
//! timeout_seconds = 30
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use datafusion::error::{DataFusionError, Result};
use datafusion::execution::object_store::{ObjectStoreRegistry, ObjectStoreUrl};
use datafusion::execution::runtime_env::{RuntimeEnv, RuntimeEnvBuilder};
use object_store::ObjectStore;
use object_store::aws::AmazonS3Builder;
use object_store::local::LocalFileSystem;
use object_store::{ClientOptions, RetryConfig};
use parking_lot::RwLock;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

use crate::{CheckOptions, ConnectorError, Listing};

/// The most buckets one catalog keeps a client for.
const MAX_BUCKETS: usize = 64;

/// The `[s3]` table of a catalog file: how to reach `s3://` locations. Trino's `s3.*`
/// properties in TOML spelling.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageOptions {
    /// The S3 endpoint (`http://host:port` for a server of your own); AWS when absent.
    #[serde(default)]
    pub endpoint: Option<String>,
    /// The region; `us-east-1` when absent.
    #[serde(default)]
    pub region: Option<String>,
    /// The access key; with `aws_secret_key`. Without keys, the usual AWS environment and
    /// instance credentials are used.
    #[serde(default)]
    pub aws_access_key: Option<SecretString>,
    #[serde(default)]
    pub aws_secret_key: Option<SecretString>,
    /// `http://endpoint/bucket/key` instead of `http://bucket.endpoint/key`.
    #[serde(default)]
    pub path_style_access: bool,
    /// How long one request may take (connecting included) before it fails; retries of a
    /// failed request stop after twice this.
    #[serde(default = "default_timeout")]
    pub timeout_seconds: u64,
}

fn default_timeout() -> u64 {
    30
}

impl Default for StorageOptions {
    fn default() -> Self {
        Self {
            endpoint: None,
            region: None,
            aws_access_key: None,
            aws_secret_key: None,
            path_style_access: false,
            timeout_seconds: default_timeout(),
        }
    }
}

impl fmt::Debug for StorageOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |key: &Option<SecretString>| key.as_ref().map(|_| "[hidden]");
        f.debug_struct("StorageOptions")
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("aws_access_key", &hidden(&self.aws_access_key))
            .field("aws_secret_key", &hidden(&self.aws_secret_key))
            .field("path_style_access", &self.path_style_access)
            .field("timeout_seconds", &self.timeout_seconds)
            .finish()
    }
}

impl CheckOptions for StorageOptions {
    /// Checks what can be checked without a request: returns the key at fault and why.
    fn check(&self) -> Result<(), (String, String)> {
        if self.aws_access_key.is_some() != self.aws_secret_key.is_some() {
            return Err((
                "s3.aws_secret_key".into(),
                "aws_access_key and aws_secret_key go together".into(),
            ));
        }
        if let Some(endpoint) = &self.endpoint {
            let url = Url::parse(endpoint)
                .map_err(|e| ("s3.endpoint".to_string(), format!("'{endpoint}': {e}")))?;
            if !matches!(url.scheme(), "http" | "https") {
                return Err((
                    "s3.endpoint".into(),
                    format!("'{endpoint}' is not an http:// or https:// address"),
                ));
            }
        }
        if self.timeout_seconds == 0 {
            return Err(("s3.timeout_seconds".into(), "must be at least 1".into()));
        }
        Ok(())
    }
}

/// `dir` + `name/`, `name` percent-encoded as one path segment.
pub fn subdirectory(dir: &Url, name: &str) -> Url {
    let mut url = dir.clone();
    if let Ok(mut segments) = url.path_segments_mut() {
        segments.pop_if_empty().push(name).push("");
    }
    url
}

/// A path segment as its directory is named.
pub fn percent_decode(segment: &str) -> String {
    percent_encoding::percent_decode_str(segment)
        .decode_utf8_lossy()
        .into_owned()
}

/// A location as a URL: `s3://bucket/dir`, `file:///dir`, or a local path (absolute, or
/// relative to the working directory). Directories end with `/`.
pub fn location_url(location: &str) -> Result<Url, ConnectorError> {
    let invalid = |reason: String| ConnectorError::Config {
        message: format!("invalid location '{location}': {reason}"),
    };
    let mut url = match Url::parse(location) {
        Ok(url) if url.scheme().len() > 1 => url,
        // A plain path (a one-letter "scheme" is a Windows drive).
        _ => {
            let path = std::path::absolute(location).map_err(|e| invalid(e.to_string()))?;
            Url::from_directory_path(&path).map_err(|()| invalid("not an absolute path".into()))?
        }
    };
    match url.scheme() {
        "file" => {}
        "s3" | "s3a" if url.host_str().is_some_and(|h| !h.is_empty()) => {}
        "s3" | "s3a" => return Err(invalid("an s3:// location names a bucket".into())),
        other => {
            return Err(invalid(format!(
                "unsupported scheme '{other}' (use s3://, file:// or a local path)"
            )));
        }
    }
    if !url.path().ends_with('/') {
        let path = format!("{}/", url.path());
        url.set_path(&path);
    }
    Ok(url)
}

/// The object stores of one catalog: the local file system, and one S3 client per bucket,
/// made on first use with the catalog's [`StorageOptions`].
pub struct CatalogStores {
    catalog: String,
    options: StorageOptions,
    local: Arc<dyn ObjectStore>,
    buckets: RwLock<HashMap<String, Arc<dyn ObjectStore>>>,
}

impl fmt::Debug for CatalogStores {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CatalogStores")
            .field("catalog", &self.catalog)
            .field("options", &self.options)
            .finish()
    }
}

impl CatalogStores {
    pub fn new(catalog: impl Into<String>, options: StorageOptions) -> Self {
        Self {
            catalog: catalog.into(),
            options,
            local: Arc::new(LocalFileSystem::new()),
            buckets: RwLock::new(HashMap::new()),
        }
    }

    pub fn catalog(&self) -> &str {
        &self.catalog
    }

    /// The S3 endpoint, for error messages ("AWS" when none is set).
    pub fn endpoint(&self) -> &str {
        self.options.endpoint.as_deref().unwrap_or("AWS")
    }

    /// The names of the subdirectories of `dir`, leaving out hidden ones (`.x`, `_x`); the
    /// listing of schemas and tables of the connectors whose tables are directories.
    pub async fn subdirectories(&self, dir: &Url) -> Result<Vec<String>, ConnectorError> {
        let error = |e: &dyn fmt::Display| ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!("cannot list '{dir}' (endpoint {}): {e}", self.endpoint()),
        };
        let store = self.store(dir)?;
        let prefix = object_store::path::Path::from_url_path(dir.path()).map_err(|e| error(&e))?;
        let listed = store
            .list_with_delimiter(Some(&prefix))
            .await
            .map_err(|e| error(&e))?;
        Ok(listed
            .common_prefixes
            .iter()
            .filter_map(|p| p.filename())
            .filter(|name| !name.starts_with('.') && !name.starts_with('_'))
            .map(percent_decode)
            .collect())
    }

    /// The store of `url` (`file:///...` or `s3://bucket/...`).
    pub fn store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>, ConnectorError> {
        match url.scheme() {
            "file" => Ok(self.local.clone()),
            "s3" | "s3a" => {
                let bucket = url.host_str().unwrap_or_default();
                if let Some(store) = self.buckets.read().get(bucket) {
                    return Ok(store.clone());
                }
                let store = self.s3(bucket)?;
                let mut buckets = self.buckets.write();
                if buckets.len() >= MAX_BUCKETS {
                    buckets.clear();
                }
                Ok(buckets.entry(bucket.to_string()).or_insert(store).clone())
            }
            other => Err(ConnectorError::Source {
                catalog: self.catalog.clone(),
                message: format!("no object store for '{other}://' locations ('{url}')"),
            }),
        }
    }

    fn s3(&self, bucket: &str) -> Result<Arc<dyn ObjectStore>, ConnectorError> {
        let options = &self.options;
        let timeout = Duration::from_secs(options.timeout_seconds);
        let mut builder = AmazonS3Builder::from_env()
            .with_bucket_name(bucket)
            .with_region(options.region.as_deref().unwrap_or("us-east-1"))
            .with_virtual_hosted_style_request(!options.path_style_access)
            .with_client_options(
                ClientOptions::new()
                    .with_timeout(timeout)
                    .with_connect_timeout(timeout),
            )
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: timeout * 2,
                ..RetryConfig::default()
            });
        if let Some(endpoint) = &options.endpoint {
            builder = builder
                .with_endpoint(endpoint)
                .with_allow_http(endpoint.starts_with("http://"));
        }
        if let (Some(key), Some(secret)) = (&options.aws_access_key, &options.aws_secret_key) {
            builder = builder
                .with_access_key_id(key.expose_secret())
                .with_secret_access_key(secret.expose_secret());
        }
        let store = builder.build().map_err(|e| ConnectorError::Source {
            catalog: self.catalog.clone(),
            message: format!("cannot reach bucket '{bucket}' at {}: {e}", self.endpoint()),
        })?;
        Ok(Arc::new(store))
    }

    /// A copy of `base` (memory pool, disk manager, footer cache) whose object stores are this
    /// catalog's only. It caches no listing: DataFusion 53's list cache keeps a listing
    /// forever by default and keys it by path without the store, so new files would go unseen
    /// and two buckets could share an entry.
    pub fn runtime_env(self: &Arc<Self>, base: &RuntimeEnv) -> Result<Arc<RuntimeEnv>> {
        RuntimeEnvBuilder::from_runtime_env(base)
            .with_object_store_registry(self.clone())
            .with_object_list_cache_limit(0)
            .build_arc()
    }
}

impl ObjectStoreRegistry for CatalogStores {
    /// A catalog's stores come from its file only; nothing registers others.
    fn register_store(
        &self,
        _url: &Url,
        _store: Arc<dyn ObjectStore>,
    ) -> Option<Arc<dyn ObjectStore>> {
        None
    }

    fn get_store(&self, url: &Url) -> Result<Arc<dyn ObjectStore>> {
        self.store(url).map_err(DataFusionError::from)
    }
}

/// The `ObjectStoreUrl` (scheme and bucket) of a location.
pub fn store_url(url: &Url) -> Result<ObjectStoreUrl> {
    ObjectStoreUrl::parse(&url[..url::Position::BeforePath])
}

/// The tables of a catalog whose schemas are the subdirectories of one `root` and whose tables
/// are theirs (`root/<schema>/<table>/`), as last listed: DataFusion asks for names
/// synchronously, so they are listed before a statement needs them ([`Self::refresh`]).
#[derive(Debug)]
pub struct TableDirectories {
    stores: Arc<CatalogStores>,
    root: Option<Url>,
    found: RwLock<BTreeMap<String, BTreeSet<String>>>,
}

impl TableDirectories {
    /// The directories under `root`; none without one.
    pub fn new(stores: Arc<CatalogStores>, root: Option<Url>) -> Self {
        Self {
            stores,
            root,
            found: RwLock::new(BTreeMap::new()),
        }
    }

    pub fn root(&self) -> Option<&Url> {
        self.root.as_ref()
    }

    /// `root/<schema>/<table>/`.
    pub fn table_url(&self, schema: &str, table: &str) -> Option<Url> {
        let root = self.root.as_ref()?;
        Some(subdirectory(&subdirectory(root, schema), table))
    }

    /// The schemas, as last listed.
    pub fn schemas(&self) -> BTreeSet<String> {
        self.found.read().keys().cloned().collect()
    }

    /// The tables of `schema`, as last listed.
    pub fn tables(&self, schema: &str) -> BTreeSet<String> {
        self.found.read().get(schema).cloned().unwrap_or_default()
    }

    pub fn contains(&self, schema: &str, table: &str) -> bool {
        self.found
            .read()
            .get(schema)
            .is_some_and(|tables| tables.contains(table))
    }

    /// Lists what `listing` needs: the schemas, and the tables of those it names.
    pub async fn refresh(&self, listing: Listing<'_>) -> Result<(), ConnectorError> {
        let Some(root) = &self.root else {
            return Ok(());
        };
        let schemas = self.stores.subdirectories(root).await?;
        let mut found: BTreeMap<String, BTreeSet<String>> = {
            let old = self.found.read();
            schemas
                .iter()
                .map(|s| (s.clone(), old.get(s).cloned().unwrap_or_default()))
                .collect()
        };
        let wanted: Vec<String> = match listing {
            Listing::Schemas => Vec::new(),
            Listing::Tables { schema } => vec![schema.to_string()],
            Listing::All => schemas,
        };
        for schema in wanted {
            if let Some(tables) = found.get_mut(&schema) {
                *tables = self
                    .stores
                    .subdirectories(&subdirectory(root, &schema))
                    .await?
                    .into_iter()
                    .collect();
            }
        }
        *self.found.write() = found;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_joined_as_one_segment() {
        let root = location_url("s3://b/lake").expect("url");
        assert_eq!(
            subdirectory(&subdirectory(&root, "My Schema"), "t.v1").as_str(),
            "s3://b/lake/My%20Schema/t.v1/"
        );
        assert_eq!(percent_decode("My%20Schema"), "My Schema");
    }

    #[test]
    fn locations_become_directory_urls() {
        let url = location_url("s3://lake/warehouse").expect("s3");
        assert_eq!(url.as_str(), "s3://lake/warehouse/");
        assert_eq!(store_url(&url).expect("store url").as_str(), "s3://lake/");
        let url = location_url("/data/My Lake").expect("path");
        assert_eq!(url.as_str(), "file:///data/My%20Lake/");
        assert_eq!(
            url.to_file_path().expect("path").to_str(),
            Some("/data/My Lake/")
        );
        assert_eq!(store_url(&url).expect("store url").as_str(), "file:///");
        let err = location_url("s3:///x").expect_err("no bucket").to_string();
        assert!(err.contains("names a bucket"), "{err}");
        let err = location_url("hdfs://nn/x").expect_err("hdfs").to_string();
        assert!(err.contains("unsupported scheme 'hdfs'"), "{err}");
    }

    #[test]
    fn keys_never_reach_debug() {
        let options: StorageOptions =
            toml::from_str("aws_access_key = \"AKIA-visible?\"\naws_secret_key = \"s3cr3t\"\n")
                .expect("options");
        let text = format!("{:?}", CatalogStores::new("lake", options));
        assert!(!text.contains("AKIA") && !text.contains("s3cr3t"), "{text}");
    }

    #[test]
    fn options_are_checked() {
        assert_eq!(StorageOptions::default().check(), Ok(()));
        let options: StorageOptions = toml::from_str("aws_access_key = \"k\"\n").expect("options");
        assert_eq!(options.check().expect_err("half").0, "s3.aws_secret_key");
        let options: StorageOptions = toml::from_str("endpoint = \"ftp://x\"\n").expect("options");
        assert_eq!(options.check().expect_err("scheme").0, "s3.endpoint");
    }
}
