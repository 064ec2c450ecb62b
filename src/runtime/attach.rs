//! Attaching to a container: the monitor listens on `<dir>/attach.sock`
//! (0600) and multiplexes the container's stdio over it in small frames:
//! `[kind: u8][length: u32 big-endian][payload]`.

use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};

/// What a frame carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FrameKind {
    /// Client → monitor: bytes for the container's stdin.
    Stdin = 0,
    /// Monitor → client: container output.
    Stdout = 1,
    Stderr = 2,
    /// Client → monitor: the client's stdin ended.
    StdinEof = 3,
    /// Client → monitor: terminal size, rows and columns as two u16.
    Resize = 4,
    /// Monitor → client: the container exited; payload is the i32 code.
    Exit = 5,
}

impl FrameKind {
    fn from_byte(b: u8) -> Option<FrameKind> {
        Some(match b {
            0 => FrameKind::Stdin,
            1 => FrameKind::Stdout,
            2 => FrameKind::Stderr,
            3 => FrameKind::StdinEof,
            4 => FrameKind::Resize,
            5 => FrameKind::Exit,
            _ => return None,
        })
    }
}

/// A decoded frame.
pub type Frame = (FrameKind, Vec<u8>);

/// Frames larger than this are a protocol error (nothing sends them).
const MAX_PAYLOAD: usize = 1 << 20;

pub fn socket_path(container_dir: &Path) -> PathBuf {
    container_dir.join("attach.sock")
}

/// Runs `f` with a short alias of the socket path. `sun_path` holds only
/// 108 bytes, less than a container directory under a deep root, so the
/// directory is reached through `/proc/self/fd/<n>` of an `O_PATH` handle.
pub fn with_socket_path<T>(container_dir: &Path, f: impl FnOnce(&Path) -> io::Result<T>) -> io::Result<T> {
    use std::os::fd::AsRawFd;
    use std::os::unix::fs::OpenOptionsExt;
    let dir = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_PATH | libc::O_DIRECTORY)
        .open(container_dir)?;
    let short = PathBuf::from(format!("/proc/self/fd/{}/attach.sock", dir.as_raw_fd()));
    f(&short)
}

pub fn encode(kind: FrameKind, payload: &[u8]) -> Vec<u8> {
    let mut frame = Vec::with_capacity(5 + payload.len());
    frame.push(kind as u8);
    frame.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// Splits complete frames off the front of `buffer`, leaving a partial one.
pub fn decode(buffer: &mut Vec<u8>) -> io::Result<Vec<Frame>> {
    let mut frames = Vec::new();
    loop {
        if buffer.len() < 5 {
            return Ok(frames);
        }
        let kind = FrameKind::from_byte(buffer[0])
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, format!("unknown frame kind {}", buffer[0])))?;
        let len = u32::from_be_bytes([buffer[1], buffer[2], buffer[3], buffer[4]]) as usize;
        if len > MAX_PAYLOAD {
            return Err(io::Error::new(io::ErrorKind::InvalidData, "attach frame too large"));
        }
        if buffer.len() < 5 + len {
            return Ok(frames);
        }
        let payload = buffer[5..5 + len].to_vec();
        buffer.drain(..5 + len);
        frames.push((kind, payload));
    }
}

/// A client's connection to a monitor.
pub struct AttachClient {
    pub stream: UnixStream,
    buffer: Vec<u8>,
}

impl AttachClient {
    /// Connects, retrying while the monitor is still creating the socket.
    pub fn connect(container_dir: &Path, attempts: u32) -> io::Result<AttachClient> {
        let mut last = io::Error::new(io::ErrorKind::NotFound, "attach socket not found");
        for _ in 0..attempts.max(1) {
            match with_socket_path(container_dir, |path| UnixStream::connect(path)) {
                Ok(stream) => {
                    return Ok(AttachClient {
                        stream,
                        buffer: Vec::new(),
                    })
                }
                Err(e) => last = e,
            }
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        Err(last)
    }

    pub fn send(&mut self, kind: FrameKind, payload: &[u8]) -> io::Result<()> {
        self.stream.write_all(&encode(kind, payload))
    }

    /// Reads what is available and returns complete frames; an empty
    /// result with `Ok(false)` means the monitor closed the connection.
    pub fn receive(&mut self) -> io::Result<(bool, Vec<Frame>)> {
        let mut chunk = [0u8; 64 * 1024];
        let n = self.stream.read(&mut chunk)?;
        if n == 0 {
            return Ok((false, Vec::new()));
        }
        self.buffer.extend_from_slice(&chunk[..n]);
        Ok((true, decode(&mut self.buffer)?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_round_trip_across_partial_reads() {
        let mut wire = encode(FrameKind::Stdout, b"hello");
        wire.extend(encode(FrameKind::Exit, &7i32.to_be_bytes()));
        wire.extend(encode(FrameKind::Stdin, b"partial"));
        let mut buffer = wire[..wire.len() - 3].to_vec();
        let frames = decode(&mut buffer).unwrap();
        assert_eq!(
            frames,
            vec![
                (FrameKind::Stdout, b"hello".to_vec()),
                (FrameKind::Exit, 7i32.to_be_bytes().to_vec())
            ]
        );
        buffer.extend_from_slice(&wire[wire.len() - 3..]);
        assert_eq!(
            decode(&mut buffer).unwrap(),
            vec![(FrameKind::Stdin, b"partial".to_vec())]
        );
        assert!(buffer.is_empty());
    }

    #[test]
    fn garbage_is_rejected() {
        let mut buffer = vec![9, 0, 0, 0, 0];
        assert!(decode(&mut buffer).is_err());
        let mut buffer = vec![1, 0xff, 0xff, 0xff, 0xff];
        assert!(decode(&mut buffer).is_err());
    }
}
