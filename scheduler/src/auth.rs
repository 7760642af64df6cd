//! Client authentication on the Flight SQL and Trino HTTP ports.
//!
//! - [`PasswordFile`]: users and bcrypt hashes, one `user:hash` per line — the format of Trino's
//!   password-file authenticator (`htpasswd -B -C 10 password.db alice` writes it). The file is
//!   re-read when it changes.
//! - [`Authenticator`]: checks a `Handshake`'s Basic credentials and issues a bearer token (what
//!   the JDBC and ADBC drivers expect); tokens expire after `token_ttl_seconds` without use.
//! - [`Authenticator::check_basic`]: the Basic credentials Trino's clients send with every
//!   HTTP request. A credential that passed is remembered (hashed, at most
//!   [`REMEMBERED_CREDENTIALS`], for the token TTL) so bcrypt does not run for every page.
//! - [`AuthLayer`]: a tower layer in front of the Flight service. Every call but `Handshake` must
//!   carry a live `authorization: Bearer` token when passwords are on; the caller's [`Identity`]
//!   rides in the request's extensions to the service, which keys sessions by it.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant, SystemTime};

use base64::Engine as _;
use futures::future::BoxFuture;
use parking_lot::Mutex;
use tonic::Status;

use crate::settings::AuthMode;

/// The gRPC path of the one call that needs no token.
const HANDSHAKE_PATH: &str = "/arrow.flight.protocol.FlightService/Handshake";

/// Tokens are checked at most this often for expiry in bulk.
const SWEEP_INTERVAL: Duration = Duration::from_secs(60);

/// The most Basic credentials remembered as checked.
pub const REMEMBERED_CREDENTIALS: usize = 1000;

/// Who is calling: the user a bearer token was issued to, and which login it came from.
#[derive(Clone, PartialEq, Eq)]
pub struct Identity {
    pub user: String,
    /// A random id of the login, distinct from its token: sessions and handles are keyed by
    /// it, so the token itself never appears in a session id, a log line or `Debug` output.
    pub login: String,
    /// The bearer token (a secret).
    pub token: String,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("user", &self.user)
            .field("login", &self.login)
            .field("token", &"<redacted>")
            .finish()
    }
}

/// Why a password file cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PasswordFileError {
    #[error("cannot read password file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("password file {path}, line {line}: {reason}")]
    Line {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

/// Users and their bcrypt hashes.
#[derive(Debug)]
pub struct PasswordFile {
    path: PathBuf,
    state: Mutex<Users>,
}

/// The users of one version of the file (by modification time).
#[derive(Debug)]
struct Users {
    modified: Option<SystemTime>,
    hashes: Hashes,
}

/// Users and their bcrypt hashes, as of one version of the password file.
type Hashes = Arc<HashMap<String, String>>;

impl PasswordFile {
    /// Reads `path`; every line must be `user:bcrypt-hash` (blank lines and `#` comments skipped).
    pub fn load(path: &Path) -> Result<Self, PasswordFileError> {
        let (modified, hashes) = read_users(path)?;
        Ok(Self {
            path: path.to_path_buf(),
            state: Mutex::new(Users {
                modified,
                hashes: Arc::new(hashes),
            }),
        })
    }

    /// The users now, re-reading the file if it changed (off the async threads). A file that
    /// became unreadable keeps the last good users (and says so in the log).
    async fn users(&self) -> Hashes {
        let modified = tokio::fs::metadata(&self.path)
            .await
            .and_then(|m| m.modified())
            .ok();
        if modified.is_some() && modified != self.state.lock().modified {
            let path = self.path.clone();
            match tokio::task::spawn_blocking(move || read_users(&path)).await {
                Ok(Ok((modified, hashes))) => {
                    *self.state.lock() = Users {
                        modified,
                        hashes: Arc::new(hashes),
                    }
                }
                Ok(Err(e)) => tracing::warn!("keeping the previous users: {e}"),
                Err(e) => tracing::warn!("keeping the previous users: {e}"),
            }
        }
        self.state.lock().hashes.clone()
    }

    /// Whether `password` is `user`'s in `users` (a [`PasswordFile::users`]). Runs bcrypt:
    /// call it off the async threads.
    fn verify(users: &HashMap<String, String>, user: &str, password: &str) -> bool {
        users
            .get(user)
            .is_some_and(|hash| bcrypt::verify(password, hash).unwrap_or(false))
    }
}

fn read_users(
    path: &Path,
) -> Result<(Option<SystemTime>, HashMap<String, String>), PasswordFileError> {
    let read_error = |source| PasswordFileError::Read {
        path: path.to_path_buf(),
        source,
    };
    let text = std::fs::read_to_string(path).map_err(read_error)?;
    let modified = std::fs::metadata(path).and_then(|m| m.modified()).ok();
    let mut users = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let bad = |reason: &str| PasswordFileError::Line {
            path: path.to_path_buf(),
            line: index + 1,
            reason: reason.to_string(),
        };
        let (user, hash) = line
            .split_once(':')
            .ok_or_else(|| bad("expected user:hash"))?;
        if user.is_empty() {
            return Err(bad("empty user name"));
        }
        if !hash.starts_with("$2") {
            return Err(bad(
                "only bcrypt hashes ($2a$, $2b$, $2y$) are supported; create one with `htpasswd -B -C 10 <file> <user>`",
            ));
        }
        users.insert(user.to_string(), hash.to_string());
    }
    Ok((modified, users))
}

