//! Content decoding of message bodies (`Content-Encoding`: gzip, deflate,
//! br, zstd), with a bound on the decoded size against decompression bombs.
//! gzip and deflate — what most APIs send — go through one inflater per
//! thread, reset between bodies: a new one per response (its window and
//! tables) was a tenth of pytrace's time on a busy client.

use std::cell::RefCell;
use std::io::Read;

use flate2::{Decompress, FlushDecompress, Status};

/// Largest decoded body produced — the size of body kept undecoded; more
/// is an error, not an allocation (a decompression bomb).
pub const MAX_DECODED: u64 = super::body::BODY_KEEP_LIMIT as u64;

/// Content encodings undone at most (`identity` aside): more is refused.
pub const MAX_LAYERS: usize = 2;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentDecodeError {
    #[error("unsupported content encoding {0:?}")]
    Unsupported(String),
    #[error("corrupt {encoding} body: {reason}")]
    Corrupt { encoding: String, reason: String },
    #[error("decoded body exceeds {MAX_DECODED} bytes")]
    TooLarge,
    #[error("{0} content encodings stacked; at most {MAX_LAYERS} are undone")]
    TooManyLayers(usize),
}

/// Decodes `body` through the listed encodings (as sent: applied in order,
/// so they are undone in reverse).
pub fn decode(encodings: &[String], body: &[u8]) -> Result<Vec<u8>, ContentDecodeError> {
    let layers: Vec<&String> = encodings.iter().filter(|e| *e != "identity").collect();
    if layers.len() > MAX_LAYERS {
        return Err(ContentDecodeError::TooManyLayers(layers.len()));
    }
    let mut data = body.to_vec();
    for encoding in layers.into_iter().rev() {
        data = decode_one(encoding, &data)?;
    }
    Ok(data)
}

fn decode_one(encoding: &str, data: &[u8]) -> Result<Vec<u8>, ContentDecodeError> {
    match encoding {
        "gzip" | "x-gzip" => gunzip(encoding, data),
        // "deflate" is zlib-wrapped by the RFC; some servers send raw deflate.
        "deflate" => {
            let mut out = Vec::new();
            inflate(encoding, data, true, &mut out).or_else(|_| {
                out.clear();
                inflate(encoding, data, false, &mut out)
            })?;
            Ok(out)
        }
        "br" => read_all(encoding, brotli::Decompressor::new(data, 8192)),
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| corrupt(encoding, &e))?;
            read_all(encoding, decoder)
        }
        other => Err(ContentDecodeError::Unsupported(other.to_owned())),
    }
}

thread_local! {
    /// The inflater gzip and deflate bodies share on this thread.
    static INFLATER: RefCell<Decompress> = RefCell::new(Decompress::new(false));
}

/// Inflates one deflate stream at the start of `data` (zlib-wrapped when
/// `zlib`), appending to `out`; returns the bytes of `data` it used.
fn inflate(encoding: &str, data: &[u8], zlib: bool, out: &mut Vec<u8>) -> Result<usize, ContentDecodeError> {
    INFLATER.with_borrow_mut(|inflater| {
        inflater.reset(zlib);
        out.reserve((data.len() * 4).clamp(4096, MAX_DECODED as usize));
        loop {
            let (read, written) = (inflater.total_in(), inflater.total_out());
            let input = data.get(read as usize..).unwrap_or_default();
            let status = inflater
                .decompress_vec(input, out, FlushDecompress::None)
                .map_err(|e| ContentDecodeError::Corrupt { encoding: encoding.to_owned(), reason: e.to_string() })?;
            if out.len() as u64 > MAX_DECODED {
                return Err(ContentDecodeError::TooLarge);
            }
            if status == Status::StreamEnd {
                return Ok(inflater.total_in() as usize);
            }
            if out.len() == out.capacity() {
                // Doubling, but never past the bound.
                out.reserve(out.len().min(MAX_DECODED as usize + 1 - out.len()).max(1));
            } else if inflater.total_in() == read && inflater.total_out() == written {
                return Err(ContentDecodeError::Corrupt { encoding: encoding.to_owned(), reason: "truncated".into() });
            }
        }
    })
}

/// gzip (RFC 1952): each member's header, its deflate stream, its 8-byte
/// trailer; members follow one another.
fn gunzip(encoding: &str, mut data: &[u8]) -> Result<Vec<u8>, ContentDecodeError> {
    let mut out = Vec::new();
    loop {
        let start = gzip_header_len(data).ok_or_else(|| ContentDecodeError::Corrupt {
            encoding: encoding.to_owned(),
            reason: "not a gzip header".into(),
        })?;
        let used = inflate(encoding, &data[start..], false, &mut out)?;
        data = data.get(start + used + 8..).unwrap_or_default();
        if data.is_empty() {
            return Ok(out);
        }
    }
}

