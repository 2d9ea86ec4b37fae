//! Base64 as docker's headers and config file use it: written standard with
//! padding, read in either alphabet, padded or not.

use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine as _;

pub fn encode(data: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(data)
}

/// Standard or URL-safe, padded or not; `None` on anything else.
pub fn decode(s: &str) -> Option<Vec<u8>> {
    let lenient =
        GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent);
    let s = s.trim();
    GeneralPurpose::new(&base64::alphabet::STANDARD, lenient)
        .decode(s)
        .or_else(|_| GeneralPurpose::new(&base64::alphabet::URL_SAFE, lenient).decode(s))
        .ok()
}

#[cfg(test)]
mod tests {
    #[test]
    fn both_alphabets_with_or_without_padding() {
        for s in ["", "f", "fo", "foo", "foob"] {
            let e = super::encode(s.as_bytes());
            assert_eq!(super::decode(&e).unwrap(), s.as_bytes());
            assert_eq!(
                super::decode(e.trim_end_matches('=')).unwrap(),
                s.as_bytes()
            );
        }
        assert_eq!(super::encode(b"fo"), "Zm8=");
        assert_eq!(super::decode("_-8").unwrap(), vec![0xff, 0xef]);
        assert_eq!(super::decode("@@"), None);
    }
}
