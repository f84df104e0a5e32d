//! An OTLP/HTTP body in and an OTLP answer out: the two encodings the specification
//! names (binary protobuf, `application/x-protobuf`, and its JSON mapping,
//! `application/json`), optionally gzip-compressed (`Content-Encoding: gzip`, inflated
//! to at most the body limit, so a small bomb cannot grow past it), decoded with the
//! `opentelemetry-proto` messages; and the answer in the encoding of the request. What
//! fails here is a [`Problem`] like on every route; `status.rs` answers it as a
//! `google.rpc.Status` in the same encoding (binary when the content type is neither).

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use plotq_http::{Problem, ProblemCode};
use std::io::Read;

/// The encoding of a request, which its answer uses too.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Encoding {
    Protobuf,
    Json,
}

impl Encoding {
    /// The declared content type: `415` for anything but the two OTLP encodings.
    pub(crate) fn of(headers: &HeaderMap) -> Result<Self, Problem> {
        match plotq_http::edge::declared_media_type(headers).as_deref() {
            Some("application/x-protobuf") => Ok(Self::Protobuf),
            Some("application/json") => Ok(Self::Json),
            other => Err(Problem::new(
                ProblemCode::UnsupportedMediaType,
                format!(
                    "the body is {}; OTLP/HTTP bodies are application/x-protobuf or application/json",
                    other.map_or_else(
                        || "undeclared".to_owned(),
                        |t| format!("{:?}", t.chars().take(64).collect::<String>())
                    )
                ),
            )),
        }
    }

    fn content_type(self) -> HeaderValue {
        HeaderValue::from_static(match self {
            Self::Protobuf => "application/x-protobuf",
            Self::Json => "application/json",
        })
    }
}

/// The body's bytes, inflated when gzip-compressed: `413` past `limit` (compressed or
/// inflated), `415` for another content coding, `400` for a broken gzip stream.
pub(crate) fn read(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, Problem> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
            too_large(limit)
        } else {
            Problem::new(ProblemCode::UnreadableBody, rejection.body_text())
        }
    })?;
    let coding = headers
        .get(header::CONTENT_ENCODING)
        .map(|v| v.to_str().unwrap_or("?").trim().to_ascii_lowercase());
    match coding.as_deref() {
        None | Some("" | "identity") => Ok(bytes),
        Some("gzip" | "x-gzip") => inflate(&bytes, limit),
        Some(other) => Err(Problem::new(
            ProblemCode::UnsupportedMediaType,
            format!(
                "Content-Encoding {:?} is not supported; send gzip or no encoding",
                other.chars().take(32).collect::<String>()
            ),
        )),
    }
}

/// `gzipped` inflated, reading at most one byte past `limit` to tell it was exceeded.
fn inflate(gzipped: &[u8], limit: usize) -> Result<Bytes, Problem> {
    let mut out = Vec::with_capacity(gzipped.len().saturating_mul(4).min(limit));
    flate2::read::GzDecoder::new(gzipped)
        .take(limit as u64 + 1)
        .read_to_end(&mut out)
        .map_err(|e| {
            Problem::new(
                ProblemCode::UnreadableBody,
                format!("the body is not a valid gzip stream: {e}"),
            )
        })?;
    if out.len() > limit {
        return Err(too_large(limit));
    }
    Ok(out.into())
}

fn too_large(limit: usize) -> Problem {
    Problem::new(
        ProblemCode::BodyTooLarge,
        format!(
            "the request body exceeds {limit} bytes (inflated); lower the exporter's batch size"
        ),
    )
}

/// One export request decoded from `bytes`: `400` naming what is wrong.
pub(crate) fn decode<M>(encoding: Encoding, bytes: &[u8]) -> Result<M, Problem>
where
    M: prost::Message + Default + serde::de::DeserializeOwned,
{
    match encoding {
        Encoding::Protobuf => M::decode(bytes).map_err(|e| {
            Problem::new(
                ProblemCode::UnreadableBody,
                format!("the body is not a valid OTLP protobuf message: {e}"),
            )
        }),
        Encoding::Json => serde_json::from_slice(bytes).map_err(|e| Problem::malformed_json(&e)),
    }
}

/// `200` with `protobuf` (or `json` for JSON requests: the OTLP JSON mapping, built by
/// the caller so its shape is the documented one).
pub(crate) fn answer(
    encoding: Encoding,
    protobuf: impl prost::Message,
    json: serde_json::Value,
) -> Response {
    let body = match encoding {
        Encoding::Protobuf => protobuf.encode_to_vec(),
        Encoding::Json => json.to_string().into_bytes(),
    };
    let mut response = (StatusCode::OK, body).into_response();
    response
        .headers_mut()
        .insert(header::CONTENT_TYPE, encoding.content_type());
    response
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        encoder.write_all(bytes).unwrap();
        encoder.finish().unwrap()
    }

    fn headers(pairs: &[(header::HeaderName, &'static str)]) -> HeaderMap {
        pairs
            .iter()
            .map(|(k, v)| (k.clone(), HeaderValue::from_static(v)))
            .collect()
    }

    #[test]
    fn the_two_otlp_encodings_and_nothing_else() {
        for (declared, expected) in [
            ("application/x-protobuf", Some(Encoding::Protobuf)),
            ("application/json; charset=utf-8", Some(Encoding::Json)),
            ("text/plain", None),
            ("application/x-www-form-urlencoded", None),
        ] {
            let h = headers(&[(header::CONTENT_TYPE, declared)]);
            match expected {
                Some(e) => assert_eq!(Encoding::of(&h).unwrap(), e, "{declared}"),
                None => assert_eq!(Encoding::of(&h).unwrap_err().status, 415, "{declared}"),
            }
        }
        assert_eq!(Encoding::of(&HeaderMap::new()).unwrap_err().status, 415);
    }

    #[test]
    fn gzip_is_inflated_within_the_limit_and_bombs_are_refused() {
        let plain = vec![7u8; 10_000];
        let h = headers(&[(header::CONTENT_ENCODING, "gzip")]);
        let read_back = read(&h, Ok(gzip(&plain).into()), 10_000).unwrap();
        assert_eq!(&read_back[..], &plain[..]);
        // 10 MB of zeros gzip to a few tens of KB: refused at the limit, not inflated whole.
        let bomb = gzip(&vec![0u8; 10_000_000]);
        assert!(bomb.len() < 100_000, "{}", bomb.len());
        assert_eq!(
            read(&h, Ok(bomb.into()), 1_000_000).unwrap_err().status,
            413
        );
        assert_eq!(
            read(&h, Ok(Bytes::from_static(b"not gzip")), 100)
                .unwrap_err()
                .status,
            400
        );
        let br = headers(&[(header::CONTENT_ENCODING, "br")]);
        assert_eq!(
            read(&br, Ok(Bytes::from_static(b"x")), 100)
                .unwrap_err()
                .status,
            415
        );
        assert_eq!(
            &read(&HeaderMap::new(), Ok(Bytes::from_static(b"x")), 100).unwrap()[..],
            b"x"
        );
    }
}
