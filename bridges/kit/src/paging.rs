//! Reading every page of a paged list call, within a bound: a legacy reply that needs the
//! whole list (a friend list, a member list) never asks for more than `max_pages` pages.

use tonic::Status;

/// Calls `page` with each page token in turn (the first is empty) until it answers an empty
/// next token or `max_pages` pages were read, and returns the items of all pages in order.
/// `page` answers the page's items and the next page's token.
pub async fn all_pages<T, F, Fut>(max_pages: usize, mut page: F) -> Result<Vec<T>, Status>
where
    F: FnMut(String) -> Fut,
    Fut: Future<Output = Result<(Vec<T>, String), Status>>,
{
    let mut items = Vec::new();
    let mut token = String::new();
    for _ in 0..max_pages {
        let (mut found, next) = page(token).await?;
        items.append(&mut found);
        if next.is_empty() {
            break;
        }
        token = next;
    }
    Ok(items)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pages_are_read_in_order_up_to_the_bound() {
        let pages = |token: String| async move {
            let n: u32 = token.parse().unwrap_or(0);
            Ok::<_, Status>((vec![n], (n + 1).to_string()))
        };
        assert_eq!(all_pages(3, pages).await.unwrap(), vec![0, 1, 2]);
        let two = |token: String| async move {
            Ok::<_, Status>((
                vec![token.clone()],
                if token.is_empty() {
                    "x".into()
                } else {
                    String::new()
                },
            ))
        };
        assert_eq!(
            all_pages(10, two).await.unwrap(),
            vec!["".to_string(), "x".into()]
        );
    }
}
