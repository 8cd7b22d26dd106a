//! PEM blocks read one at a time from a stream (a bundle of many certificates is never held
//! whole): the label and the DER of each `-----BEGIN …-----` block; text between blocks is
//! skipped, as OpenSSL does.

use std::io::BufRead;

use base64::Engine;

/// The longest base64 body of one block (a certificate or CRL larger than this is refused).
const MAX_BLOCK: usize = 16 * 1024 * 1024;
/// The longest line read.
const MAX_LINE: u64 = 64 * 1024;

/// An iterator over the PEM blocks of a reader: `(label, DER)`, or an error naming the line.
pub struct PemBlocks<R> {
    reader: R,
    line_number: u64,
    done: bool,
}

impl<R: BufRead> PemBlocks<R> {
    pub fn new(reader: R) -> Self {
        PemBlocks {
            reader,
            line_number: 0,
            done: false,
        }
    }

    /// The next line without its end; `None` at the end of the stream.
    fn line(&mut self) -> Result<Option<String>, String> {
        let mut buffer = Vec::new();
        let n = <&mut R as std::io::Read>::take(&mut self.reader, MAX_LINE)
            .read_until(b'\n', &mut buffer)
            .map_err(|e| format!("cannot read: {e}"))?;
        if n == 0 {
            return Ok(None);
        }
        self.line_number += 1;
        if buffer.last() != Some(&b'\n') && n as u64 == MAX_LINE {
            return Err(format!("line {}: longer than 64 KiB", self.line_number));
        }
        Ok(Some(String::from_utf8_lossy(&buffer).trim().to_string()))
    }

    fn block(&mut self) -> Result<Option<(String, Vec<u8>)>, String> {
        let label = loop {
            let Some(line) = self.line()? else {
                return Ok(None);
            };
            if let Some(rest) = line.strip_prefix("-----BEGIN ") {
                break rest.trim_end_matches('-').to_string();
            }
        };
        let start = self.line_number;
        let mut body = String::new();
        loop {
            let Some(line) = self.line()? else {
                return Err(format!("line {start}: `{label}` block without an END line"));
            };
            if line.starts_with("-----END ") {
                break;
            }
            body.push_str(&line);
            if body.len() > MAX_BLOCK {
                return Err(format!("line {start}: `{label}` block larger than 16 MiB"));
            }
        }
        let der = base64::engine::general_purpose::STANDARD
            .decode(body.as_bytes())
            .map_err(|_| format!("line {start}: `{label}` block is not valid base64"))?;
        Ok(Some((label, der)))
    }
}

impl<R: BufRead> Iterator for PemBlocks<R> {
    type Item = Result<(String, Vec<u8>), String>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        let next = self.block();
        if !matches!(next, Ok(Some(_))) {
            self.done = true;
        }
        next.transpose()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_blocks_and_skips_text_between() {
        let text = "subject=CN = a\n-----BEGIN CERTIFICATE-----\nAQID\n-----END CERTIFICATE-----\nnoise\n-----BEGIN X509 CRL-----\nBAU=\n-----END X509 CRL-----\n";
        let blocks: Vec<_> = PemBlocks::new(text.as_bytes()).collect();
        assert_eq!(
            blocks,
            vec![
                Ok(("CERTIFICATE".to_string(), vec![1, 2, 3])),
                Ok(("X509 CRL".to_string(), vec![4, 5])),
            ]
        );
    }

    #[test]
    fn an_unterminated_block_is_an_error() {
        let text = "-----BEGIN CERTIFICATE-----\nAQID\n";
        let blocks: Vec<_> = PemBlocks::new(text.as_bytes()).collect();
        assert_eq!(blocks.len(), 1);
        assert!(
            blocks[0]
                .as_ref()
                .is_err_and(|e| e.contains("without an END"))
        );
    }
}
