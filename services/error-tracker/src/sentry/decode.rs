//! Request bodies as Sentry SDKs send them: plain, gzip (the Python SDK's default), deflate
//! or brotli (the Python SDK's default when `brotli` is installed), decompressed with a hard
//! cap on the output so a small "zip bomb" cannot make us allocate gigabytes.

use std::borrow::Cow;
use std::io::Read;

use shared::http::ApiError;

/// Largest body after decompression (bytes).
pub const MAX_DECODED_BYTES: usize = 1024 * 1024;

/// Bytes read from the decompressor at a time.
const CHUNK: usize = 16 * 1024;

/// The body as sent, decompressed per `Content-Encoding` (none/identity → borrowed; `gzip`/`x-gzip`,
/// `deflate` (zlib-wrapped, and raw deflate as some SDKs send), `br`), never inflating more than `max`
/// bytes: over → ApiError 413 naming the cap; corrupt → 400; unknown encoding → 415.
///
/// The output buffer never grows past `max` bytes (plus one read chunk of 16 KiB on the
/// stack). Brotli's decoder additionally allocates its sliding window, which the stream
/// declares and the format caps at 16 MiB. Encodings are matched case-insensitively and
/// surrounding spaces ignored; a list (`gzip, br`, encodings applied in turn) is refused
/// with 415, as no SDK sends one.
pub fn decode<'a>(
    content_encoding: Option<&str>,
    body: &'a [u8],
    max: usize,
) -> Result<Cow<'a, [u8]>, ApiError> {
    let encoding = content_encoding.map(str::trim).unwrap_or("");
    let inflated = if encoding.is_empty() || encoding.eq_ignore_ascii_case("identity") {
        if body.len() > max {
            return Err(too_large(max));
        }
        return Ok(Cow::Borrowed(body));
    } else if encoding.eq_ignore_ascii_case("gzip") || encoding.eq_ignore_ascii_case("x-gzip") {
        read_capped(flate2::read::MultiGzDecoder::new(body), max, "gzip")?
    } else if encoding.eq_ignore_ascii_case("deflate") {
        if is_zlib_header(body) {
            read_capped(flate2::read::ZlibDecoder::new(body), max, "deflate")?
        } else {
            read_capped(flate2::read::DeflateDecoder::new(body), max, "deflate")?
        }
    } else if encoding.eq_ignore_ascii_case("br") {
        read_capped(
            brotli_decompressor::Decompressor::new(body, CHUNK),
            max,
            "br",
        )?
    } else {
        return Err(ApiError::new(
            415,
            format!("unsupported Content-Encoding '{encoding}' (expected gzip, deflate or br)"),
        ));
    };
    Ok(Cow::Owned(inflated))
}

/// Whether `body` starts with a zlib header (RFC 1950): method 8 (deflate), a window of at
/// most 32 KiB, and the check bits that make the first two bytes a multiple of 31. Raw
/// deflate data matches by chance with a probability of about 1/250; such a body then fails
/// to decode as zlib and is refused, which is acceptable for an encoding SDKs rarely use.
fn is_zlib_header(body: &[u8]) -> bool {
    match body {
        [cmf, flg, ..] => {
            cmf & 0x0f == 8 && cmf >> 4 <= 7 && (u16::from(*cmf) << 8 | u16::from(*flg)) % 31 == 0
        }
        _ => false,
    }
}

/// Reads `reader` to its end into a buffer that never grows past `max` bytes.
fn read_capped(mut reader: impl Read, max: usize, encoding: &str) -> Result<Vec<u8>, ApiError> {
    let mut out = Vec::new();
    let mut chunk = [0u8; CHUNK];
    loop {
        let n = match reader.read(&mut chunk) {
            Ok(0) => return Ok(out),
            Ok(n) => n,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(e) => {
                return Err(ApiError::bad_request(format!(
                    "body is not valid {encoding} data: {e}"
                )))
            }
        };
        if out.len() + n > max {
            return Err(too_large(max));
        }
        // Doubling would overshoot the cap; grow at most to it.
        if out.capacity() - out.len() < n {
            let target = (out.capacity() * 2).max(out.len() + n).max(CHUNK).min(max);
            out.reserve_exact(target - out.len());
        }
        out.extend_from_slice(&chunk[..n]);
    }
}