/// Checks credentials and tokens.
#[derive(Debug)]
pub struct Authenticator {
    passwords: Option<PasswordFile>,
    ttl: Duration,
    tokens: Mutex<Tokens>,
    remembered: Mutex<Remembered>,
}

/// Basic credentials that passed, by a salted digest of the header (never the password).
struct Remembered {
    /// Random per process: the digests mean nothing elsewhere.
    salt: [u8; 16],
    by_digest: HashMap<[u8; 32], Checked>,
}

/// Only how many.
impl std::fmt::Debug for Remembered {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Remembered")
            .field("credentials", &self.by_digest.len())
            .finish()
    }
}

/// A credential that passed: whose, against which version of the file, and when.
struct Checked {
    user: String,
    against: Hashes,
    at: Instant,
}

impl Remembered {
    fn digest(&self, authorization: &str) -> [u8; 32] {
        use sha2::Digest as _;
        let mut hasher = sha2::Sha256::new();
        hasher.update(self.salt);
        hasher.update(authorization.as_bytes());
        hasher.finalize().into()
    }

    /// Keeps a checked credential, dropping expired ones (and then the oldest) to stay within
    /// [`REMEMBERED_CREDENTIALS`].
    fn insert(&mut self, digest: [u8; 32], user: String, against: Hashes, ttl: Duration) {
        let at = Instant::now();
        if self.by_digest.len() >= REMEMBERED_CREDENTIALS {
            self.by_digest
                .retain(|_, checked| at.duration_since(checked.at) < ttl);
        }
        if self.by_digest.len() >= REMEMBERED_CREDENTIALS
            && let Some(oldest) = self
                .by_digest
                .iter()
                .min_by_key(|(_, checked)| checked.at)
                .map(|(digest, _)| *digest)
        {
            self.by_digest.remove(&oldest);
        }
        self.by_digest.insert(digest, Checked { user, against, at });
    }
}

struct Tokens {
    /// token → (user, login id, last used)
    by_token: HashMap<String, (String, String, Instant)>,
    last_sweep: Instant,
}

/// Only how many: the tokens are secrets.
impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokens")
            .field("live", &self.by_token.len())
            .finish()
    }
}

impl Authenticator {
    /// `mode` password needs `password_file`.
    pub fn new(
        mode: AuthMode,
        password_file: Option<&Path>,
        ttl: Duration,
    ) -> Result<Self, String> {
        let passwords = match (mode, password_file) {
            (AuthMode::None, _) => None,
            (AuthMode::Password, None) => {
                return Err("auth = \"password\" needs password_file".into());
            }
            (AuthMode::Password, Some(path)) => {
                Some(PasswordFile::load(path).map_err(|e| e.to_string())?)
            }
        };
        Ok(Self {
            passwords,
            ttl,
            tokens: Mutex::new(Tokens {
                by_token: HashMap::new(),
                last_sweep: Instant::now(),
            }),
            remembered: Mutex::new(Remembered {
                salt: *uuid::Uuid::new_v4().as_bytes(),
                by_digest: HashMap::new(),
            }),
        })
    }

