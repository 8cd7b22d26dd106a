//! `certs import` (certificate files, directories, PEM bundles, or the `openssl ca` database)
//! and `ca import-crl`: the files are walked and streamed here, the checking and writing is
//! `issuance::HistoryImport`. Progress goes to standard error on a terminal; the counts at the
//! end (standard output, or one JSON object with --json).

use std::fs::File;
use std::io::{BufRead, BufReader, IsTerminal, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::Args;

use super::output::{errln, outln};
use super::store::{Access, open_configured};
use crate::ca::history::{PemBlocks, parse_index_line};
use crate::config::Root;
use crate::issuance::{HistoryImport, ImportReport};

/// The largest DER file read whole.
const MAX_DER_FILE: u64 = 4 * 1024 * 1024;

/// `certs import`
#[derive(Debug, Args)]
pub struct CertsImportArgs {
    /// The configured CA whose history this is (its certificate checks every signature).
    #[arg(long)]
    pub ca: String,
    /// Certificate files (PEM, PEM bundles, DER) or directories of them (walked recursively).
    pub paths: Vec<PathBuf>,
    /// The `openssl ca` database (index.txt): statuses and revocations, with the certificates
    /// from --certs-dir (`<SERIAL>.pem`, the `new_certs_dir` of openssl.cnf).
    #[arg(long, value_name = "INDEX_TXT", requires = "certs_dir")]
    pub openssl_index: Option<PathBuf>,
    /// The directory of the certificates named in --openssl-index.
    #[arg(long, value_name = "DIR")]
    pub certs_dir: Option<PathBuf>,
    /// The counts as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

/// `ca import-crl`
#[derive(Debug, Args)]
pub struct CrlImportArgs {
    /// The configured CA that signed the CRLs.
    #[arg(long)]
    pub ca: String,
    /// CRL files (PEM or DER).
    #[arg(required = true)]
    pub files: Vec<PathBuf>,
    /// The counts as one JSON object on standard output.
    #[arg(long)]
    pub json: bool,
}

async fn start(root: &Root, ca: &str, source: &'static str) -> anyhow::Result<HistoryImport> {
    let config = super::load_config(root)?;
    let store = open_configured(&config, Access::Write(root)).await?;
    Ok(HistoryImport::start(
        &config.settings,
        store,
        ca,
        source,
        &crate::identity::Caller::Cli.to_string(),
    )?)
}

/// `certs import`.
pub(super) async fn certs(root: &Root, args: CertsImportArgs) -> anyhow::Result<ExitCode> {
    if args.paths.is_empty() && args.openssl_index.is_none() {
        anyhow::bail!(
            "nothing to import: give certificate files or directories, or --openssl-index with --certs-dir"
        );
    }
    let mut import = start(root, &args.ca, "import").await?;
    let mut progress = Progress::new();
    if let (Some(index), Some(dir)) = (&args.openssl_index, &args.certs_dir) {
        openssl_index(&mut import, index, dir, &mut progress).await?;
    }
    for path in &args.paths {
        walk(&mut import, path, &mut progress).await?;
    }
    finish(import, &progress, args.json).await
}

/// `ca import-crl`.
pub(super) async fn crls(root: &Root, args: CrlImportArgs) -> anyhow::Result<ExitCode> {
    let mut import = start(root, &args.ca, "crl").await?;
    let mut progress = Progress::new();
    for file in &args.files {
        let origin = file.display().to_string();
        for (label, der) in blocks(file)? {
            match label.as_deref() {
                None | Some("X509 CRL") => import.crl(&origin, &der).await?,
                Some(_) => {}
            }
            progress.tick(import.report());
        }
    }
    finish(import, &progress, args.json).await
}

async fn finish(
    import: HistoryImport,
    progress: &Progress,
    json: bool,
) -> anyhow::Result<ExitCode> {
    let report = import.finish().await?;
    progress.done();
    for message in &report.messages {
        errln!("{message}");
    }
    if json {
        outln!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        outln!("{}", summary(&report));
    }
    Ok(if report.refused_total() > 0 {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    })
}

/// The closing line: imported, already there, refused by reason.
fn summary(report: &ImportReport) -> String {
    let refused: Vec<String> = report
        .refused
        .iter()
        .map(|(code, n)| format!("{code}: {n}"))
        .collect();
    let mut line = format!(
        "read {}, imported {}, updated {}, already there {}, refused {}",
        report.read,
        report.imported,
        report.updated,
        report.already_there,
        report.refused_total()
    );
    if !refused.is_empty() {
        line += &format!(" ({})", refused.join(", "));
    }
    if let Some(n) = report.highest_crl_number {
        line += &format!("; highest CRL number read {n}, the next CRL is numbered above it");
    }
    line
}

/// The certificates of a file or (recursively, in name order) a directory.
async fn walk(
    import: &mut HistoryImport,
    path: &Path,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let mut pending = vec![path.to_path_buf()];
    while let Some(path) = pending.pop() {
        if path.is_dir() {
            let mut entries: Vec<PathBuf> = std::fs::read_dir(&path)
                .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?
                .filter_map(|e| e.ok().map(|e| e.path()))
                .collect();
            entries.sort();
            entries.reverse();
            pending.extend(entries);
            continue;
        }
        let origin = path.display().to_string();
        let blocks = match blocks(&path) {
            Ok(blocks) => blocks,
            Err(e) => {
                import.refuse(&origin, "unreadable", &e.to_string());
                continue;
            }
        };
        for (n, (label, der)) in blocks.enumerate() {
            match label.as_deref() {
                None | Some("CERTIFICATE" | "X509 CERTIFICATE" | "TRUSTED CERTIFICATE") => {
                    let origin = if n == 0 {
                        origin.clone()
                    } else {
                        format!("{origin} (block {})", n + 1)
                    };
                    import.certificate(&origin, &der).await?;
                }
                Some(_) => {}
            }
            progress.tick(import.report());
        }
    }
    Ok(())
}

/// The `openssl ca` database, line by line, each with its certificate file when there is one.
async fn openssl_index(
    import: &mut HistoryImport,
    index: &Path,
    dir: &Path,
    progress: &mut Progress,
) -> anyhow::Result<()> {
    let file = File::open(index).map_err(|e| anyhow::anyhow!("{}: {e}", index.display()))?;
    for (n, line) in BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| anyhow::anyhow!("{}: {e}", index.display()))?;
        if line.trim().is_empty() {
            continue;
        }
        let origin = format!("{}:{}", index.display(), n + 1);
        let entry = match parse_index_line(&line) {
            Ok(entry) => entry,
            Err(e) => {
                import.refuse(&origin, "unreadable", &e);
                continue;
            }
        };
        let hex = entry.serial.hex().to_string();
        let candidates = [hex.to_ascii_uppercase(), hex.clone()];
        let file = candidates
            .iter()
            .map(|s| dir.join(format!("{s}.pem")))
            .find(|p| p.is_file());
        let certificate = match file {
            None => None,
            Some(file) => match blocks(&file).map(|mut b| b.next()) {
                Ok(Some((_, der))) => Some(der),
                Ok(None) => {
                    import.refuse(
                        &origin,
                        "unreadable",
                        &format!("{}: no certificate in it", file.display()),
                    );
                    continue;
                }
                Err(e) => {
                    import.refuse(&origin, "unreadable", &e.to_string());
                    continue;
                }
            },
        };
        import.index_entry(&origin, entry, certificate).await?;
        progress.tick(import.report());
    }
    Ok(())
}

