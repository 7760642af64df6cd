//! The `braid` REPL in a real terminal (tmux, keys sent and the screen read back): `~/.braidrc`,
//! `\d`, `\d name`, `\l`, `\pset format`, `\timing`, `--maxrows`, tab completion of the
//! coordinator's names, and Ctrl-C, which cancels a running query on the workers and returns
//! to the prompt.

use std::process::Command;
use std::time::{Duration, Instant};

use braid_integration_tests::{Cluster, binary, query, serial};

/// Runs for minutes on two workers: 600 million generated rows.
const LONG_QUERY: &str =
    "SELECT count(*), sum(l_quantity) FROM tpch.sf100.lineitem WHERE l_comment LIKE '%zebra%';";

/// Terminals started by this test process, so each has a tmux server of its own.
static TERMINALS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

/// One program in a tmux session of its own (its own server socket), ended on drop.
struct Terminal {
    socket: String,
}

impl Terminal {
    fn tmux(&self) -> Command {
        let mut command = Command::new("tmux");
        command.args(["-L", &self.socket]);
        command
    }

    /// Starts `program` in a 200×60 terminal.
    fn start(program: &str) -> Self {
        let terminal = Self {
            socket: format!(
                "braid-repl-test-{}-{}",
                std::process::id(),
                TERMINALS.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            ),
        };
        let status = terminal
            .tmux()
            .args([
                "new-session",
                "-d",
                "-s",
                "repl",
                "-x",
                "200",
                "-y",
                "60",
                program,
            ])
            .status()
            .expect("tmux (scripts/test.sh installs it)");
        assert!(status.success(), "tmux new-session failed");
        terminal
    }

    /// Types `keys` (tmux key names: "Enter", "Tab", "C-c").
    fn keys(&self, keys: &[&str]) {
        let status = self
            .tmux()
            .args(["send-keys", "-t", "repl"])
            .args(keys)
            .status()
            .expect("tmux send-keys");
        assert!(status.success());
    }

    /// Types a line of text, then Enter.
    fn line(&self, text: &str) {
        // tmux takes a `;` that ends an argument for the end of its own command.
        let text = match text.strip_suffix(';') {
            Some(statement) => format!("{statement}\\;"),
            None => text.to_string(),
        };
        self.keys(&["-l", &text]);
        self.keys(&["Enter"]);
    }

    /// Types several lines at once, each ended by Enter, as a paste does: they reach the
    /// program in one read, while it edits the first.
    fn paste(&self, lines: &[&str]) {
        let text: String = lines.iter().map(|line| format!("{line}\r")).collect();
        self.keys(&["-l", &text]);
    }

    /// The screen and its scrollback.
    fn screen(&self) -> String {
        let out = self
            .tmux()
            .args(["capture-pane", "-p", "-J", "-t", "repl", "-S", "-2000"])
            .output()
            .expect("tmux capture-pane");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Waits until the screen shows `text` `times` times in all.
    async fn wait_for(&self, text: &str, times: usize) -> String {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let screen = self.screen();
            if screen.matches(text).count() >= times {
                return screen;
            }
            assert!(
                Instant::now() < deadline,
                "the terminal never showed {text:?} {times} times:\n{screen}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Terminal {
    /// The program's process id (the shell `exec`s it).
    fn pid(&self) -> String {
        let out = self
            .tmux()
            .args(["display-message", "-p", "-t", "repl", "#{pane_pid}"])
            .output()
            .expect("tmux display-message");
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Waits until the program has ended (its session closes with it), after `what`.
    async fn wait_until_ended(&self, what: &str) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while self
            .tmux()
            .args(["has-session", "-t", "repl"])
            .status()
            .is_ok_and(|s| s.success())
        {
            assert!(Instant::now() < deadline, "{what} did not end the REPL");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Terminal {
    fn drop(&mut self) {
        let _ = self.tmux().arg("kill-server").status();
    }
}

fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_repl_in_a_terminal_meta_commands_completion_and_ctrl_c() {
    let _serial = serial().await;
    let cluster = Cluster::start(2, 2, None).await;
    let home = tempfile::tempdir().expect("home");
    std::fs::write(
        home.path().join(".braidrc"),
        "USE memory.default;\nCREATE TABLE \"Rc Ran\" AS SELECT 'O''Brien' AS speaker;\n",
    )
    .expect(".braidrc");
    let program = format!(
        "exec env HOME={} BRAID_PAGER= {} --connect {} --maxrows 3",
        shell_quote(&home.path().display().to_string()),
        shell_quote(&binary("braid").display().to_string()),
        cluster.flight_sql_addr,
    );
    let terminal = Terminal::start(&program);
    let mut prompts = 1;
    terminal.wait_for("braid> ", prompts).await;

    // `~/.braidrc` ran: the session is in memory.default and the table exists.
    terminal.line("\\d");
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("| Rc Ran "), "{screen}");
    terminal.line("\\d \"Rc Ran\"");
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("| speaker | varchar |"), "{screen}");
    terminal.line("\\l");
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(
        screen.contains("| tpch ") && screen.contains("| memory "),
        "{screen}"
    );

    // Formats and the row limit.
    terminal.line("\\pset format csv");
    terminal.line("SELECT speaker FROM \"Rc Ran\";");
    prompts += 2;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("speaker\nO'Brien\n(1 row in "), "{screen}");
    terminal.line("\\pset format table");
    terminal.line("SELECT n_name FROM tpch.tiny.nation ORDER BY n_name;");
    prompts += 2;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(
        screen.contains("| ALGERIA ") && screen.contains("| BRAZIL ") && !screen.contains("CHINA"),
        "{screen}"
    );
    assert!(
        screen.contains("(25 rows in ") && screen.contains("the first 3 shown"),
        "{screen}"
    );
    terminal.line("\\timing");
    terminal.line("SELECT 1 AS one;");
    prompts += 2;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(
        screen.contains("Timing is off.") && screen.contains("(1 row)"),
        "{screen}"
    );

    // Completion: a column and a table of the current schema, loaded from the coordinator.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        terminal.keys(&["-l", "SELECT spe"]);
        terminal.keys(&["Tab"]);
        tokio::time::sleep(Duration::from_millis(300)).await;
        let screen = terminal.screen();
        let last = screen.lines().rev().find(|l| !l.trim().is_empty());
        if last.is_some_and(|l| l.trim_end() == "braid> SELECT speaker") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no completion:\n{}",
            terminal.screen()
        );
        terminal.keys(&["C-u"]);
    }
    // A table whose name needs quotes completes quoted.
    terminal.keys(&["-l", " FROM rc"]);
    terminal.keys(&["Tab"]);
    terminal.keys(&["-l", " WHERE speaker LIK"]);
    terminal.keys(&["Tab"]);
    terminal.line(" 'O%';");
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(
        screen.contains("SELECT speaker FROM \"Rc Ran\" WHERE speaker LIKE 'O%';"),
        "{screen}"
    );
    assert!(screen.contains("| O'Brien |"), "{screen}");

    // Ctrl-C during a query: the query ends on the cluster, the REPL goes on.
    terminal.line(LONG_QUERY);
    let mut client = cluster.client().await;
    let deadline = Instant::now() + Duration::from_secs(60);
    let running = "SELECT query_id FROM system.runtime.queries \
                   WHERE state = 'RUNNING' AND query LIKE '%zebra%' AND query NOT LIKE '%runtime%'";
    let id = loop {
        if let Some(id) = query(&mut client, running).await.pop() {
            break id;
        }
        assert!(Instant::now() < deadline, "the long query never ran");
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(cluster.worker_cpu_seconds(Duration::from_millis(500)).await > 0.25);
    terminal.keys(&["C-c"]);
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("Query was canceled (Ctrl-C)"), "{screen}");
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let state = query(
            &mut client,
            &format!("SELECT state FROM system.runtime.queries WHERE query_id = '{id}'"),
        )
        .await;
        if state != ["RUNNING"] {
            break;
        }
        assert!(Instant::now() < deadline, "the query kept running");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    cluster
        .wait_until_workers_idle("the query was stopped")
        .await;
    terminal.line("SELECT 2 AS two;");
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("| 2   |"), "{screen}");
    terminal.line("\\q");
    terminal.wait_until_ended("\\q").await;
}

