//! The in-memory stream tungstenite reads from and writes to: a session's
//! `WebSocketContext` is driven over it, never over a socket.
//!
//! Reads come from the input slice and end in `WouldBlock`, never `Ok(0)`: tungstenite
//! takes `Ok(0)` for the peer closing the connection. Writes (tungstenite's automatic
//! pongs and close frames) are collected and split into frames by the session.

use std::io::{self, Read, Write};

pub(crate) struct MemoryStream<'a> {
    input: &'a [u8],
    written: &'a mut Vec<u8>,
}

impl<'a> MemoryStream<'a> {
    pub(crate) fn new(input: &'a [u8], written: &'a mut Vec<u8>) -> Self {
        MemoryStream { input, written }
    }
}

impl Read for MemoryStream<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        if self.input.is_empty() {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        let n = buf.len().min(self.input.len());
        buf[..n].copy_from_slice(&self.input[..n]);
        self.input = &self.input[n..];
        Ok(n)
    }
}

impl Write for MemoryStream<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The opcode and total length of the frame at the start of `bytes`, if complete.
pub(crate) fn next_frame(bytes: &[u8]) -> Option<(u8, usize)> {
    let mut cursor = io::Cursor::new(bytes);
    let (header, len) = tungstenite::protocol::frame::FrameHeader::parse(&mut cursor).ok()??;
    let total = usize::try_from(cursor.position() + len).ok()?;
    (total <= bytes.len()).then(|| (u8::from(header.opcode), total))
}

/// Opcodes of the control frames tungstenite writes for us.
pub(crate) const OP_CLOSE: u8 = 0x8;
pub(crate) const OP_PONG: u8 = 0xA;
