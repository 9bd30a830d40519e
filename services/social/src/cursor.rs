//! Keyset paging over composite keys. `rosetta_kit::page::Page` pages by one `i64`; contacts,
//! groups and members are ordered by (time, id) pairs, so their token carries every part of the
//! last key. A one-part token is byte-for-byte the kit's format.

use base64::{Engine as _, engine::general_purpose::URL_SAFE_NO_PAD};
use rosetta_kit::{
    ApiError, Reason,
    page::{DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE},
};
use rosetta_proto::common::v1::{PageRequest, PageResponse};

/// A decoded page request: at most `limit` rows whose key follows `after`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor<const N: usize> {
    pub limit: u64,
    pub after: Option<[i64; N]>,
}

impl<const N: usize> Cursor<N> {
    pub fn from_request(request: Option<&PageRequest>) -> Result<Self, ApiError> {
        let bad = || ApiError::invalid(Reason::BadPageToken, "malformed page token");
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
        if request.page_token.is_empty() {
            return Ok(Self { limit, after: None });
        }
        let bytes = URL_SAFE_NO_PAD
            .decode(&request.page_token)
            .map_err(|_| bad())?;
        let text = String::from_utf8(bytes).map_err(|_| bad())?;
        let mut key = [0; N];
        let mut parts = text.split('.');
        for slot in &mut key {
            *slot = parts.next().ok_or_else(bad)?.parse().map_err(|_| bad())?;
        }
        if parts.next().is_some() {
            return Err(bad());
        }
        Ok(Self {
            limit,
            after: Some(key),
        })
    }

    /// Rows to fetch: one more than the limit, to learn whether another page exists.
    pub fn fetch(&self) -> u64 {
        self.limit + 1
    }

    /// Trims `rows` (fetched with [`Cursor::fetch`]) to the page and builds the next token.
    pub fn finish<T>(
        &self,
        mut rows: Vec<T>,
        key: impl Fn(&T) -> [i64; N],
    ) -> (Vec<T>, PageResponse) {
        let more = rows.len() as u64 > self.limit;
        rows.truncate(usize::try_from(self.limit).unwrap_or(usize::MAX));
        let next_page_token = match rows.last() {
            Some(last) if more => {
                let text: Vec<String> = key(last).iter().map(i64::to_string).collect();
                URL_SAFE_NO_PAD.encode(text.join("."))
            }
            _ => String::new(),
        };
        (rows, PageResponse { next_page_token })
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    fn req(size: u32, token: &str) -> PageRequest {
        PageRequest {
            page_size: size,
            page_token: token.into(),
        }
    }

    #[test]
    fn composite_token_round_trips() {
        let first = Cursor::<2>::from_request(Some(&req(2, ""))).unwrap();
        let (rows, resp) = first.finish(vec![(1, 5), (1, 7), (2, 1)], |r| [r.0, r.1]);
        assert_eq!(rows.len(), 2);
        let next = Cursor::<2>::from_request(Some(&req(2, &resp.next_page_token))).unwrap();
        assert_eq!(next.after, Some([1, 7]));
        let (_, resp) = next.finish(vec![(2, 1)], |r| [r.0, r.1]);
        assert!(resp.next_page_token.is_empty());
    }

    #[test]
    fn one_part_token_matches_the_kit() {
        let kit = rosetta_kit::page::Page::from_request(None).unwrap();
        let (_, kit_resp) = kit.finish((0..60).collect(), |r| *r);
        let ours = Cursor::<1>::from_request(Some(&req(0, &kit_resp.next_page_token))).unwrap();
        assert_eq!(ours.after, Some([49]));
    }

    #[test]
    fn bad_tokens_are_refused() {
        for token in ["!!", "MQ", "MS4yLjM"] {
            let err = Cursor::<2>::from_request(Some(&req(0, token))).unwrap_err();
            assert_eq!(err.reason, Reason::BadPageToken, "{token}");
        }
    }
}
