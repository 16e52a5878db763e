//! Pagination: from one page to the next URL, or the end.
//!
//! Every style stops on a page without records. Page numbers and offsets count on;
//! a cursor token or a next URL comes from the body (stop when missing, null or empty);
//! `Link` follows the header's `rel="next"` (RFC 8288). A next URL on another scheme,
//! host or port than the API's is refused (credentials would go with it), and a next
//! page that is the page just read is an error rather than an endless loop.

use reqwest::header::{HeaderMap, LINK};
use serde_json::Value;
use url::Url;

use crate::config::{split_path, PaginationConfig};
use crate::records::{get_path, scalar_text};

/// Walks the pages of one listing.
#[derive(Debug, Clone)]
pub struct Paginator {
    cfg: PaginationConfig,
    first: Url,
    page: u64,
    offset: u64,
}

impl Paginator {
    /// A paginator for the listing at `url` (its query parameters set); returns it and
    /// the first page's URL.
    pub fn new(cfg: PaginationConfig, url: Url) -> (Self, Url) {
        let mut first = url.clone();
        let mut page = 0;
        match &cfg {
            PaginationConfig::Page {
                param,
                start,
                size_param,
                size,
            } => {
                page = *start;
                set_param(&mut first, param, &start.to_string());
                if let Some(sp) = size_param {
                    set_param(&mut first, sp, &size.to_string());
                }
            }
            PaginationConfig::Offset {
                offset_param,
                limit_param,
                limit,
            } => {
                set_param(&mut first, offset_param, "0");
                set_param(&mut first, limit_param, &limit.to_string());
            }
            _ => {}
        }
        (
            Paginator {
                cfg,
                first: first.clone(),
                page,
                offset: 0,
            },
            first,
        )
    }

    /// The URL of the page after `current`, which held `records` records; `None` at the
    /// end. The error says what is wrong with the API's answer.
    pub fn next(
        &mut self,
        current: &Url,
        headers: &HeaderMap,
        body: &Value,
        records: usize,
    ) -> Result<Option<Url>, String> {
        if records == 0 {
            return Ok(None);
        }
        let next = match &self.cfg {
            PaginationConfig::None => None,
            PaginationConfig::Page { param, .. } => {
                self.page += 1;
                let mut u = self.first.clone();
                set_param(&mut u, param, &self.page.to_string());
                Some(u)
            }
            PaginationConfig::Offset { offset_param, .. } => {
                self.offset += records as u64;
                let mut u = self.first.clone();
                set_param(&mut u, offset_param, &self.offset.to_string());
                Some(u)
            }
            PaginationConfig::Cursor { path, param } => {
                match get_path(body, &split_path(path)).and_then(scalar_text) {
                    Some(token) if !token.is_empty() => {
                        let mut u = self.first.clone();
                        set_param(&mut u, param, &token);
                        Some(u)
                    }
                    _ => None,
                }
            }
            PaginationConfig::Link => match next_link(headers) {
                Some(link) => Some(current.join(&link).map_err(|e| {
                    format!("the Link header's next URL `{link}` is not valid: {e}")
                })?),
                None => None,
            },
            PaginationConfig::NextUrl { path } => {
                match get_path(body, &split_path(path)).and_then(scalar_text) {
                    Some(link) if !link.is_empty() => {
                        Some(current.join(&link).map_err(|e| {
                            format!("the next page URL at `{path}` is not valid: {e}")
                        })?)
                    }
                    _ => None,
                }
            }
        };
        let Some(next) = next else { return Ok(None) };
        if next.origin() != self.first.origin() {
            return Err(format!(
                "the next page is on another server ({}); credentials are only sent to {}",
                next.origin().ascii_serialization(),
                self.first.origin().ascii_serialization()
            ));
        }
        if next == *current {
            return Err("the next page is the page just read (the pagination would loop)".into());
        }
        Ok(Some(next))
    }
}

/// Sets query parameter `name` to `value`, replacing any earlier value.
pub(crate) fn set_param(url: &mut Url, name: &str, value: &str) {
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != name)
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.set_query(None);
    let mut q = url.query_pairs_mut();
    q.extend_pairs(kept);
    q.append_pair(name, value);
}

/// The `rel="next"` target of the `Link` headers (RFC 8288), if any.
pub(crate) fn next_link(headers: &HeaderMap) -> Option<String> {
    for value in headers.get_all(LINK) {
        let Ok(text) = value.to_str() else { continue };
        let mut rest = text;
        while let Some(open) = rest.find('<') {
            let close = open + rest[open..].find('>')?;
            let target = &rest[open + 1..close];
            let after = &rest[close + 1..];
            let params_end = after.find('<').unwrap_or(after.len());
            let params = &after[..params_end];
            let is_next = params.split(';').any(|p| {
                let Some((k, v)) = p.split_once('=') else {
                    return false;
                };
                k.trim().eq_ignore_ascii_case("rel")
                    && v.trim()
                        .trim_matches(|c| c == '"' || c == ',')
                        .split_ascii_whitespace()
                        .any(|r| r.eq_ignore_ascii_case("next"))
            });
            if is_next {
                return Some(target.trim().to_string());
            }
            rest = &after[params_end..];
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    #[test]
    fn link_header_next() {
        let mut h = HeaderMap::new();
        h.insert(
            LINK,
            HeaderValue::from_static(
                "<https://api.test/x?page=1>; rel=\"prev first\", <https://api.test/x?page=3>; rel=\"next\"; title=\"a, b\"",
            ),
        );
        assert_eq!(next_link(&h).as_deref(), Some("https://api.test/x?page=3"));
        h.insert(LINK, HeaderValue::from_static("</x?page=9>; REL=next"));
        assert_eq!(next_link(&h).as_deref(), Some("/x?page=9"));
        h.insert(
            LINK,
            HeaderValue::from_static("<https://a/x>; rel=\"last\""),
        );
        assert_eq!(next_link(&h), None);
    }

    #[test]
    fn styles_advance_and_stop() {
        let base = Url::parse("https://api.test/items?x=1").unwrap();
        let none = HeaderMap::new();
        let (mut p, first) = Paginator::new(
            PaginationConfig::Offset {
                offset_param: "offset".into(),
                limit_param: "limit".into(),
                limit: 2,
            },
            base.clone(),
        );
        assert_eq!(
            first.as_str(),
            "https://api.test/items?x=1&offset=0&limit=2"
        );
        let n = p.next(&first, &none, &Value::Null, 2).unwrap().unwrap();
        assert_eq!(n.as_str(), "https://api.test/items?x=1&limit=2&offset=2");
        assert_eq!(p.next(&n, &none, &Value::Null, 0).unwrap(), None);

        let (mut p, first) = Paginator::new(
            PaginationConfig::NextUrl {
                path: "next".into(),
            },
            base.clone(),
        );
        let body = serde_json::json!({"next": "https://evil.test/items?page=2"});
        assert!(p
            .next(&first, &none, &body, 1)
            .unwrap_err()
            .contains("another server"));
        let body = serde_json::json!({"next": "/items?page=2"});
        assert_eq!(
            p.next(&first, &none, &body, 1).unwrap().unwrap().as_str(),
            "https://api.test/items?page=2"
        );
        let body = serde_json::json!({"next": first.as_str()});
        assert!(p
            .next(&first, &none, &body, 1)
            .unwrap_err()
            .contains("loop"));
        assert_eq!(
            p.next(&first, &none, &serde_json::json!({"next": null}), 1)
                .unwrap(),
            None
        );
    }
}