fn too_large(max: usize) -> ApiError {
    ApiError::new(
        413,
        format!("body is larger than {max} bytes once decompressed"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn zlib(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    fn raw_deflate(data: &[u8]) -> Vec<u8> {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).unwrap();
        enc.finish().unwrap()
    }

    /// Brotli of 10 MiB of zeros (made with Python's `brotli`, see the fixtures' README): we
    /// depend on the decoder only.
    const BROTLI_BOMB: &[u8] = include_bytes!("../../tests/fixtures/sentry/zeros-10mib.br");

    fn status(result: Result<Cow<'_, [u8]>, ApiError>) -> u16 {
        result.map(|_| 200).unwrap_or_else(|e| e.status())
    }

    #[test]
    fn identity_is_borrowed() {
        let body = b"{\"a\":1}";
        for encoding in [None, Some(""), Some("identity"), Some(" Identity ")] {
            let decoded = decode(encoding, body, 100).unwrap();
            assert!(matches!(decoded, Cow::Borrowed(_)));
            assert_eq!(&*decoded, body);
        }
        assert_eq!(status(decode(None, body, 3)), 413);
    }

    #[test]
    fn gzip_zlib_and_raw_deflate() {
        let data = b"{\"event_id\":\"x\"}\n".repeat(100);
        assert_eq!(
            &*decode(Some("gzip"), &gzip(&data), 1 << 20).unwrap(),
            &data[..]
        );
        assert_eq!(
            &*decode(Some("X-GZIP"), &gzip(&data), 1 << 20).unwrap(),
            &data[..]
        );
        assert_eq!(
            &*decode(Some("deflate"), &zlib(&data), 1 << 20).unwrap(),
            &data[..]
        );
        assert_eq!(
            &*decode(Some("deflate"), &raw_deflate(&data), 1 << 20).unwrap(),
            &data[..]
        );
        // Exactly at the cap is fine, one byte over is not.
        assert_eq!(
            decode(Some("gzip"), &gzip(&data), data.len())
                .unwrap()
                .len(),
            data.len()
        );
        assert_eq!(
            status(decode(Some("gzip"), &gzip(&data), data.len() - 1)),
            413
        );
    }

    #[test]
    fn empty_bodies() {
        assert_eq!(&*decode(Some("gzip"), &gzip(b""), 10).unwrap(), b"");
        assert_eq!(status(decode(Some("gzip"), b"", 10)), 400);
        assert_eq!(status(decode(Some("br"), b"", 10)), 400);
    }

    #[test]
    fn zip_bombs_are_refused_at_the_cap() {
        let zeros = vec![0u8; 10 * 1024 * 1024];
        let bombs = [
            ("gzip", gzip(&zeros)),
            ("deflate", zlib(&zeros)),
            ("deflate", raw_deflate(&zeros)),
            ("br", BROTLI_BOMB.to_vec()),
        ];
        for (encoding, bomb) in bombs {
            assert!(bomb.len() < 64 * 1024, "{encoding}: {} bytes", bomb.len());
            let err = decode(Some(encoding), &bomb, MAX_DECODED_BYTES).unwrap_err();
            assert_eq!(err.status(), 413, "{encoding}: {err}");
            assert_eq!(
                err.detail(),
                "body is larger than 1048576 bytes once decompressed"
            );
        }
        // The brotli bomb is valid: under a large enough cap it decodes in full.
        let br = decode(Some("br"), BROTLI_BOMB, zeros.len()).unwrap();
        assert!(br.len() == zeros.len() && br.iter().all(|&b| b == 0));
    }

    #[test]
    fn corrupt_and_unknown() {
        let data = b"hello hello hello hello".repeat(50);
        let mut gz = gzip(&data);
        let mid = gz.len() / 2;
        gz[mid] ^= 0xff;
        let err = decode(Some("gzip"), &gz, 1 << 20).unwrap_err();
        assert_eq!(err.status(), 400);
        assert!(
            err.detail().starts_with("body is not valid gzip data"),
            "{err}"
        );
        gz.truncate(mid);
        assert_eq!(status(decode(Some("gzip"), &gz, 1 << 20)), 400);
        assert_eq!(status(decode(Some("gzip"), b"not gzip", 1 << 20)), 400);
        assert_eq!(
            status(decode(Some("br"), b"\xff\xff\xff\xff", 1 << 20)),
            400
        );
        let err = decode(Some("zstd"), b"x", 10).unwrap_err();
        assert_eq!(err.status(), 415);
        assert!(err.detail().contains("'zstd'"), "{err}");
        assert_eq!(status(decode(Some("gzip, br"), b"x", 10)), 415);
    }

    #[test]
    fn fixtures_from_the_python_sdk() {
        let plain = include_bytes!("../../tests/fixtures/sentry/python-chained.envelope");
        let gz = include_bytes!("../../tests/fixtures/sentry/python-chained.envelope.gz");
        let br = include_bytes!("../../tests/fixtures/sentry/python-chained.envelope.br");
        // The SDK sent the same event three times; only `event_id` and `sent_at` differ.
        for (encoding, body) in [("gzip", &gz[..]), ("br", &br[..])] {
            let decoded = decode(Some(encoding), body, MAX_DECODED_BYTES).unwrap();
            assert_eq!(decoded.len(), plain.len(), "{encoding}");
            assert!(decoded.starts_with(b"{\"event_id\":\""), "{encoding}");
        }
    }
}
