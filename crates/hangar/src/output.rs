//! Standard output that does not panic when its reader goes away.
//!
//! `println!` panics when stdout is a closed pipe (`hangar status | head`).
//! [`outln!`] and [`out!`] write through [`write_stdout`] instead.

use std::io::Write as _;

/// Writes `args` to stdout. When stdout is a closed pipe, the process ends
/// at once with success, as other command-line tools do: the reader has what
/// it wanted. Any other write error ends it with a message and status 1.
pub(crate) fn write_stdout(args: std::fmt::Arguments<'_>) {
    let mut out = std::io::stdout().lock();
    if let Err(e) = out.write_fmt(args).and_then(|()| out.flush()) {
        if e.kind() == std::io::ErrorKind::BrokenPipe {
            std::process::exit(0);
        }
        eprintln!("hangar: cannot write to stdout: {e}");
        std::process::exit(1);
    }
}

/// `println!` through [`write_stdout`].
macro_rules! outln {
    () => {
        $crate::output::write_stdout(format_args!("\n"))
    };
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!("{}\n", format_args!($($arg)*)))
    };
}

/// `print!` through [`write_stdout`].
macro_rules! out {
    ($($arg:tt)*) => {
        $crate::output::write_stdout(format_args!($($arg)*))
    };
}
