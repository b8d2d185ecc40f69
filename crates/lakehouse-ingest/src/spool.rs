//! Spooling a streamed body to a temporary file: bounded memory, a size cap, a fingerprint — and, for the
//! formats whose inference reads every row, a tap that hands the same bytes to the inference pass while
//! they arrive, so inferring costs no time of its own beyond the upload.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom, Write};
use std::path::Path;

use bytes::{Buf, Bytes};
use futures::StreamExt;
use lakehouse_api::storage::ByteStream;
use tokio::sync::mpsc;

use crate::{Error, Result};

/// A body on disk.
#[derive(Debug)]
pub struct Spooled {
    /// The file. It has no name, so it is gone once its last handle closes: when the request is done, and
    /// also when the process is killed (a named temporary file would stay behind after a `kill -9`).
    pub file: File,
    /// Bytes stored (after a stripped byte-order mark).
    pub size: u64,
    /// Hex BLAKE3 hash of the stored bytes. BLAKE3 rather than SHA-256: as strong, and 27 against 63 ms of
    /// CPU for the 98 MB benchmark body, while inference needs both cores.
    pub blake3: String,
}

impl Spooled {
    /// A handle on the file, at its start. Every handle shares one position, so this is for one reader at a
    /// time; readers side by side read at offsets ([`read_exact_at`]).
    pub fn reader(&self) -> Result<File> {
        let mut file = self
            .file
            .try_clone()
            .map_err(|e| Error::Spool(e.to_string()))?;
        file.seek(SeekFrom::Start(0))
            .map_err(|e| Error::Spool(e.to_string()))?;
        Ok(file)
    }
}

