//! Spooling a streamed body to a temporary file: bounded memory, a size cap, a fingerprint.

use std::path::Path;

use futures::StreamExt;
use lakehouse_api::storage::ByteStream;
use sha2::{Digest, Sha256};
use tempfile::NamedTempFile;
use tokio::io::AsyncWriteExt;

use crate::{Error, Result};

/// A body on disk.
#[derive(Debug)]
pub struct Spooled {
    /// The file (deleted on drop).
    pub file: NamedTempFile,
    /// Bytes stored (after a stripped byte-order mark).
    pub size: u64,
    /// Hex SHA-256 of the stored bytes.
    pub sha256: String,
}

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Writes `body` to a new file in `dir`, refusing more than `max_bytes`. With `strip_bom`, a leading UTF-8
/// byte-order mark is dropped (text formats).
pub async fn spool(
    body: ByteStream,
    dir: &Path,
    max_bytes: u64,
    strip_bom: bool,
) -> Result<Spooled> {
    let file =
        NamedTempFile::new_in(dir).map_err(|e| Error::Spool(format!("{}: {e}", dir.display())))?;
    let std_file = file.reopen().map_err(|e| Error::Spool(e.to_string()))?;
    let mut out = tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(std_file));
    let mut hasher = Sha256::new();
    let mut size = 0u64;
    let mut head: Vec<u8> = Vec::new();
    let mut head_done = !strip_bom;
    let mut body = body;
    while let Some(chunk) = body.next().await {
        let chunk = chunk.map_err(Error::Body)?;
        let mut data: &[u8] = &chunk;
        if !head_done {
            // The mark may be split across chunks: gather the first three bytes before deciding.
            let take = (BOM.len() - head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
            data = &data[take..];
            if head.len() < BOM.len() {
                continue;
            }
            head_done = true;
            let head = std::mem::take(&mut head);
            if head != BOM {
                write(&mut out, &mut hasher, &mut size, &head, max_bytes).await?;
            }
        }
        write(&mut out, &mut hasher, &mut size, data, max_bytes).await?;
    }
    if !head_done && head != BOM {
        write(&mut out, &mut hasher, &mut size, &head, max_bytes).await?;
    }
    out.flush().await.map_err(|e| Error::Spool(e.to_string()))?;
    Ok(Spooled {
        file,
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

async fn write(
    out: &mut tokio::io::BufWriter<tokio::fs::File>,
    hasher: &mut Sha256,
    size: &mut u64,
    data: &[u8],
    max_bytes: u64,
) -> Result<()> {
    *size += data.len() as u64;
    if *size > max_bytes {
        return Err(Error::TooLarge { max_bytes });
    }
    hasher.update(data);
    out.write_all(data)
        .await
        .map_err(|e| Error::Spool(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn body(chunks: &[&'static [u8]]) -> ByteStream {
        futures::stream::iter(
            chunks
                .iter()
                .map(|c| Ok(Bytes::from_static(c)))
                .collect::<Vec<_>>(),
        )
        .boxed()
    }

    #[tokio::test]
    async fn strips_a_split_bom_and_caps_size() {
        let dir = tempfile::tempdir().expect("dir");
        let s = spool(
            body(&[b"\xEF", b"\xBB\xBFa,b\n", b"1,2\n"]),
            dir.path(),
            100,
            true,
        )
        .await
        .expect("spool");
        assert_eq!(std::fs::read(s.file.path()).expect("read"), b"a,b\n1,2\n");
        let s = spool(body(&[b"ab"]), dir.path(), 100, true)
            .await
            .expect("short");
        assert_eq!(std::fs::read(s.file.path()).expect("read"), b"ab");
        let err = spool(body(&[b"0123456789", b"0123456789"]), dir.path(), 15, false).await;
        assert!(matches!(err, Err(Error::TooLarge { .. })));
    }
}