/// Without `--connect` the REPL runs an embedded cluster, whose worker (Ballista's executor)
/// also hears Ctrl-C and stops: it starts again, so the next query still runs. A table longer
/// than the terminal goes through the default pager (`less`) until it is quit. SIGTERM still
/// ends the program, as it ends `braid --connect`.
#[tokio::test(flavor = "multi_thread")]
async fn the_embedded_repl_keeps_its_worker_after_ctrl_c_and_pages_long_tables() {
    let _serial = serial().await;
    let home = tempfile::tempdir().expect("home");
    let home = shell_quote(&home.path().display().to_string());
    let program = format!(
        "cd {home} && exec env -u BRAID_PAGER HOME={home} {}",
        shell_quote(&binary("braid").display().to_string()),
    );
    let terminal = Terminal::start(&program);
    let mut prompts = 1;
    terminal.wait_for("braid> ", prompts).await;

    // 300 rows in a 60-line terminal: the pager holds the prompt back until `q`.
    terminal.line("SELECT l_orderkey AS paged_key FROM tpch.tiny.lineitem LIMIT 300;");
    let screen = terminal.wait_for("| paged_key", 1).await;
    assert_eq!(screen.matches("braid> ").count(), prompts, "{screen}");
    terminal.keys(&["q"]);
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("(300 rows in "), "{screen}");

    terminal.line(LONG_QUERY);
    // The progress line shows once the query runs.
    terminal.wait_for("] query ", 1).await;
    terminal.keys(&["C-c"]);
    prompts += 1;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(screen.contains("Query was canceled (Ctrl-C)"), "{screen}");
    for _ in 0..2 {
        terminal.line("SELECT count(*) AS nations FROM tpch.tiny.nation;");
        prompts += 1;
    }
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert_eq!(screen.matches("| 25      |").count(), 2, "{screen}");

    // A statement pasted with the one before is not lost: the line editor keeps what it read
    // past the first line for the next (rustyline's `buffer-redux`), and a table that fits
    // the terminal does not start the pager, which would read it from the terminal.
    terminal.paste(&[
        "SELECT sum(l_quantity) AS total FROM tpch.\"sf0.1\".lineitem;",
        "SELECT count(*) AS typed_ahead FROM tpch.tiny.nation;",
    ]);
    prompts += 2;
    let screen = terminal.wait_for("braid> ", prompts).await;
    assert!(
        screen.contains("| typed_ahead |") && screen.contains("| total"),
        "{screen}"
    );

    let status = Command::new("kill")
        .args(["-TERM", &terminal.pid()])
        .status()
        .expect("kill");
    assert!(status.success());
    terminal.wait_until_ended("SIGTERM").await;
}
