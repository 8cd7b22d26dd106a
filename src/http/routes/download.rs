//! The issued token as a download: its one file (the PKCS#12, or a zip of one per certificate),
//! the Content-Disposition with its file name, and the cookie the PIN page watches for.

use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};

use super::super::archive;
use super::super::error::{ErrorFormat, respond};
use crate::issuance::{IssuanceError, SoftToken};
use crate::rules::Layout;

/// The token as a download from the form endpoint: [`attachment`] with the cookie the PIN page
/// watches for.
pub(super) fn download(token: SoftToken, over_tls: bool, request_id: &str) -> Response {
    match attachment(token) {
        Ok(mut response) => {
            response.headers_mut().insert(
                header::SET_COOKIE,
                HeaderValue::from_static(download_cookie(over_tls)),
            );
            response
        }
        Err(error) => respond(&error, request_id, ErrorFormat::Html),
    }
}

/// The token's one file as an attachment (not stored by caches): the PKCS#12 itself, or for a
/// `per-purpose` token a zip of its files. Used by the form endpoint and the API.
pub(in crate::http) fn attachment(token: SoftToken) -> Result<Response, IssuanceError> {
    let (content_type, filename, body) = token_file(token)?;
    Ok((
        [
            (header::CONTENT_TYPE, content_type.to_string()),
            (header::CONTENT_DISPOSITION, content_disposition(&filename)),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        body,
    )
        .into_response())
}

/// The one file a token is downloaded as: its PKCS#12 (combined layout), or a zip of one
/// PKCS#12 per certificate (per-purpose layout). Content type, file name and bytes.
fn token_file(token: SoftToken) -> Result<(&'static str, String, Vec<u8>), IssuanceError> {
    match token.layout {
        Layout::Combined => Ok(("application/x-pkcs12", token.filename, token.pkcs12)),
        Layout::PerPurpose => archive::zip_files(&token.files)
            .map(|zip| ("application/zip", archive::zip_name(&token.filename), zip))
            .map_err(|e| IssuanceError::invariant(format!("cannot write the token's zip: {e}"))),
    }
}

/// The cookie the PIN page watches for (the download has started); `Secure` when the browser
/// reaches the page over HTTPS (this listener's TLS, or a front's: an https `public_url`).
fn download_cookie(over_tls: bool) -> &'static str {
    if over_tls {
        "downloaded=true; Path=/; SameSite=Strict; Secure"
    } else {
        "downloaded=true; Path=/; SameSite=Strict"
    }
}

/// `attachment; filename="<ASCII>"`, plus RFC 6266 `filename*=UTF-8''<percent-encoded>` when
/// the (already sanitised) name is not ASCII: browsers take `filename*`, older clients the ASCII
/// fallback with every other character as `_`.
pub(in crate::http) fn content_disposition(filename: &str) -> String {
    let ascii: String = filename
        .chars()
        .map(|c| {
            if (c.is_ascii_graphic() && c != '"' && c != '\\') || c == ' ' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if ascii == filename {
        return format!("attachment; filename=\"{ascii}\"");
    }
    // RFC 8187 attr-char: ALPHA DIGIT ! # $ & + - . ^ _ ` | ~; everything else is encoded.
    const ATTR_CHAR: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
        .remove(b'!')
        .remove(b'#')
        .remove(b'$')
        .remove(b'&')
        .remove(b'+')
        .remove(b'-')
        .remove(b'.')
        .remove(b'^')
        .remove(b'_')
        .remove(b'`')
        .remove(b'|')
        .remove(b'~');
    format!(
        "attachment; filename=\"{ascii}\"; filename*=UTF-8''{}",
        percent_encoding::utf8_percent_encode(filename, ATTR_CHAR)
    )
}

#[cfg(test)]
mod tests {
    use super::content_disposition;

    #[test]
    fn ascii_names_need_no_filename_star() {
        assert_eq!(
            content_disposition("Alice Andersson.p12"),
            "attachment; filename=\"Alice Andersson.p12\""
        );
    }

    #[test]
    fn unicode_names_get_an_ascii_fallback_and_rfc_6266_filename_star() {
        assert_eq!(
            content_disposition("Hanna Ström.p12"),
            "attachment; filename=\"Hanna Str_m.p12\"; filename*=UTF-8''Hanna%20Str%C3%B6m.p12"
        );
        assert_eq!(
            content_disposition("𠮷田 太郎.p12"),
            "attachment; filename=\"__ __.p12\"; filename*=UTF-8''%F0%A0%AE%B7%E7%94%B0%20%E5%A4%AA%E9%83%8E.p12"
        );
        // Whatever reaches it, the header stays one quoted ASCII token.
        let header = content_disposition("a\"b\\c\r\nd.p12");
        assert!(header.is_ascii() && !header.contains('\r') && header.matches('"').count() == 2);
    }
}