    /// Whether calls need a token.
    pub fn required(&self) -> bool {
        self.passwords.is_some()
    }

    /// Checks the `authorization: Basic ...` value of a handshake and issues a token. Without
    /// passwords any user name is accepted (`anonymous` when none is given).
    pub async fn login(self: &Arc<Self>, authorization: Option<&str>) -> Result<Identity, Status> {
        let credentials = authorization.map(parse_basic).transpose()?;
        let user = match (&self.passwords, credentials) {
            (None, None) => "anonymous".to_string(),
            (None, Some((user, _))) => user,
            (Some(_), None) => {
                return Err(Status::unauthenticated(
                    "a user name and password are required (Basic credentials in the handshake)",
                ));
            }
            (Some(passwords), Some((user, password))) => {
                verify(passwords.users().await, user, password).await?.0
            }
        };
        let token = format!(
            "{}{}",
            uuid::Uuid::new_v4().simple(),
            uuid::Uuid::new_v4().simple()
        );
        let login = uuid::Uuid::new_v4().simple().to_string();
        self.tokens
            .lock()
            .by_token
            .insert(token.clone(), (user.clone(), login.clone(), Instant::now()));
        Ok(Identity { user, login, token })
    }

    /// The user of the `authorization: Basic ...` value of an HTTP request, or `None` when
    /// passwords are off (the client names its user). A credential that passed within the
    /// token TTL, against the same password file, passes again without bcrypt.
    pub async fn check_basic(&self, authorization: Option<&str>) -> Result<Option<String>, Status> {
        let Some(passwords) = &self.passwords else {
            return Ok(None);
        };
        let Some(authorization) = authorization else {
            return Err(Status::unauthenticated(
                "a user name and password are required (HTTP Basic authentication)",
            ));
        };
        let users = passwords.users().await;
        let digest = self.remembered.lock().digest(authorization);
        if let Some(checked) = self.remembered.lock().by_digest.get(&digest)
            && Arc::ptr_eq(&checked.against, &users)
            && checked.at.elapsed() < self.ttl
        {
            return Ok(Some(checked.user.clone()));
        }
        let (user, password) = parse_basic(authorization)?;
        let (user, users) = verify(users, user, password).await?;
        self.remembered
            .lock()
            .insert(digest, user.clone(), users, self.ttl);
        Ok(Some(user))
    }

    /// The identity behind an `authorization` header value, if any. A token that is unknown or
    /// expired is an error; no header is an error only when passwords are on.
    pub fn check(&self, authorization: Option<&str>) -> Result<Option<Identity>, Status> {
        let Some(value) = authorization else {
            return if self.required() {
                Err(Status::unauthenticated(
                    "log in first: this server needs a user name and password",
                ))
            } else {
                Ok(None)
            };
        };
        let Some(token) = strip_scheme(value, "Bearer") else {
            return Err(Status::unauthenticated(
                "expected 'authorization: Bearer <token>' from the handshake",
            ));
        };
        let mut tokens = self.tokens.lock();
        let now = Instant::now();
        if now.duration_since(tokens.last_sweep) > SWEEP_INTERVAL {
            let ttl = self.ttl;
            tokens
                .by_token
                .retain(|_, (_, _, used)| now.duration_since(*used) < ttl);
            tokens.last_sweep = now;
        }
        match tokens.by_token.get_mut(token) {
            Some((user, login, used)) if now.duration_since(*used) < self.ttl => {
                *used = now;
                Ok(Some(Identity {
                    user: user.clone(),
                    login: login.clone(),
                    token: token.to_string(),
                }))
            }
            Some(_) => {
                tokens.by_token.remove(token);
                Err(Status::unauthenticated(
                    "the session token expired; log in again",
                ))
            }
            None => Err(Status::unauthenticated(
                "unknown session token; log in again",
            )),
        }
    }
}

