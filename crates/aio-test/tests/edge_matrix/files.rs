//! Files: open, read, write (a FIFO, where they wait), read at the cursor,
//! `read_at`, `write_at`, metadata (a regular file, where they complete by
//! themselves), close.

use std::cell::RefCell;
use std::ffi::CString;
use std::io::{self, Read as _, Write as _};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::rc::Rc;

use aio_core::timeout;
use aio_fs::File;
use aio_test::{Dir, payload};

use crate::harness::{Case, Ending, Endings, Local, a_prefix, completed, ensure, invalid_input, ready, received};
use crate::net::fresh_dir;

fn mkfifo(p: &Path) -> io::Result<()> {
    let c = CString::new(p.as_os_str().as_bytes()).map_err(io::Error::other)?;
    // SAFETY: a valid NUL-terminated path.
    if unsafe { libc::mkfifo(c.as_ptr(), 0o600) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

pub struct FifoFx {
    path: PathBuf,
    /// The far end (a writer for reads, a reader for writes).
    far: RefCell<Option<std::fs::File>>,
    file: RefCell<Option<Rc<File>>>,
    reader: RefCell<Option<std::thread::JoinHandle<io::Result<Vec<u8>>>>>,
    _dir: Dir,
}

impl FifoFx {
    fn new() -> io::Result<FifoFx> {
        let dir = fresh_dir("fifo");
        let path = dir.join("fifo");
        mkfifo(&path)?;
        Ok(FifoFx {
            path,
            far: RefCell::new(None),
            file: RefCell::new(None),
            reader: RefCell::new(None),
            _dir: dir,
        })
    }

    fn file(&self) -> Rc<File> {
        self.file.borrow().clone().expect("opened")
    }

    /// Opens the far end as a writer that does not wait for a reader
    /// (`O_RDWR`).
    fn open_far_writer(&self) -> io::Result<()> {
        let w = std::fs::OpenOptions::new().read(true).write(true).open(&self.path)?;
        *self.far.borrow_mut() = Some(w);
        Ok(())
    }

    /// The far end goes.
    fn drop_far(&self) -> Local<'_, io::Result<()>> {
        drop(self.far.borrow_mut().take());
        ready(Ok(()))
    }
}

/// An open of a FIFO nobody writes to (it waits for a writer): dropped,
/// timed out or cancelled, the descriptor a thread or the kernel opens
/// later is closed.
pub struct FifoOpen;

impl Case for FifoOpen {
    type Fx = FifoFx;
    type Out = io::Result<File>;
    const NAME: &'static str = "file open (a FIFO)";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async { FifoFx::new() })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let p = fx.path.clone();
        Box::pin(async move { File::open(p).await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        ready(fx.open_far_writer())
    }
    fn settle(_: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        ready(completed(got).map(drop))
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            for bad in ["", "a\0b"] {
                match File::open(bad).await {
                    Err(e) if matches!(e.kind(), io::ErrorKind::InvalidInput | io::ErrorKind::NotFound) => {
                        ensure(!e.to_string().contains('\0'), || format!("raw NUL in {e}"))?;
                    }
                    r => return Err(io::Error::other(format!("open({bad:?}): {r:?}"))),
                }
            }
            Ok(())
        })
    }
}

const FED: usize = 50_000;

/// A read of an empty FIFO: what a dropped read took goes to the next.
pub struct FifoRead;

impl Case for FifoRead {
    type Fx = FifoFx;
    type Out = (io::Result<usize>, Vec<u8>);
    const NAME: &'static str = "file read (a FIFO)";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerCloses).and(Ending::BadInput);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let fx = FifoFx::new()?;
            fx.open_far_writer()?;
            *fx.file.borrow_mut() = Some(Rc::new(File::open(&fx.path).await?));
            Ok(fx)
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.file();
        Box::pin(async move { f.read(Vec::with_capacity(64 * 1024)).await })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let mut w = fx.far.borrow_mut().take().expect("the writer");
            w.write_all(&payload(FED, 6))?;
            Ok(()) // dropped: the end of the data
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let mut all = match got {
                Some((n, buf)) => {
                    match n {
                        Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                        n => drop(n?),
                    }
                    buf
                }
                None => Vec::new(),
            };
            let f = fx.file();
            loop {
                let (n, buf) = timeout(10.0, f.read(Vec::with_capacity(64 * 1024)))
                    .await
                    .map_err(|_| io::Error::other(format!("only {} of {FED} bytes came", all.len())))?;
                if n? == 0 {
                    break;
                }
                all.extend_from_slice(&buf);
            }
            ensure(all.len() == FED, || format!("{} of {FED} bytes read", all.len()))?;
            ensure(all == payload(FED, 6), || "bytes reordered or corrupted".into())
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        fx.drop_far()
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        match out.0 {
            Ok(0) => Ok(()),
            r => Err(io::Error::other(format!("a read after the writer left: {r:?}"))),
        }
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let fx = FifoFx::new()?;
            fx.open_far_writer()?;
            let f = File::open(&fx.path).await?;
            invalid_input("a read into no room", f.read(Vec::new()).await.0)
        })
    }
}

