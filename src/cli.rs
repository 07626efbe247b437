//! The command line (the public contract in DESIGN.md) and what each command does.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand, ValueEnum};
use only1mcp_shards::config::{self, DriverChoice};

/// One MCP endpoint in front of many MCP servers (thread-per-core, io_uring).
#[derive(Debug, Parser)]
#[command(name = "only1mcp-uring", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum DriverArg {
    Auto,
    Uring,
    Epoll,
}

impl From<DriverArg> for DriverChoice {
    fn from(d: DriverArg) -> Self {
        match d {
            DriverArg::Auto => DriverChoice::Auto,
            DriverArg::Uring => DriverChoice::Uring,
            DriverArg::Epoll => DriverChoice::Epoll,
        }
    }
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Start the gateway (one shard per core, each with its own SO_REUSEPORT listener).
    Start {
        /// Config file: TOML, YAML or JSON, the gateway's schema or an MCP client's
        /// (`mcpServers`, VS Code `servers`); repeat to merge several. Without it the gateway
        /// starts with no backends.
        #[arg(long, short)]
        config: Vec<PathBuf>,
        /// Number of shards (0 = every online core). Overrides `server.cores`.
        #[arg(long)]
        cores: Option<usize>,
        /// Bind address. Overrides `server.host`.
        #[arg(long)]
        host: Option<String>,
        /// Bind port (0 = pick a free one, printed at startup). Overrides `server.port`.
        #[arg(long)]
        port: Option<u16>,
        /// I/O driver: io_uring with epoll fallback (auto), io_uring only, or epoll only.
        #[arg(long, value_enum)]
        driver: Option<DriverArg>,
    },
    /// Serve MCP over stdin/stdout to one local client (logs go to stderr).
    Stdio {
        /// Config file (TOML, YAML, JSON or a client's); repeat to merge several.
        #[arg(long, short, required = true)]
        config: Vec<PathBuf>,
        /// Number of shards (default 1 for a single local client).
        #[arg(long)]
        cores: Option<usize>,
    },
    /// What a client of this config loads into its model's context: tools, bytes and tokens
    /// per server and discovery mode (runs the gateway on the file briefly).
    ContextReport {
        /// Config file (TOML, YAML, JSON or a client's); repeat to merge several.
        #[arg(long, short, required = true)]
        config: Vec<PathBuf>,
    },
    /// Check a config file; prints every problem with file, line and key, and what `start`
    /// would refuse on this machine (missing files and directories, unresolvable hosts).
    Validate {
        /// Config files to check (merged, as `start` would).
        file: Vec<PathBuf>,
        /// More config files, as `start` takes them.
        #[arg(long, short)]
        config: Vec<PathBuf>,
    },
    /// Config helpers.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
    },
    /// Watch a running gateway live: a terminal UI over its metrics socket.
    Tui {
        /// The gateway's metrics socket (`[metrics] socket`; default
        /// `$XDG_RUNTIME_DIR/only1mcp-uring.sock`, else `/tmp/only1mcp-uring-<uid>.sock`).
        #[arg(long, value_name = "PATH")]
        socket: Option<PathBuf>,
    },
    // Its flags are the `only1mcp-demo` crate's, shared with its own `demo-server` binary.
    /// Run the built-in MCP demo server (for demos, tests and benchmarks).
    DemoServer(only1mcp_demo::Args),
}

#[derive(Debug, Subcommand)]
enum ConfigAction {
    /// Print a starter config to stdout.
    Generate {
        /// Which starter: solo, team or gateway.
        #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(crate::templates::TEMPLATE_NAMES))]
        template: String,
    },
    /// Print the gateway config equivalent to MCP client config files (Claude Desktop,
    /// Cursor, `.mcp.json`, VS Code `mcp.json`) or gateway configs, merged.
    Import {
        /// The files to read.
        #[arg(required = true)]
        files: Vec<PathBuf>,
        /// Output format.
        #[arg(long, value_enum, default_value = "toml")]
        format: FormatArg,
    },
}