/// Length of the gzip member header at the start of `data`.
fn gzip_header_len(data: &[u8]) -> Option<usize> {
    const FHCRC: u8 = 2;
    const FEXTRA: u8 = 4;
    const FNAME: u8 = 8;
    const FCOMMENT: u8 = 16;
    // Magic and method; a header is 10 bytes at least (a shorter body is no
    // gzip: found by fuzzing).
    if data.len() < 10 || data[..3] != [0x1f, 0x8b, 8] {
        return None;
    }
    let flags = data[3];
    let mut at = 10;
    if flags & FEXTRA != 0 {
        at += 2 + usize::from(u16::from_le_bytes([*data.get(at)?, *data.get(at + 1)?]));
    }
    for field in [FNAME, FCOMMENT] {
        if flags & field != 0 {
            at += data.get(at..)?.iter().position(|&b| b == 0)? + 1;
        }
    }
    if flags & FHCRC != 0 {
        at += 2;
    }
    (at <= data.len()).then_some(at)
}

fn read_all(encoding: &str, reader: impl Read) -> Result<Vec<u8>, ContentDecodeError> {
    let mut out = Vec::new();
    reader.take(MAX_DECODED + 1).read_to_end(&mut out).map_err(|e| corrupt(encoding, &e))?;
    if out.len() as u64 > MAX_DECODED {
        return Err(ContentDecodeError::TooLarge);
    }
    Ok(out)
}

fn corrupt(encoding: &str, error: &std::io::Error) -> ContentDecodeError {
    ContentDecodeError::Corrupt { encoding: encoding.to_owned(), reason: error.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    const TEXT: &[u8] = b"{\"choices\":[{\"message\":{\"content\":\"hello hello hello\"}}]}";

    fn enc(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn decodes_every_supported_encoding() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        assert_eq!(decode(&enc(&["gzip"]), &gz.finish().unwrap()).unwrap(), TEXT);

        let mut zlib = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zlib.write_all(TEXT).unwrap();
        assert_eq!(decode(&enc(&["deflate"]), &zlib.finish().unwrap()).unwrap(), TEXT);

        let mut raw = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).unwrap();
        assert_eq!(decode(&enc(&["deflate"]), &raw.finish().unwrap()).unwrap(), TEXT);

        let mut br = Vec::new();
        brotli::CompressorWriter::new(&mut br, 4096, 5, 22).write_all(TEXT).unwrap();
        assert_eq!(decode(&enc(&["br"]), &br).unwrap(), TEXT);

        let zst = zstd::encode_all(TEXT, 3).unwrap();
        assert_eq!(decode(&enc(&["zstd"]), &zst).unwrap(), TEXT);
    }

    #[test]
    fn gzip_members_with_names_and_several_bodies_in_a_row() {
        let member = |text: &[u8]| {
            let mut gz = flate2::GzBuilder::new()
                .filename("reply.json")
                .comment("made by a test")
                .extra(vec![1, 2, 3])
                .write(Vec::new(), flate2::Compression::default());
            gz.write_all(text).unwrap();
            gz.finish().unwrap()
        };
        let two = [member(b"first "), member(b"second")].concat();
        assert_eq!(decode(&enc(&["gzip"]), &two).unwrap(), b"first second");
        // The shared inflater starts afresh for each body.
        for _ in 0..3 {
            assert_eq!(decode(&enc(&["gzip"]), &member(TEXT)).unwrap(), TEXT);
        }
        let whole = member(TEXT);
        assert!(matches!(decode(&enc(&["gzip"]), &whole[..whole.len() / 2]), Err(ContentDecodeError::Corrupt { .. })));
    }

    #[test]
    fn a_truncated_gzip_header_is_corrupt_not_a_panic() {
        // The fuzzer's input: the gzip magic and method, then nothing.
        for body in [&[0x1f, 0x8b, 8][..], &[0x1f, 0x8b, 8, 4, 0, 0][..]] {
            assert!(matches!(decode(&enc(&["gzip"]), body), Err(ContentDecodeError::Corrupt { .. })));
        }
    }

    #[test]
    fn gzip_bombs_are_refused_too() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&vec![0u8; (MAX_DECODED + 10) as usize]).unwrap();
        assert_eq!(decode(&enc(&["gzip"]), &gz.finish().unwrap()), Err(ContentDecodeError::TooLarge));
    }

    #[test]
    fn at_most_two_layers_are_undone_and_identity_is_no_layer() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).unwrap();
        let once = gz.finish().unwrap();
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(&once).unwrap();
        let twice = gz.finish().unwrap();
        assert_eq!(decode(&enc(&["gzip", "identity", "gzip", "identity"]), &twice).unwrap(), TEXT);
        assert_eq!(decode(&enc(&["gzip", "gzip", "gzip"]), &twice), Err(ContentDecodeError::TooManyLayers(3)));
    }

    #[test]
    fn reports_corrupt_and_unknown_encodings() {
        assert!(matches!(decode(&enc(&["gzip"]), b"not gzip"), Err(ContentDecodeError::Corrupt { .. })));
        assert_eq!(decode(&enc(&["compress"]), b"x"), Err(ContentDecodeError::Unsupported("compress".into())));
    }

    #[test]
    fn refuses_decompression_bombs() {
        let zeros = vec![0u8; (MAX_DECODED + 10) as usize];
        let bomb = zstd::encode_all(zeros.as_slice(), 19).unwrap();
        assert_eq!(decode(&enc(&["zstd"]), &bomb), Err(ContentDecodeError::TooLarge));
    }
}
