//! A Trino client's session travels with every request: [`ClientSession`] reads the
//! `X-Trino-*` request headers into a session config, and [`SessionChanges`] turns what a
//! statement changed (`USE`, `SET SESSION`, `RESET SESSION`, `PREPARE`, `DEALLOCATE PREPARE`)
//! into the `X-Trino-Set-*` / `-Clear-*` / `-Added-Prepare` / `-Deallocated-Prepare` response
//! headers, which the client applies to its next requests.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use braid_optimizer_rules::properties::SESSION_PROPERTIES;
use datafusion::prelude::SessionConfig;

use crate::queries::{ErrorCode, QueryFailure, Submitter};

/// The session a request describes.
#[derive(Debug, Clone, Default)]
pub struct ClientSession {
    pub user: String,
    pub source: Option<String>,
    /// `X-Trino-Client-Tags`, which resource group selectors match.
    pub client_tags: Vec<String>,
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub time_zone: Option<String>,
    /// `X-Trino-Session`: Trino's property names (`query_max_run_time`) or DataFusion's keys.
    pub properties: Vec<(String, String)>,
    /// `X-Trino-Prepared-Statement`: name (lower case) and SQL.
    pub prepared: BTreeMap<String, String>,
}

/// Why a request was refused before any statement began (HTTP 400).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRequest(pub String);

impl ClientSession {
    /// Who submits the request's statement.
    pub fn submitter(&self) -> Submitter {
        Submitter {
            user: self.user.clone(),
            source: self.source.clone(),
            client_tags: self.client_tags.clone(),
        }
    }

    /// The session of a request's headers. Its user is `authenticated`, when passwords are on,
    /// else the one `X-Trino-User` names.
    pub fn from_headers(
        headers: &HeaderMap,
        authenticated: Option<&str>,
    ) -> Result<Self, BadRequest> {
        let text = |name: &str| -> Result<Option<String>, BadRequest> {
            headers
                .get(name)
                .map(|value| {
                    value
                        .to_str()
                        .map(|v| v.trim().to_string())
                        .map_err(|_| BadRequest(format!("header {name} is not ASCII text")))
                })
                .transpose()
                .map(|v| v.filter(|v| !v.is_empty()))
        };
        let user = match authenticated {
            Some(user) => user.to_string(),
            None => text("x-trino-user")?
                .ok_or_else(|| BadRequest("User must be set (header X-Trino-User)".into()))?,
        };
        let pairs = |name: &str| -> Result<Vec<(String, String)>, BadRequest> {
            let Some(list) = text(name)? else {
                return Ok(vec![]);
            };
            list.split(',')
                .filter(|item| !item.trim().is_empty())
                .map(|item| {
                    let (key, value) = item.split_once('=').ok_or_else(|| {
                        BadRequest(format!("header {name}: '{item}' is not name=value"))
                    })?;
                    Ok((key.trim().to_string(), decode(value.trim())))
                })
                .collect()
        };
        Ok(Self {
            user,
            source: text("x-trino-source")?.or(text("user-agent")?),
            client_tags: text("x-trino-client-tags")?
                .map(|tags| Submitter::parse_tags(&tags))
                .unwrap_or_default(),
            catalog: text("x-trino-catalog")?,
            schema: text("x-trino-schema")?,
            time_zone: text("x-trino-time-zone")?,
            properties: pairs("x-trino-session")?,
            prepared: pairs("x-trino-prepared-statement")?
                .into_iter()
                .map(|(name, sql)| (name.to_ascii_lowercase(), sql))
                .collect(),
        })
    }

