//! Spooling a streamed body to a temporary file: bounded memory, a size cap, a fingerprint — and, for the
//! formats whose inference reads every row, a tap that hands the same bytes to the inference pass while
//! they arrive, so inferring costs no time of its own beyond the upload.

use std::io::Read;
use std::path::Path;

use bytes::{Buf, Bytes};
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

/// The sending side of a tap: every byte stored is also sent here, in order. Sending waits when the reader
/// is behind (the channel is bounded), so the upload goes at the pace of the slower of the two.
pub type Tap = tokio::sync::mpsc::Sender<Bytes>;

/// A tap of `chunks` chunks and the blocking reader of its bytes.
pub fn tap(chunks: usize) -> (Tap, TapReader) {
    let (tx, rx) = tokio::sync::mpsc::channel(chunks.max(1));
    (
        tx,
        TapReader {
            rx,
            current: Bytes::new(),
        },
    )
}

/// Reads a tap's bytes on a blocking thread; ends when the spool finishes or fails (a failed spool's
/// request is answered with its error, so what was read then is never used).
#[derive(Debug)]
pub struct TapReader {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
    current: Bytes,
}

impl Read for TapReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(chunk) => self.current = chunk,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current.advance(n);
        Ok(n)
    }
}

/// Writes `body` to a new file in `dir`, refusing more than `max_bytes`. With `strip_bom`, a leading UTF-8
/// byte-order mark is dropped (text formats). With `tap`, the stored bytes are also sent there (until its
/// reader goes away).
pub async fn spool(
    body: ByteStream,
    dir: &Path,
    max_bytes: u64,
    strip_bom: bool,
    tap: Option<Tap>,
) -> Result<Spooled> {
    let file =
        NamedTempFile::new_in(dir).map_err(|e| Error::Spool(format!("{}: {e}", dir.display())))?;
    let std_file = file.reopen().map_err(|e| Error::Spool(e.to_string()))?;
    let mut head: Vec<u8> = Vec::new();
    let mut head_done = !strip_bom;
    let mut body = body;
    let mut sink = Sink {
        out: tokio::io::BufWriter::with_capacity(1 << 20, tokio::fs::File::from_std(std_file)),
        hasher: Sha256::new(),
        size: 0,
        max_bytes,
        tap,
    };
    while let Some(chunk) = body.next().await {
        let mut data = chunk.map_err(Error::Body)?;
        if !head_done {
            // The mark may be split across chunks: gather the first three bytes before deciding.
            let take = (BOM.len() - head.len()).min(data.len());
            head.extend_from_slice(&data[..take]);
            data.advance(take);
            if head.len() < BOM.len() {
                continue;
            }
            head_done = true;
            let head = std::mem::take(&mut head);
            if head != BOM {
                sink.write(Bytes::from(head)).await?;
            }
        }
        sink.write(data).await?;
    }
    if !head_done && head != BOM {
        sink.write(Bytes::from(head)).await?;
    }
    let Sink {
        mut out,
        hasher,
        size,
        ..
    } = sink;
    out.flush().await.map_err(|e| Error::Spool(e.to_string()))?;
    Ok(Spooled {
        file,
        size,
        sha256: hex::encode(hasher.finalize()),
    })
}

/// Where the stored bytes go: the file, the fingerprint, the size count and the tap.
struct Sink {
    out: tokio::io::BufWriter<tokio::fs::File>,
    hasher: Sha256,
    size: u64,
    max_bytes: u64,
    tap: Option<Tap>,
}

impl Sink {
    async fn write(&mut self, data: Bytes) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        self.size += data.len() as u64;
        if self.size > self.max_bytes {
            return Err(Error::TooLarge {
                max_bytes: self.max_bytes,
            });
        }
        self.hasher.update(&data);
        self.out
            .write_all(&data)
            .await
            .map_err(|e| Error::Spool(e.to_string()))?;
        if let Some(tap) = &self.tap
            && tap.send(data).await.is_err()
        {
            // The reader stopped (inference found a fault): the body is still stored and fingerprinted.
            self.tap = None;
        }
        Ok(())
    }
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
            None,
        )
        .await
        .expect("spool");
        assert_eq!(std::fs::read(s.file.path()).expect("read"), b"a,b\n1,2\n");
        let s = spool(body(&[b"ab"]), dir.path(), 100, true, None)
            .await
            .expect("short");
        assert_eq!(std::fs::read(s.file.path()).expect("read"), b"ab");
        let err = spool(
            body(&[b"0123456789", b"0123456789"]),
            dir.path(),
            15,
            false,
            None,
        )
        .await;
        assert!(matches!(err, Err(Error::TooLarge { .. })));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_tap_reads_exactly_what_is_stored() {
        let dir = tempfile::tempdir().expect("dir");
        let (tx, mut reader) = tap(1);
        let read = tokio::task::spawn_blocking(move || {
            let mut all = Vec::new();
            reader.read_to_end(&mut all).map(|_| all)
        });
        let s = spool(
            body(&[b"\xEF\xBB", b"\xBFid,n", b"ame\n1,", b"x\n", b"", b"2,y\n"]),
            dir.path(),
            100,
            true,
            Some(tx),
        )
        .await
        .expect("spool");
        let stored = std::fs::read(s.file.path()).expect("read");
        assert_eq!(stored, b"id,name\n1,x\n2,y\n");
        assert_eq!(read.await.expect("join").expect("read"), stored);

        // A reader that stops early does not stop the spool.
        let (tx, reader) = tap(1);
        drop(reader);
        let s = spool(body(&[b"a", b"b", b"c"]), dir.path(), 100, false, Some(tx))
            .await
            .expect("spool");
        assert_eq!(s.size, 3);
    }
}