const BIG: usize = 1 << 20;

/// A write to a full FIFO (waits until the reader drains it): the reader
/// gets a prefix of what was written, all of it when the write completed.
pub struct FifoWrite;

impl Case for FifoWrite {
    type Fx = FifoFx;
    type Out = io::Result<()>;
    const NAME: &'static str = "file write (a FIFO)";
    const ENDINGS: Endings = Endings::WAITING.and(Ending::PeerCloses);

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let fx = FifoFx::new()?;
            // A reader that does not wait for a writer, not reading yet.
            let r = std::fs::OpenOptions::new()
                .read(true)
                .custom_flags(libc::O_NONBLOCK)
                .open(&fx.path)?;
            *fx.far.borrow_mut() = Some(r);
            let f = File::options().write(true).open(&fx.path).await?;
            *fx.file.borrow_mut() = Some(Rc::new(f));
            Ok(fx)
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.file();
        Box::pin(async move { f.write_all(payload(BIG, 7)).await.0 })
    }
    fn feed(fx: &Rc<Self::Fx>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let r = fx.far.borrow_mut().take().expect("the reader");
            *fx.reader.borrow_mut() = Some(std::thread::spawn(move || {
                let mut r = r;
                let mut all = Vec::new();
                let mut buf = vec![0u8; 64 * 1024];
                let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
                loop {
                    match r.read(&mut buf) {
                        Ok(0) => return Ok(all),
                        Ok(n) => all.extend_from_slice(&buf[..n]),
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                            if std::time::Instant::now() > deadline {
                                return Err(io::Error::other("the writer never closed"));
                            }
                            std::thread::sleep(std::time::Duration::from_micros(200));
                        }
                        Err(e) => return Err(e),
                    }
                }
            }));
            Ok(())
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let done = completed(got)?.is_some();
            // Closing the writer ends the reader's data.
            drop(fx.file.borrow_mut().take());
            let reader = fx.reader.borrow_mut().take().expect("fed");
            let all = aio_core::to_thread(move || reader.join().expect("the reader thread"))
                .await
                .map_err(|e| io::Error::other(e.to_string()))??;
            a_prefix(&all, &payload(BIG, 7), done)
        })
    }
    fn peer_end(fx: &Rc<Self::Fx>, _reset: bool) -> Local<'_, io::Result<()>> {
        fx.drop_far()
    }
    fn check_peer_end(out: Self::Out, _reset: bool) -> io::Result<()> {
        match out {
            Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
            r => Err(io::Error::other(format!("a write with no reader left: {r:?}"))),
        }
    }
}

pub struct RegularFx {
    path: PathBuf,
    f: Rc<File>,
    _dir: Dir,
}

const SIZE: usize = 4 << 20;

async fn regular(write: bool) -> io::Result<RegularFx> {
    let dir = fresh_dir("file");
    let path = dir.join("data");
    std::fs::write(&path, payload(SIZE, 8))?;
    let f = File::options().read(true).write(write).open(&path).await?;
    Ok(RegularFx {
        path,
        f: Rc::new(f),
        _dir: dir,
    })
}

/// What a regular file's operations support: they complete by
/// themselves, so there is nothing to wait for a peer.
const BY_ITSELF: Endings = Endings::WAITING.and(Ending::BadInput);

/// A read at a regular file's cursor (which a dropped read's call still
/// moves): the reads that complete get the file whole.
pub struct CursorRead;

impl Case for CursorRead {
    type Fx = RegularFx;
    type Out = (io::Result<usize>, Vec<u8>);
    const NAME: &'static str = "file read (at the cursor)";
    const ENDINGS: Endings = BY_ITSELF;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(regular(false))
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.f.clone();
        Box::pin(async move { f.read(Vec::with_capacity(1 << 20)).await })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let mut all = received(got)?;
            fx.f.read_to_end(&mut all).await?;
            ensure(all.len() == SIZE, || format!("{} of {SIZE} bytes read", all.len()))?;
            ensure(all == payload(SIZE, 8), || "bytes reordered or corrupted".into())
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let fx = regular(false).await?;
            invalid_input("a read into no room", fx.f.read(Vec::new()).await.0)
        })
    }
}

/// `read_at`: the data at the offset, or an `InvalidInput` offset.
pub struct ReadAt;