/// Checks `password` against `users` off the async threads; the user and the users it passed
/// against, or an error naming the user.
async fn verify(users: Hashes, user: String, password: String) -> Result<(String, Hashes), Status> {
    let (checked_user, checked) = (user.clone(), users.clone());
    let ok = tokio::task::spawn_blocking(move || {
        PasswordFile::verify(&checked, &checked_user, &password)
    })
    .await
    .unwrap_or(false);
    if !ok {
        tracing::warn!(%user, "login failed");
        return Err(Status::unauthenticated(format!(
            "wrong user name or password for '{user}'"
        )));
    }
    Ok((user, users))
}

fn strip_scheme<'a>(value: &'a str, scheme: &str) -> Option<&'a str> {
    let (given, rest) = value.trim().split_once(' ')?;
    given.eq_ignore_ascii_case(scheme).then(|| rest.trim())
}

fn parse_basic(value: &str) -> Result<(String, String), Status> {
    let bad = || Status::unauthenticated("malformed Basic credentials");
    let encoded = strip_scheme(value, "Basic").ok_or_else(bad)?;
    // With or without padding: ADBC's Go driver leaves it out.
    let engine = base64::engine::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let decoded = engine.decode(encoded).map_err(|_| bad())?;
    let text = String::from_utf8(decoded).map_err(|_| bad())?;
    let (user, password) = text.split_once(':').ok_or_else(bad)?;
    Ok((user.to_string(), password.to_string()))
}

/// Puts [`Authenticator::check`] in front of every call but `Handshake`.
#[derive(Debug, Clone)]
pub struct AuthLayer {
    auth: Arc<Authenticator>,
}

impl AuthLayer {
    pub fn new(auth: Arc<Authenticator>) -> Self {
        Self { auth }
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = AuthService<S>;

    fn layer(&self, inner: S) -> Self::Service {
        AuthService {
            inner,
            auth: self.auth.clone(),
        }
    }
}

/// The service [`AuthLayer`] makes.
#[derive(Debug, Clone)]
pub struct AuthService<S> {
    inner: S,
    auth: Arc<Authenticator>,
}

impl<S, B> tower::Service<http::Request<B>> for AuthService<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<tonic::body::Body>>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: http::Request<B>) -> Self::Future {
        if request.uri().path() != HANDSHAKE_PATH {
            let authorization = request
                .headers()
                .get(http::header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok());
            match self.auth.check(authorization) {
                Ok(Some(identity)) => {
                    request.extensions_mut().insert(identity);
                }
                Ok(None) => {}
                Err(status) => return Box::pin(async move { Ok(status.into_http()) }),
            }
        }
        // The clone is the one that was made ready: swap it in (tower's usual dance).
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        Box::pin(async move { inner.call(request).await })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_never_show_in_debug_output() {
        let identity = Identity {
            user: "ann".into(),
            login: "l1".into(),
            token: "s3cret-token".into(),
        };
        let text = format!("{identity:?}");
        assert!(
            !text.contains("s3cret-token") && text.contains("ann"),
            "{text}"
        );
        let tokens = Tokens {
            by_token: HashMap::from([(
                "s3cret-token".to_string(),
                ("ann".into(), "l1".into(), Instant::now()),
            )]),
            last_sweep: Instant::now(),
        };
        assert!(!format!("{tokens:?}").contains("s3cret-token"));
    }

    fn basic(user: &str, password: &str) -> String {
        let encoded =
            base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
        format!("Basic {encoded}")
    }

    fn with_users(lines: &str, ttl: Duration) -> (tempfile::TempDir, Arc<Authenticator>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password.db");
        std::fs::write(&path, lines).unwrap();
        let auth = Authenticator::new(AuthMode::Password, Some(&path), ttl).unwrap();
        (dir, Arc::new(auth))
    }

