//! Logging set-up: `tracing-subscriber` on standard error, text or JSON.
//!
//! Text lines are coloured only when standard error is a terminal and `NO_COLOR` is unset (or
//! empty, as no-color.org defines it), so a log piped to a file or journald carries no ANSI
//! escapes. JSON writes one object per line with `timestamp`, `level`, `target` and the event's
//! fields flattened next to `message`; audit events have the target `audit`. Levels come from
//! `RUST_LOG`; by default `info` for `serve` (sqlx's own chatter, such as PostgreSQL's
//! `relation "_sqlx_migrations" already exists` notice, at `warn`), and `warn` for the other
//! commands, whose results are their output (the audit rows they write are in the database).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::{LogFormat, Root};

/// Whether text logs get ANSI colours: only on a terminal, and only without `NO_COLOR`.
pub fn colour_wanted(stderr_is_terminal: bool, no_color: Option<&std::ffi::OsStr>) -> bool {
    stderr_is_terminal && no_color.is_none_or(|v| v.is_empty())
}

/// The format to use: the command line's, else `[log] format` of the root, else text.
pub fn format_for(root: &Root, flag: Option<LogFormat>) -> LogFormat {
    flag.or_else(|| crate::config::peek_log_format(root))
        .unwrap_or_default()
}

/// The filter when `RUST_LOG` is not set.
pub fn default_filter(serving: bool) -> &'static str {
    if serving { "info,sqlx=warn" } else { "warn" }
}

/// Installs the global subscriber. Called once, by `main`, before anything logs.
pub fn init(format: LogFormat, serving: bool) {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new(default_filter(serving)));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match format {
        LogFormat::Text => {
            let colour = colour_wanted(
                std::io::stderr().is_terminal(),
                std::env::var_os("NO_COLOR").as_deref(),
            );
            builder.with_ansi(colour).init();
        }
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .with_ansi(false)
            .init(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::ffi::OsStr;

    #[test]
    fn colour_only_on_a_terminal_without_no_color() {
        assert!(colour_wanted(true, None));
        assert!(!colour_wanted(false, None));
        assert!(!colour_wanted(true, Some(OsStr::new("1"))));
        // no-color.org: an empty NO_COLOR does not count.
        assert!(colour_wanted(true, Some(OsStr::new(""))));
        assert!(!colour_wanted(false, Some(OsStr::new("1"))));
    }

    #[test]
    fn flag_beats_file_beats_default() {
        let dir = tempfile::tempdir().unwrap();
        let root = Root::new(dir.path());
        assert_eq!(format_for(&root, None), LogFormat::Text);
        assert_eq!(format_for(&root, Some(LogFormat::Json)), LogFormat::Json);
        std::fs::create_dir_all(root.conf()).unwrap();
        std::fs::write(root.gateway_toml(), "[log]\nformat = \"json\"\n").unwrap();
        assert_eq!(format_for(&root, None), LogFormat::Json);
        assert_eq!(format_for(&root, Some(LogFormat::Text)), LogFormat::Text);
    }
}