#[derive(Debug, Clone, Copy, ValueEnum)]
enum FormatArg {
    Toml,
    Yaml,
    Json,
}

/// Load and merge the config files, printing warnings; `Err(exit code)` after printing errors.
fn load(paths: &[PathBuf]) -> Result<config::Config, ExitCode> {
    match config::load_files(paths) {
        Ok(loaded) => {
            for w in loaded.warnings {
                eprintln!("warning: {w}");
            }
            Ok(loaded.config)
        }
        Err(errors) => {
            for e in errors {
                eprintln!("error: {e}");
            }
            Err(ExitCode::from(2))
        }
    }
}

/// Runs the parsed command.
pub fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    match cli.command {
        Command::Start {
            config: path,
            cores,
            host,
            port,
            driver,
        } => {
            let mut cfg = match path.is_empty() {
                false => match load(&path) {
                    Ok(c) => c,
                    Err(code) => return Ok(code),
                },
                true => {
                    tracing::warn!("no --config given: starting with no backends");
                    config::Config::default()
                }
            };
            let overrides = crate::control::Overrides {
                cores,
                host,
                port,
                driver: driver.map(Into::into),
            };
            overrides.apply(&mut cfg);
            let watched = (!path.is_empty()).then_some((path, overrides));
            crate::control::start(cfg, crate::control::Front::Http, watched)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Stdio {
            config: path,
            cores,
        } => {
            let mut cfg = match load(&path) {
                Ok(c) => c,
                Err(code) => return Ok(code),
            };
            let overrides = crate::control::Overrides {
                cores,
                ..Default::default()
            };
            overrides.apply(&mut cfg);
            crate::control::start(cfg, crate::control::Front::Stdio, Some((path, overrides)))?;
            Ok(ExitCode::SUCCESS)
        }
        Command::ContextReport { config } => {
            crate::context_report::run(&config)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::Validate { mut file, config } => {
            file.extend(config);
            anyhow::ensure!(!file.is_empty(), "validate needs a config file");
            let shown: Vec<String> = file.iter().map(|f| f.display().to_string()).collect();
            match config::load_files(&file) {
                Ok(config::Loaded {
                    config: cfg,
                    warnings,
                }) => match crate::control::cluster::load(&cfg) {
                    Ok((_, warning)) => {
                        for w in warnings {
                            eprintln!("warning: {w}");
                        }
                        if let Some(w) = warning {
                            eprintln!("warning: {w}");
                        }
                        let found = crate::preflight::check(&cfg);
                        let names = PathBuf::from(shown.join(", "));
                        Ok(crate::preflight::report(&names, cfg.servers.len(), &found))
                    }
                    Err(e) => {
                        eprintln!("{e}");
                        Ok(ExitCode::from(2))
                    }
                },
                Err(errors) => {
                    for e in errors {
                        eprintln!("{e}");
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Config {
            action: ConfigAction::Generate { template },
        } => {
            let text = crate::templates::template(&template).context("unknown template")?;
            print!("{text}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Config {
            action: ConfigAction::Import { files, format },
        } => {
            let format = match format {
                FormatArg::Toml => config::Format::Toml,
                FormatArg::Yaml => config::Format::Yaml,
                FormatArg::Json => config::Format::Json,
            };
            match config::import_files(&files, format) {
                Ok((text, warnings)) => {
                    for w in warnings {
                        eprintln!("warning: {w}");
                    }
                    print!("{text}");
                    Ok(ExitCode::SUCCESS)
                }
                Err(errors) => {
                    for e in errors {
                        eprintln!("error: {e}");
                    }
                    Ok(ExitCode::from(2))
                }
            }
        }
        Command::Tui { socket } => {
            crate::tui::run(socket)?;
            Ok(ExitCode::SUCCESS)
        }
        Command::DemoServer(args) => {
            args.run()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}
