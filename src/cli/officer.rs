//! `officer issue`, `officer list`, `officer revoke`.

use crate::timestamp::Timestamp;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::Context;
use clap::Subcommand;

use super::output::{errln, outln};
use crate::config::Root;
use crate::identity::Caller;
use crate::issuance::{Gateway, parse_roles};
use crate::token::Pin;

/// `officer …`
#[derive(Debug, Subcommand)]
pub enum OfficerCommand {
    /// Issue an officer client certificate from the officers CA (the [[ca]] with role =
    /// "officers", else the one named `officers`) and register its roles.
    Issue {
        /// The officer's name (the certificate's CN).
        #[arg(long)]
        name: String,
        /// Roles, comma separated (matched against requiredRoRoles).
        #[arg(long)]
        roles: String,
        /// Where to write the PKCS#12 (mode 0600; an existing file is not overwritten).
        #[arg(long)]
        out: PathBuf,
        /// PKCS#12 password (prompted when not given; prefer the prompt, --password-file or
        /// --password-env: arguments are visible to other users of the machine).
        #[arg(long, conflicts_with_all = ["password_file", "password_env"])]
        password: Option<String>,
        /// Read the PKCS#12 password from this file (its first line; for scripts and secret
        /// stores that mount files).
        #[arg(long, value_name = "FILE", conflicts_with = "password_env")]
        password_file: Option<PathBuf>,
        /// Read the PKCS#12 password from this environment variable.
        #[arg(long, value_name = "VARIABLE")]
        password_env: Option<String>,
    },
    /// List registered officers.
    List {
        /// One JSON array on stdout.
        #[arg(long)]
        json: bool,
    },
    /// Revoke an officer certificate: refused from the next request on.
    Revoke {
        /// Certificate serial (hex, any case, colons allowed).
        serial: crate::ca::Serial,
    },
}

/// What to say when the password cannot be asked for: rpassword reads the controlling
/// terminal (/dev/tty), and without one (cron, systemd, ssh without -t, CI) its error is a
/// bare "No such device or address".
const NO_TERMINAL: &str = "no terminal to ask for the PKCS#12 password: give it with \
     --password-file FILE or --password-env VARIABLE (or --password, visible to other users of \
     this machine while the command runs), or run the command on a terminal";

/// The password from --password, --password-file or --password-env, else the prompt.
fn officer_password(
    password: Option<String>,
    file: Option<&Path>,
    env: Option<&str>,
) -> anyhow::Result<Pin> {
    if let Some(p) = password {
        return Ok(Pin::new(p));
    }
    if let Some(file) = file {
        let text = zeroize::Zeroizing::new(
            std::fs::read_to_string(file)
                .with_context(|| format!("--password-file {}", file.display()))?,
        );
        let line = text.lines().next().unwrap_or_default();
        anyhow::ensure!(
            !line.is_empty(),
            "--password-file {}: the first line is empty",
            file.display()
        );
        return Ok(Pin::new(line.to_string()));
    }
    if let Some(name) = env {
        let value = std::env::var(name)
            .map(zeroize::Zeroizing::new)
            .map_err(|_| {
                anyhow::anyhow!("--password-env {name}: the variable is not set (or not UTF-8)")
            })?;
        anyhow::ensure!(
            !value.is_empty(),
            "--password-env {name}: the variable is empty"
        );
        return Ok(Pin::new(value.to_string()));
    }
    prompt_password()
}

fn prompt_password() -> anyhow::Result<Pin> {
    let ask = |prompt: &str| {
        rpassword::prompt_password(prompt)
            .map(zeroize::Zeroizing::new)
            .map_err(|e| match e.raw_os_error() {
                // ENXIO (no controlling terminal), ENOTTY, ENOENT (no /dev/tty at all).
                Some(6 | 25 | 2) => anyhow::anyhow!(NO_TERMINAL),
                _ => anyhow::anyhow!("reading the password from the terminal: {e}"),
            })
    };
    let first = ask("PKCS#12 password: ")?;
    let second = ask("again: ")?;
    if *first != *second {
        anyhow::bail!("the two passwords differ");
    }
    Ok(Pin::new(first.to_string()))
}

/// Creates `path` with mode 0600, refusing to overwrite.
fn create_private(path: &Path) -> anyhow::Result<std::fs::File> {
    crate::private_files::create(path).with_context(|| {
        format!(
            "creating {} (an existing file is never overwritten)",
            path.display()
        )
    })
}