/// The blocks of a file, each with its PEM label (`None`: a DER file).
type Blocks = Box<dyn Iterator<Item = (Option<String>, Vec<u8>)>>;

/// The blocks of a file: PEM blocks streamed with their labels, or the whole file as one DER
/// block (label `None`). A block that does not decode ends the file with an error.
fn blocks(path: &Path) -> anyhow::Result<Blocks> {
    let file = File::open(path).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    let mut reader = BufReader::new(file);
    let first = reader
        .fill_buf()
        .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    if first.first() == Some(&0x30) {
        let mut der = Vec::new();
        reader
            .take(MAX_DER_FILE + 1)
            .read_to_end(&mut der)
            .map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
        if der.len() as u64 > MAX_DER_FILE {
            anyhow::bail!("{}: a DER file larger than 4 MiB", path.display());
        }
        return Ok(Box::new(std::iter::once((None, der))));
    }
    let name = path.display().to_string();
    Ok(Box::new(PemBlocks::new(reader).map_while(
        move |block| match block {
            Ok((label, der)) => Some((Some(label), der)),
            Err(e) => {
                errln!("{name}: {e}");
                None
            }
        },
    )))
}

/// Progress on standard error while it is a terminal.
struct Progress {
    terminal: bool,
    shown: u64,
}

impl Progress {
    fn new() -> Progress {
        Progress {
            terminal: std::io::stderr().is_terminal(),
            shown: 0,
        }
    }

    fn tick(&mut self, report: &ImportReport) {
        if self.terminal && report.read >= self.shown + 1000 {
            self.shown = report.read;
            eprint!(
                "\r{} read, {} imported, {} already there, {} refused",
                report.read,
                report.imported,
                report.already_there,
                report.refused_total()
            );
        }
    }

    fn done(&self) {
        if self.terminal && self.shown > 0 {
            eprintln!();
        }
    }
}
