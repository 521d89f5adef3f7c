//! Why an image file or DICOM object could not be decoded; every variant names the file.
use std::path::PathBuf;

/// A failure to turn one file into an 8-bit RGB raster.
///
/// Every variant carries the file (its path, or the name given to
/// [`decode_bytes`](super::decode_bytes)) and its message starts with it.
/// Messages never quote DICOM element values, so no patient identifier leaks through them.
/// A cause is written into the message rather than chained as `source()`, so an `{:#}` chain
/// (how the binaries print errors) says it once.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecodeError {
    /// The file could not be read from disk.
    #[error("{}: cannot read file: {cause}", file.display())]
    Io {
        /// The file.
        file: PathBuf,
        /// The underlying I/O error (in the message, not chained as `source()`).
        cause: std::io::Error,
    },
    /// The file is empty.
    #[error("{}: empty file", file.display())]
    Empty {
        /// The file.
        file: PathBuf,
    },
    /// The content is neither DICOM nor a recognised raster image format.
    #[error("{}: not a supported image (expected PNG, JPEG, TIFF, BMP or DICOM; {reason})", file.display())]
    NotAnImage {
        /// The file.
        file: PathBuf,
        /// What was seen instead.
        reason: String,
    },
    /// The format was recognised but this build cannot decode it (e.g. GIF, WebP, 12-bit JPEG).
    #[error("{}: unsupported image: {format} ({detail}; expected PNG, JPEG, TIFF, BMP or DICOM)", file.display())]
    UnsupportedFormat {
        /// The recognised format.
        format: String,
        /// The file.
        file: PathBuf,
        /// What is unsupported.
        detail: String,
    },
    /// The data ends before the image does.
    #[error("{}: truncated file ({reason})", file.display())]
    Truncated {
        /// The file.
        file: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The format was recognised but its content is invalid.
    #[error("{}: corrupt image ({reason})", file.display())]
    Corrupt {
        /// The file.
        file: PathBuf,
        /// What the decoder reported.
        reason: String,
    },
    /// The DICOM data set could not be parsed, or its image attributes are invalid.
    #[error("{}: invalid DICOM ({reason})", file.display())]
    Dicom {
        /// The file.
        file: PathBuf,
        /// What the parser reported.
        reason: String,
    },
    /// The DICOM transfer syntax is unknown or has no decoder in this build (e.g. JPEG 2000).
    #[error("{}: unsupported DICOM transfer syntax {uid}{}", file.display(), name.as_deref().map(|n| format!(" ({n})")).unwrap_or_default())]
    UnsupportedTransferSyntax {
        /// The file.
        file: PathBuf,
        /// The transfer syntax UID.
        uid: String,
        /// Its name, when the UID is known.
        name: Option<String>,
    },
    /// The DICOM object has no Pixel Data element (e.g. a structured report).
    #[error("{}: DICOM object has no pixel data", file.display())]
    NoPixelData {
        /// The file.
        file: PathBuf,
    },
    /// The DICOM pixel layout is outside what this decoder handles.
    #[error(
        "{}: unsupported DICOM pixel layout: {photometric} with {samples_per_pixel} sample(s) per pixel, \
         {bits_allocated} bits allocated, {bits_stored} stored ({reason})",
        file.display()
    )]
    UnsupportedPhotometric {
        /// The file.
        file: PathBuf,
        /// The Photometric Interpretation.
        photometric: String,
        /// Samples per Pixel.
        samples_per_pixel: u16,
        /// Bits Allocated.
        bits_allocated: u16,
        /// Bits Stored.
        bits_stored: u16,
        /// Which part is unsupported.
        reason: String,
    },
    /// The image is larger than [`MAX_PIXELS`](super::MAX_PIXELS): refused as a likely decompression bomb.
    #[error("{}: image of {width}x{height} pixels exceeds the limit of {limit} pixels", file.display())]
    TooLarge {
        /// The file.
        file: PathBuf,
        /// Declared width in pixels.
        width: u64,
        /// Declared height in pixels.
        height: u64,
        /// The limit, in pixels.
        limit: u64,
    },
}