    /// `base` with the request's catalog, schema, time zone and session properties.
    pub fn config(&self, mut base: SessionConfig) -> Result<SessionConfig, QueryFailure> {
        let options = base.options_mut();
        if let Some(catalog) = &self.catalog {
            options.catalog.default_catalog = catalog.clone();
        }
        if let Some(schema) = &self.schema {
            options.catalog.default_schema = schema.clone();
        }
        if let Some(zone) = &self.time_zone {
            options
                .set("datafusion.execution.time_zone", zone)
                .map_err(|e| {
                    QueryFailure::new(
                        ErrorCode::InvalidSessionProperty,
                        format!(
                            "Time zone '{zone}' (X-Trino-Time-Zone): {}",
                            e.strip_backtrace()
                        ),
                    )
                })?;
        }
        for (name, value) in &self.properties {
            let key = config_key(name).ok_or_else(|| {
                QueryFailure::new(
                    ErrorCode::InvalidSessionProperty,
                    format!("Session property '{name}' does not exist"),
                )
            })?;
            options.set(&key, value).map_err(|e| {
                QueryFailure::new(
                    ErrorCode::InvalidSessionProperty,
                    e.strip_backtrace()
                        .trim_start_matches("Invalid or Unsupported Configuration: ")
                        .to_string(),
                )
            })?;
        }
        Ok(base)
    }
}

/// The config key of a session property: Trino's names of Braid's properties under `braid.`,
/// DataFusion's dotted keys as they are.
fn config_key(name: &str) -> Option<String> {
    if let Some(property) = SESSION_PROPERTIES
        .iter()
        .find(|p| p.eq_ignore_ascii_case(name))
    {
        return Some(format!("braid.{property}"));
    }
    name.contains('.').then(|| name.to_string())
}

/// The session property name a client keeps for a config key.
fn property_name(key: &str) -> &str {
    key.strip_prefix("braid.").unwrap_or(key)
}

/// `%XX` escapes and `+` decoded, as Trino's clients encode header values.
fn decode(value: &str) -> String {
    let spaced = value.replace('+', " ");
    percent_encoding::percent_decode_str(&spaced)
        .decode_utf8_lossy()
        .into_owned()
}

/// A header value URL-encoded as Trino encodes one.
fn encode(value: &str) -> String {
    url::form_urlencoded::byte_serialize(value.as_bytes()).collect()
}

/// What a statement changed in its client's session, for the response headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SessionChanges {
    pub catalog: Option<String>,
    pub schema: Option<String>,
    pub set: Vec<(String, String)>,
    pub cleared: Vec<String>,
    pub added_prepare: Option<(String, String)>,
    pub deallocated_prepare: Option<String>,
}

impl SessionChanges {
    /// The differences between the session before and after a statement; a property back at
    /// its value in `defaults` is cleared rather than set.
    pub fn between(
        before: &SessionConfig,
        after: &SessionConfig,
        defaults: &SessionConfig,
    ) -> Self {
        let entries = |config: &SessionConfig| -> BTreeMap<String, Option<String>> {
            config
                .options()
                .entries()
                .into_iter()
                .map(|entry| (entry.key, entry.value))
                .collect()
        };
        let (old, new, default) = (entries(before), entries(after), entries(defaults));
        let mut changes = Self::default();
        let (b, a) = (&before.options().catalog, &after.options().catalog);
        if a.default_catalog != b.default_catalog {
            changes.catalog = Some(a.default_catalog.clone());
        }
        if a.default_schema != b.default_schema {
            changes.schema = Some(a.default_schema.clone());
        }
        for (key, value) in &new {
            if key.starts_with("datafusion.catalog.default_") || old.get(key) == Some(value) {
                continue;
            }
            let name = property_name(key).to_string();
            match value {
                Some(value) if default.get(key) != Some(&Some(value.clone())) => {
                    changes.set.push((name, value.clone()));
                }
                _ => changes.cleared.push(name),
            }
        }
        changes
    }

