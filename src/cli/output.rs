//! Standard output for commands, tolerant of a closed pipe.
//!
//! Rust ignores SIGPIPE, so a write to a pipe whose reader is gone (`ast-gateway config check
//! | head -1`) fails with `BrokenPipe`, and `println!` turns that into a panic. Commands print
//! through [`outln!`]/[`out!`] instead: after the first `BrokenPipe` every later write is
//! dropped quietly and the command finishes with its own exit status. Other write errors (a
//! full disk) are reported.

use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};

static CLOSED: AtomicBool = AtomicBool::new(false);

/// Writes to `writer`; a `BrokenPipe` sets `closed` and is swallowed.
pub(crate) fn write_to(
    writer: &mut dyn Write,
    closed: &AtomicBool,
    args: std::fmt::Arguments<'_>,
) -> anyhow::Result<()> {
    if closed.load(Ordering::Relaxed) {
        return Ok(());
    }
    match writer.write_fmt(args).and_then(|()| writer.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => {
            closed.store(true, Ordering::Relaxed);
            Ok(())
        }
        Err(e) => Err(anyhow::anyhow!("writing to standard output: {e}")),
    }
}

/// Writes to standard output (see the module comment).
pub(crate) fn write(args: std::fmt::Arguments<'_>) -> anyhow::Result<()> {
    write_to(&mut std::io::stdout().lock(), &CLOSED, args)
}

/// Writes to standard error, ignoring failures (a closed stderr must not panic either).
pub(crate) fn write_err(args: std::fmt::Arguments<'_>) {
    let _ = std::io::stderr().lock().write_fmt(args);
}

/// `eprintln!` that never panics.
macro_rules! errln {
    ($($arg:tt)*) => {
        $crate::cli::output::write_err(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `println!` that stops quietly when standard output is a closed pipe. Use inside functions
/// returning `anyhow::Result`.
macro_rules! outln {
    () => {
        $crate::cli::output::write(format_args!("\n"))?
    };
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!("{}\n", format_args!($($arg)*)))?
    };
}

/// `print!` that stops quietly when standard output is a closed pipe.
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::cli::output::write(format_args!($($arg)*))?
    };
}

pub(crate) use {errln, out, outln};

#[cfg(test)]
mod tests {
    use super::*;

    struct Broken;
    impl Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::ErrorKind::BrokenPipe.into())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    struct Full;
    impl Write for Full {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::from_raw_os_error(28))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn broken_pipe_stops_quietly_other_errors_report() {
        let closed = AtomicBool::new(false);
        assert!(write_to(&mut Broken, &closed, format_args!("a\n")).is_ok());
        assert!(closed.load(Ordering::Relaxed));
        // Later writes are dropped without touching the writer.
        assert!(write_to(&mut Full, &closed, format_args!("b\n")).is_ok());

        let open = AtomicBool::new(false);
        let e = write_to(&mut Full, &open, format_args!("c\n")).unwrap_err();
        assert!(e.to_string().contains("standard output"), "{e}");
        let mut buffer = Vec::new();
        write_to(&mut buffer, &open, format_args!("d {}\n", 1)).unwrap();
        assert_eq!(buffer, b"d 1\n");
    }
}
