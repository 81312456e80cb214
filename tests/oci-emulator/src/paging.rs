//! OCI-style pagination: `limit` and an opaque `page` token, the next token
//! returned in the `opc-next-page` header.

use crate::error::ApiError;

/// OCI's usual default and maximum page sizes for these lists.
pub const DEFAULT_LIMIT: usize = 100;
pub const MAX_LIMIT: usize = 1000;

/// One page of `items` and the token of the next page, if any.
pub fn paginate<T>(
    items: Vec<T>,
    limit: Option<&str>,
    page: Option<&str>,
) -> Result<(Vec<T>, Option<String>), ApiError> {
    let limit = match limit {
        None => DEFAULT_LIMIT,
        Some(text) => text
            .parse::<usize>()
            .ok()
            .filter(|l| (1..=MAX_LIMIT).contains(l))
            .ok_or_else(|| ApiError::invalid(format!("limit must be between 1 and {MAX_LIMIT}")))?,
    };
    let offset = match page {
        None => 0,
        Some(token) => decode_token(token)
            .ok_or_else(|| ApiError::invalid(format!("invalid page token {token:?}")))?,
    };
    let total = items.len();
    let page: Vec<T> = items.into_iter().skip(offset).take(limit).collect();
    let next = (offset + limit < total).then(|| encode_token(offset + limit));
    Ok((page, next))
}

// Tokens are opaque to clients; "emu-page-<offset>" keeps them readable in logs.
fn encode_token(offset: usize) -> String {
    format!("emu-page-{offset}")
}

fn decode_token(token: &str) -> Option<usize> {
    token.strip_prefix("emu-page-")?.parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_pages() {
        let items: Vec<u32> = (0..5).collect();
        let (first, next) = paginate(items.clone(), Some("2"), None).expect("ok");
        assert_eq!(first, vec![0, 1]);
        let (second, next) = paginate(items.clone(), Some("2"), next.as_deref()).expect("ok");
        assert_eq!(second, vec![2, 3]);
        let (third, next) = paginate(items, Some("2"), next.as_deref()).expect("ok");
        assert_eq!(third, vec![4]);
        assert_eq!(next, None);
    }

    #[test]
    fn rejects_bad_limits_and_tokens() {
        assert!(paginate(vec![1], Some("0"), None).is_err());
        assert!(paginate(vec![1], Some("1001"), None).is_err());
        assert!(paginate(vec![1], Some("x"), None).is_err());
        assert!(paginate(vec![1], None, Some("garbage")).is_err());
    }
}