    /// The response headers of these changes.
    pub fn headers(&self) -> HeaderMap {
        let mut headers = HeaderMap::new();
        let mut add = |name: &'static str, value: String| {
            if let Ok(value) = HeaderValue::from_str(&value) {
                headers.append(HeaderName::from_static(name), value);
            }
        };
        if let Some(catalog) = &self.catalog {
            add("x-trino-set-catalog", catalog.clone());
        }
        if let Some(schema) = &self.schema {
            add("x-trino-set-schema", schema.clone());
        }
        for (name, value) in &self.set {
            add("x-trino-set-session", format!("{name}={}", encode(value)));
        }
        for name in &self.cleared {
            add("x-trino-clear-session", name.clone());
        }
        if let Some((name, sql)) = &self.added_prepare {
            add("x-trino-added-prepare", format!("{name}={}", encode(sql)));
        }
        if let Some(name) = &self.deallocated_prepare {
            add("x-trino-deallocated-prepare", name.clone());
        }
        headers
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use braid_optimizer_rules::properties::QueryProperties;

    fn config() -> SessionConfig {
        SessionConfig::new().with_option_extension(QueryProperties::default())
    }

    #[test]
    fn request_headers_make_the_session() {
        let mut headers = HeaderMap::new();
        for (name, value) in [
            ("x-trino-user", "ann"),
            ("x-trino-catalog", "tpch"),
            ("x-trino-schema", "tiny"),
            ("x-trino-client-tags", "etl, nightly,,"),
            (
                "x-trino-session",
                "query_max_run_time=10m,datafusion.execution.batch_size=100",
            ),
            (
                "x-trino-prepared-statement",
                "My_St=SELECT+%27O%27%27Brien%27+%3D+%3F",
            ),
        ] {
            headers.insert(name, HeaderValue::from_static(value));
        }
        let session = ClientSession::from_headers(&headers, None).expect("valid headers");
        assert_eq!(session.user, "ann");
        assert_eq!(session.submitter().client_tags, ["etl", "nightly"]);
        assert_eq!(
            session.prepared.get("my_st").map(String::as_str),
            Some("SELECT 'O''Brien' = ?")
        );
        let built = session.config(config()).expect("valid properties");
        assert_eq!(built.options().catalog.default_catalog, "tpch");
        assert_eq!(built.options().execution.batch_size, 100);
        assert_eq!(
            QueryProperties::of(built.options()).query_max_run_time.0,
            Some(std::time::Duration::from_secs(600))
        );

        let mut bad = headers.clone();
        bad.insert("x-trino-session", HeaderValue::from_static("warp_speed=9"));
        let failure = ClientSession::from_headers(&bad, None)
            .expect("well-formed")
            .config(config())
            .expect_err("no such property");
        assert_eq!(failure.code, ErrorCode::InvalidSessionProperty);
        assert!(
            failure.message.contains("'warp_speed'"),
            "{}",
            failure.message
        );
        headers.remove("x-trino-user");
        assert!(ClientSession::from_headers(&headers, None).is_err());
        let authenticated = ClientSession::from_headers(&headers, Some("bo")).expect("a user");
        assert_eq!(authenticated.user, "bo");
    }

    #[test]
    fn changes_become_response_headers() {
        let defaults = config();
        let mut before = config();
        before
            .options_mut()
            .set("braid.spill_enabled", "false")
            .expect("a bool");
        let mut after = before.clone();
        after.options_mut().catalog.default_catalog = "memory".into();
        after
            .options_mut()
            .set("braid.query_max_run_time", "90m")
            .expect("a duration");
        after
            .options_mut()
            .set("braid.spill_enabled", "true")
            .expect("a bool");
        let changes = SessionChanges::between(&before, &after, &defaults);
        assert_eq!(changes.catalog.as_deref(), Some("memory"));
        assert_eq!(changes.schema, None);
        assert_eq!(
            changes.set,
            vec![("query_max_run_time".into(), "1.50h".into())]
        );
        assert_eq!(changes.cleared, vec!["spill_enabled".to_string()]);
        let headers = SessionChanges {
            added_prepare: Some(("st".into(), "SELECT 'a b' = ?".into())),
            ..changes
        }
        .headers();
        assert_eq!(headers["x-trino-set-catalog"], "memory");
        assert_eq!(
            headers["x-trino-added-prepare"],
            "st=SELECT+%27a+b%27+%3D+%3F"
        );
    }
}
