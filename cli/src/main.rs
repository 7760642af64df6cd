//! `braid`: the Braid REPL and one-shot client.
//!
//! With no `--connect`, starts an embedded cluster (a coordinator and one worker in this
//! process, on loopback ports) and talks to it over Flight SQL, as to a remote one.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use braid_cli::client::{BraidClient, ConnectOptions};
use braid_cli::embedded::EmbeddedCluster;
use braid_cli::output::Format;
use braid_cli::runner::Runner;
use braid_cli::{bench, bench_kafka, bench_lake, bench_latency, bench_postgres, repl};

#[derive(Debug, Parser)]
#[command(
    name = "braid",
    version,
    about = "Braid: one SQL query over data where it lives"
)]
struct Cli {
    /// Coordinator Flight SQL address (host:port); default: an embedded cluster.
    #[arg(long)]
    connect: Option<String>,
    /// Run these statements and exit.
    #[arg(short = 'c', long = "command", conflicts_with = "file")]
    command: Option<String>,
    /// Run the statements of this file and exit.
    #[arg(short = 'f', long = "file")]
    file: Option<PathBuf>,
    /// Output format (`ndjson` is `json`: one object per line).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// The session's catalog (Trino CLI's `--catalog`).
    #[arg(long)]
    catalog: Option<String>,
    /// The session's schema (Trino CLI's `--schema`).
    #[arg(long)]
    schema: Option<String>,
    /// The most rows a table shows (a number or `inf`); the rest are counted.
    #[arg(long, value_parser = parse_max_rows, default_value = "inf")]
    maxrows: usize,
    /// Log in as this user (the password is asked for unless --password or BRAID_PASSWORD
    /// gives it).
    #[arg(long)]
    user: Option<String>,
    #[arg(long, env = "BRAID_PASSWORD", hide_env_values = true)]
    password: Option<String>,
    /// Connect with TLS (the server's certificate is checked against the system's roots).
    #[arg(long)]
    tls: bool,
    /// Trust this PEM CA certificate for TLS (implies --tls).
    #[arg(long)]
    tls_ca_file: Option<PathBuf>,
    /// Catalog files for the embedded cluster (default: ./etc/catalog if present).
    #[arg(long)]
    catalog_dir: Option<PathBuf>,
    #[command(subcommand)]
    subcommand: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Benchmarks.
    Bench {
        #[command(subcommand)]
        bench: BenchCommand,
    },
}

#[derive(Debug, Subcommand)]
enum BenchCommand {
    /// The 22 TPC-H queries: embedded cluster vs plain DataFusion.
    Tpch(bench::BenchArgs),
    /// Reading a PostgreSQL table: Braid's split reads vs psql \copy.
    Postgres(bench_postgres::PostgresBenchArgs),
    /// Reading a Kafka topic: Braid's split reads vs one plain rdkafka consumer.
    Kafka(bench_kafka::KafkaBenchArgs),
    /// TPC-H as Parquet files: Braid's `files` connector vs plain DataFusion on the same files
    /// (runs its own embedded cluster).
    Lake(bench_lake::LakeBenchArgs),
    /// Per-statement latency through Flight SQL: `SELECT 1`, metadata, a point query, and the
    /// time to the first batch of a large scan.
    Latency(bench_latency::LatencyBenchArgs),
}

#[tokio::main]
async fn main() -> ExitCode {
    // One program for the container image: run through a link named `braid-scheduler` or
    // `braid-executor`, it is that daemon.
    let factories = braid_catalogs::Factories::builtin;
    match invoked_as().as_deref() {
        Some("braid-scheduler") => return braid_scheduler::main_with(&factories()).await,
        Some("braid-executor") => return braid_executor::main_with(&factories()).await,
        _ => {}
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| "error".into()),
        )
        .init();
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("Query failed: {e}");
            ExitCode::FAILURE
        }
    }
}

fn parse_max_rows(value: &str) -> Result<usize, String> {
    if value.eq_ignore_ascii_case("inf") {
        return Ok(usize::MAX);
    }
    value
        .parse()
        .map_err(|_| format!("'{value}' is neither a number of rows nor 'inf'"))
}

/// The statement that makes `--catalog` / `--schema` the session's, their names quoted.
fn use_statement(catalog: Option<&str>, schema: Option<&str>) -> Option<String> {
    let quote = |name: &str| format!("\"{}\"", name.replace('"', "\"\""));
    match (catalog, schema) {
        (Some(catalog), Some(schema)) => Some(format!("USE {}.{}", quote(catalog), quote(schema))),
        (None, Some(schema)) => Some(format!("USE {}", quote(schema))),
        (Some(catalog), None) => Some(format!(
            "SET datafusion.catalog.default_catalog = '{}'",
            catalog.replace('\'', "''")
        )),
        (None, None) => None,
    }
}