impl Case for ReadAt {
    type Fx = RegularFx;
    type Out = (io::Result<usize>, Vec<u8>);
    const NAME: &'static str = "file read_at";
    const ENDINGS: Endings = BY_ITSELF;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(regular(false))
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.f.clone();
        Box::pin(async move { f.read_at(Vec::with_capacity(1 << 20), 12345).await })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let buf = received(got)?;
            ensure(buf[..] == payload(SIZE, 8)[12345..12345 + buf.len()], || {
                "read_at gave wrong bytes".into()
            })?;
            // The file's cursor did not move.
            let (n, buf) = fx.f.read(Vec::with_capacity(16)).await;
            ensure(buf[..n?] == payload(SIZE, 8)[..16], || {
                "read_at moved the cursor".into()
            })
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let fx = regular(false).await?;
            for off in [u64::MAX, 1 << 63] {
                invalid_input(&format!("read_at({off})"), fx.f.read_at(vec![0u8; 10], off).await.0)?;
            }
            Ok(())
        })
    }
}

/// `write_at`: the file holds the old bytes or the new ones there, never
/// anything else, and nothing elsewhere changes.
pub struct WriteAt;

impl Case for WriteAt {
    type Fx = RegularFx;
    type Out = io::Result<()>;
    const NAME: &'static str = "file write_at";
    const ENDINGS: Endings = BY_ITSELF;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(regular(true))
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.f.clone();
        Box::pin(async move { f.write_all_at(vec![0xAB; 1 << 20], 4096).await.0 })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let done = completed(got)?.is_some();
            // A dropped write's call may still run: read the file once
            // every call is done (the next file call waits behind it on
            // io_uring's ordering only if linked, so compare bytewise:
            // each byte is the old one or the new one).
            fx.f.sync_data().await?;
            let now = aio_fs::read(&fx.path).await?;
            let old = payload(SIZE, 8);
            ensure(now.len() == SIZE, || {
                format!("the file is {} bytes, not {SIZE}", now.len())
            })?;
            ensure(
                now[..4096] == old[..4096] && now[4096 + (1 << 20)..] == old[4096 + (1 << 20)..],
                || "bytes outside the write changed".into(),
            )?;
            let region = &now[4096..4096 + (1 << 20)];
            ensure(
                region.iter().zip(&old[4096..]).all(|(&b, &o)| b == 0xAB || b == o),
                || "the written region holds bytes that were never written".into(),
            )?;
            ensure(!done || region.iter().all(|&b| b == 0xAB), || {
                "a completed write is not in the file".into()
            })
        })
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let fx = regular(true).await?;
            for off in [u64::MAX, 1 << 63] {
                invalid_input(&format!("write_at({off})"), fx.f.write_at(b"XYZ".to_vec(), off).await.0)?;
            }
            ensure(aio_fs::read(&fx.path).await? == payload(SIZE, 8), || {
                "a refused write changed the file".into()
            })
        })
    }
}

/// `metadata`: right, whatever ends it.
pub struct Metadata;

impl Case for Metadata {
    type Fx = RegularFx;
    type Out = io::Result<aio_fs::Metadata>;
    const NAME: &'static str = "file metadata";
    const ENDINGS: Endings = BY_ITSELF;

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(regular(false))
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.f.clone();
        Box::pin(async move { f.metadata().await })
    }
    fn settle(_: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        ready(completed(got).and_then(|m| match m {
            Some(m) => ensure(m.len() == SIZE as u64 && m.is_file(), || "wrong metadata".into()),
            None => Ok(()),
        }))
    }
    fn bad_input() -> Local<'static, io::Result<()>> {
        Box::pin(async {
            let r = aio_fs::metadata("a\0b").await.map(|m| m.len());
            invalid_input("metadata of a path with a NUL", r)
        })
    }
}

/// Closing a file (`futures-io`'s `close`, then the drop): the data
/// written before is there and the descriptor is gone, however the close
/// ends.
pub struct Close;

pub struct CloseFx {
    path: PathBuf,
    f: RefCell<Option<File>>,
    _dir: Dir,
}

impl Case for Close {
    type Fx = CloseFx;
    type Out = io::Result<()>;
    const NAME: &'static str = "file close";

    fn setup() -> Local<'static, io::Result<Self::Fx>> {
        Box::pin(async {
            let r = regular(true).await?;
            let f = File::options().read(true).write(true).open(&r.path).await?;
            Ok(CloseFx {
                path: r.path.clone(),
                f: RefCell::new(Some(f)),
                _dir: r._dir,
            })
        })
    }
    fn op(fx: &Rc<Self::Fx>) -> Local<'static, Self::Out> {
        let f = fx.f.borrow_mut().take();
        Box::pin(async move {
            let mut f = f.expect("one close per fixture");
            f.write_all_at(b"closing".to_vec(), 0).await.0?;
            futures_util::AsyncWriteExt::close(&mut f).await
        })
    }
    fn settle(fx: &Rc<Self::Fx>, got: Option<Self::Out>) -> Local<'_, io::Result<()>> {
        Box::pin(async move {
            let done = completed(got)?.is_some();
            let now = aio_fs::read(&fx.path).await?;
            let old = payload(SIZE, 8);
            ensure(now[..7] == *b"closing" || now[..7] == old[..7], || {
                "garbage at offset 0".into()
            })?;
            ensure(!done || now[..7] == *b"closing", || {
                "a completed write before close is not there".into()
            })
        })
    }
}
