//! # braid-integration-tests
//!
//! [`Cluster`] starts a real Braid cluster for tests: `braid-scheduler` and N `braid-executor`
//! processes on free loopback ports, each with its own work directory, killed on drop. The
//! binaries come from the same target directory as the test (build them first:
//! `cargo build --release --bins`, which `scripts/test.sh` does).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use arrow::record_batch::RecordBatch;
use braid_cli::client::{BraidClient, ConnectOptions};

/// The peak resident set of process `pid` so far (`VmHWM` of `/proc/<pid>/status`), in bytes;
/// `None` once it is gone.
pub fn peak_rss(pid: u32) -> Option<usize> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: usize = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    Some(kib * 1024)
}

/// Runs the tests of one test binary one at a time, however they are started. nextest runs
/// each test in a process of its own (and the `clusters` group one at a time); plain `cargo
/// test` runs a binary's tests on parallel threads, where clusters would compete for two cores
/// and the PostgreSQL tests would drop each other's tables and stop the server under each
/// other. Every cluster test takes this first and holds it to its end.
pub async fn serial() -> tokio::sync::MutexGuard<'static, ()> {
    static LOCK: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());
    LOCK.lock().await
}

/// Plain single-process DataFusion with the `tpch` catalog (schema `tiny` by default): the
/// independent answer distributed results are compared with.
pub fn plain_datafusion() -> datafusion::prelude::SessionContext {
    let config = datafusion::prelude::SessionConfig::new()
        .with_target_partitions(4)
        .with_default_catalog_and_schema("tpch", "tiny");
    let ctx = datafusion::prelude::SessionContext::new_with_config(config);
    ctx.register_catalog(
        "tpch",
        std::sync::Arc::new(braid_connector_tpch::TpchCatalog::new(
            "tpch".into(),
            braid_connector_tpch::TpchConfig::default(),
        )),
    );
    ctx
}

/// What [`plain_datafusion`] answers to `sql`, as [`rows`].
pub async fn plain_rows(sql: &str) -> Vec<String> {
    let batches = plain_datafusion()
        .sql(sql)
        .await
        .expect("plan")
        .collect()
        .await
        .expect("plain DataFusion");
    rows(&batches)
}

/// A free loopback port, never the same twice in this test process.
pub fn free_port() -> u16 {
    static GIVEN: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());
    loop {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .map(|a| a.port())
            .expect("a free loopback port");
        if GIVEN
            .lock()
            .map(|mut given| given.insert(port))
            .unwrap_or(true)
        {
            return port;
        }
    }
}

/// The path of a Braid binary built next to this test.
pub fn binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target directory");
    let path = dir.join(name);
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds only the test binaries, not the daemons and the CLI the \
         tests start. Run scripts/test.sh, or `cargo build --workspace --bins` with the same profile \
         (`--release` for `cargo test --release`) before `cargo test`",
        path.display()
    );
    path
}

pub mod numbers;

/// The programs a cluster runs: Braid's daemons, or the test builds that add the `numbers`
/// connector ([`numbers`]).
#[derive(Debug, Clone, Copy)]
pub struct Daemons {
    pub scheduler: &'static str,
    pub executor: &'static str,
}

impl Daemons {
    pub const BRAID: Daemons = Daemons {
        scheduler: "braid-scheduler",
        executor: "braid-executor",
    };
    pub const WITH_NUMBERS: Daemons = Daemons {
        scheduler: "braid-test-scheduler",
        executor: "braid-test-executor",
    };
}

/// What a [`Cluster`]'s daemons get beyond the defaults.
#[derive(Default)]
struct Extras<'a> {
    scheduler_args: &'a [String],
    worker_args: &'a [String],
    /// Listen on all interfaces and advertise this host (none: loopback only).
    advertise: Option<&'static str>,
}

/// Sends SIGTERM to `child` (through kill(1): the harness links no libc bindings).
fn terminate(child: &Child) {
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -TERM {} failed", child.id());
}