impl DecodeError {
    /// The file this error is about.
    pub fn file(&self) -> &std::path::Path {
        match self {
            Self::Io { file, .. }
            | Self::Empty { file }
            | Self::NotAnImage { file, .. }
            | Self::UnsupportedFormat { file, .. }
            | Self::Truncated { file, .. }
            | Self::Corrupt { file, .. }
            | Self::Dicom { file, .. }
            | Self::UnsupportedTransferSyntax { file, .. }
            | Self::NoPixelData { file }
            | Self::UnsupportedPhotometric { file, .. }
            | Self::TooLarge { file, .. } => file,
        }
    }
}

/// The messages of an error and all its sources, joined by `": "`, and whether any of them
/// is an I/O end-of-file (the mark of a truncated file).
pub(crate) fn error_chain(err: &(dyn std::error::Error + 'static)) -> (String, bool) {
    let mut text = err.to_string();
    let mut eof = false;
    let mut current = Some(err);
    while let Some(e) = current {
        if let Some(io) = e.downcast_ref::<std::io::Error>() {
            eof |= io.kind() == std::io::ErrorKind::UnexpectedEof;
        }
        if !std::ptr::eq(e, err) {
            let msg = e.to_string();
            if !text.contains(&msg) {
                text.push_str(": ");
                text.push_str(&msg);
            }
        }
        current = e.source();
    }
    (text, eof)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_starts_with_the_file() {
        let file = PathBuf::from("scans/eye 1.dcm");
        let errors = [
            DecodeError::Empty { file: file.clone() },
            DecodeError::NoPixelData { file: file.clone() },
            DecodeError::UnsupportedTransferSyntax {
                file: file.clone(),
                uid: "1.2.840.10008.1.2.4.90".into(),
                name: Some("JPEG 2000 Image Compression (Lossless Only)".into()),
            },
            DecodeError::TooLarge {
                file: file.clone(),
                width: 20_000,
                height: 20_000,
                limit: 100_000_000,
            },
        ];
        for e in &errors {
            assert!(e.to_string().starts_with("scans/eye 1.dcm: "), "{e}");
            assert_eq!(e.file(), file.as_path());
        }
        assert_eq!(
            errors[2].to_string(),
            "scans/eye 1.dcm: unsupported DICOM transfer syntax 1.2.840.10008.1.2.4.90 \
             (JPEG 2000 Image Compression (Lossless Only))"
        );
        assert_eq!(
            errors[3].to_string(),
            "scans/eye 1.dcm: image of 20000x20000 pixels exceeds the limit of 100000000 pixels"
        );
    }

    /// The binaries print errors as anyhow's `{:#}` does: each message, then its sources'.
    /// An I/O cause is in the message and not chained, so the chain says it once (before,
    /// `"x.png: cannot read file: gone: gone"`).
    #[test]
    fn an_io_cause_is_said_once() {
        let e = DecodeError::Io {
            file: PathBuf::from("x.png"),
            cause: std::io::Error::other("gone"),
        };
        assert!(std::error::Error::source(&e).is_none());
        assert_eq!(error_chain(&e).0, "x.png: cannot read file: gone");
        assert_eq!(e.to_string(), "x.png: cannot read file: gone");
    }

    #[test]
    fn chain_joins_sources_and_spots_eof() {
        #[derive(Debug, thiserror::Error)]
        #[error("could not read data set")]
        struct Outer(#[source] std::io::Error);
        let e = Outer(std::io::Error::new(
            std::io::ErrorKind::UnexpectedEof,
            "failed to fill whole buffer",
        ));
        let (text, eof) = error_chain(&e);
        assert_eq!(text, "could not read data set: failed to fill whole buffer");
        assert!(eof);
        let e = Outer(std::io::Error::other("disk on fire"));
        assert!(!error_chain(&e).1);
    }
}
