//! Keyset paging: a page token is the opaque form of the last key the previous page returned,
//! so pages stay stable while rows are added.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rosetta_proto::common::v1::{PageRequest, PageResponse};

use crate::{ApiError, Reason};

pub const DEFAULT_PAGE_SIZE: u64 = 50;
pub const MAX_PAGE_SIZE: u64 = 500;

/// A decoded page request: return at most `limit` rows whose key is greater than `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub limit: u64,
    pub after: Option<i64>,
}

impl Page {
    pub fn from_request(request: Option<&PageRequest>) -> Result<Self, ApiError> {
        let Some(request) = request else {
            return Ok(Self {
                limit: DEFAULT_PAGE_SIZE,
                after: None,
            });
        };
        let limit = match u64::from(request.page_size) {
            0 => DEFAULT_PAGE_SIZE,
            n => n.min(MAX_PAGE_SIZE),
        };
        let after = if request.page_token.is_empty() {
            None
        } else {
            let bytes = URL_SAFE_NO_PAD
                .decode(&request.page_token)
                .map_err(|_| ApiError::invalid(Reason::BadPageToken, "malformed page token"))?;
            let text = String::from_utf8(bytes)
                .map_err(|_| ApiError::invalid(Reason::BadPageToken, "malformed page token"))?;
            Some(
                text.parse()
                    .map_err(|_| ApiError::invalid(Reason::BadPageToken, "malformed page token"))?,
            )
        };
        Ok(Self { limit, after })
    }

    /// Rows to fetch: one more than the limit, to learn whether another page exists.
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }

    /// Trims `rows` (fetched with [`Page::fetch`]) to the page and builds the response token
    /// from the key of the last row kept.
    pub fn finish<T>(&self, mut rows: Vec<T>, key: impl Fn(&T) -> i64) -> (Vec<T>, PageResponse) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let next_page_token = match rows.last() {
            Some(last) if more => URL_SAFE_NO_PAD.encode(key(last).to_string()),
            _ => String::new(),
        };
        (rows, PageResponse { next_page_token })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_round_trips_and_marks_last_page() {
        let page = Page::from_request(Some(&PageRequest {
            page_size: 2,
            page_token: String::new(),
        }))
        .unwrap();
        let (rows, resp) = page.finish(vec![10, 20, 30], |r| *r);
        assert_eq!(rows, vec![10, 20]);
        let next = Page::from_request(Some(&PageRequest {
            page_size: 2,
            page_token: resp.next_page_token,
        }))
        .unwrap();
        assert_eq!(next.after, Some(20));
        let (rows, resp) = next.finish(vec![30], |r| *r);
        assert_eq!(rows, vec![30]);
        assert!(resp.next_page_token.is_empty());
    }

    #[test]
    fn garbage_token_is_invalid_argument() {
        let err = Page::from_request(Some(&PageRequest {
            page_size: 0,
            page_token: "!!".into(),
        }))
        .unwrap_err();
        assert_eq!(err.reason, Reason::BadPageToken);
    }
}