/// Waits up to `bound` for `child` to exit.
async fn wait_exit(child: &mut Child, bound: Duration) -> Option<ExitStatus> {
    let deadline = std::time::Instant::now() + bound;
    loop {
        if let Ok(Some(status)) = child.try_wait() {
            return Some(status);
        }
        if std::time::Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// A coordinator and workers, each a separate OS process.
pub struct Cluster {
    daemons: Daemons,
    /// Bind and advertise flags every daemon gets (none: loopback only).
    network: Vec<String>,
    /// Extra flags every worker gets (memory pool, ...).
    worker_args: Vec<String>,
    pub flight_sql_addr: String,
    /// Where Trino's clients connect (the coordinator's HTTP port).
    pub http_addr: String,
    pub scheduler_addr: String,
    scheduler: Child,
    workers: Vec<Child>,
    /// Each worker's work directory (shuffle files, by job id).
    pub work_dirs: Vec<PathBuf>,
    pub dir: tempfile::TempDir,
    /// How [`Cluster::client`] connects (TLS, credentials).
    pub connect: ConnectOptions,
}

impl Cluster {
    /// Starts a coordinator and `workers` workers with `slots` task slots each, with the
    /// catalog files of `catalog_dir` (if any), and waits until every worker registered.
    pub async fn start(workers: usize, slots: usize, catalog_dir: Option<&Path>) -> Cluster {
        Self::start_with(workers, slots, catalog_dir, &[], ConnectOptions::default()).await
    }

    /// [`Cluster::start`] with extra `braid-scheduler` flags (auth, TLS) and the options its
    /// clients connect with.
    pub async fn start_with(
        workers: usize,
        slots: usize,
        catalog_dir: Option<&Path>,
        scheduler_args: &[String],
        connect: ConnectOptions,
    ) -> Cluster {
        Self::launch(
            Daemons::BRAID,
            workers,
            slots,
            catalog_dir,
            connect,
            Extras {
                scheduler_args,
                ..Extras::default()
            },
        )
        .await
    }

    /// [`Cluster::start_with`] with extra `braid-executor` flags for every worker.
    pub async fn start_with_workers(
        workers: usize,
        slots: usize,
        scheduler_args: &[String],
        worker_args: &[String],
    ) -> Cluster {
        Self::launch(
            Daemons::BRAID,
            workers,
            slots,
            None,
            ConnectOptions::default(),
            Extras {
                scheduler_args,
                worker_args,
                advertise: None,
            },
        )
        .await
    }

    /// [`Cluster::start`] with every daemon listening on all interfaces (`0.0.0.0`) and
    /// advertising `host` to the others and to clients, as on separate machines.
    pub async fn start_advertised(workers: usize, slots: usize, host: &'static str) -> Cluster {
        Self::launch(
            Daemons::BRAID,
            workers,
            slots,
            None,
            ConnectOptions::default(),
            Extras {
                advertise: Some(host),
                ..Extras::default()
            },
        )
        .await
    }

    /// [`Cluster::start`] with other programs as coordinator and workers.
    pub async fn start_daemons(
        daemons: Daemons,
        workers: usize,
        slots: usize,
        catalog_dir: Option<&Path>,
    ) -> Cluster {
        Self::launch(
            daemons,
            workers,
            slots,
            catalog_dir,
            ConnectOptions::default(),
            Extras::default(),
        )
        .await
    }

    async fn launch(
        daemons: Daemons,
        workers: usize,
        slots: usize,
        catalog_dir: Option<&Path>,
        connect: ConnectOptions,
        extras: Extras<'_>,
    ) -> Cluster {
        let Extras {
            scheduler_args,
            worker_args,
            advertise,
        } = extras;
        let dir = tempfile::tempdir().expect("temp dir");
        let host = advertise.unwrap_or("127.0.0.1");
        let network: Vec<String> = match advertise {
            Some(host) => ["--bind-host", "0.0.0.0", "--external-host", host]
                .map(String::from)
                .to_vec(),
            None => vec![],
        };
        let (port, flight_port, http_port) = (free_port(), free_port(), free_port());
        let scheduler_log = log_file(dir.path(), "scheduler.log");
        let mut scheduler = Command::new(binary(daemons.scheduler));
        scheduler
            .args([
                "--port",
                &port.to_string(),
                "--flight-sql-port",
                &flight_port.to_string(),
                "--internal-port",
                &free_port().to_string(),
                "--http-port",
                &http_port.to_string(),
            ])
            .args(["--worker-timeout-seconds", "10"])
            .args(&network)
            .args(scheduler_args)
            .current_dir(dir.path())
            .stdout(scheduler_log.0)
            .stderr(scheduler_log.1);
        if let Some(catalogs) = catalog_dir {
            scheduler.arg("--catalog-dir").arg(catalogs);
        }
        let scheduler = scheduler.spawn().expect("start braid-scheduler");
        let mut cluster = Cluster {
            daemons,
            flight_sql_addr: format!("{host}:{flight_port}"),
            http_addr: format!("{host}:{http_port}"),
            scheduler_addr: format!("{host}:{port}"),
            network,
            worker_args: worker_args.to_vec(),
            scheduler,
            workers: Vec::new(),
            work_dirs: Vec::new(),
            dir,
            connect,
        };
        for i in 0..workers {
            cluster.add_worker(i, slots, catalog_dir);
        }
        let mut client = cluster.connect_retrying().await;
        if let Err(e) = client
            .wait_for_workers(workers as u64, Duration::from_secs(60))
            .await
        {
            panic!("workers did not register: {e}\n{}", cluster.logs());
        }
        cluster
    }

    fn add_worker(&mut self, i: usize, slots: usize, catalog_dir: Option<&Path>) {
        let work_dir = self.dir.path().join(format!("worker-{i}"));
        std::fs::create_dir_all(&work_dir).expect("worker work dir");
        let worker_log = log_file(self.dir.path(), &format!("worker-{i}.log"));
        let mut worker = Command::new(binary(self.daemons.executor));
        worker
            .args(["--scheduler", &self.scheduler_addr])
            .args([
                "--port",
                &free_port().to_string(),
                "--grpc-port",
                &free_port().to_string(),
            ])
            .args(["--concurrent-tasks", &slots.to_string()])
            .args(["--heartbeat-interval-seconds", "2"])
            .args(&self.network)
            .args(&self.worker_args)
            .arg("--work-dir")
            .arg(&work_dir)
            .current_dir(self.dir.path())
            .stdout(worker_log.0)
            .stderr(worker_log.1);
        if let Some(catalogs) = catalog_dir {
            worker.arg("--catalog-dir").arg(catalogs);
        }
        self.workers
            .push(worker.spawn().expect("start braid-executor"));
        self.work_dirs.push(work_dir);
    }

    async fn connect_retrying(&self) -> BraidClient {
        for _ in 0..300 {
            if let Ok(client) =
                BraidClient::connect_with(&self.flight_sql_addr, &self.connect).await
            {
                return client;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!(
            "coordinator did not come up; see {}",
            self.dir.path().join("scheduler.log").display()
        );
    }

    /// The tail of every process's log, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        let mut names: Vec<_> = std::fs::read_dir(self.dir.path())
            .map(|d| d.filter_map(|e| e.ok()).map(|e| e.path()).collect())
            .unwrap_or_default();
        names.retain(|p: &PathBuf| p.extension().is_some_and(|e| e == "log"));
        names.sort();
        for path in names {
            let text = std::fs::read_to_string(&path).unwrap_or_default();
            let tail: Vec<_> = text.lines().rev().take(30).collect();
            out.push_str(&format!("--- {}\n", path.display()));
            for line in tail.into_iter().rev() {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// A new client session.
    pub async fn client(&self) -> BraidClient {
        BraidClient::connect_with(&self.flight_sql_addr, &self.connect)
            .await
            .expect("connect to the coordinator")
    }

    /// The process ids of the workers.
    pub fn worker_pids(&self) -> Vec<u32> {
        self.workers.iter().map(Child::id).collect()
    }

    /// Each worker's peak resident memory so far, in bytes (0 for one that is gone).
    pub fn worker_peak_rss(&self) -> Vec<u64> {
        self.worker_pids()
            .iter()
            .map(|&pid| peak_rss(pid).map_or(0, |bytes| bytes as u64))
            .collect()
    }

    /// Whether every worker process is still running.
    pub fn workers_alive(&mut self) -> bool {
        self.workers
            .iter_mut()
            .all(|worker| matches!(worker.try_wait(), Ok(None)))
    }

    /// The process id of the coordinator.
    pub fn scheduler_pid(&self) -> u32 {
        self.scheduler.id()
    }

    /// A JSON document of the scheduler's REST API (`/api/...`), read over plain HTTP/1.0.
    pub fn rest(&self, path: &str) -> serde_json::Value {
        use std::io::{Read, Write};
        let mut stream =
            std::net::TcpStream::connect(&self.scheduler_addr).expect("connect to the REST API");
        write!(stream, "GET {path} HTTP/1.0\r\nHost: braid\r\n\r\n").expect("send request");
        let mut response = String::new();
        stream.read_to_string(&mut response).expect("read response");
        let body = response.split_once("\r\n\r\n").map_or("", |(_, body)| body);
        serde_json::from_str(body).unwrap_or_else(|e| panic!("{path}: {e}: {response}"))
    }

    /// CPU seconds the workers used over `window` (from `/proc/<pid>/stat`).
    pub async fn worker_cpu_seconds(&self, window: Duration) -> f64 {
        let ticks = || -> u64 {
            self.worker_pids()
                .iter()
                .map(|pid| {
                    let stat =
                        std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                    // utime and stime: fields 14 and 15, counted after the ")" that ends the name.
                    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
                    let fields: Vec<&str> = after.split_whitespace().collect();
                    [11, 12]
                        .iter()
                        .filter_map(|&i| fields.get(i).and_then(|f| f.parse::<u64>().ok()))
                        .sum::<u64>()
                })
                .sum()
        };
        let before = ticks();
        tokio::time::sleep(window).await;
        ticks().saturating_sub(before) as f64 / 100.0
    }

    /// After a query was stopped (`what`): waits until the workers go quiet (a bound, not a
    /// fixed time), then checks a longer window; fails the test if they stay busy.
    pub async fn wait_until_workers_idle(&self, what: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(15);
        loop {
            let cpu = self.worker_cpu_seconds(Duration::from_millis(500)).await;
            if cpu <= 0.25 {
                break;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "the workers stay busy after {what}: {cpu:.2} CPU s in 0.5 s\n{}",
                self.logs()
            );
        }
        let cpu = self.worker_cpu_seconds(Duration::from_secs(3)).await;
        assert!(
            cpu < 1.5,
            "workers still busy after {what}: {cpu:.2} CPU s in 3 s"
        );
    }

    /// Kills worker `i` (SIGKILL).
    pub fn kill_worker(&mut self, i: usize) {
        let _ = self.workers[i].kill();
        let _ = self.workers[i].wait();
    }

    /// `state|error_code` of query `id`, as `system.runtime.queries` shows it.
    pub async fn query_outcome(&self, id: &str) -> Vec<String> {
        let mut client = self.client().await;
        query(
            &mut client,
            &format!(
                "SELECT state, error_code FROM system.runtime.queries WHERE query_id = '{id}'"
            ),
        )
        .await
    }

    /// Sends SIGTERM to worker `i` (a graceful stop, as `docker stop` does).
    pub fn terminate_worker(&self, i: usize) {
        terminate(&self.workers[i]);
    }

    /// Sends SIGTERM to the coordinator.
    pub fn terminate_scheduler(&self) {
        terminate(&self.scheduler);
    }

    /// Waits up to `bound` for worker `i` to exit; its exit status, or `None` if it still runs.
    pub async fn wait_worker_exit(&mut self, i: usize, bound: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.workers[i], bound).await
    }

    /// Waits up to `bound` for the coordinator to exit.
    pub async fn wait_scheduler_exit(&mut self, bound: Duration) -> Option<ExitStatus> {
        wait_exit(&mut self.scheduler, bound).await
    }

    /// Whether both workers ran tasks of one query (a job directory on each).
    pub fn both_workers_ran_one_job(&self) -> bool {
        let first: BTreeSet<_> = self.jobs_on_worker(0).into_iter().collect();
        let second: BTreeSet<_> = self.jobs_on_worker(1).into_iter().collect();
        first.intersection(&second).next().is_some()
    }

    /// Job ids (directories) a worker wrote shuffle output for.
    pub fn jobs_on_worker(&self, i: usize) -> Vec<String> {
        std::fs::read_dir(&self.work_dirs[i])
            .map(|entries| {
                entries
                    .filter_map(|e| e.ok())
                    .filter(|e| e.path().is_dir())
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for worker in &mut self.workers {
            let _ = worker.kill();
            let _ = worker.wait();
        }
        let _ = self.scheduler.kill();
        let _ = self.scheduler.wait();
    }
}

/// A process's log: its stdout (where tracing writes) and stderr, both to `dir/name`.
fn log_file(dir: &Path, name: &str) -> (Stdio, Stdio) {
    match std::fs::File::create(dir.join(name)) {
        Ok(file) => match file.try_clone() {
            Ok(copy) => (Stdio::from(file), Stdio::from(copy)),
            Err(_) => (Stdio::null(), Stdio::from(file)),
        },
        Err(_) => (Stdio::null(), Stdio::null()),
    }
}

/// A raw arrow-flight Flight SQL client of `addr` (plain TCP), no Braid code in between.
pub async fn flight_sql_client(
    addr: &str,
) -> arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel> {
    let channel = tonic::transport::Endpoint::from_shared(format!("http://{addr}"))
        .expect("endpoint")
        .connect()
        .await
        .expect("connect");
    arrow_flight::sql::client::FlightSqlServiceClient::new(channel)
}

/// The rows of a statement a raw Flight SQL client planned (`info`), every endpoint fetched;
/// the error's text on failure.
pub async fn flight_fetch(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    info: arrow_flight::FlightInfo,
) -> Result<Vec<RecordBatch>, String> {
    use futures::TryStreamExt;
    let mut batches = Vec::new();
    for endpoint in info.endpoint {
        let ticket = endpoint.ticket.ok_or("an endpoint without a ticket")?;
        let stream = client.do_get(ticket).await.map_err(|e| e.to_string())?;
        batches.extend(
            stream
                .try_collect::<Vec<_>>()
                .await
                .map_err(|e| e.to_string())?,
        );
    }
    Ok(batches)
}

/// Plans and fetches `sql` with a raw Flight SQL client: its rows, one line each, or the
/// error's text.
pub async fn flight_rows(
    client: &mut arrow_flight::sql::client::FlightSqlServiceClient<tonic::transport::Channel>,
    sql: &str,
) -> Result<Vec<String>, String> {
    let info = client
        .execute(sql.into(), None)
        .await
        .map_err(|e| e.to_string())?;
    Ok(rows(&flight_fetch(client, info).await?))
}

/// A coordinator with passwords (one user, `ann`) and, optionally, TLS with a test certificate.
pub struct Secured {
    /// `braid-scheduler` flags.
    pub args: Vec<String>,
    /// How `ann` connects.
    pub connect: ConnectOptions,
    /// The CA certificate (PEM) that signed the server's: what clients trust.
    pub cert: Option<PathBuf>,
}

impl Secured {
    /// Writes a Trino-style password file (bcrypt) and, with `tls`, a test CA and a server
    /// certificate for `localhost` and `127.0.0.1` into `dir`.
    pub fn new(dir: &Path, password: &str, tls: bool) -> Self {
        let hash = bcrypt::hash(password, 6).expect("bcrypt");
        let passwords = dir.join("password.db");
        std::fs::write(&passwords, format!("# users\nann:{hash}\n")).expect("password file");
        let mut args = vec![
            "--auth".to_string(),
            "password".into(),
            "--password-file".into(),
            passwords.display().to_string(),
        ];
        let cert = tls.then(|| {
            // A CA and a server certificate it signed: OpenSSL's clients (Python's) take no
            // self-signed server certificate as their trust anchor, rustls no CA certificate as
            // a server's.
            let mut ca = rcgen::CertificateParams::new(Vec::<String>::new()).expect("CA");
            ca.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
            ca.key_usages = vec![
                rcgen::KeyUsagePurpose::KeyCertSign,
                rcgen::KeyUsagePurpose::CrlSign,
            ];
            ca.distinguished_name
                .push(rcgen::DnType::CommonName, "Braid test CA");
            let ca_key = rcgen::KeyPair::generate().expect("CA key");
            let ca = rcgen::CertifiedIssuer::self_signed(ca, ca_key).expect("CA certificate");
            let server_key = rcgen::KeyPair::generate().expect("server key");
            let server = rcgen::CertificateParams::new(vec![
                "localhost".to_string(),
                "127.0.0.1".to_string(),
            ])
            .and_then(|params| params.signed_by(&server_key, &*ca))
            .expect("server certificate");
            let (ca_file, cert, key) = (
                dir.join("ca.pem"),
                dir.join("server.pem"),
                dir.join("server.key"),
            );
            std::fs::write(&ca_file, ca.pem()).expect("write CA");
            std::fs::write(&cert, server.pem()).expect("write cert");
            std::fs::write(&key, server_key.serialize_pem()).expect("write key");
            args.extend([
                "--tls-cert-file".to_string(),
                cert.display().to_string(),
                "--tls-key-file".into(),
                key.display().to_string(),
            ]);
            ca_file
        });
        let connect = ConnectOptions {
            user: Some("ann".into()),
            password: Some(password.into()),
            tls_ca_file: cert.clone(),
            ..Default::default()
        };
        Self {
            args,
            connect,
            cert,
        }
    }
}

/// The rows of `sql`, one line each; a failure fails the test naming the statement.
pub async fn query(client: &mut braid_cli::client::BraidClient, sql: &str) -> Vec<String> {
    let (_, batches) = client
        .query_all(sql)
        .await
        .unwrap_or_else(|e| panic!("{sql}: {e}"));
    rows(&batches)
}

/// EXPLAIN ANALYZE of `sql`, one text.
pub async fn analyze(client: &mut braid_cli::client::BraidClient, sql: &str) -> String {
    query(client, &format!("EXPLAIN ANALYZE {sql}"))
        .await
        .join("\n")
}

/// The sum of every `name=N` in `text` (a metric over the partitions of one scan).
pub fn metric(text: &str, name: &str) -> u64 {
    text.match_indices(&format!("{name}="))
        .filter_map(|(at, m)| {
            let digits: String = text[at + m.len()..]
                .chars()
                .take_while(char::is_ascii_digit)
                .collect();
            digits.parse::<u64>().ok()
        })
        .sum()
}

/// Rows rendered one line each, for row-for-row comparison.
pub fn rows(batches: &[RecordBatch]) -> Vec<String> {
    let mut lines = Vec::new();
    for batch in batches {
        for row in 0..batch.num_rows() {
            let cells: Vec<String> = batch
                .columns()
                .iter()
                .map(|c| {
                    arrow::util::display::array_value_to_string(c, row)
                        .unwrap_or_else(|e| format!("<{e}>"))
                })
                .collect();
            lines.push(cells.join("|"));
        }
    }
    lines
}

/// The Python of the tests' independent clients (ADBC, confluent-kafka): `$BRAID_PYTHON`, else
/// `~/.cache/braid/venv/bin/python`, which `scripts/test.sh` makes; a missing one fails the test.
pub fn python() -> PathBuf {
    installed_tool("BRAID_PYTHON", ".cache/braid/venv/bin/python")
}

/// dbt, with dbt-trino, in a virtualenv of its own (dbt pins many packages): `$BRAID_DBT`, else
/// `~/.cache/braid/dbt-venv/bin/dbt`, which `scripts/test.sh` makes; a missing one fails the test.
pub fn dbt() -> PathBuf {
    installed_tool("BRAID_DBT", ".cache/braid/dbt-venv/bin/dbt")
}

/// `$variable`, else `~/<home_path>`: a program `scripts/test.sh` installs.
fn installed_tool(variable: &str, home_path: &str) -> PathBuf {
    let path = std::env::var_os(variable)
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(home_path)))
        .unwrap_or_else(|| panic!("{variable} or HOME must be set"));
    assert!(
        path.is_file(),
        "{} is missing: run scripts/test.sh, which installs the tests' clients in virtualenvs",
        path.display()
    );
    path
}

/// Runs the test script `tests/<script>` with [`python`] and `args`; what it printed, as JSON.
/// A failing script fails the test with its error output.
pub fn python_json(script: &str, args: &[&str]) -> serde_json::Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(script);
    let out = std::process::Command::new(python())
        .arg(&path)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run {}: {e}", path.display()));
    assert!(
        out.status.success(),
        "{script} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{script} prints JSON: {e}"))
}

/// Rows sorted as the tests' Python writers sort them: by their fields as text.
pub fn sorted_rows(mut rows: Vec<String>) -> Vec<String> {
    rows.sort_by(|a, b| a.split('|').cmp(b.split('|')));
    rows
}

/// The environment variable `name` that `scripts/services.sh` sets; a missing one fails the
/// test with how to set it.
pub fn service_env(name: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| {
        panic!("{name} is not set: start the services with scripts/services.sh start and source its env file (scripts/test.sh does both)")
    })
}

/// A client of the test PostgreSQL (`BRAID_PG_*`), its connection driven in the background.
pub async fn test_postgres() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(
        &format!(
            "host={} port={} user={} password={} dbname={}",
            service_env("BRAID_PG_HOST"),
            service_env("BRAID_PG_PORT"),
            service_env("BRAID_PG_USER"),
            service_env("BRAID_PG_PASSWORD"),
            service_env("BRAID_PG_DATABASE")
        ),
        tokio_postgres::NoTls,
    )
    .await
    .expect("connect to the test PostgreSQL");
    tokio::spawn(connection);
    client
}

/// A JSON array of strings (what a test's Python writer printed) as lines.
pub fn json_lines(value: &serde_json::Value) -> Vec<String> {
    value
        .as_array()
        .expect("an array")
        .iter()
        .map(|v| v.as_str().expect("a line").to_string())
        .collect()
}

/// Writes `<dir>/<name>.toml`, a `postgres` catalog of the test PostgreSQL (`BRAID_PG_*`; the
/// password stays an `${ENV:...}` reference).
pub fn write_postgres_catalog(dir: &Path, name: &str) {
    std::fs::write(
        dir.join(format!("{name}.toml")),
        format!(
            "connector = \"postgres\"\nhost = \"{}\"\nport = {}\nuser = \"{}\"\ndatabase = \"{}\"\npassword = \"${{ENV:BRAID_PG_PASSWORD}}\"\n",
            service_env("BRAID_PG_HOST"),
            service_env("BRAID_PG_PORT"),
            service_env("BRAID_PG_USER"),
            service_env("BRAID_PG_DATABASE"),
        ),
    )
    .expect("write the postgres catalog file");
}
