//! The three content codings (RFC 9110 §8.4.1) and the streaming encoder a body goes
//! through: gzip by flate2, br by the brotli crate, zstd by libzstd.

use plugin_api::Transform;
use std::io::Write;

/// A content coding this plugin can produce.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Coding {
    Br,
    Zstd,
    Gzip,
}

impl Coding {
    /// Every coding, in the default order of preference (smallest output first).
    pub const ALL: [Coding; 3] = [Coding::Br, Coding::Zstd, Coding::Gzip];

    /// The token in `Accept-Encoding` and `Content-Encoding`.
    pub fn token(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zstd",
            Coding::Gzip => "gzip",
        }
    }

    /// The extension of a precompressed sidecar (`file.css.br`).
    pub fn sidecar_ext(self) -> &'static str {
        match self {
            Coding::Br => "br",
            Coding::Zstd => "zst",
            Coding::Gzip => "gz",
        }
    }

    pub fn from_token(t: &str) -> Option<Coding> {
        Coding::ALL.into_iter().find(|c| c.token() == t)
    }
}

/// Compression levels, one per coding.
#[derive(Clone, Copy, Debug)]
pub struct Levels {
    pub gzip: u32,
    pub br: u32,
    pub zstd: i32,
}

/// Brotli's window (log2 bytes): 4 MiB, the largest. A window sized to a small body was
/// measured (examples/throughput.rs): no faster at quality 4, and 20x slower at 5.
const BR_WINDOW: u32 = 22;

/// The smallest window (log2 bytes) that holds a body of `len`, within `min..=max`; the
/// largest for a stream of unknown length. (gzip: as nginx sizes zlib's window to a short
/// answer. Brotli keeps its 4 MiB window: see `BR_WINDOW`.)
fn window_log(len: Option<u64>, min: u32, max: u32) -> u32 {
    let Some(len) = len else { return max };
    (64 - len.saturating_sub(1).leading_zeros()).clamp(min, max)
}

enum Inner {
    Gzip(flate2::write::ZlibEncoder<Vec<u8>>),
    Br(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Inner {
    fn new(coding: Coding, levels: Levels, len: Option<u64>) -> Result<Inner, String> {
        Ok(match coding {
            Coding::Gzip => {
                let level = flate2::Compression::new(levels.gzip);
                let bits = window_log(len, 9, 15) as u8;
                let c = flate2::Compress::new_gzip(level, bits);
                Inner::Gzip(flate2::write::ZlibEncoder::new_with_compress(Vec::new(), c))
            }
            Coding::Br => Inner::Br(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                levels.br,
                BR_WINDOW,
            ))),
            Coding::Zstd => {
                let mut e = zstd::stream::write::Encoder::new(Vec::new(), levels.zstd)
                    .map_err(|e| format!("zstd: {e}"))?;
                // A known length lets zstd size its tables to the body: half the CPU for
                // a 1 KiB answer (examples/throughput.rs). The host sends exactly that many.
                e.set_pledged_src_size(len)
                    .map_err(|e| format!("zstd: {e}"))?;
                Inner::Zstd(e)
            }
        })
    }

    fn write(&mut self, data: &[u8]) -> std::io::Result<()> {
        match self {
            Inner::Gzip(e) => e.write_all(data),
            Inner::Br(e) => e.write_all(data),
            Inner::Zstd(e) => e.write_all(data),
        }
    }

    fn flush(&mut self) -> std::io::Result<()> {
        match self {
            Inner::Gzip(e) => e.flush(),
            Inner::Br(e) => e.flush(),
            Inner::Zstd(e) => e.flush(),
        }
    }

    /// The bytes made so far, taken out of the encoder's output buffer.
    fn take(&mut self) -> Vec<u8> {
        std::mem::take(match self {
            Inner::Gzip(e) => e.get_mut(),
            Inner::Br(e) => e.get_mut(),
            Inner::Zstd(e) => e.get_mut(),
        })
    }

    /// End the stream (trailer, checksum) and return the last bytes.
    fn finish(self) -> std::io::Result<Vec<u8>> {
        match self {
            Inner::Gzip(e) => e.finish(),
            Inner::Br(e) => Ok(e.into_inner()),
            Inner::Zstd(e) => e.finish(),
        }
    }
}

/// One body's encoder. It is built at the first byte, so a HEAD or a 304 (which never
/// send a body) costs no encoder at all.
pub struct Encoder {
    coding: Coding,
    levels: Levels,
    /// Push out after every piece: a stream's reader sees each piece when it is written.
    flush_each: bool,
    /// The exact length of what will be fed, when the whole body is in hand: the window
    /// and tables are sized to it (zstd is promised it, and fails on any other length).
    exact: Option<u64>,
    inner: Option<Inner>,
}

impl Encoder {
    /// An encoder for a body of `len` bytes (`None`: a stream of unknown length, flushed
    /// after each piece).
    pub fn new(coding: Coding, levels: Levels, len: Option<u64>) -> Encoder {
        Encoder {
            coding,
            levels,
            flush_each: len.is_none(),
            exact: None,
            inner: None,
        }
    }

    /// An encoder for exactly `len` bytes, all in hand (a body gathered whole).
    pub fn exact(coding: Coding, levels: Levels, len: u64) -> Encoder {
        Encoder {
            exact: Some(len),
            ..Encoder::new(coding, levels, Some(len))
        }
    }