/// Reads `buf.len()` bytes at `offset` of `file` without using or moving the position its handles share.
pub fn read_exact_at(file: &File, buf: &mut [u8], offset: u64) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::FileExt::read_exact_at(file, buf, offset)
    }
    #[cfg(windows)]
    {
        let mut done = 0;
        while done < buf.len() {
            match std::os::windows::fs::FileExt::seek_read(
                file,
                &mut buf[done..],
                offset + done as u64,
            ) {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => done += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
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
        tempfile::tempfile_in(dir).map_err(|e| Error::Spool(format!("{}: {e}", dir.display())))?;
    let std_file = file.try_clone().map_err(|e| Error::Spool(e.to_string()))?;
    let mut head: Vec<u8> = Vec::new();
    let mut head_done = !strip_bom;
    let mut body = body;
    let mut sink = Sink {
        store: Store::start(std_file),
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
    let Sink { store, size, .. } = sink;
    let blake3 = store.finish().await?;
    Ok(Spooled { file, size, blake3 })
}

/// Chunks in flight to the storing thread.
const STORE_CHUNKS: usize = 16;

/// Writes and fingerprints the stored bytes on a thread of its own, so that receiving the next chunk,
/// storing and hashing this one, and the tap's reader run side by side rather than one after another.
struct Store {
    chunks: Option<mpsc::Sender<Bytes>>,
    done: tokio::task::JoinHandle<std::io::Result<String>>,
}

impl Store {
    fn start(file: std::fs::File) -> Self {
        let (chunks, mut rx) = mpsc::channel::<Bytes>(STORE_CHUNKS);
        let done = tokio::task::spawn_blocking(move || {
            // A small buffer: chunks at least its size are written straight from the chunk (a body usually
            // arrives in chunks of about 400 KB), only smaller ones are gathered into fewer writes. (With a
            // 1 MiB buffer every byte was copied once more: about 10 ms of CPU for 100 MB.)
            let mut out = std::io::BufWriter::with_capacity(64 * 1024, file);
            let mut hasher = blake3::Hasher::new();
            while let Some(chunk) = rx.blocking_recv() {
                hasher.update(&chunk);
                out.write_all(&chunk)?;
            }
            out.flush()?;
            Ok(hasher.finalize().to_hex().to_string())
        });
        Store {
            chunks: Some(chunks),
            done,
        }
    }

    async fn send(&mut self, data: Bytes) -> Result<()> {
        let sent = match &self.chunks {
            Some(chunks) => chunks.send(data).await.is_ok(),
            None => false,
        };
        if sent {
            return Ok(());
        }
        // The thread stopped: it failed, and says why.
        self.chunks = None;
        match (&mut self.done).await {
            Ok(Err(e)) => Err(Error::Spool(e.to_string())),
            Ok(Ok(_)) => Err(Error::Spool("the spool file was closed early".into())),
            Err(e) => Err(Error::Task(e.to_string())),
        }
    }

    /// Waits for every byte to be written; the fingerprint.
    async fn finish(mut self) -> Result<String> {
        self.chunks = None;
        match self.done.await {
            Ok(Ok(digest)) => Ok(digest),
            Ok(Err(e)) => Err(Error::Spool(e.to_string())),
            Err(e) => Err(Error::Task(e.to_string())),
        }
    }
}

/// Where the stored bytes go: the file and its fingerprint, the size count and the tap.
struct Sink {
    store: Store,
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
        // Both take the chunk itself (counted references), not copies.
        self.store.send(data.clone()).await?;
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

    /// What the spool stored, read through a handle of its own.
    fn stored(spooled: &Spooled) -> Vec<u8> {
        let mut bytes = Vec::new();
        spooled
            .reader()
            .expect("reader")
            .read_to_end(&mut bytes)
            .expect("read");
        bytes
    }

    #[tokio::test]
    async fn the_spool_file_has_no_name_and_reads_at_offsets() {
        // Nothing is left in the directory, even while the file is open: a killed process leaves no file.
        let dir = tempfile::tempdir().expect("dir");
        let s = spool(body(&[b"0123", b"456789"]), dir.path(), 100, false, None)
            .await
            .expect("spool");
        assert_eq!(std::fs::read_dir(dir.path()).expect("list").count(), 0);
        let mut middle = [0u8; 4];
        read_exact_at(&s.file, &mut middle, 3).expect("read at");
        assert_eq!(&middle, b"3456");
        assert!(read_exact_at(&s.file, &mut middle, 8).is_err());
        // Offset reads leave the shared position alone; a reader starts at the start.
        assert_eq!(stored(&s), b"0123456789");
        assert_eq!(stored(&s), b"0123456789");
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
        assert_eq!(stored(&s), b"a,b\n1,2\n");
        let s = spool(body(&[b"ab"]), dir.path(), 100, true, None)
            .await
            .expect("short");
        assert_eq!(stored(&s), b"ab");
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

    #[tokio::test]
    async fn a_file_that_cannot_be_written_fails_the_spool() {
        let dir = tempfile::tempdir().expect("dir");
        let path = dir.path().join("read-only");
        std::fs::write(&path, b"").expect("create");
        // Small writes are buffered and fail at the end; large ones fail while the body is still coming.
        for chunks in [1, 64] {
            let mut store = Store::start(std::fs::File::open(&path).expect("open"));
            let mut failed = None;
            for _ in 0..chunks {
                if let Err(e) = store.send(Bytes::from(vec![b'x'; 256 * 1024])).await {
                    failed = Some(e);
                    break;
                }
            }
            let failed = match failed {
                Some(e) => Err(e),
                None => store.finish().await,
            };
            assert!(matches!(failed, Err(Error::Spool(_))), "{failed:?}");
        }
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
        let kept = stored(&s);
        assert_eq!(kept, b"id,name\n1,x\n2,y\n");
        assert_eq!(s.blake3, blake3::hash(&kept).to_hex().to_string());
        assert_eq!(s.size, kept.len() as u64);
        assert_eq!(read.await.expect("join").expect("read"), kept);

        // A reader that stops early does not stop the spool.
        let (tx, reader) = tap(1);
        drop(reader);
        let s = spool(body(&[b"a", b"b", b"c"]), dir.path(), 100, false, Some(tx))
            .await
            .expect("spool");
        assert_eq!(s.size, 3);
    }
}
