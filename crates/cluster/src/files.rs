//! Small files of the metadata directory (peer list, layout), replaced whole.

use std::io::Write;
use std::path::Path;

/// Replaces `path` with `bytes`: written to a temporary file, synced, then
/// renamed over it, so a crash leaves the old content or the new, never a mix.
pub(crate) fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let tmp = path.with_extension("tmp");
    let mut f = std::fs::File::create(&tmp)?;
    f.write_all(bytes)?;
    f.sync_all()?;
    std::fs::rename(&tmp, path)
}