    fn inner(&mut self) -> Result<&mut Inner, String> {
        if self.inner.is_none() {
            self.inner = Some(Inner::new(self.coding, self.levels, self.exact)?);
        }
        Ok(self.inner.as_mut().expect("built above"))
    }

    fn failed(&self, e: std::io::Error) -> String {
        format!("{} encoder: {e}", self.coding.token())
    }
}

impl Transform for Encoder {
    fn transform(&mut self, input: &[u8], out: &mut Vec<u8>) -> Result<(), String> {
        let flush = self.flush_each;
        let inner = self.inner()?;
        let r = inner
            .write(input)
            .and_then(|()| if flush { inner.flush() } else { Ok(()) });
        out.append(&mut inner.take());
        r.map_err(|e| self.failed(e))
    }

    fn flush(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        let inner = self.inner()?;
        let r = inner.flush();
        out.append(&mut inner.take());
        r.map_err(|e| self.failed(e))
    }

    fn finish(&mut self, out: &mut Vec<u8>) -> Result<(), String> {
        self.inner()?;
        let inner = self.inner.take().expect("built above");
        let last = inner.finish().map_err(|e| self.failed(e))?;
        out.extend_from_slice(&last);
        Ok(())
    }
}

/// The shipped levels, for tests.
#[cfg(test)]
pub const LEVELS: Levels = Levels {
    gzip: 6,
    br: 4,
    zstd: 3,
};

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    /// Run `data` through an encoder in pieces of `piece` bytes.
    fn encode(coding: Coding, data: &[u8], piece: usize, len: Option<u64>) -> Vec<u8> {
        let mut e = Encoder::new(coding, LEVELS, len);
        let mut out = Vec::new();
        for p in data.chunks(piece) {
            e.transform(p, &mut out).unwrap();
        }
        e.finish(&mut out).unwrap();
        out
    }

    fn decode(coding: Coding, data: &[u8]) -> Vec<u8> {
        let mut out = Vec::new();
        match coding {
            Coding::Gzip => flate2::read::GzDecoder::new(data)
                .read_to_end(&mut out)
                .map(drop),
            Coding::Br => brotli::Decompressor::new(data, 4096)
                .read_to_end(&mut out)
                .map(drop),
            Coding::Zstd => zstd::stream::copy_decode(data, &mut out),
        }
        .unwrap();
        out
    }

    #[test]
    fn every_coding_round_trips_whole_and_in_pieces() {
        let text: Vec<u8> = (0..20_000)
            .flat_map(|i| format!("line {i} of some text\n").into_bytes())
            .collect();
        for coding in Coding::ALL {
            for (piece, len) in [(text.len(), Some(text.len() as u64)), (1000, None)] {
                let packed = encode(coding, &text, piece, len);
                assert!(packed.len() < text.len() / 4, "{coding:?}");
                assert_eq!(decode(coding, &packed), text, "{coding:?}");
            }
            assert_eq!(decode(coding, &encode(coding, b"", 1, Some(0))), b"");
        }
    }

    /// A body gathered whole is coded with tables sized to it: zstd's frame names the
    /// length it was promised; a body only announced names none. Small bodies round-trip.
    #[test]
    fn a_known_length_is_promised_to_zstd_and_small_bodies_round_trip() {
        let text = b"a short page, a short page, a short page\n".repeat(25);
        let mut e = Encoder::exact(Coding::Zstd, LEVELS, text.len() as u64);
        let mut known = Vec::new();
        e.transform(&text, &mut known).unwrap();
        e.finish(&mut known).unwrap();
        let size = |frame: &[u8]| zstd::zstd_safe::get_frame_content_size(frame).ok();
        assert_eq!(size(&known), Some(Some(text.len() as u64)));
        let announced = encode(Coding::Zstd, &text, 100, Some(text.len() as u64));
        assert_eq!(size(&announced), Some(None));
        for coding in Coding::ALL {
            for n in [1, 200, 511, 1024] {
                let body = &text[..n];
                let mut e = Encoder::exact(coding, LEVELS, n as u64);
                let mut packed = Vec::new();
                e.transform(body, &mut packed).unwrap();
                e.finish(&mut packed).unwrap();
                assert_eq!(decode(coding, &packed), body, "{coding:?} {n}");
            }
        }
    }

    #[test]
    fn a_stream_is_flushed_after_each_piece() {
        for coding in Coding::ALL {
            let mut e = Encoder::new(coding, LEVELS, None);
            let mut out = Vec::new();
            e.transform(b"first piece\n", &mut out).unwrap();
            // What came out so far decodes to the piece: the reader is not kept waiting.
            let mut partial = Vec::new();
            let prefix: &[u8] = &out;
            match coding {
                Coding::Gzip => {
                    let _ = flate2::read::GzDecoder::new(prefix).read_to_end(&mut partial);
                }
                Coding::Br => {
                    let _ = brotli::Decompressor::new(prefix, 4096).read_to_end(&mut partial);
                }
                Coding::Zstd => {
                    let _ = zstd::stream::read::Decoder::new(prefix)
                        .unwrap()
                        .read_to_end(&mut partial);
                }
            }
            assert_eq!(partial, b"first piece\n", "{coding:?}");
        }
    }
}