/// The pager of tables in the REPL: `BRAID_PAGER` (empty for none), else `less -FXRSn` when
/// `less` is installed.
fn pager() -> Option<String> {
    match std::env::var("BRAID_PAGER") {
        Ok(command) => Some(command).filter(|c| !c.trim().is_empty()),
        Err(_) => std::process::Command::new("sh")
            .args(["-c", "command -v less"])
            .output()
            .ok()
            .filter(|out| out.status.success())
            .map(|_| "less -FXRSn".to_string()),
    }
}

/// Whether `--password` itself was given, rather than `BRAID_PASSWORD`.
fn password_on_command_line() -> bool {
    std::env::args().any(|a| a == "--password" || a.starts_with("--password="))
}

/// The file name this program was started as.
fn invoked_as() -> Option<String> {
    let arg0 = std::env::args_os().next()?;
    Some(
        std::path::Path::new(&arg0)
            .file_name()?
            .to_string_lossy()
            .into_owned(),
    )
}

async fn run(cli: Cli) -> Result<(), String> {
    let catalog_dir = cli.catalog_dir.clone().or_else(|| {
        let default = PathBuf::from("etc/catalog");
        default.is_dir().then_some(default)
    });
    if let Some(Command::Bench {
        bench: BenchCommand::Lake(args),
    }) = &cli.subcommand
    {
        if cli.connect.is_some() {
            return Err("bench lake runs its own embedded cluster: leave out --connect".into());
        }
        return bench_lake::run(args).await;
    }
    // Kept alive for the whole run when embedded.
    let mut _cluster = None;
    let client = match &cli.connect {
        Some(addr) => {
            if password_on_command_line() {
                eprintln!(
                    "warning: a password given with --password is visible to other users of this machine (ps, shell history); set BRAID_PASSWORD or let braid ask for it"
                );
            }
            let password = match (&cli.user, cli.password.clone()) {
                (Some(user), None) => Some(
                    rpassword::prompt_password(format!("Password for {user}: "))
                        .map_err(|e| format!("cannot read the password: {e}"))?,
                ),
                (_, password) => password,
            };
            let options = ConnectOptions {
                tls: cli.tls,
                tls_ca_file: cli.tls_ca_file.clone(),
                user: cli.user.clone(),
                password,
            };
            BraidClient::connect_with(addr, &options)
                .await
                .map_err(|e| e.to_string())?
        }
        None => {
            let cluster = EmbeddedCluster::start(catalog_dir.clone()).await?;
            let client = cluster.client().await.map_err(|e| e.to_string())?;
            _cluster = Some(cluster);
            client
        }
    };
    match &cli.subcommand {
        Some(Command::Bench {
            bench: BenchCommand::Tpch(args),
        }) => {
            let mut client = client;
            let cluster = match &cli.connect {
                Some(addr) => format!("the cluster at {addr}"),
                None => "the embedded cluster".to_string(),
            };
            return bench::run(&mut client, &cluster, args).await;
        }
        Some(Command::Bench {
            bench: BenchCommand::Postgres(args),
        }) => {
            let mut client = client;
            let dir = catalog_dir.ok_or("bench postgres needs --catalog-dir (or ./etc/catalog)")?;
            return bench_postgres::run(&mut client, &dir, args).await;
        }
        Some(Command::Bench {
            bench: BenchCommand::Kafka(args),
        }) => {
            let mut client = client;
            let dir = catalog_dir.ok_or("bench kafka needs --catalog-dir (or ./etc/catalog)")?;
            return bench_kafka::run(&mut client, &dir, args).await;
        }
        Some(Command::Bench {
            bench: BenchCommand::Latency(args),
        }) => {
            let mut client = client;
            return bench_latency::run(&mut client, args).await;
        }
        Some(Command::Bench {
            bench: BenchCommand::Lake(_),
        })
        | None => {}
    }
    if let Some(statement) = use_statement(cli.catalog.as_deref(), cli.schema.as_deref()) {
        let mut client = client.clone();
        client
            .query_all(&statement)
            .await
            .map_err(|e| format!("{statement}: {e}"))?;
    }
    let mut runner = Runner::new(client, cli.format);
    runner.max_rows = cli.maxrows;
    if let Some(sql) = &cli.command {
        return Ok(runner.run_script(sql).await?);
    }
    if let Some(file) = &cli.file {
        let text = std::fs::read_to_string(file)
            .map_err(|e| format!("cannot read {}: {e}", file.display()))?;
        return Ok(runner.run_script(&text).await?);
    }
    runner.pager = pager();
    repl::run(&mut runner, repl::ReplFiles::in_home()).await
}