    #[tokio::test]
    async fn passwords_tokens_and_expiry() {
        let hash = bcrypt::hash("s3cret:x", 4).unwrap();
        let (_dir, auth) = with_users(
            &format!("# users\nalice:{hash}\n\n"),
            Duration::from_millis(300),
        );
        let alice = auth.login(Some(&basic("alice", "s3cret:x"))).await.unwrap();
        assert_eq!(alice.user, "alice");
        let bearer = format!("Bearer {}", alice.token);
        assert_eq!(auth.check(Some(&bearer)).unwrap(), Some(alice.clone()));

        let wrong = auth.login(Some(&basic("alice", "nope"))).await.unwrap_err();
        assert_eq!(wrong.code(), tonic::Code::Unauthenticated);
        assert!(auth.login(Some(&basic("bob", "s3cret:x"))).await.is_err());
        assert!(auth.login(None).await.is_err());
        // Unpadded base64, as ADBC's Go driver sends it.
        let unpadded = base64::engine::general_purpose::STANDARD_NO_PAD.encode("alice:s3cret:x");
        assert!(auth.login(Some(&format!("Basic {unpadded}"))).await.is_ok());
        assert!(auth.check(None).is_err());
        assert!(auth.check(Some("Bearer forged")).is_err());

        std::thread::sleep(Duration::from_millis(400));
        let expired = auth.check(Some(&bearer)).unwrap_err();
        assert!(expired.message().contains("expired"), "{expired:?}");
    }

    #[tokio::test]
    async fn basic_credentials_are_remembered_until_the_file_changes() {
        let hash = bcrypt::hash("pw", 4).unwrap();
        let (dir, auth) = with_users(&format!("ann:{hash}\n"), Duration::from_secs(60));
        let right = basic("ann", "pw");
        assert_eq!(
            auth.check_basic(Some(&right)).await.unwrap().as_deref(),
            Some("ann")
        );
        assert_eq!(auth.remembered.lock().by_digest.len(), 1);
        assert!(!format!("{auth:?}").contains(&right[6..]));
        // Remembered: the same answer.
        assert_eq!(
            auth.check_basic(Some(&right)).await.unwrap().as_deref(),
            Some("ann")
        );
        let wrong = auth.check_basic(Some(&basic("ann", "nope"))).await;
        assert!(wrong.unwrap_err().message().contains("'ann'"));
        assert!(auth.check_basic(None).await.is_err());
        assert_eq!(auth.remembered.lock().by_digest.len(), 1);

        // A new password file: the remembered credential is checked again, and fails.
        let other = bcrypt::hash("other", 4).unwrap();
        std::fs::write(dir.path().join("password.db"), format!("ann:{other}\n")).unwrap();
        let filetime = std::time::SystemTime::now() + Duration::from_secs(5);
        std::fs::File::options()
            .write(true)
            .open(dir.path().join("password.db"))
            .and_then(|f| f.set_modified(filetime))
            .unwrap();
        assert!(auth.check_basic(Some(&right)).await.is_err());
    }

    #[test]
    fn remembered_credentials_stay_bounded() {
        let mut remembered = Remembered {
            salt: [7; 16],
            by_digest: HashMap::new(),
        };
        let users = Arc::new(HashMap::new());
        for i in 0..REMEMBERED_CREDENTIALS + 10 {
            let digest = remembered.digest(&format!("Basic {i}"));
            remembered.insert(
                digest,
                format!("u{i}"),
                users.clone(),
                Duration::from_secs(60),
            );
        }
        assert_eq!(remembered.by_digest.len(), REMEMBERED_CREDENTIALS);
        let newest = remembered.digest(&format!("Basic {}", REMEMBERED_CREDENTIALS + 9));
        assert!(remembered.by_digest.contains_key(&newest));
    }

    #[tokio::test]
    async fn without_passwords_anyone_gets_a_session() {
        let auth =
            Arc::new(Authenticator::new(AuthMode::None, None, Duration::from_secs(60)).unwrap());
        assert_eq!(auth.check(None).unwrap(), None);
        let bob = auth.login(Some(&basic("bob", ""))).await.unwrap();
        assert_eq!(bob.user, "bob");
        assert_eq!(auth.login(None).await.unwrap().user, "anonymous");
        assert_eq!(auth.check_basic(None).await.unwrap(), None);
    }

    #[test]
    fn bad_password_files_name_the_line() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("password.db");
        std::fs::write(&path, "alice:$2y$10$abc\nbob:plain\n").unwrap();
        let error = PasswordFile::load(&path).unwrap_err().to_string();
        assert!(
            error.contains("line 2") && error.contains("bcrypt"),
            "{error}"
        );
        let missing = Authenticator::new(AuthMode::Password, None, Duration::ZERO).unwrap_err();
        assert!(missing.contains("password_file"), "{missing}");
    }
}
