//! `cme`: the Chaos Monkey Engine. `cme serve` runs the engine; the other subcommands
//! talk to a running one.

mod calendar_fetch;
mod client;
mod clouds;
mod config;
mod experiments;
mod host;
mod ledger;
mod local;
mod log_line;
mod logging;
mod metrics;
mod scaffold;
mod serve;
mod ssh_store;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};

/// mimalloc: the engine allocates many small, short-lived objects per request (JSON
/// documents, rows) across threads, where glibc's allocator spent a fifth of the time of an
/// executor page in its own bookkeeping.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "cme",
    version,
    about = "Chaos Monkey Engine: schedules chaos attacks run as sandboxed WebAssembly plugins"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the engine: the HAL API and the scheduler.
    Serve(ServeArgs),
    /// The plugin registry of a running engine (push, list, show, grant, enable, disable,
    /// delete), and plugins on this machine (run, check).
    Plugins {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::PluginsCommand,
    },
    /// Plans on a running engine.
    Plans {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::PlansCommand,
    },
    /// Experiments on a running engine: several faults in one run, checked between steps,
    /// always reverted (exit codes for CI: 0 held, 1 refuted, 2 aborted).
    Experiments {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: experiments::ExperimentsCommand,
    },
    /// Executors on a running engine.
    Executors {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::ExecutorsCommand,
    },
    /// Blackouts on a running engine (spans in which nothing fires) and holiday calendars.
    Blackouts {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::BlackoutsCommand,
    },
    /// Calendars on a running engine: uploaded ones and subscriptions to a calendar's URL.
    Calendars {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::CalendarsCommand,
    },
    /// Inventories on a running engine: named groups of SSH hosts attacks aim at.
    Inventories {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::InventoriesCommand,
    },
    /// The undos attacks armed on a running engine, and how each ran.
    Undos {
        #[command(flatten)]
        target: client::Target,
    },
    /// SSH credentials on a running engine (admin): list, create, delete.
    Credentials {
        #[command(flatten)]
        target: client::Target,
        #[command(subcommand)]
        command: client::CredentialsCommand,
    },
    /// The audit log of a running engine (admin), newest first.
    Audit {
        #[command(flatten)]
        target: client::Target,
        #[arg(long, default_value_t = 1)]
        page: u64,
        #[arg(long, default_value_t = 50)]
        size: u64,
    },
    /// The webhooks of a running engine and the state of their deliveries (admin).
    Webhooks {
        #[command(flatten)]
        target: client::Target,
    },
    /// Whether a running engine is halted, since when and why.
    Status {
        #[command(flatten)]
        target: client::Target,
    },
    /// Print shell completions (bash, zsh, fish, elvish, powershell) to standard output.
    Completions { shell: clap_complete::Shell },
    /// Print the man page (roff) to standard output.
    Man,
    /// Halt a running engine: nothing fires until `cme resume`.
    Halt {
        #[command(flatten)]
        target: client::Target,
        /// Why (recorded and shown).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Resume a halted engine.
    Resume {
        #[command(flatten)]
        target: client::Target,
    },
}

#[derive(clap::Args, Debug)]
pub struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:5000]. Beyond loopback, tokens are required.
    #[arg(long, env = "CME_BIND")]
    pub bind: Option<SocketAddr>,
    /// Database URL [default: sqlite://cme.db?mode=rwc]; postgres://... for scale-out.
    #[arg(long, env = "CME_DATABASE_URL")]
    pub database_url: Option<String>,
    /// IANA time zone for times without offset [default: UTC].
    #[arg(long, env = "CME_TIMEZONE")]
    pub timezone: Option<String>,
    /// Config file (TOML).
    #[arg(long, env = "CME_CONFIG")]
    pub config: Option<PathBuf>,
    /// Log format: text or json [default: text].
    #[arg(long, env = "CME_LOG_FORMAT")]
    pub log_format: Option<String>,
    /// Run every plan as a dry run: capabilities record, nothing is done.
    #[arg(long, env = "CME_DRY_RUN")]
    pub dry_run: bool,
    /// API tokens, ROLE:TOKEN separated by commas (roles: viewer, operator, admin).
    #[arg(long, env = "CME_TOKENS", hide_env_values = true)]
    pub tokens: Option<String>,
    /// Directory for precompiled plugin artifacts [default: ~/.cache/cme/artifacts].
    #[arg(long, env = "CME_CACHE_DIR")]
    pub cache_dir: Option<PathBuf>,
    /// A directory of your own attack scripts, added to the shipped script_attacks/.
    #[arg(long, env = "CME_SCRIPTS_DIR")]
    pub scripts_dir: Option<PathBuf>,
}

/// Two rustls crypto providers are linked (aws-lc-rs through reqwest and russh, ring
/// through the AWS SDK), so rustls cannot choose one by itself: the process names its
/// default before anything opens a TLS connection.
fn install_crypto_provider() {
    // Err means one is installed already, which is what we want.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

fn main() -> std::process::ExitCode {
    install_crypto_provider();
    let cli = Cli::parse();
    let result = match cli.command {
        // Its exit code says how the experiment ended.
        Command::Experiments { target, command } => return experiments::run(target, command),
        Command::Serve(args) => serve::serve(args),
        Command::Plugins { target, command: client::PluginsCommand::Run(args) } => {
            local::run(args, target.output == client::Output::Json)
        }
        Command::Plugins { command: client::PluginsCommand::Check { file }, .. } => local::check(&file),
        Command::Plugins { command: client::PluginsCommand::New(args), .. } => scaffold::new(args),
        Command::Plugins { target, command } => client::run(target, client::Request::Plugins(command)),
        Command::Plans { target, command } => client::run(target, client::Request::Plans(command)),
        Command::Executors { target, command } => client::run(target, client::Request::Executors(command)),
        Command::Blackouts { target, command } => client::run(target, client::Request::Blackouts(command)),
        Command::Calendars { target, command } => client::run(target, client::Request::Calendars(command)),
        Command::Inventories { target, command } => client::run(target, client::Request::Inventories(command)),
        Command::Undos { target } => client::run(target, client::Request::Undos),
        Command::Credentials { target, command } => client::run(target, client::Request::Credentials(command)),
        Command::Audit { target, page, size } => client::run(target, client::Request::Audit { page, size }),
        Command::Webhooks { target } => client::run(target, client::Request::Webhooks),
        Command::Status { target } => client::run(target, client::Request::HaltStatus),
        Command::Completions { shell } => {
            clap_complete::generate(
                shell,
                &mut <Cli as clap::CommandFactory>::command(),
                "cme",
                &mut std::io::stdout(),
            );
            Ok(())
        }
        Command::Man => clap_mangen::Man::new(<Cli as clap::CommandFactory>::command())
            .render(&mut std::io::stdout())
            .map_err(Into::into),
        Command::Halt { target, reason } => client::run(target, client::Request::Halt(reason)),
        Command::Resume { target } => client::run(target, client::Request::Resume),
    };
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cme: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_process_has_a_default_crypto_provider() {
        assert!(rustls::crypto::CryptoProvider::get_default().is_none(), "nothing installs one by itself");
        super::install_crypto_provider();
        assert!(rustls::crypto::CryptoProvider::get_default().is_some());
        super::install_crypto_provider(); // a second call is harmless
    }
}
