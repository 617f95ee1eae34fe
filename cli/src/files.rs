//! Files named on the command line (or by a default), read and written with their path in
//! the error, so the message says which one to fix.

use std::path::{Path, PathBuf};

/// A file named on the command line (or by a default) that could not be read or written.
#[derive(Debug, thiserror::Error)]
#[error("{}: {source}", path.display())]
pub struct FileError {
    pub path: PathBuf,
    pub source: std::io::Error,
}

impl FileError {
    fn at(path: &Path) -> impl FnOnce(std::io::Error) -> Self + '_ {
        move |source| Self {
            path: path.to_owned(),
            source,
        }
    }
}

pub fn read_text(path: &Path) -> Result<String, FileError> {
    std::fs::read_to_string(path).map_err(FileError::at(path))
}

pub fn read_bytes(path: &Path) -> Result<Vec<u8>, FileError> {
    std::fs::read(path).map_err(FileError::at(path))
}

pub fn write_file(path: &Path, contents: impl AsRef<[u8]>) -> Result<(), FileError> {
    std::fs::write(path, contents).map_err(FileError::at(path))
}

pub fn list_dir(path: &Path) -> Result<std::fs::ReadDir, FileError> {
    std::fs::read_dir(path).map_err(FileError::at(path))
}