pub(super) async fn run(root: &Root, command: OfficerCommand) -> anyhow::Result<ExitCode> {
    let config = super::load_config(root)?;
    match command {
        OfficerCommand::Issue {
            name,
            roles,
            out,
            password,
            password_file,
            password_env,
        } => {
            // Roles and the password first: a bad one must not cost a database connection or a
            // CA key load.
            let roles = parse_roles(&roles).map_err(|e| anyhow::anyhow!("--roles: {e}"))?;
            let password =
                officer_password(password, password_file.as_deref(), password_env.as_deref())?;
            let gateway = open(config).await?;
            issue(&gateway, &name, roles, &out, password).await
        }
        OfficerCommand::List { json } => list(&*open(config).await?, json).await,
        OfficerCommand::Revoke { serial } => revoke(&*open(config).await?, &serial).await,
    }
}

async fn open(config: crate::rules::Configuration) -> anyhow::Result<std::sync::Arc<Gateway>> {
    Gateway::open(config)
        .await
        .map_err(|e| anyhow::anyhow!("cannot open the gateway:\n{e}"))
}

/// `officer issue`: the PKCS#12 goes to `out`, created before anything is issued.
async fn issue(
    gateway: &Gateway,
    name: &str,
    roles: Vec<String>,
    out: &Path,
    password: Pin,
) -> anyhow::Result<ExitCode> {
    // Create the file first so that a bad path fails before anything is issued.
    let mut file = create_private(out)?;
    let issued = match gateway
        .issue_officer(&Caller::Cli, name, roles, password)
        .await
    {
        Ok(issued) => issued,
        Err(e) => {
            drop(file);
            let _ = std::fs::remove_file(out);
            // The CLI runs on the gateway host: show the operator the detail.
            let detail = e.log_detail().unwrap_or_else(|| e.to_string());
            anyhow::bail!("officer not issued: {detail} ({})", e.code());
        }
    };
    if let Err(e) = file
        .write_all(&issued.pkcs12)
        .and_then(|()| file.sync_all())
    {
        // Registered but not delivered: revoke, so no unknown certificate stays active.
        let _ = gateway
            .revoke_officer(
                &Caller::Cli,
                &crate::ca::Serial::parse(&issued.record.serial)?,
            )
            .await;
        anyhow::bail!(
            "writing {}: {e}; the certificate {} was revoked",
            out.display(),
            issued.record.serial
        );
    }
    outln!(
        "issued officer `{}` serial {} roles {} -> {} (from CA `{}`)",
        issued.record.name,
        issued.record.serial,
        issued.record.roles.join(","),
        out.display(),
        issued.record.ca
    );
    Ok(ExitCode::SUCCESS)
}

/// `officer list`: a table, or one JSON array.
async fn list(gateway: &Gateway, json: bool) -> anyhow::Result<ExitCode> {
    let officers = gateway.officers().await?;
    if json {
        let rows: Vec<_> = officers
            .iter()
            .map(|o| {
                serde_json::json!({
                    "serial": o.serial,
                    "ca": o.ca,
                    "name": o.name,
                    "roles": o.roles,
                    "status": o.status,
                    "fingerprint": o.fingerprint,
                    "created": Timestamp::from_unix(o.created),
                    "revoked": o.revoked.map(Timestamp::from_unix),
                    "notAfter": Timestamp::from_unix(o.not_after),
                })
            })
            .collect();
        outln!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        outln!("{:<42} {:<8} {:<30} NAME", "SERIAL", "STATUS", "ROLES");
        for o in &officers {
            outln!(
                "{:<42} {:<8} {:<30} {}",
                o.serial,
                o.status.name(),
                o.roles.join(","),
                o.name
            );
        }
        errln!("{} officer(s)", officers.len());
    }
    Ok(ExitCode::SUCCESS)
}

/// `officer revoke`.
async fn revoke(gateway: &Gateway, serial: &crate::ca::Serial) -> anyhow::Result<ExitCode> {
    match gateway.revoke_officer(&Caller::Cli, serial).await? {
        Some(o) => {
            outln!(
                "officer `{}` serial {} is {}",
                o.name,
                o.serial,
                o.status.name()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => {
            errln!("no officer with serial `{serial}` (see `ast-gateway officer list`)");
            Ok(ExitCode::FAILURE)
        }
    }
}
