//! Content decoding of message bodies (`Content-Encoding`: gzip, deflate,
//! br, zstd), with a bound on the decoded size against decompression bombs.

use std::io::Read;

/// Largest decoded body produced; more is an error, not an allocation.
pub const MAX_DECODED: u64 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ContentDecodeError {
    #[error("unsupported content encoding {0:?}")]
    Unsupported(String),
    #[error("corrupt {encoding} body: {reason}")]
    Corrupt { encoding: String, reason: String },
    #[error("decoded body exceeds {MAX_DECODED} bytes")]
    TooLarge,
}

/// Decodes `body` through the listed encodings (as sent: applied in order,
/// so they are undone in reverse).
pub fn decode(encodings: &[String], body: &[u8]) -> Result<Vec<u8>, ContentDecodeError> {
    let mut data = body.to_vec();
    for encoding in encodings.iter().rev() {
        data = decode_one(encoding, &data)?;
    }
    Ok(data)
}

fn decode_one(encoding: &str, data: &[u8]) -> Result<Vec<u8>, ContentDecodeError> {
    match encoding {
        "identity" => Ok(data.to_vec()),
        "gzip" | "x-gzip" => read_all(encoding, flate2::read::MultiGzDecoder::new(data)),
        // "deflate" is zlib-wrapped by the RFC; some servers send raw deflate.
        "deflate" => read_all(encoding, flate2::read::ZlibDecoder::new(data))
            .or_else(|_| read_all(encoding, flate2::read::DeflateDecoder::new(data))),
        "br" => read_all(encoding, brotli::Decompressor::new(data, 8192)),
        "zstd" => {
            let decoder = zstd::stream::read::Decoder::new(data).map_err(|e| corrupt(encoding, &e))?;
            read_all(encoding, decoder)
        }
        other => Err(ContentDecodeError::Unsupported(other.to_owned())),
    }
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
